"""verify.bounds.jacobian: every sampled gradient lies inside the interval Jacobian of its box."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bounds.test_dag import NETS, _box, _samples
from verify.bounds.jacobian import jacobian_bounds
from verify.errors import ModelError
from verify.ir.evaluate import run
from verify.ir.graph import Graph

SUPPORTED_NETS = [k for k in NETS if k != "softmax_last"]


def _gradients(g: Graph, x: torch.Tensor) -> torch.Tensor:
    """``[N, n_outputs, n_inputs]`` Jacobians of the IR forward at ``x`` (autograd, float64)."""
    x = x.clone().requires_grad_(True)
    y = run(g, x).reshape(x.shape[0], -1)
    rows = [torch.autograd.grad(y[:, o].sum(), x, retain_graph=True)[0] for o in range(y.shape[1])]
    return torch.stack(rows, dim=1)


@pytest.mark.parametrize("net", SUPPORTED_NETS)
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), width=st.sampled_from([0.01, 0.2, 1.0]))
def test_sampled_gradients_lie_inside_the_bounds(net: str, seed: int, width: float) -> None:
    g = NETS[net](seed)
    rng = np.random.default_rng(seed)
    lo, hi = _box(g, rng, 3, width)
    features = sorted(rng.choice(g.n_inputs, size=min(3, g.n_inputs), replace=False).tolist())
    jl, ju = jacobian_bounds(g, lo, hi, features)
    assert jl.shape == ju.shape == (3, g.n_outputs, len(features))
    assert bool((jl <= ju).all())
    xs = _samples(lo, hi, 24, seed)
    for b in range(3):
        grads = _gradients(g, xs[b])[:, :, features]
        assert bool((grads >= jl[b] - 1e-12).all() and (grads <= ju[b] + 1e-12).all()), net


def test_a_feature_the_network_ignores_gets_exactly_zero() -> None:
    g = NETS["relu_mlp"](3)
    first = next(n for n in g.nodes if n.op == "linear")
    W = np.array(first.attrs["W"], dtype=np.float64)
    W[:, 1] = 0.0
    first.attrs["W"] = W
    lo, hi = _box(g, np.random.default_rng(0), 2, 1.0)
    jl, ju = jacobian_bounds(g, lo, hi, [1])
    assert bool((jl == 0).all() and (ju == 0).all())


def test_non_negative_weights_give_a_non_negative_lower_bound() -> None:
    g = NETS["relu_mlp"](5)
    for n in g.nodes:
        if n.op == "linear":
            n.attrs["W"] = np.abs(np.asarray(n.attrs["W"], dtype=np.float64))
    lo, hi = _box(g, np.random.default_rng(1), 4, 1.0)
    jl, ju = jacobian_bounds(g, lo, hi, list(range(g.n_inputs)))
    assert bool((jl >= 0).all()) and bool((ju > 0).any())


def test_an_unsupported_op_is_a_clear_error() -> None:
    g = NETS["softmax_last"](0)
    lo, hi = _box(g, np.random.default_rng(0), 1, 0.1)
    with pytest.raises(ModelError, match="derivative bounds .* do not support softmax"):
        jacobian_bounds(g, lo, hi, [0])
