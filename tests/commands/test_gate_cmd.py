"""``verify gate``: the exit codes of the three scenarios on the bundled example (0 all hold,
1 violated, 3 timeout), the four report files, and one-line input errors (exit 2)."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.gate.conftest import HARD_SPEC
from verify.cli import main


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example project; the working folder is its root (so verify.toml is found)."""
    root = tmp_path / "project"
    (root / "examples").mkdir(parents=True)
    shutil.copytree(ROOT / "examples" / "tiny", root / "examples" / "tiny")
    shutil.copytree(ROOT / "specs", root / "specs")
    shutil.copyfile(ROOT / "verify.toml", root / "verify.toml")
    monkeypatch.chdir(root)
    return root


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's usage errors
        return int(exc.code)


def test_three_scenarios(project: Path, capsys: pytest.CaptureFixture) -> None:
    assert _run(["gate", "--report", "out", "--junit", "junit.xml"]) == 0
    out = capsys.readouterr()
    assert "gate: PASS (exit 0), 7 properties: 6 verified, 1 falsified, 0 unknown" in out.out
    assert "[1/7] class0-robust: verified" in out.err  # plain progress lines (not a terminal)
    for name in ("report.json", "junit.xml", "report.md", "report.html"):
        assert (project / "out" / name).stat().st_size > 0
    root = ET.parse(project / "junit.xml").getroot()
    assert root.get("tests") == "8" and root.get("failures") == "0"

    spec = project / "specs" / "tiny_robust_class0.vnnlib"
    original = spec.read_text()
    shutil.copyfile(project / "specs" / "tiny_robust_class0_wide.vnnlib", spec)
    assert _run(["gate", "--quiet", "--junit", "junit.xml"]) == 1
    out = capsys.readouterr()
    assert "FAIL: class0-robust: falsified; requires verified" in out.out and out.err == ""
    assert ET.parse(project / "junit.xml").getroot().get("failures") == "1"

    spec.write_text(original)
    (project / "specs" / "hard.vnnlib").write_text(HARD_SPEC)
    with open(project / "verify.toml", "a") as fh:
        fh.write('\n[[properties]]\nname = "hard"\nspec = "specs/hard.vnnlib"\ntimeout = 0.1\n')
    assert _run(["gate", "--quiet"]) == 3
    assert "UNKNOWN: hard: unknown (timeout); requires verified" in capsys.readouterr().out


def test_baseline_regression_names_the_property(project: Path, capsys: pytest.CaptureFixture) -> None:
    assert _run(["gate", "--quiet", "--report", "v1"]) == 0
    specs = project / "specs"
    shutil.copyfile(specs / "tiny_robust_class0_wide.vnnlib", specs / "tiny_robust_class0.vnnlib")
    capsys.readouterr()
    assert _run(["gate", "--quiet", "--baseline", "v1", "--manifest", "verify.toml"]) == 1
    assert "regression: class0-robust was verified in the baseline and is falsified now" in capsys.readouterr().out


@pytest.mark.parametrize("argv, setup, message", [
    (["gate", "--manifest", "missing.toml"], "", "manifest not found: missing.toml"),
    (["gate"], "timout = 3\n", "unknown key 'timout' (did you mean 'timeout'?)"),
    (["gate", "--baseline", "nowhere"], "", "--baseline nowhere: no report.json there"),
    (["gate", "--jobs", "0"], "", "must be >= 1"),
])
def test_input_errors_are_one_line(project: Path, capsys: pytest.CaptureFixture, argv: list[str], setup: str,
                                   message: str) -> None:
    if setup:
        (project / "verify.toml").write_text(setup + (project / "verify.toml").read_text())
    assert _run(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_no_manifest_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    assert _run(["gate"]) == 2
    assert "no manifest in" in capsys.readouterr().err
