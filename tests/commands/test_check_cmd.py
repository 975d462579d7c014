"""``verify check`` as a user runs it: exit codes, JSON, witnesses, and one-line input errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from tests import nets
from tests.conftest import SHARED

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "tiny" / "classifier.onnx"
HOLDS = ROOT / "specs" / "tiny_robust_class0.vnnlib"
FAILS = ROOT / "specs" / "tiny_robust_class0_wide.vnnlib"
VERIFY = [sys.executable, "-m", "verify.cli"]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "VERIFY_EXAMPLES_DIR": "off"}
    return subprocess.run([*VERIFY, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)


def test_verified_exits_0_with_json() -> None:
    proc = run("check", MODEL, HOLDS, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["verdict"] == "verified" and out["counterexample"] is None
    assert out["margin"] > 0 and out["seconds"] > 0 and out["method"]
    assert out["compression"][0]["relus_after"] <= out["compression"][0]["relus_before"]


def test_falsified_exits_1_with_a_replayed_witness(tmp_path: Path) -> None:
    witness = tmp_path / "cex.txt"
    proc = run("check", MODEL, FAILS, "--json", "--witness", witness)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    cex = out["counterexample"]
    assert out["verdict"] == "falsified" and len(cex["x"]) == 4 and len(cex["y"]) == 3
    text = witness.read_text()
    assert text.startswith("((X_0 ") and "(Y_2 " in text
    # the witness values round-trip and really violate the property on onnxruntime
    from verify.model.network import load_model
    from verify.spec import load_spec

    xs = [float(line.split()[1].rstrip(")")) for line in text.split("\n") if "(X_" in line]
    model = load_model(MODEL)
    y = model.evaluate(np.array([xs], dtype=np.float32))[0]
    assert load_spec(FAILS).is_counterexample(np.array(xs, dtype=np.float32), y)


def test_certificate_file_is_written_and_checkable(tmp_path: Path) -> None:
    cert = tmp_path / "cert.json"
    proc = run("check", MODEL, HOLDS, "--certificate", cert)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(cert.read_text())["format"] == "verify-certificate"
    proc = run("certcheck", MODEL, HOLDS, cert)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_text_output_says_the_verdict() -> None:
    proc = run("check", MODEL, HOLDS)
    assert proc.returncode == 0 and proc.stdout.startswith("VERIFIED")


def test_timeout_is_honoured_and_exits_3() -> None:
    folder = SHARED / "acasxu"
    if not folder.exists():
        pytest.skip("../shared/benchmarks/acasxu is missing")
    start = time.monotonic()
    proc = run("check", folder / "onnx" / "ACASXU_run2a_4_2_batch_2000.onnx", folder / "vnnlib" / "prop_2.vnnlib",
               "--timeout", "4", "--json", "--no-falsify")
    elapsed = time.monotonic() - start
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["verdict"] == "unknown"
    assert elapsed <= 4 * 1.1 + 0.3, elapsed  # the process, start-up included


def input_error(proc: subprocess.CompletedProcess) -> str:
    """The single stderr line of an input error (exit 2, no traceback), or a description of what came instead."""
    lines = proc.stderr.strip().splitlines()
    if proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr:
        return lines[0]
    print(proc.stdout, proc.stderr)  # shown by pytest when the assertion fails
    return f"<not a one-line input error: exit {proc.returncode}>"


def spec_file(tmp_path: Path, body: str, n_in: int = 4, n_out: int = 3) -> Path:
    lines = [f"(declare-const X_{i} Real)" for i in range(n_in)] + [f"(declare-const Y_{i} Real)" for i in range(n_out)]
    path = tmp_path / "spec.vnnlib"
    path.write_text("\n".join(lines) + "\n" + body)
    return path


BOX = "".join(f"(assert (>= X_{i} 0.1))\n(assert (<= X_{i} 0.2))\n" for i in range(4))


def test_malformed_vnnlib_names_file_line_column(tmp_path: Path) -> None:
    path = spec_file(tmp_path, BOX + "(assert (<= Y_0 Y_1)\n")
    line = input_error(run("check", MODEL, path))
    assert f"{path}:16:" in line and "expected ')'" in line, line


def test_undeclared_variable(tmp_path: Path) -> None:
    path = spec_file(tmp_path, BOX + "(assert (<= Y_7 Y_1))\n")
    line = input_error(run("check", MODEL, path))
    assert "undeclared variable 'Y_7'" in line and ":16:13:" in line, line


def test_spec_sizes_must_match_the_model(tmp_path: Path) -> None:
    path = spec_file(tmp_path, BOX.replace("X_3", "X_2") + "(assert (<= Y_0 Y_1))\n", n_in=3)
    line = input_error(run("check", MODEL, path))
    assert "declares 3 inputs" in line and "has 4" in line, line
    path = spec_file(tmp_path, BOX + "(assert (<= Y_0 Y_1))\n", n_out=5)
    line = input_error(run("check", MODEL, path))
    assert "declares 5 outputs" in line and "has 3" in line, line


def test_lower_greater_than_upper(tmp_path: Path) -> None:
    path = spec_file(tmp_path, BOX.replace("(>= X_2 0.1)", "(>= X_2 0.9)") + "(assert (<= Y_0 Y_1))\n")
    line = input_error(run("check", MODEL, path))
    assert "X_2" in line and "greater than" in line, line


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    assert "not found" in input_error(run("check", tmp_path / "none.onnx", HOLDS))
    assert "not found" in input_error(run("check", MODEL, tmp_path / "none.vnnlib"))
    assert "directory" in input_error(run("check", MODEL, tmp_path))
    binary = tmp_path / "binary.vnnlib"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert "not a text file" in input_error(run("check", MODEL, binary))


def test_corrupt_onnx(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x0a\x05hello\x12\xff\xffnot a model")
    assert str(bad) in input_error(run("check", bad, HOLDS))


def test_nan_weights(tmp_path: Path) -> None:
    w = np.ones((4, 3))
    w[2, 1] = np.nan
    path = nets.save([helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")], {"w": w}, [1, 4], [1, 3],
                     tmp_path / "nan.onnx")
    assert "NaN or infinite" in input_error(run("check", path, HOLDS))


def test_unsupported_operator(tmp_path: Path) -> None:
    path = nets.save([helper.make_node("Softmax", ["x"], ["y"], name="probabilities")], {}, [1, 4], [1, 4],
                     tmp_path / "softmax.onnx")
    spec = spec_file(tmp_path, BOX + "(assert (<= Y_0 Y_1))\n", n_out=4)
    line = input_error(run("check", path, spec))
    assert "'Softmax'" in line and "'probabilities'" in line, line


def test_usage_errors_exit_2() -> None:
    proc = run("check", MODEL)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = run("check", MODEL, HOLDS, "--timeout", "-3")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
