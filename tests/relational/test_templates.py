"""Templates end to end (issue 19): each verified on a model built to satisfy it and falsified, with a pair
replayed on the original model(s) by onnxruntime, on one that does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tests.conftest import ROOT
from tests.relational import nets
from verify.check import CheckOptions
from verify.errors import SpecError
from verify.model.network import load_model
from verify.relational import check_template
from verify.spec import box, equivalent, fair, linf_ball, lipschitz, load_spec, monotone, output_range

REGION = box([-1, -1, -1], [1, 1, 1])
OPTIONS = CheckOptions(timeout=30)


def _ort(path: Path, x: list[float]) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": np.asarray(x, np.float32).reshape(1, -1)})[0].reshape(-1)


def _inside(x: list[float], region=REGION) -> bool:
    return region.contains(np.asarray(x, np.float64))


def test_monotone_by_construction_is_verified(tmp_path: Path) -> None:
    model = load_model(nets.monotone_by_construction(tmp_path / "mono.onnx"))
    result = check_template(model, monotone(REGION, feature=0, output=0), OPTIONS)
    assert result.verdict == "verified", result.to_json()
    assert result.details["derivative_lower_bound"] >= 0
    assert result.details["template"] == {"template": "monotone", "feature": 0, "output": 0, "increasing": True,
                                          "region": {"lower": [-1.0] * 3, "upper": [1.0] * 3}}


def test_a_standard_mlp_is_not_monotone_and_the_pair_replays(tmp_path: Path) -> None:
    path = nets.standard(tmp_path / "mlp.onnx", seed=2, sizes=(3, 8, 1))
    result = check_template(load_model(path), monotone(REGION, feature=1, output=0), OPTIONS)
    assert result.verdict == "falsified", result.to_json()
    pair = result.details["pair"]
    x, xp = pair["x"], pair["x_prime"]
    assert _inside(x) and _inside(xp)
    assert xp[1] > x[1] and [x[0], x[2]] == [xp[0], xp[2]]
    assert _ort(path, xp)[0] < _ort(path, x)[0]  # replayed: y' < y although x'_1 > x_1
    # shrunk: the inputs the two share moved towards the region's centre (0), the raw pair kept
    assert "raw_x" in pair and sum(v != 0 for v in (x[0], x[2])) <= sum(v != 0 for v in
                                                                       (pair["raw_x"][0], pair["raw_x"][2]))


def test_fairness_verified_when_the_feature_is_ignored_and_falsified_otherwise(tmp_path: Path) -> None:
    blind = load_model(nets.ignoring(tmp_path / "blind.onnx", feature=2))
    result = check_template(blind, fair(REGION, sensitive=[2], output=1), OPTIONS)
    assert result.verdict == "verified" and result.details["certified_change"] == 0.0, result.to_json()
    path = nets.standard(tmp_path / "uses.onnx", seed=3)
    result = check_template(load_model(path), fair(REGION, sensitive=[2], output=1, tolerance=0.01), OPTIONS)
    assert result.verdict == "falsified", result.to_json()
    pair = result.details["pair"]
    assert pair["x"][:2] == pair["x_prime"][:2] and pair["x"][2] != pair["x_prime"][2]
    assert abs(float(_ort(path, pair["x"])[1]) - float(_ort(path, pair["x_prime"])[1])) > 0.01


def test_lipschitz_verified_at_a_point_and_falsified_at_half_the_certified_constant(tmp_path: Path) -> None:
    path = nets.standard(tmp_path / "mlp.onnx", seed=4)
    model = load_model(path)
    region = linf_ball([0.2, -0.1, 0.3], 0.01)
    loose = check_template(model, lipschitz(region, L=100.0), OPTIONS)
    assert loose.verdict == "verified", loose.to_json()
    L = loose.details["certified_L"]
    assert 0 < L <= 100.0
    tight = check_template(model, lipschitz(region, L=L * (1 + 1e-6)), OPTIONS)
    assert tight.verdict == "verified", tight.to_json()
    half = check_template(model, lipschitz(region, L=0.5 * L), OPTIONS)
    assert half.verdict == "falsified", half.to_json()
    pair = half.details["pair"]
    x, xp = np.asarray(pair["x"], np.float64), np.asarray(pair["x_prime"], np.float64)
    assert _inside(pair["x"], region) and _inside(pair["x_prime"], region)
    change = np.abs(_ort(path, pair["x"]).astype(np.float64) - _ort(path, pair["x_prime"]).astype(np.float64)).max()
    assert change > 0.5 * L * np.abs(x - xp).max()


def test_output_range_is_a_plain_property(tmp_path: Path) -> None:
    model = load_model(nets.standard(tmp_path / "mlp.onnx", seed=5))
    wide = check_template(model, output_range(REGION, output=0, lower=-100, upper=100), OPTIONS)
    assert wide.verdict == "verified" and wide.details["template"]["template"] == "output_range"
    y = model.evaluate(np.zeros((1, 3), np.float32))[0, 0]
    narrow = check_template(model, output_range(REGION, output=0, lower=float(y) + 0.5, upper=float(y) + 1),
                            OPTIONS)
    assert narrow.verdict == "falsified", narrow.to_json()


def test_a_model_and_its_pruned_copy(tmp_path: Path) -> None:
    layers = nets.random_layers(6, [3, 8, 2])
    f_path = nets.mlp(tmp_path / "f.onnx", *layers)
    g_path = nets.pruned(layers, tmp_path / "g.onnx", threshold=0.15)
    f, g = load_model(f_path), load_model(g_path)
    xs = np.random.default_rng(0).uniform(-1, 1, (4000, 3)).astype(np.float32)
    sampled = float(np.abs(f.evaluate(xs) - g.evaluate(xs)).max())
    assert sampled > 0
    loose = check_template(f, equivalent(REGION, str(g_path), delta=10 * sampled + 1), OPTIONS)
    assert loose.verdict == "verified", loose.to_json()
    certified = loose.details["certified_delta"]
    assert sampled <= certified <= 10 * sampled + 1
    below = check_template(f, equivalent(REGION, "g.onnx", delta=0.5 * sampled), OPTIONS, spec_path=tmp_path / "s.py")
    assert below.verdict == "falsified", below.to_json()
    pair = below.details["pair"]
    assert pair["x"] == pair["x_prime"]
    gap = np.abs(_ort(f_path, pair["x"]).astype(np.float64) - _ort(g_path, pair["x"]).astype(np.float64)).max()
    assert gap > 0.5 * sampled


def test_bad_parameters_are_one_line_errors(tmp_path: Path) -> None:
    model = load_model(nets.standard(tmp_path / "mlp.onnx"))
    with pytest.raises(SpecError, match="input 7 is out of range"):
        check_template(model, monotone(REGION, feature=7), OPTIONS)
    with pytest.raises(SpecError, match="output 5 is out of range"):
        check_template(model, fair(REGION, sensitive=[0], output=5), OPTIONS)
    with pytest.raises(SpecError, match="not supported yet"):
        fair(REGION, sensitive=[0], output="argmax")
    with pytest.raises(SpecError, match="L must be >= 0"):
        lipschitz(REGION, L=-1.0)
    with pytest.raises(SpecError, match="region must be a box"):
        monotone([0, 1], feature=0)  # type: ignore[arg-type]


def test_through_verify_check_with_a_spec_file(tmp_path: Path) -> None:
    mono = nets.monotone_by_construction(tmp_path / "mono.onnx")
    other = nets.standard(tmp_path / "mlp.onnx", seed=2, sizes=(3, 8, 1))
    spec = tmp_path / "mono_spec.py"
    spec.write_text("from verify.spec import box, monotone\n"
                    "PROPERTY = monotone(box([-1, -1, -1], [1, 1, 1]), feature=1, output=0)\n")
    env = {**os.environ, "VERIFY_EXAMPLES_DIR": "off"}
    verify = [sys.executable, "-m", "verify.cli"]
    # the constructed model is monotone in feature 0 only; check feature 0 there
    spec0 = tmp_path / "mono0.py"
    spec0.write_text(spec.read_text().replace("feature=1", "feature=0"))
    cert = tmp_path / "mono0.cert.json"
    done = subprocess.run([*verify, "check", str(mono), str(spec0), "--json", "--certificate", str(cert)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout)
    assert out["verdict"] == "verified" and out["template"]["template"] == "monotone"
    assert out["certificate_file"] == str(cert)
    done = subprocess.run([*verify, "certcheck", str(mono), str(spec0), str(cert)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)
    assert done.returncode == 0 and done.stdout.startswith("VALID"), done.stdout + done.stderr
    done = subprocess.run([*verify, "check", str(other), str(spec)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "counterexample pair (replayed on the original model(s)):" in done.stdout and "x' = [" in done.stdout
    assert isinstance(load_spec(spec, templates=True), type(monotone(REGION, 1)))
    with pytest.raises(SpecError, match="templates are checked with verify check"):
        load_spec(spec)


def test_two_models_of_different_structure_go_through_the_product(tmp_path: Path) -> None:
    f_path = nets.standard(tmp_path / "f.onnx", seed=7, sizes=(3, 8, 2))
    g_path = nets.standard(tmp_path / "g.onnx", seed=8, sizes=(3, 5, 2))
    f = load_model(f_path)
    small = box([0.1, 0.1, 0.1], [0.12, 0.12, 0.12])
    xs = np.random.default_rng(0).uniform(0.1, 0.12, (2000, 3)).astype(np.float32)
    sampled = float(np.abs(f.evaluate(xs) - load_model(g_path).evaluate(xs)).max())
    loose = check_template(f, equivalent(small, str(g_path), delta=sampled + 1.0), OPTIONS)
    assert loose.verdict == "verified" and "root_certified_delta" in loose.details, loose.to_json()
    assert sampled <= loose.details["certified_delta"] <= sampled + 1.0
    below = check_template(f, equivalent(small, str(g_path), delta=0.5 * sampled), OPTIONS)
    assert below.verdict == "falsified" and below.details["pair"]["x"] == below.details["pair"]["x_prime"]
