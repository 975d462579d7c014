"""Module composition: partitions, box composition, the linear fallback, the check-pipeline entry."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from tests.compose.instances import make_instance, upper_bound_of_y0, write_spec
from verify.certcheck import check_certificate
from verify.certificate.build import build_certificate
from verify.compose import ComposeOptions, Policy, modular_proof, partition, prove_modular
from verify.model.network import load_model
from verify.spec import load_spec

torch.set_num_threads(1)

SIZES = [3, 6, 6, 6, 2]


def certificate_of(inst, proof: dict) -> dict:  # type: ignore[no-untyped-def]
    return build_certificate(load_model(inst.model_path), inst.prop, [proof], inst.chain.hidden_sizes,
                             inst.chain.relu_names)


def test_partition_covers_the_blocks_in_order(tmp_path: Path) -> None:
    inst = make_instance(tmp_path, [3, 8, 8, 8, 8, 2], seed=2)
    case = inst.prop.cases[0]
    for max_unstable in (2, 12, 40):
        cuts = partition(inst.chain, case.box.lower, case.box.upper, max_unstable)
        assert cuts[0][0] == 0 and cuts[-1] == (4, 4)
        assert all(b[0] == a[1] + 1 for a, b in zip(cuts, cuts[1:]))
    # a larger size rule gives fewer (larger) modules
    assert len(partition(inst.chain, case.box.lower, case.box.upper, 40)) <= \
        len(partition(inst.chain, case.box.lower, case.box.upper, 2))


def test_box_composition_verifies_and_its_certificate_passes(tmp_path: Path) -> None:
    from verify.certificate.modules import modules_proof

    policy = Policy(override={"M1": "z3", "M2": "alpha-crown"}, z3_timeout=60.0)  # load-proof
    inst = make_instance(tmp_path, SIZES, seed=1, partition=[(0, 1), (2, 3)], policy=policy)
    res = inst.result
    assert res.verified and [c.backend for c in res.claims] == ["z3", "alpha-crown"]
    assert 0.005 < res.min_margin < 0.0101  # tight: the bound sits 0.01 above the proven one
    # assume-guarantee: module 2 assumes exactly the ReLU of what module 1 guarantees
    first, second = res.claims
    assert np.array_equal(second.in_lower, np.maximum(first.out_lower, 0))
    assert np.array_equal(second.in_upper, np.maximum(first.out_upper, 0))
    cert = certificate_of(inst, modules_proof(0, res.claims, res.linear))
    report = check_certificate(inst.model_path, inst.spec_path, cert)
    assert report.valid, report.message
    assert report.claims_checked == 2


def test_linear_fallback_verifies_what_boxes_cannot(tmp_path: Path) -> None:
    from verify.certificate.modules import modules_proof

    sizes = [3, 8, 8, 8, 8, 2]
    model = make_instance(tmp_path, sizes, seed=2)
    whole = upper_bound_of_y0(model.chain, tmp_path, ComposeOptions(partition=[(0, 4)], linear_fallback=False))
    boxes = upper_bound_of_y0(model.chain, tmp_path, ComposeOptions(linear_fallback=False))
    assert whole < boxes - 0.1, "boxes should lose against whole-model bounds on this net"
    bound = (whole + boxes) / 2
    inst = make_instance(tmp_path, sizes, seed=2, bound=bound, linear_fallback=True)
    res = inst.result
    assert res.verified and res.linear, "verified only by crossing some boundary linearly"
    assert res.figures["box"]["margin"] < 0 < res.figures["linear"]["margin"]
    cert = certificate_of(inst, modules_proof(0, res.claims, res.linear))
    report = check_certificate(inst.model_path, inst.spec_path, cert)
    assert report.valid, report.message


def test_unreachable_bound_is_not_verified(tmp_path: Path) -> None:
    inst = make_instance(tmp_path, SIZES, seed=1)
    x = np.random.default_rng(0).uniform(-1, 1, (5000, 3))
    top = float(inst.chain.forward(x)[:, 0].max())
    prop = load_spec(write_spec(tmp_path / "false.vnnlib", top - 0.01))  # violated somewhere
    res = prove_modular(inst.chain, prop.cases[0], ComposeOptions())
    assert not res.verified and res.min_margin < 0
    assert modular_proof(inst.chain, prop.cases[0], 0, time.monotonic() + 30, 1e-7) is None


def test_modular_proof_for_the_pipeline(tmp_path: Path) -> None:
    inst = make_instance(tmp_path, SIZES, seed=1, gap=0.05, linear_fallback=True)
    outcome = modular_proof(inst.chain, inst.prop.cases[0], 0, time.monotonic() + 30, 1e-7)
    assert outcome is not None and outcome.status == "verified" and outcome.method == "modules"
    assert outcome.proof is not None and outcome.proof["kind"] == "modules" and outcome.proof["case"] == 0
    assert outcome.min_lb > 0
    cert = certificate_of(inst, outcome.proof)
    assert check_certificate(inst.model_path, inst.spec_path, cert).valid
    # no time left: no proof
    assert modular_proof(inst.chain, inst.prop.cases[0], 0, time.monotonic() - 1, 1e-7) is None
