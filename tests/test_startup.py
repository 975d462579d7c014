"""Start-up of ``verify check``: a process imports only what its path needs.

A chain of affine layers and ReLUs is bounded by verify's own engine in the incomplete
pass (:class:`verify.bounds.chain_bounder.ChainBounder`), so checking one imports no
auto_LiRPA; onnxruntime is loaded only to replay a counterexample, hypothesis only for a
counterexample search, z3 only for exact modules, matplotlib only for pictures.  Other
networks (here a sigmoid) still get auto_LiRPA's bounds.  The engine that replaced
auto_LiRPA is checked against sampling (and its intermediate bounds against auto_LiRPA's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import helper
from torch import nn

from tests import nets
from tests.conftest import ROOT
from verify.bounds.chain_bounder import ChainBounder
from verify.bounds.lirpa import LirpaBounder
from verify.graph.chain import LinearChain

HEAVY = ("auto_LiRPA", "onnxruntime", "hypothesis", "z3", "networkx", "matplotlib", "onnx", "ml_dtypes")

_RUN = f"""
import json, sys
from verify.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
print(json.dumps({{"exit": code, "loaded": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""


def _check_process(*args: str | Path) -> tuple[dict, dict]:
    """``verify check ARGS --json --quiet`` in a fresh process: its JSON result, and its exit
    code with the heavy modules it had imported at the end."""
    done = subprocess.run([sys.executable, "-c", _RUN, "check", *map(str, args), "--json", "--quiet"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "VERIFY_EXAMPLES_DIR": "off"})
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and len(lines) >= 2, done.stdout + done.stderr[-3000:]
    return json.loads(lines[-2]), json.loads(lines[-1])


def test_checking_a_chain_imports_no_auto_lirpa() -> None:
    result, run = _check_process(ROOT / "examples" / "tiny" / "classifier.onnx",
                                 ROOT / "specs" / "tiny_robust_class0.vnnlib")
    assert run["exit"] == 0 and result["verdict"] == "verified", result
    assert result["recheck"]["valid"] and result["recheck"]["complete"]
    assert result["method"] == "IBP" and result["incomplete"]["open_cases"] == 0
    loaded = set(run["loaded"])
    assert "auto_LiRPA" not in loaded, f"a chain needs no auto_LiRPA; loaded: {run['loaded']}"
    # nothing else on this path needs them: no counterexample to replay, no search, no
    # exact module, no picture, no compression (networkx); the model is read through
    # verify.model.onnx_lite, without the onnx package's __init__ (ml_dtypes)
    assert not loaded & {"onnxruntime", "hypothesis", "z3", "matplotlib", "networkx", "onnx", "ml_dtypes"}, \
        run["loaded"]


def test_the_pytest_plugin_imports_no_torch() -> None:
    """pytest loads verify's plugin (entry point ``pytest11``) in every session of every
    project that installs verify: the plugin and :mod:`verify.testing` import neither torch
    nor hypothesis until ``assert_property`` runs."""
    code = ("import sys, verify.pytest_plugin, verify.testing\n"
            f"print(sorted(m for m in {HEAVY + ('torch',)!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]", done.stdout


def _sigmoid_net(path: Path) -> Path:
    """4 -> 8 (sigmoid) -> 2: not a chain of affine layers and ReLUs."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Gemm", ["x", "w0", "b0"], ["h"], name="fc0", transB=1),
             helper.make_node("Sigmoid", ["h"], ["s"], name="sig0"),
             helper.make_node("Gemm", ["s", "w1", "b1"], ["y"], name="fc1", transB=1)]
    inits = {"w0": rng.normal(0, 0.5, (8, 4)), "b0": rng.normal(0, 0.1, 8),
             "w1": rng.normal(0, 0.5, (2, 8)), "b1": np.array([5.0, 0.0])}
    return nets.save(nodes, inits, [1, 4], [1, 2], path)


def test_a_network_that_is_no_chain_gets_the_ir_engine_and_a_certificate(tmp_path: Path) -> None:
    model = _sigmoid_net(tmp_path / "sigmoid.onnx")
    spec = tmp_path / "holds.vnnlib"
    lines = [f"(declare-const X_{i} Real)" for i in range(4)] + ["(declare-const Y_0 Real)", "(declare-const Y_1 Real)"]
    lines += [f"(assert (>= X_{i} -0.1))\n(assert (<= X_{i} 0.1))" for i in range(4)]
    spec.write_text("\n".join(lines + ["(assert (<= Y_0 Y_1))", ""]))  # y0 - y1 is about 5 on the box
    result, run = _check_process(model, spec)
    assert run["exit"] == 0 and result["verdict"] == "verified", result
    assert result["recheck"]["valid"], result  # a dag certificate, re-checked by the checker
    assert "auto_LiRPA" not in run["loaded"], run["loaded"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_our_engine_bounds_are_sound(seed: int) -> None:
    """On random chains: every sampled output respects the bounds of each method, CROWN is
    no looser than IBP nor alpha-CROWN than CROWN, and (on these chains) the intermediate
    bounds are no looser than auto_LiRPA's CROWN bounds.  The final ones can be looser (seed
    2): the adaptive slopes of neurons with ``u`` close to ``-l`` flip with tiny changes of
    the intermediate bounds."""
    rng = np.random.default_rng(seed)
    sizes = [5, 20, 20, 20, 4]
    Ws = [rng.normal(0, 1 / np.sqrt(a), (b, a)) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(0, 0.3, b) for b in sizes[1:]]
    chain = LinearChain(Ws, bs)
    layers: list[nn.Module] = []
    for k, (W, b) in enumerate(zip(Ws, bs)):
        lin = nn.Linear(W.shape[1], W.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(W))
            lin.bias.copy_(torch.as_tensor(b))
        layers += [lin] + ([nn.ReLU()] if k < len(Ws) - 1 else [])
    net = nn.Sequential(*layers).eval()
    lo, hi = rng.uniform(-1, 0, 5), rng.uniform(0, 1, 5)
    C = rng.normal(0, 1, (3, 4))
    xs = rng.uniform(lo, hi, (20000, 5))
    values = chain.forward(xs) @ C.T
    ours = ChainBounder(chain, alpha_iterations=10)
    lower = {}
    for method in ("IBP", "CROWN", "alpha-CROWN"):
        res = ours.bound(lo[None], hi[None], C, method)
        assert res.lower.shape == (1, 3) and list(res.relu_bounds) == chain.relu_names
        assert np.all(values.min(axis=0) >= res.lower[0] - 1e-9), method
        lower[method] = res.lower[0]
        if method == "CROWN":
            ref = LirpaBounder(net, 5).bound(lo[None], hi[None], C, method)
            for (l, u), (l_ref, u_ref) in zip(res.relu_bounds.values(), ref.relu_bounds.values()):
                assert np.all(l >= l_ref - 1e-9) and np.all(u <= u_ref + 1e-9)
    assert np.all(lower["CROWN"] >= lower["IBP"] - 1e-9)
    assert np.all(lower["alpha-CROWN"] >= lower["CROWN"] - 1e-12)
