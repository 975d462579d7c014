"""verify.gate.baseline: regressions fail the gate with the property named; shrinking
margins, dropped family rates and removed properties are listed."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import numpy_helper

from tests.gate.conftest import HARD_SPEC, gate, write_manifest
from verify.errors import InputFileError
from verify.gate.baseline import compare, load_baseline
from verify.gate.reports.text import format_summary

HEAD = '[models]\ntiny = "examples/tiny/classifier.onnx"\n'


def _new_release(model: Path) -> None:
    """A "retrained" model: the class-1 output gets a bias of +6, so class 0 loses its ball."""
    proto = onnx.load(model)
    for init in proto.graph.initializer:
        if init.name == "fc2.bias":
            bias = numpy_helper.to_array(init).copy()
            bias[1] += 6.0
            init.CopyFrom(numpy_helper.from_array(bias, init.name))
    onnx.save(proto, model)


def test_regression_of_a_new_model_fails_the_gate(example: Path, tmp_path: Path) -> None:
    assert gate(example, report=tmp_path / "v1").exit_code == 0
    _new_release(example / "examples/tiny/classifier.onnx")
    run = gate(example, baseline=tmp_path / "v1", report=tmp_path / "v2")
    regressions = run.report["baseline"]["regressions"]
    assert "class0-robust" in [r["id"] for r in regressions] and run.exit_code == 1
    reg = next(r for r in regressions if r["id"] == "class0-robust")
    assert reg["before"] == "verified" and reg["now"] != "verified" and not reg["spec_changed"]
    assert any(f["message"].startswith("regression: class0-robust was verified in the baseline")
               for f in run.report["failures"])
    assert "regression: class0-robust" in format_summary(run.report, [], 1.0)
    assert "regression: class0-robust" in (tmp_path / "v2" / "junit.xml").read_text()
    assert "class0-robust was verified in the baseline" in (tmp_path / "v2" / "report.md").read_text()


def test_regression_fails_even_when_the_requirement_holds(example: Path, tmp_path: Path) -> None:
    """Verified before, unknown now: "not-falsified" still holds, the baseline alone fails the gate."""
    (example / "specs/hard.vnnlib").write_text(HARD_SPEC)
    prop = '[[properties]]\nname = "hard"\nspec = "specs/hard.vnnlib"\nrequire = "not-falsified"\n'
    path = write_manifest(example, HEAD + prop + "timeout = 10\n")
    first = gate(example, manifest=path, report=tmp_path / "v1")
    assert first.report["properties"][0]["verdict"] == "verified" and first.exit_code == 0
    write_manifest(example, HEAD + prop + "timeout = 0.1\n")
    without = gate(example, manifest=path)
    assert without.exit_code == 0 and without.report["properties"][0]["status"] == "pass"
    run = gate(example, manifest=path, baseline=tmp_path / "v1" / "report.json")
    assert run.report["properties"][0]["verdict"] == "unknown" and run.exit_code == 1
    assert [(f["id"], f["status"]) for f in run.report["failures"]] == [("hard", "fail")]
    assert "hard was verified in the baseline and is unknown now" in run.report["failures"][0]["message"]


def test_shrinking_margin_is_listed(example: Path, tmp_path: Path) -> None:
    gate(example, report=tmp_path / "v1")
    spec = example / "specs/tiny_robust_class0.vnnlib"
    spec.write_text(spec.read_text().replace("(>= X_0 0.15)", "(>= X_0 0.05)").replace("(<= X_0 0.25)",
                                                                                         "(<= X_0 0.55)"))
    run = gate(example, baseline=tmp_path / "v1", report=tmp_path / "v2")
    base = run.report["baseline"]
    assert run.exit_code == 0 and base["regressions"] == []
    (m,) = base["margin_decreases"]
    assert m["id"] == "class0-robust" and m["now"] < m["before"] and m["relative"] < -0.1
    assert "Shrinking margins" in (tmp_path / "v2" / "report.md").read_text()
    assert "margin of class0-robust shrank" in format_summary(run.report, [], 1.0)
    # an unchanged re-run (cached, same margins) lists nothing
    same = gate(example, baseline=tmp_path / "v2")
    assert same.report["baseline"]["margin_decreases"] == [] and same.report["baseline"]["regressions"] == []


def _p(pid: str, verdict: str, margin: float | None, sha: str = "s") -> dict:
    return {"id": pid, "verdict": verdict, "margin": margin, "spec_sha256": sha}


def test_compare() -> None:
    baseline = {"_path": "old/report.json", "properties": [
        _p("a", "verified", 2.0), _p("b", "verified", 1.0), _p("c", "unknown", None), _p("d", "verified", 3.0),
        _p("gone", "verified", 1.0), _p("e", "verified", 1.0)],
        "families": [{"id": "f", "verified_rate": 1.0}]}
    now = [_p("a", "verified", 2.0), _p("b", "verified", 0.5), _p("c", "falsified", None),
           _p("d", "falsified", None, "t"), _p("e", "verified", 1.0 - 1e-12)]
    out = compare(baseline, now, [{"id": "f", "verified_rate": 0.5}])
    assert [(r["id"], r["now"], r["spec_changed"]) for r in out["regressions"]] == [("d", "falsified", True)]
    assert [m["id"] for m in out["margin_decreases"]] == ["b"]  # float noise on "e" is not a change
    assert out["family_rate_drops"] == [{"id": "f", "before": 1.0, "now": 0.5}] and out["removed"] == ["gone"]


def test_baseline_errors(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no report.json there"):
        load_baseline(tmp_path)
    (tmp_path / "report.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(InputFileError, match="not a verify gate report"):
        load_baseline(tmp_path)
    (tmp_path / "report.json").write_text("{")
    with pytest.raises(InputFileError, match="not a JSON report"):
        load_baseline(tmp_path / "report.json")
