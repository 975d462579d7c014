"""A fully cached gate is fast as a whole process: it imports neither torch nor onnx nor
auto_LiRPA (nor matplotlib or networkx).  Cached certificates are re-checked by the
checker (numpy, its own ONNX reader) and cached counterexamples replayed with onnxruntime
alone; what they reject is still checked again.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests import nets
from tests.conftest import ROOT
from verify.certcheck.encoding import decode_array, encode_array
from verify.gate.options import CHECK_DEFAULTS, NOT_IN_KEY, check_options
from verify.gate.reference import reference_model

HEAVY = ("torch", "onnx", "auto_LiRPA", "matplotlib", "networkx", "ml_dtypes")

_RUN = f"""
import json, sys, time
start = time.perf_counter()
from verify.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
print(json.dumps({{"exit": code, "heavy": heavy, "seconds": time.perf_counter() - start}}))
"""


def _gate_process(root: Path, report: Path, *extra: str) -> dict:
    """``verify gate`` of ``root/verify.toml`` in a fresh process; its exit code, the heavy
    modules it imported, and its report."""
    args = ["gate", "--manifest", str(root / "verify.toml"), "--quiet", "--report", str(report), *extra]
    done = subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True, text=True, timeout=600,
                          cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["report"] = json.loads((report / "report.json").read_text())
    return out


def _verdicts(report: dict) -> dict:
    return {p["id"]: (p["verdict"], p["margin"], p["method"], p["status"]) for p in report["properties"]}


def _entries(root: Path) -> list[Path]:
    return sorted((root / ".verify-cache" / "gate" / "results").rglob("*.json"))


def test_check_defaults_are_check_options_defaults() -> None:
    """The light copy of the options (the cache key's) cannot drift from CheckOptions."""
    from verify.check import CheckOptions

    fields = [f for f in dataclasses.fields(CheckOptions) if f.name not in NOT_IN_KEY]
    assert list(CHECK_DEFAULTS) == [f.name for f in fields]
    assert CHECK_DEFAULTS == {f.name: f.default for f in fields}
    assert set(NOT_IN_KEY) <= {f.name for f in dataclasses.fields(CheckOptions)}
    assert check_options(7) == {**CHECK_DEFAULTS, "seed": 7}
    assert dataclasses.asdict(CheckOptions(timeout=1.0, **check_options(7))) == {
        **{f.name: f.default for f in dataclasses.fields(CheckOptions)}, "timeout": 1.0, "seed": 7}


def test_worker_refuses_options_that_miss_a_field() -> None:
    from verify.check import CheckOptions
    from verify.gate.worker import _check_option_names

    _check_option_names(check_options(0), CheckOptions)
    partial = check_options(0)
    del partial["modular"]
    with pytest.raises(RuntimeError, match="CHECK_DEFAULTS"):
        _check_option_names(partial, CheckOptions)


def test_fully_cached_gate_imports_no_heavy_module(example: Path, tmp_path: Path) -> None:
    first = _gate_process(example, tmp_path / "first")
    second = _gate_process(example, tmp_path / "second")
    assert first["exit"] == second["exit"] == 0
    assert "torch" in first["heavy"]  # the uncached run does import it: the probe sees imports
    assert second["heavy"] == [], f"a fully cached gate imported {second['heavy']}"
    assert _verdicts(second["report"]) == _verdicts(first["report"])
    assert second["report"]["counts"]["cached"] == len(second["report"]["properties"]) == 7
    for p in second["report"]["properties"]:
        if p["verdict"] == "verified":  # re-checked by the certificate checker
            assert p["cache"]["recheck"]["valid"] and "claim(s) re-checked" in p["cache"]["recheck"]["message"]
        else:  # replayed on the model (onnxruntime)
            assert p["cache"]["replay"]["confirmed"]
    pictures = [(tmp_path / run / "report.html").read_text().count("data:image/svg+xml;base64,")
                for run in ("first", "second")]
    assert pictures == [4, 4]  # the module pictures of the four named properties, the second time from the cache


def test_whole_process_cached_run_is_much_faster(example: Path, tmp_path: Path) -> None:
    """Whole processes (the 5x target is measured by benchmarks/gate_startup.py; this test
    leaves room for a busy machine)."""
    start = time.perf_counter()
    _gate_process(example, tmp_path / "r1")
    first = time.perf_counter() - start
    seconds = []
    for k in range(2):
        start = time.perf_counter()
        _gate_process(example, tmp_path / f"r{k + 2}")
        seconds.append(time.perf_counter() - start)
    assert first >= 3 * min(seconds), f"first run {first:.2f} s, cached runs {seconds}"


def test_tampered_cache_is_rejected_in_a_cached_process(example: Path, tmp_path: Path) -> None:
    """The light path re-checks for real: certificates claiming more than holds, and a
    counterexample that is none, are rejected, and those properties checked again."""
    first = _gate_process(example, tmp_path / "first")
    tampered = {"verified": 0, "falsified": 0}
    for path in _entries(example):
        entry = json.loads(path.read_text())
        verdict = entry["result"]["verdict"]
        if verdict == "verified":
            closures = entry["certificate"]["cases"][0]["input-split"]["closures"]
            closures["margin"] = encode_array(decode_array(closures["margin"]) + 100.0)  # claims far too much
        else:
            entry["result"]["counterexample"]["x"] = [0.2, 0.2, 0.3, 0.7]  # the class-0 centre: no counterexample
        path.write_text(json.dumps(entry))
        tampered[verdict] += 1
    assert tampered == {"verified": 6, "falsified": 1}
    again = _gate_process(example, tmp_path / "again")
    assert again["exit"] == 0 and _verdicts(again["report"]) == _verdicts(first["report"])
    assert again["report"]["counts"]["cached"] == 0  # every tampered answer was checked again
    assert all(p["cache"] == {"hit": False, "stored": True} for p in again["report"]["properties"])
    assert "torch" in again["heavy"]
    third = _gate_process(example, tmp_path / "third")  # the fresh answers replaced the bad ones
    assert third["report"]["counts"]["cached"] == 7 and third["heavy"] == []


def test_reference_model_is_the_models_semantics(tmp_path: Path) -> None:
    """Replay's onnxruntime session on the file gives Model.evaluate's outputs, bit for bit."""
    from verify.model.network import load_model

    rng = np.random.default_rng(0)
    for path in (ROOT / "examples" / "tiny" / "classifier.onnx", nets.mlp(tmp_path / "m.onnx", [5, 8, 3], seed=2)):
        model, ref = load_model(path), reference_model(path)
        assert ref is not None and ref.n_inputs == model.n_inputs
        x = rng.uniform(-1, 1, (17, model.n_inputs)).astype(np.float32)
        assert np.array_equal(ref.evaluate(x), model.evaluate(x))
        assert ref.evaluate(x).dtype == np.float32 and ref.evaluate(x[:1]).shape == (1, model.n_outputs)


def test_reference_model_declines_what_it_cannot_run_alone(tmp_path: Path) -> None:
    """A symbolic dimension after the batch, a double model, two outputs, a non-ONNX file:
    the gate loads the model instead."""
    import onnx
    from onnx import TensorProto, helper

    path = nets.save([helper.make_node("Relu", ["x"], ["y"], name="r")], {}, [1, "n"], [1, "n"],
                     tmp_path / "symbolic.onnx")
    assert reference_model(path) is None
    for name, kind, outputs in (("double", TensorProto.DOUBLE, ["y"]), ("two", TensorProto.FLOAT, ["y", "z"])):
        graph = helper.make_graph([helper.make_node("Relu", ["x"], [o], name=o) for o in outputs], name,
                                  [helper.make_tensor_value_info("x", kind, [1, 3])],
                                  [helper.make_tensor_value_info(o, kind, [1, 3]) for o in outputs])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        onnx.save(model, str(tmp_path / f"{name}.onnx"))
        assert reference_model(tmp_path / f"{name}.onnx") is None, name
    (tmp_path / "model.pt").write_bytes(b"")
    assert reference_model(tmp_path / "model.pt") is None
    plain = nets.mlp(tmp_path / "plain.onnx", [3, 4, 2])
    assert reference_model(plain) is not None and reference_model(plain) is reference_model(plain)
