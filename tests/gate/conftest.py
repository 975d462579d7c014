"""Fixtures of the gate tests: a copy of the bundled example (model, specs, points and the
verify.toml manifest) in a temporary folder, which tests may change freely."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from verify.gate import GateOptions, GateRun, run_gate


def _hard_spec() -> str:
    """Class 0 on 16 overlapping boxes of half-width 0.21 around its centre (0.2, 0.2, 0.3, 0.7),
    each input shifted by -0.002 or +0.002: it holds, but branch and bound needs about 140
    boxes in all, about half a second, so a 0.1 s timeout leaves it unknown."""
    centre, half = (0.2, 0.2, 0.3, 0.7), 0.21
    lines = [f"(declare-const X_{i} Real)" for i in range(4)] + [f"(declare-const Y_{j} Real)" for j in range(3)]
    boxes = []
    for k in range(16):
        mid = [c + (0.002 if (k >> i) & 1 else -0.002) for i, c in enumerate(centre)]
        boxes.append("(and " + " ".join(f"(>= X_{i} {m - half:.3f}) (<= X_{i} {m + half:.3f})"
                                        for i, m in enumerate(mid)) + ")")
    lines.append("(assert (or\n  " + "\n  ".join(boxes) + "))")
    lines.append("(assert (or (and (>= Y_1 Y_0)) (and (>= Y_2 Y_0))))")
    return "\n".join(lines) + "\n"


HARD_SPEC = _hard_spec()


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
