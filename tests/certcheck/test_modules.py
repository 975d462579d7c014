"""The checker re-derives module certificates and rejects mutated ones."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from tests.compose.instances import Instance, make_instance
from verify.certcheck import check_certificate
from verify.certcheck.encoding import decode_array, encode_array
from verify.certificate.build import build_certificate
from verify.certificate.modules import modules_proof
from verify.compose import Policy
from verify.model.network import file_sha256, load_model

torch.set_num_threads(1)

SIZES = [3, 6, 6, 6, 2]
CUTS = [(0, 1), (2, 3)]


def _certificate(inst: Instance) -> dict:
    assert inst.result.verified
    proof = modules_proof(0, inst.result.claims, inst.result.linear)
    return build_certificate(load_model(inst.model_path), inst.prop, [proof], inst.chain.hidden_sizes,
                             inst.chain.relu_names)


def _build(tmp: Path, backends: dict[str, str]) -> tuple[Instance, dict]:
    # a generous Z3 time: under load (other processes on both cores) 5 s was not always enough
    inst = make_instance(tmp, SIZES, seed=1, partition=CUTS, policy=Policy(override=backends, z3_timeout=60.0))
    return inst, _certificate(inst)


@pytest.fixture(scope="module")
def alpha(tmp_path_factory: pytest.TempPathFactory) -> tuple[Instance, dict]:
    """Both modules by alpha-CROWN (recorded intermediate bounds and slopes)."""
    return _build(tmp_path_factory.mktemp("alpha"), {"M1": "alpha-crown", "M2": "alpha-crown"})


@pytest.fixture(scope="module")
def exact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Instance, dict]:
    """Module 1 by Z3 (exact output ranges), module 2 by alpha-CROWN."""
    return _build(tmp_path_factory.mktemp("z3"), {"M1": "z3", "M2": "alpha-crown"})


def _claims(cert: dict) -> list[dict]:
    return cert["cases"][0]["modules"]["claims"]


def _check(inst: Instance, cert: dict, model: Path | None = None, spec: Path | None = None):  # type: ignore[no-untyped-def]
    return check_certificate(model or inst.model_path, spec or inst.spec_path, cert)


def _shift(obj: dict, index: int, delta: float) -> None:
    values = decode_array(obj)
    values[index] += delta
    obj.update(encode_array(values))


def test_module_certificates_pass(alpha: tuple[Instance, dict], exact: tuple[Instance, dict]) -> None:
    for inst, cert in (alpha, exact):
        report = _check(inst, cert)
        assert report.valid, report.message
        assert report.claims_checked == 2
    assert [c["backend"] for c in _claims(exact[1])] == ["z3", "alpha-crown"]
    assert _claims(exact[1])[0]["evidence"]["smtlib"].rstrip().endswith("(check-sat)")


def test_certificates_are_deterministic(alpha: tuple[Instance, dict], exact: tuple[Instance, dict],
                                        tmp_path: Path) -> None:
    for (_, cert), backends, sub in ((alpha, {"M1": "alpha-crown", "M2": "alpha-crown"}, "a"),
                                     (exact, {"M1": "z3", "M2": "alpha-crown"}, "b")):
        (tmp_path / sub).mkdir()
        _, again = _build(tmp_path / sub, backends)
        assert json.dumps(again["cases"], sort_keys=True) == json.dumps(cert["cases"], sort_keys=True)


@pytest.mark.parametrize("side", ["lower", "upper"])
def test_an_output_bound_moved_toward_unsafe_fails(alpha: tuple[Instance, dict], exact: tuple[Instance, dict],
                                                   side: str) -> None:
    for inst, cert, message in ((*alpha, "claims output"), (*exact, "Z3 finds an input")):
        bad = copy.deepcopy(cert)
        out = _claims(bad)[0]["output"][side]
        k = int(np.argmax(decode_array(out)))  # a neuron whose ReLU is live, so the next box still contains it
        _shift(out, k, 1e-3 if side == "lower" else -1e-3)  # tighter than provable
        report = _check(inst, bad)
        assert not report.valid and message in report.message, report.message


def test_a_margin_moved_toward_unsafe_fails(alpha: tuple[Instance, dict]) -> None:
    inst, cert = alpha
    bad = copy.deepcopy(cert)
    _shift(_claims(bad)[1]["polytopes"]["margin"], 0, 1e-3)
    report = _check(inst, bad)
    assert not report.valid and "claims margin" in report.message


def test_a_dropped_module_fails(alpha: tuple[Instance, dict]) -> None:
    inst, cert = alpha
    for drop in (0, 1):
        bad = copy.deepcopy(cert)
        body = bad["cases"][0]["modules"]
        del body["claims"][drop]
        del body["composition"][0]
        report = _check(inst, bad)
        assert not report.valid and ("missing" in report.message or "end at block" in report.message), report.message


def test_a_broken_link_fails(alpha: tuple[Instance, dict]) -> None:
    inst, cert = alpha
    bad = copy.deepcopy(cert)
    first, second = _claims(bad)
    k = int(np.argmax(decode_array(first["output"]["lower"])))
    _shift(second["input"]["lower"], k, 1e-3)  # module 2 assumes more than module 1 guarantees
    report = _check(inst, bad)
    assert not report.valid and "not inside" in report.message
    bad = copy.deepcopy(cert)
    bad["cases"][0]["modules"]["composition"][0]["layer"] = 0
    assert not _check(inst, bad).valid


def test_a_changed_slope_fails(alpha: tuple[Instance, dict], exact: tuple[Instance, dict]) -> None:
    for inst, cert, module in ((*alpha, 0), (*alpha, 1), (*exact, 1)):
        bad = copy.deepcopy(cert)
        ev = _claims(bad)[module]["evidence"]
        assert ev["alphas"], "the claim records its slopes"
        ev["alphas"] = [encode_array(1.0 - decode_array(a)) for a in ev["alphas"]]
        report = _check(inst, bad)
        assert not report.valid and "claims" in report.message, report.message


def test_a_tightened_intermediate_bound_fails(alpha: tuple[Instance, dict]) -> None:
    inst, cert = alpha
    bad = copy.deepcopy(cert)
    layer = _claims(bad)[0]["evidence"]["intermediate"][0]
    _shift(layer["lower"], 0, 1e-3)
    report = _check(inst, bad)
    assert not report.valid and "not confirmed" in report.message


def _changed_model(inst: Instance, tmp_path: Path, which: int, delta: float) -> Path:
    changed = tmp_path / f"changed{which}.onnx"
    model = onnx.load(str(inst.model_path))
    init = [i for i in model.graph.initializer if i.name.startswith("w")][which]
    w = numpy_helper.to_array(init).copy()
    w[0] += delta
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, str(changed))
    return changed


def test_a_changed_weight_fails(alpha: tuple[Instance, dict], exact: tuple[Instance, dict], tmp_path: Path) -> None:
    for (inst, cert), which in ((alpha, -1), (exact, -1), (exact, 0)):
        changed = _changed_model(inst, tmp_path, which, 1.0)  # the last layer raises y0; the first moves M1's range
        report = _check(inst, cert, model=changed)
        assert not report.valid and "sha256" in report.message
        forged = copy.deepcopy(cert)
        forged["model"]["sha256"] = file_sha256(changed)
        report = _check(inst, forged, model=changed)
        assert not report.valid and ("claims" in report.message or "Z3 finds" in report.message), report.message


def test_a_changed_spec_fails(alpha: tuple[Instance, dict], tmp_path: Path) -> None:
    inst, cert = alpha
    changed = tmp_path / "changed.vnnlib"
    shutil.copy(inst.spec_path, changed)
    changed.write_text(changed.read_text().replace("(assert (<= X_0 1))", "(assert (<= X_0 2))"))
    report = _check(inst, cert, spec=changed)
    assert not report.valid and "spec" in report.message
    forged = copy.deepcopy(cert)
    forged["spec"]["sha256"] = file_sha256(changed)
    report = _check(inst, forged, spec=changed)
    assert not report.valid and "does not contain the case's box" in report.message
