"""verify.bounds.difference: every sampled f(x) - g(x) lies inside the differential bounds of its box."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bounds.test_dag import NETS, _box, _samples
from verify.bounds.dag import DagBounder
from verify.bounds.difference import difference_bounds, same_structure
from verify.ir.evaluate import run
from verify.ir.graph import Graph

NETS_WITH_DIFFERENCES = [k for k in NETS if k not in ("softmax_last",)]


def _perturbed(g: Graph, rng: np.random.Generator, scale: float) -> Graph:
    """``g`` with every weight and constant term moved by up to ``scale`` of its size (a "retrained" copy)."""
    h = copy.deepcopy(g)
    for node in h.nodes:
        for key in ("W", "b", "scale", "shift"):
            v = node.attrs.get(key)
            if isinstance(v, np.ndarray) and v.dtype.kind == "f":
                node.attrs[key] = v + scale * rng.uniform(-1, 1, v.shape) * np.abs(v).max()
    return h


@pytest.mark.parametrize("net", NETS_WITH_DIFFERENCES)
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), width=st.sampled_from([0.01, 0.3, 1.0]), scale=st.sampled_from([1e-3, 0.1]))
def test_sampled_differences_lie_inside_the_bounds(net: str, seed: int, width: float, scale: float) -> None:
    f = NETS[net](seed)
    rng = np.random.default_rng(seed)
    g = _perturbed(f, rng, scale)
    assert same_structure(f, g) is None
    lo, hi = _box(f, rng, 3, width)
    dl, du = difference_bounds(f, g, lo, hi)
    assert dl.shape == du.shape == (3, f.n_outputs) and bool((dl <= du).all())
    xs = _samples(lo, hi, 32, seed)
    for b in range(3):
        with torch.no_grad():
            d = (run(f, xs[b]) - run(g, xs[b])).reshape(32, -1)
        assert bool((d >= dl[b] - 1e-12).all() and (d <= du[b] + 1e-12).all()), net


def test_a_copy_differs_by_exactly_zero_and_a_small_change_stays_small() -> None:
    f = NETS["relu_mlp"](7)
    lo, hi = _box(f, np.random.default_rng(0), 2, 1.0)
    dl, du = difference_bounds(f, copy.deepcopy(f), lo, hi)
    assert bool((dl == 0).all() and (du == 0).all())
    g = _perturbed(f, np.random.default_rng(1), 1e-4)
    dl, du = difference_bounds(f, g, lo, hi)
    eye = torch.eye(f.n_outputs, dtype=torch.float64)
    C = torch.cat([eye, -eye])
    separate = DagBounder(f).bound(lo, hi, C).lower  # each copy's own bounds: the product's width
    width_f = -(separate[:, :f.n_outputs] + separate[:, f.n_outputs:])
    assert float((du - dl).max()) < 0.01 * float(width_f.max())


def test_other_structures_are_refused() -> None:
    f, g = NETS["relu_mlp"](1), NETS["tanh_mlp"](1)
    assert "no counterpart" in (same_structure(f, g) or "")
    with pytest.raises(ValueError, match="same structure"):
        lo, hi = _box(f, np.random.default_rng(0), 1, 0.1)
        difference_bounds(f, g, lo, hi)
