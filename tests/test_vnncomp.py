"""The VNN-COMP interface: ``vnncomp/prepare_instance.sh`` and ``vnncomp/run_instance.sh``
take the competition's arguments and write its result file, which is parsed here as the
official scripts read it (first line the verdict; for ``sat``, ``(X_i v)`` and ``(Y_j v)``
pairs), and the counterexample is re-evaluated with a fresh onnxruntime session."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ACASXU = ROOT.parent / "shared" / "benchmarks" / "acasxu"
VERIFY = Path(sys.executable).parent / "verify"

pytestmark = pytest.mark.skipif(not ACASXU.is_dir(), reason="../shared/benchmarks/acasxu is missing")


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "vnncomp" / script), *args], capture_output=True, text=True,
                          timeout=300, env={"PATH": "/usr/bin:/bin", "VERIFY": str(VERIFY)})


def _instance(tmp_path: Path, net: str, prop: str, timeout: str = "116") -> tuple[str, dict[str, float]]:
    onnx_path, spec = str(ACASXU / "onnx" / f"ACASXU_run2a_{net}_batch_2000.onnx"), str(ACASXU / "vnnlib" / prop)
    prepared = _run("prepare_instance.sh", "v1", "acasxu", onnx_path, spec)
    assert prepared.returncode == 0, prepared.stderr
    results = tmp_path / f"{net}_{prop}.txt"
    ran = _run("run_instance.sh", "v1", "acasxu", onnx_path, spec, str(results), timeout)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = results.read_text().splitlines()
    values = {}
    for line in lines[1:]:
        match = re.fullmatch(r"\s*\(*\s*([XY]_\d+)\s+(\S+?)\s*\)*\s*", line)
        assert match, f"not a counterexample line: {line!r}"
        values[match.group(1)] = float(match.group(2))
    return lines[0].strip(), values


def test_unsat_instance(tmp_path: Path) -> None:
    verdict, values = _instance(tmp_path, "1_9", "prop_1.vnnlib")
    assert verdict == "unsat" and values == {}


def test_sat_instance_with_a_counterexample_that_replays(tmp_path: Path) -> None:
    import onnxruntime as ort

    verdict, values = _instance(tmp_path, "2_1", "prop_2.vnnlib")
    assert verdict == "sat"
    x = np.array([values[f"X_{i}"] for i in range(5)], dtype=np.float32)
    y = np.array([values[f"Y_{j}"] for j in range(5)])
    session = ort.InferenceSession(str(ACASXU / "onnx" / "ACASXU_run2a_2_1_batch_2000.onnx"),
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
    out = session.run(None, {name: x.reshape(shape)})[0].reshape(-1)
    np.testing.assert_allclose(out, y, rtol=1e-6, atol=1e-6)
    # property 2 (ACAS Xu): the unsafe set is "Y_0 is the largest score"
    assert y[0] >= y[1:].max()
    # and X lies in the property's box (from the VNN-LIB file)
    text = (ACASXU / "vnnlib" / "prop_2.vnnlib").read_text()
    for i in range(5):
        lo = float(re.search(rf"\(>= X_{i} ([^\s)]+)\)", text).group(1))
        hi = float(re.search(rf"\(<= X_{i} ([^\s)]+)\)", text).group(1))
        assert lo <= x[i] <= hi


def test_a_bad_file_is_reported_as_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.vnnlib"
    bad.write_text("(declare-const X_0 Real)\n(assert (<= X_0\n")
    results = tmp_path / "out.txt"
    onnx_path = str(ACASXU / "onnx" / "ACASXU_run2a_1_1_batch_2000.onnx")
    ran = _run("run_instance.sh", "v1", "acasxu", onnx_path, str(bad), str(results), "10")
    assert ran.returncode == 0 and results.read_text().strip() == "error"


def test_wrong_arguments_are_a_usage_error() -> None:
    ran = _run("run_instance.sh", "v1", "acasxu")
    assert ran.returncode == 2 and "usage: run_instance.sh" in ran.stderr
