"""verify.gate.runner on copies of the bundled example: pass, violated, timeout, families,
several models, worker processes, and input errors that stop the gate before it runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.gate.conftest import HARD_SPEC, by_id, gate, write_manifest
from verify.certcheck import check_certificate
from verify.errors import SpecMismatchError

HEAD = 'timeout = 10\n[models]\ntiny = "examples/tiny/classifier.onnx"\n'


def _prop(name: str, spec: str, extra: str = "") -> str:
    return f'\n[[properties]]\nname = "{name}"\nspec = "{spec}"\n{extra}'


def test_example_passes_with_certificates(example: Path, tmp_path: Path) -> None:
    run = gate(example, report=tmp_path / "rep", cache=False)
    assert run.exit_code == 0 and run.report["outcome"] == "pass"
    props = by_id(run)
    assert set(props) == {"class0-robust", "class1-robust", "class2-output-range", "class0-robust-wide",
                          "points-eps0.02[0]", "points-eps0.02[1]", "points-eps0.02[2]"}
    assert run.report["counts"] == {"total": 7, "verified": 6, "falsified": 1, "unknown": 0, "cached": 0,
                                    "requirements_failed": 0}
    wide = props["class0-robust-wide"]
    assert wide["verdict"] == "falsified" and wide["status"] == "pass" and wide["require"] == "none"
    assert len(wide["counterexample"]["x"]) == 4 and wide["certificate"] is None
    (fam,) = run.report["families"]
    assert (fam["rows"], fam["verified"], fam["verified_rate"], fam["needed"], fam["status"]) == (3, 3, 1.0, 3, "pass")
    assert [props[f"points-eps0.02[{i}]"]["label"] for i in range(3)] == [0, 1, 2]
    # every certificate in the report re-checks from the report folder alone (family rows: with their spec copy)
    for p in props.values():
        if p["verdict"] != "verified":
            continue
        cert_file = tmp_path / "rep" / p["certificate"]["file"]
        spec = tmp_path / "rep" / p["certificate"]["spec_file"] if p["family"] else example / p["spec"]
        report = check_certificate(example / "examples/tiny/classifier.onnx", spec, json.loads(cert_file.read_text()))
        assert report.valid, (p["id"], report.message)


def test_violated_property_fails_with_exit_1(example: Path) -> None:
    shutil.copyfile(example / "specs/tiny_robust_class0_wide.vnnlib", example / "specs/tiny_robust_class0.vnnlib")
    run = gate(example)
    assert run.exit_code == 1 and run.report["outcome"] == "fail"
    p = by_id(run)["class0-robust"]
    assert p["verdict"] == "falsified" and p["status"] == "fail" and p["counterexample"] is not None
    assert [f["id"] for f in run.report["failures"]] == ["class0-robust"]


def test_timeout_makes_unknown_exit_3(example: Path) -> None:
    (example / "specs/hard.vnnlib").write_text(HARD_SPEC)
    path = write_manifest(example, HEAD + _prop("class0-robust", "specs/tiny_robust_class0.vnnlib")
                          + _prop("hard", "specs/hard.vnnlib", "timeout = 0.1\n"))
    run = gate(example, manifest=path)
    p = by_id(run)["hard"]
    assert (p["verdict"], p["reason"], p["status"]) == ("unknown", "timeout", "unknown")
    assert run.exit_code == 3 and run.report["outcome"] == "unknown"
    assert p["seconds"] < 1.0
    # with time enough the same property is verified: it was the timeout
    write_manifest(example, HEAD + _prop("hard", "specs/hard.vnnlib"))
    assert gate(example, manifest=path).exit_code == 0


def test_not_falsified_requirement(example: Path) -> None:
    (example / "specs/hard.vnnlib").write_text(HARD_SPEC)
    path = write_manifest(example, HEAD
                          + _prop("hard", "specs/hard.vnnlib", 'timeout = 0.1\nrequire = "not-falsified"\n')
                          + _prop("wide", "specs/tiny_robust_class0_wide.vnnlib", 'require = "not-falsified"\n'))
    run = gate(example, manifest=path)
    props = by_id(run)
    assert props["hard"]["verdict"] == "unknown" and props["hard"]["status"] == "pass"
    assert props["wide"]["status"] == "fail" and run.exit_code == 1


def _family_csv(example: Path, rows: np.ndarray) -> None:
    lines = ["x0,x1,x2,x3,label"] + [",".join(f"{v:g}" for v in row) for row in rows]
    (example / "rows.csv").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("extra, code, status", [
    ("min-verified-rate = 0.75\n", 0, "pass"),
    ("min-verified-rate = 0.8\n", 1, "fail"),
    ("", 1, "fail"),  # each row must be verified
    ('require = "none"\n', 0, "pass"),
])
def test_family_rate(example: Path, extra: str, code: int, status: str) -> None:
    points = np.load(example / "examples/tiny/points.npy")
    mislabelled = np.array([[0.2, 0.2, 0.3, 0.7, 1.0]])  # the class-0 centre, labelled 1: falsified
    _family_csv(example, np.concatenate([points, mislabelled]))
    path = write_manifest(example, HEAD + f'\n[[families]]\nname = "rows"\ndata = "rows.csv"\neps = 0.02\n{extra}')
    run = gate(example, manifest=path)
    (fam,) = run.report["families"]
    assert (fam["rows"], fam["verified"], fam["falsified"], fam["unknown"]) == (4, 3, 1, 0)
    assert fam["verified_rate"] == 0.75 and fam["status"] == status and run.exit_code == code
    if code:
        failing = [f["id"] for f in run.report["failures"]]
        assert failing == (["rows"] if extra else ["rows[3]"])
    assert by_id(run)["rows[3]"]["counterexample"] is not None


def test_several_models(example: Path) -> None:
    shutil.copyfile(example / "examples/tiny/classifier.onnx", example / "examples/tiny/copy.onnx")
    text = ('[models]\na = "examples/tiny/classifier.onnx"\nb = "examples/tiny/copy.onnx"\n'
            + _prop("class0", "specs/tiny_robust_class0.vnnlib")
            + _prop("only-b", "specs/tiny_robust_class1.v2.vnnlib", 'model = "b"\n'))
    run = gate(example, manifest=write_manifest(example, text))
    assert set(by_id(run)) == {"class0@a", "class0@b", "only-b@b"} and run.exit_code == 0
    assert {m["name"] for m in run.report["models"]} == {"a", "b"}


def test_jobs_use_worker_processes(example: Path) -> None:
    text = HEAD + _prop("c0", "specs/tiny_robust_class0.vnnlib") + _prop("c1", "specs/tiny_robust_class1.v2.vnnlib") \
        + _prop("wide", "specs/tiny_robust_class0_wide.vnnlib", 'require = "none"\n')
    path = write_manifest(example, text)
    two = gate(example, manifest=path, jobs=2, cache=False)
    one = gate(example, manifest=path, jobs=1, cache=False)
    assert two.report["options"]["jobs"] == 2
    for pid, p in by_id(one).items():
        q = by_id(two)[pid]
        assert (p["verdict"], p["margin"]) == (q["verdict"], q["margin"])
    assert two.exit_code == one.exit_code == 0


def test_spec_that_does_not_fit_stops_the_gate(example: Path) -> None:
    bad = (example / "specs/tiny_robust_class0.vnnlib").read_text().replace("(declare-const Y_2 Real)", "")
    bad = bad.replace("    (and (>= Y_2 Y_0))\n", "")
    (example / "specs/two_outputs.vnnlib").write_text(bad)
    path = write_manifest(example, HEAD + _prop("ok", "specs/tiny_robust_class0.vnnlib")
                          + _prop("bad", "specs/two_outputs.vnnlib"))
    cache = example / ".verify-cache" / "gate" / "results"
    with pytest.raises(SpecMismatchError, match="declares 2 outputs"):
        gate(example, manifest=path)
    assert not cache.exists()  # nothing ran
