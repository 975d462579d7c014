"""Certificates of templated two-copy properties (proof kind ``jacobian``, verify.certcheck.relational).

* every verified monotone, fair and lipschitz answer of the bundled-style MLPs carries a certificate
  the checker accepts;
* the checker's rigorous Jacobian bounds contain sampled gradients (onnxruntime finite differences are
  too noisy: float64 autograd of the same weights);
* mutations that make a claim false are rejected by the arithmetic: a weight that breaks monotonicity,
  a weight that makes the ignored feature count, a smaller L (each with the new sha256 put into the
  certificate); a dropped leaf, a split of a sensitive feature and a forged closure list are rejected by
  the tree rules.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from tests.relational import nets
from verify.certcheck import check_certificate
from verify.certcheck.dag_bounds import DagBounder
from verify.certcheck.dag_network import read_dag
from verify.certcheck.encoding import decode_array, encode_array
from verify.certcheck.relational import jacobian_intervals
from verify.check import CheckOptions
from verify.model.network import load_model
from verify.relational import check_template
from verify.spec import load_spec

OPTIONS = CheckOptions(timeout=30)
REGION = "box([-1, -1, -1], [1, 1, 1])"


def _spec(tmp_path: Path, name: str, call: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(f"from verify.spec import box, fair, linf_ball, lipschitz, monotone\nPROPERTY = {call}\n")
    return path


def _verified(model_path: Path, spec: Path) -> dict[str, Any]:
    result = check_template(load_model(model_path), load_spec(spec, templates=True), OPTIONS, spec_path=spec)
    assert result.verdict == "verified", result.to_json()
    assert result.certificate is not None and result.certificate["cases"][0]["kind"] in ("jacobian", "difference")
    return result.certificate


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(dims: list[int], values: list[float]) -> dict[str, object]:
    """A root split once: node 0, then its halves 1 (below) and 2 (above) along ``dims[1]`` at ``values[1]``."""
    return {"parent": encode_array(np.array([-1, 0, 0]), "<i4"), "dim": encode_array(np.array(dims), "<i2"),
            "value": encode_array(np.array(values)), "side": encode_array(np.array([0, 0, 1]), "|i1")}


def _set_weight(path: Path, name: str, index: tuple[int, ...], value: float) -> None:
    model = onnx.load(str(path))
    for t in model.graph.initializer:
        if t.name == name:
            a = numpy_helper.to_array(t).copy()
            a[index] = value
            t.CopyFrom(numpy_helper.from_array(a.astype(np.float32), name))
    onnx.save(model, str(path))


@pytest.fixture
def monotone_case(tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    model = nets.monotone_by_construction(tmp_path / "mono.onnx")
    spec = _spec(tmp_path, "mono", f"monotone({REGION}, feature=0, output=0)")
    return model, spec, _verified(model, spec)


def test_monotone_certificate_accepted_and_a_breaking_weight_rejected(monotone_case, tmp_path: Path) -> None:
    model, spec, cert = monotone_case
    assert check_certificate(model, spec, cert).valid
    _set_weight(model, "W2", (0, 0), -5.0)  # the last layer now decreases with hidden unit 0
    report = check_certificate(model, spec, cert)
    assert not report.valid and "sha256" in report.message
    cert = copy.deepcopy(cert)
    cert["model"]["sha256"] = _sha(model)
    report = check_certificate(model, spec, cert)
    assert not report.valid and "does not prove the claim" in report.message, report.message


def test_fair_certificate_and_its_mutations(tmp_path: Path) -> None:
    model = nets.ignoring(tmp_path / "blind.onnx", feature=2)
    spec = _spec(tmp_path, "fair", f"fair({REGION}, sensitive=[2], output=1)")
    cert = _verified(model, spec)
    assert check_certificate(model, spec, cert).valid
    forged = copy.deepcopy(cert)  # a split of the sensitive feature: leaves would not keep its whole range
    body = forged["cases"][0]["jacobian"]
    body["tree"] = _tree([0, 2, 2], [0.0, 0.0, 0.0])
    body["closures"] = {"node": encode_array(np.array([1, 2]), "<i4"), "value": encode_array(np.zeros(2))}
    report = check_certificate(model, spec, forged)
    assert not report.valid and "sensitive" in report.message
    _set_weight(model, "W0", (0, 2), 0.5)  # now the output depends on the sensitive feature
    cert["model"]["sha256"] = _sha(model)
    report = check_certificate(model, spec, cert)
    assert not report.valid and "does not prove the claim" in report.message


def test_lipschitz_certificate_and_a_smaller_constant(tmp_path: Path) -> None:
    model = nets.standard(tmp_path / "mlp.onnx", seed=4)
    spec = _spec(tmp_path, "lip", "lipschitz(linf_ball([0.2, -0.1, 0.3], 0.01), L=100.0)")
    cert = _verified(model, spec)
    assert check_certificate(model, spec, cert).valid
    certified = check_template(load_model(model), load_spec(spec, templates=True), OPTIONS).details["certified_L"]
    spec.write_text(spec.read_text().replace("L=100.0", f"L={0.5 * certified}"))
    cert["spec"]["sha256"] = _sha(spec)
    report = check_certificate(model, spec, cert)
    assert not report.valid and "does not prove the claim" in report.message


def test_a_split_proof_with_a_dropped_leaf_or_forged_closures_is_rejected(monotone_case, tmp_path: Path) -> None:
    model, spec, cert = monotone_case
    forged = copy.deepcopy(cert)
    body = forged["cases"][0]["jacobian"]
    body["tree"] = _tree([0, 1, 1], [0.0, 0.25, 0.25])
    body["closures"] = {"node": encode_array(np.array([1]), "<i4"), "value": encode_array(np.zeros(1))}
    report = check_certificate(model, spec, forged)
    assert not report.valid and "leaves" in report.message
    body["closures"] = {"node": encode_array(np.array([0, 1, 2]), "<i4"), "value": encode_array(np.zeros(3))}
    assert not check_certificate(model, spec, forged).valid
    body["closures"] = {"node": encode_array(np.array([1, 2]), "<i4"), "value": encode_array(np.zeros(2))}
    assert check_certificate(model, spec, forged).valid  # two halves, each proved: a valid proof too
    body["tree"]["value"] = encode_array(np.array([0.0, 3.0, 3.0]))
    report = check_certificate(model, spec, forged)
    assert not report.valid and "outside" in report.message


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_checker_jacobian_bounds_contain_sampled_gradients(tmp_path: Path, seed: int) -> None:
    layers = nets.random_layers(seed, [3, 8, 8, 2])
    path = nets.mlp(tmp_path / "m.onnx", *layers)
    net = read_dag(path)
    rng = np.random.default_rng(seed)
    lo = rng.uniform(-1, 0.5, (4, 3))
    hi = lo + rng.uniform(0, 0.5, (4, 3))
    st = DagBounder(net).bounds(lo, hi)
    jl, ju = jacobian_intervals(net, st, [0, 1, 2])
    Ws = [torch.as_tensor(w, dtype=torch.float64) for w in layers[0]]
    bs = [torch.as_tensor(b, dtype=torch.float64) for b in layers[1]]

    def f(x: torch.Tensor) -> torch.Tensor:
        for k, (W, b) in enumerate(zip(Ws, bs)):
            x = x @ W.T + b
            if k < len(Ws) - 1:
                x = x.clamp(min=0)
        return x

    for b in range(4):
        xs = lo[b] + rng.uniform(0, 1, (50, 3)) * (hi[b] - lo[b])
        for x in xs:
            J = torch.autograd.functional.jacobian(f, torch.as_tensor(x)).numpy()
            assert np.all(J >= jl[b] - 1e-12) and np.all(J <= ju[b] + 1e-12)
    assert decode_array(encode_array(np.zeros(1)), "x").shape == (1,)


def test_equivalence_certificate_and_its_mutations(tmp_path: Path) -> None:
    layers = nets.random_layers(6, [3, 8, 2])
    f_path = nets.mlp(tmp_path / "f.onnx", *layers)
    g_path = nets.pruned(layers, tmp_path / "g.onnx", threshold=0.15)
    spec = _spec(tmp_path, "eq", f"__import__('verify.spec').spec.equivalent({REGION}, 'g.onnx', delta=5.0)")
    cert = _verified(f_path, spec)
    assert cert["cases"][0]["kind"] == "difference" and cert["other_model"]["sha256"] == _sha(g_path)
    assert check_certificate(f_path, spec, cert).valid
    _set_weight(g_path, "W1", (0, 0), 50.0)  # now they differ by far more than 5 somewhere
    report = check_certificate(f_path, spec, cert)
    assert not report.valid and "other_model" in report.message
    cert["other_model"]["sha256"] = _sha(g_path)
    report = check_certificate(f_path, spec, cert)
    assert not report.valid and "may reach" in report.message, report.message
    nets.standard(g_path, seed=9, sizes=(3, 5, 2))  # another structure
    cert["other_model"]["sha256"] = _sha(g_path)
    report = check_certificate(f_path, spec, cert)
    assert not report.valid and "not one structure" in report.message


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_checker_difference_bounds_contain_sampled_differences(tmp_path: Path, seed: int) -> None:
    from verify.certcheck.relational import difference_intervals

    layers = nets.random_layers(seed, [3, 8, 8, 2])
    f_path = nets.mlp(tmp_path / "f.onnx", *layers)
    rng = np.random.default_rng(seed)
    moved = ([W + rng.uniform(-0.05, 0.05, W.shape).astype(np.float32) for W in layers[0]], layers[1])
    g_path = nets.mlp(tmp_path / "g.onnx", *moved)
    f, g = read_dag(f_path), read_dag(g_path)
    lo = rng.uniform(-1, 0.5, (4, 3))
    hi = lo + rng.uniform(0, 0.5, (4, 3))
    dl, du = difference_intervals(f, g, DagBounder(g).bounds(lo, hi))
    fm, gm = load_model(f_path), load_model(g_path)
    for b in range(4):
        xs = lo[b] + rng.uniform(0, 1, (200, 3)) * (hi[b] - lo[b])
        d = (fm.forward64(xs) - gm.forward64(xs)).numpy()
        assert np.all(d >= dl[b] - 1e-12) and np.all(d <= du[b] + 1e-12)
