"""The bundled examples of templated properties (examples/make_relational.py): each spec gets its documented
answer through verify check; every verified answer's certificate (where one is written) is accepted by the
checker; every falsified answer's pair replays on the original model(s) with onnxruntime; the script itself
runs and writes the same set of files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tests.conftest import ROOT
from verify.certcheck import check_certificate
from verify.check import CheckOptions
from verify.model.network import load_model
from verify.relational import check_template
from verify.spec import load_spec

FOLDER = ROOT / "examples" / "relational"
ANSWERS = [("monotone_income.py", "monotone.onnx", "verified"), ("monotone_income.py", "standard.onnx", "falsified"),
           ("fair_protected.py", "blind.onnx", "verified"), ("fair_protected.py", "biased.onnx", "falsified"),
           ("lipschitz_point.py", "standard.onnx", "verified"),
           ("lipschitz_point_half.py", "standard.onnx", "falsified"),
           ("equivalent_pruned.py", "standard.onnx", "verified"),
           ("equivalent_pruned_tight.py", "standard.onnx", "falsified")]


def _ort(path: Path, x: list[float]) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": np.asarray(x, np.float32).reshape(1, -1)})[0].reshape(-1)


@pytest.mark.parametrize(("spec", "model", "answer"), ANSWERS)
def test_each_example_gets_its_answer(spec: str, model: str, answer: str) -> None:
    spec_path, model_path = FOLDER / spec, FOLDER / model
    template = load_spec(spec_path, templates=True)
    result = check_template(load_model(model_path), template, CheckOptions(timeout=60), spec_path=spec_path)
    assert result.verdict == answer, result.to_json()
    if answer == "verified":
        assert check_certificate(model_path, spec_path, result.certificate).valid
    if answer == "falsified":
        pair = result.details["pair"]
        other = FOLDER / template.other if template.KIND == "equivalent" else model_path
        assert pair["y"] == _ort(model_path, pair["x"]).tolist()
        assert pair["y_prime"] == _ort(other, pair["x_prime"]).tolist()


def test_the_script_writes_the_examples(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "make_relational.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in FOLDER.iterdir())
