"""Input-split branch and bound spread over a real local Ray cluster
(verify.refine.distributed): the split tree is the one a single process grows (each
domain's cut depends only on that domain), the proof goes through verify.certcheck, and
a falsified property ends with a counterexample replayed on the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tests.nets import mlp
from verify import check as check_module
from verify.certcheck import check_certificate
from verify.certcheck.encoding import decode_array, encode_array
from verify.check import CheckOptions, check
from verify.cluster import RayPool
from verify.graph.chain import chain_from_ir
from verify.model.network import load_model
from verify.refine import case_rows
from verify.refine import distributed as dist
from verify.refine.input_split import InputSplitOptions, input_split_bab
from verify.spec import load_spec

pytestmark = pytest.mark.ray

@pytest.fixture(scope="module")
def pool(cluster: str) -> RayPool:
    with RayPool(cluster) as p:
        yield p


def _mlp_spec(tmp_path: Path, margin: float) -> tuple[Path, Path]:
    """A random 4-32-32-2 MLP and "y0 stays below its sampled top plus ``margin`` (relative
    and absolute) on [-1, 1]^4": with 0.05 it holds (about 800 tree nodes), with 0.02 it
    does not (a counterexample about 1,400 nodes deep)."""
    model = mlp(tmp_path / "mlp.onnx", [4, 32, 32, 2], seed=2)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).uniform(-1, 1, (2000, 4)).astype(np.float32)
    top = max(float(session.run(None, {name: p[None]})[0][0, 0]) for p in x)
    bound = top + margin * abs(top) + margin
    lines = [f"(declare-const X_{i} Real)" for i in range(4)] + ["(declare-const Y_0 Real)", "(declare-const Y_1 Real)"]
    lines += [f"(assert (>= X_{i} -1))\n(assert (<= X_{i} 1))" for i in range(4)]
    lines.append(f"(assert (>= Y_0 {bound:.6f}))")
    spec = tmp_path / f"top{margin}.vnnlib"
    spec.write_text("\n".join(lines) + "\n")
    return model, spec


def test_the_tree_is_the_single_process_tree(pool: RayPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slices of 0.05 s: batches hand their open domains back, and these go out again."""
    monkeypatch.setattr(dist, "SLICE_SECONDS", 0.05)
    model_file, spec = _mlp_spec(tmp_path, 0.05)
    model, prop = load_model(model_file), load_spec(spec)
    case = prop.cases[0]
    C, d, groups = case_rows(case)
    Ws, bs = chain_from_ir(model.ir).with_spec(C, d).torch()
    options = InputSplitOptions(threshold=1e-7, attack_every=0)
    local = input_split_bab(Ws, bs, groups, case.box.lower, case.box.upper, 1e18, options)
    problem = dist.make_problem(Ws, bs, groups, str(model_file), prop, 0, options)
    spread = dist.distributed_input_split(Ws, bs, groups, case.box.lower, case.box.upper, 1e18, options, pool,
                                          problem, frontier_per_cpu=2)
    assert local.status == spread.status == "verified"
    assert spread.batches > 4  # the work went to the cluster, in several rounds
    assert spread.tree.size == local.tree.size > 500
    assert len(spread.tree.closures) == len(local.tree.closures)
    assert spread.domains_bounded == local.domains_bounded
    assert spread.min_lb == local.min_lb


def test_verified_with_a_certificate_the_checker_accepts(pool: RayPool, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dist, "FRONTIER_PER_CPU", 2)
    monkeypatch.setattr(check_module, "SPLIT_FIRST_SECONDS", 0.001)  # no first try in this process
    model_file, spec = _mlp_spec(tmp_path, 0.05)
    result = check(load_model(model_file), load_spec(spec), CheckOptions(timeout=60, cluster=pool))
    assert result.verdict == "verified" and result.method == "distributed-input-split", result.reason
    assert result.details["refinement"]["cluster_batches"] >= 2
    assert result.details["recheck"]["valid"]
    report = check_certificate(model_file, spec, result.certificate)
    assert report.valid and report.complete, report.message
    # the same tree with every claimed margin raised: rejected
    cert = json.loads(json.dumps(result.certificate))
    closures = cert["cases"][0]["input-split"]["closures"]
    closures["margin"] = encode_array(decode_array(closures["margin"]) * 1e3 + 1.0)
    assert not check_certificate(model_file, spec, cert).valid


def test_falsified_with_a_counterexample_replayed_on_the_model(pool: RayPool, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dist, "FRONTIER_PER_CPU", 2)
    monkeypatch.setattr(check_module, "SPLIT_FIRST_SECONDS", 0.001)
    model_file, spec = _mlp_spec(tmp_path, 0.02)
    prop = load_spec(spec)
    result = check(load_model(model_file), prop, CheckOptions(timeout=60, cluster=pool, falsify=False))
    assert result.verdict == "falsified", result.reason
    x = np.asarray(result.counterexample.x, dtype=np.float32)
    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    y = session.run(None, {session.get_inputs()[0].name: x[None]})[0][0]
    assert np.all(np.abs(x) <= 1) and y[0] >= float(spec.read_text().split(">= Y_0 ")[1].split(")")[0])
