"""``verify graph``: text, JSON, the picture, DOT and JSON files, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from verify.cli import main

TINY = ROOT / "examples" / "tiny" / "classifier.onnx"
SPEC = ROOT / "specs" / "tiny_robust_class0.vnnlib"


def test_text_output(capsys: pytest.CaptureFixture) -> None:
    assert main(["graph", str(TINY), "--spec", str(SPEC)]) == 0
    out = capsys.readouterr().out
    for word in ("neurons", "non-zero weights", "unstable ReLUs", "stable ReLUs", "slice to property", "modules:"):
        assert word in out
    assert "M1" in out and "out" in out


def test_json_and_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["graph", str(TINY), "--spec", str(SPEC), "--json", "--out", str(tmp_path / "g")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["relus_before"] == 32 and data["relus_after"] < 32 and data["unstable_after"] is not None
    assert data["n_modules"] == len(data["modules"]) >= 2
    for name in ("modules.svg", "modules.png", "graph.dot", "graph.json"):
        assert (tmp_path / "g" / name).stat().st_size > 0
    import matplotlib.image

    img = matplotlib.image.imread(tmp_path / "g" / "modules.png")
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert "<svg" in (tmp_path / "g" / "modules.svg").read_text()
    dot = (tmp_path / "g" / "graph.dot").read_text()
    assert dot.startswith("digraph") and '"input" -> "M1"' in dot
    saved = json.loads((tmp_path / "g" / "graph.json").read_text())
    assert saved["modules"] == data["modules"] and saved["summary"]["relus_after"] == data["relus_after"]


def test_without_spec_structural_only(capsys: pytest.CaptureFixture) -> None:
    assert main(["graph", str(TINY), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["relus_after"] == data["relus_before"] == 32 and data["unstable_after"] is None


@pytest.mark.parametrize("argv, message", [
    (["graph", "missing.onnx"], "model file not found"),
    (["graph", str(TINY), "--spec", str(SPEC), "--case", "3"], "case"),
    (["graph", str(TINY), "--max-unstable", "0"], "must be >= 1"),
])
def test_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
