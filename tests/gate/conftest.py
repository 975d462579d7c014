"""Fixtures of the gate tests: a copy of the bundled example (model, specs, points and the
verify.toml manifest) in a temporary folder, which tests may change freely."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from verify.gate import GateOptions, GateRun, run_gate

#: class 0 in an L-infinity ball of radius 0.2 around its centre: it holds, but branch and
#: bound needs about half a second, so a 0.1 s timeout leaves it unknown.
HARD_SPEC = """\
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const X_2 Real)
(declare-const X_3 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(declare-const Y_2 Real)
(assert (>= X_0 0.0))
(assert (<= X_0 0.4))
(assert (>= X_1 0.0))
(assert (<= X_1 0.4))
(assert (>= X_2 0.1))
(assert (<= X_2 0.5))
(assert (>= X_3 0.5))
(assert (<= X_3 0.9))
(assert (or (and (>= Y_1 Y_0)) (and (>= Y_2 Y_0))))
"""


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A folder with verify.toml, examples/tiny/ and specs/ as in the repository."""
    root = tmp_path / "project"
    (root / "examples").mkdir(parents=True)
    shutil.copytree(ROOT / "examples" / "tiny", root / "examples" / "tiny")
    shutil.copytree(ROOT / "specs", root / "specs")
    shutil.copyfile(ROOT / "verify.toml", root / "verify.toml")
    return root


def gate(root: Path, **options: object) -> GateRun:
    """Run the gate of ``root/verify.toml`` quietly (progress into a string)."""
    options.setdefault("manifest", root / "verify.toml")
    options.setdefault("stream", io.StringIO())
    return run_gate(GateOptions(**options))  # type: ignore[arg-type]


def by_id(run: GateRun) -> dict[str, dict]:
    return {p["id"]: p for p in run.report["properties"]}


def write_manifest(root: Path, text: str, name: str = "verify.toml") -> Path:
    path = root / name
    path.write_text(text)
    return path
