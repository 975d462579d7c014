"""The batched bound engine: every sampled input lands inside the computed bounds."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.bounds.linear_relax import (
    backward_bound,
    crown_bounds,
    forward_bounds,
    ibp_bounds,
    optimize_alpha,
)
from verify.graph.chain import LinearChain


def random_chain(seed: int, sizes: list[int]) -> LinearChain:
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(0, 1 / np.sqrt(a), (b, a)) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(0, 0.3, b) for b in sizes[1:]]
    return LinearChain(Ws, bs)


def box(seed: int, n: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed + 1)
    lo = rng.uniform(-1, 1, (batch, n))
    hi = lo + rng.uniform(0.0, 1.0, (batch, n))
    return torch.tensor(lo), torch.tensor(hi)


def samples(lo: torch.Tensor, hi: torch.Tensor, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 2)
    u = rng.uniform(0, 1, (lo.shape[0], k, lo.shape[1]))
    u[:, :4] = rng.integers(0, 2, (lo.shape[0], 4, lo.shape[1]))  # corners
    return lo.numpy()[:, None] + u * (hi - lo).numpy()[:, None]


def chain_with_bounds(seed: int, sizes: list[int], batch: int) -> tuple:
    """A random chain, its tensors, ``batch`` random boxes and CROWN's hidden-layer bounds on them."""
    chain = random_chain(seed, sizes)
    Ws, bs = chain.torch()
    lo, hi = box(seed, sizes[0], batch)
    return chain, Ws, bs, lo, hi, crown_bounds(Ws, bs, lo, hi, last=False)


chains = st.tuples(st.integers(0, 10_000), st.lists(st.integers(1, 12), min_size=2, max_size=5),
                   st.integers(1, 6))


@settings(max_examples=40, deadline=None)
@given(chains)
def test_every_sample_lies_inside_every_bound(params: tuple) -> None:
    seed, hidden, n_in = params
    chain = random_chain(seed, [n_in, *hidden])
    Ws, bs = chain.torch()
    lo, hi = box(seed, n_in, 3)
    xs = samples(lo, hi, 200, seed)
    ys = np.stack([chain.forward(x) for x in xs])  # [batch, k, n_out]
    for name, bounds in [("ibp", ibp_bounds(Ws, bs, lo, hi)), ("forward", forward_bounds(Ws, bs, lo, hi)),
                         ("crown", crown_bounds(Ws, bs, lo, hi))]:
        l, u = bounds[-1]
        assert np.all(ys >= l.numpy()[:, None] - 1e-9), name
        assert np.all(ys <= u.numpy()[:, None] + 1e-9), name
    pre = crown_bounds(Ws, bs, lo, hi, last=False)
    res = backward_bound(Ws, bs, lo, hi, pre)
    assert np.all(ys >= res.lb.numpy()[:, None] - 1e-9)
    best, _, _ = optimize_alpha(Ws, bs, lo, hi, pre, iterations=5)
    assert np.all(ys >= best.lb.numpy()[:, None] - 1e-9)
    assert np.all(best.lb.numpy() >= res.lb.numpy() - 1e-9)  # alpha never loses against CROWN's start


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_beta_bounds_hold_on_the_split_domain(seed: int) -> None:
    chain, Ws, bs, lo, hi, root = chain_with_bounds(seed, [3, 8, 8, 2], 1)
    l0, u0 = root[0]
    unstable = torch.nonzero((l0[0] < 0) & (u0[0] > 0)).flatten()
    if unstable.numel() == 0:
        return
    j = int(unstable[0])
    xs = samples(lo, hi, 2000, seed)[0]
    z = xs @ chain.weights[0].T + chain.biases[0]
    for phase in (1.0, -1.0):
        phases = [torch.zeros(1, 8, dtype=torch.float64), torch.zeros(1, 8, dtype=torch.float64)]
        phases[0][0, j] = phase
        pre = [(torch.where(p > 0, l.clamp(min=0), l), torch.where(p < 0, u.clamp(max=0), u))
               for (l, u), p in zip(root, phases)]
        best, _, betas = optimize_alpha(Ws, bs, lo, hi, pre, iterations=10, phases=phases, betas_init=True)
        inside = xs[(z[:, j] >= 0) if phase > 0 else (z[:, j] <= 0)]
        if len(inside):
            ys = np.stack([chain.forward(x) for x in inside])
            assert np.all(ys >= best.lb.numpy()[0] - 1e-9)
        assert betas is not None and all(bool((b >= 0).all()) for b in betas)


def test_bounds_are_batch_independent() -> None:
    chain = random_chain(3, [5, 20, 20, 20, 3])
    Ws, bs = chain.torch()
    lo, hi = box(3, 5, 16)
    together = crown_bounds(Ws, bs, lo, hi)
    for i in (0, 7, 15):
        alone = crown_bounds(Ws, bs, lo[i:i + 1], hi[i:i + 1])
        for (la, ua), (lt, ut) in zip(alone, together):
            assert torch.allclose(la[0], lt[i], rtol=0, atol=1e-12)
            assert torch.allclose(ua[0], ut[i], rtol=0, atol=1e-12)


def test_crown_is_tighter_than_intervals_on_a_hand_checkable_net() -> None:
    # y = relu(x) - relu(-x) = x on [-1, 1]: intervals say [-1, 1] - [0, 1]..., CROWN gets close to x
    chain = LinearChain([np.array([[1.0], [-1.0]]), np.array([[1.0, -1.0]])], [np.zeros(2), np.zeros(1)])
    Ws, bs = chain.torch()
    lo, hi = torch.tensor([[-1.0]], dtype=torch.float64), torch.tensor([[1.0]], dtype=torch.float64)
    ibp = ibp_bounds(Ws, bs, lo, hi)[-1]
    crown = crown_bounds(Ws, bs, lo, hi)[-1]
    assert float(ibp[0]) == -1.0 and float(ibp[1]) == 1.0
    assert float(crown[0]) >= -1.0 - 1e-12 and float(crown[1]) <= 1.0 + 1e-12


def test_alpha_search_moves_when_the_interval_bound_is_better_at_the_start() -> None:
    # seed 39: at the default slopes the interval bound beats back-substitution; the search
    # must still climb (it used to stall: the maximum of the two has no gradient in the slopes)
    _, Ws, bs, lo, hi, pre = chain_with_bounds(39, [4, 10, 10, 10, 1], 1)
    start = backward_bound(Ws, bs, lo, hi, pre)
    assert start.linear_lb is not None and float(start.linear_lb) < float(start.lb) - 0.05
    best, _, _ = optimize_alpha(Ws, bs, lo, hi, pre, iterations=20)
    assert float(best.lb) > float(start.lb) + 0.02


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_a_warm_start_never_loses_what_it_started_from(seed: int) -> None:
    chain, Ws, bs, lo, hi, pre = chain_with_bounds(seed, [3, 8, 8, 2], 2)
    first, alphas, _ = optimize_alpha(Ws, bs, lo, hi, pre, iterations=5)
    again, _, _ = optimize_alpha(Ws, bs, lo, hi, pre, iterations=5, warm=(alphas, None))
    assert np.all(again.lb.numpy() >= first.lb.numpy() - 1e-12)
    xs = samples(lo, hi, 200, seed)
    ys = np.stack([chain.forward(x) for x in xs])
    assert np.all(ys >= again.lb.numpy()[:, None] - 1e-9)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_float32_steps_answer_in_float64_with_the_slopes_they_return(seed: int) -> None:
    # the float32 steps only choose slopes: the bound returned is float64 back-substitution
    # with exactly those slopes, and it holds on samples of the (split) domain
    chain, Ws, bs, lo, hi, root = chain_with_bounds(seed, [3, 8, 8, 2], 2)
    phases = [torch.zeros(2, 8, dtype=torch.float64), torch.zeros(2, 8, dtype=torch.float64)]
    unstable = torch.nonzero((root[0][0][0] < 0) & (root[0][1][0] > 0)).flatten()
    if unstable.numel():
        phases[0][0, int(unstable[0])] = 1.0
    pre = [(torch.where(p > 0, l.clamp(min=0), l), torch.where(p < 0, u.clamp(max=0), u))
           for (l, u), p in zip(root, phases)]
    best, alphas, betas = optimize_alpha(Ws, bs, lo, hi, pre, iterations=8, phases=phases, betas_init=True,
                                         fast=True)
    assert best.lb.dtype == torch.float64 and all(a.dtype == torch.float64 for a in alphas)
    assert betas is not None and all(bool((b >= 0).all()) for b in betas)
    assert all(bool(((a >= 0) & (a <= 1)).all()) for a in alphas)
    again = backward_bound(Ws, bs, lo, hi, pre, alphas, betas, phases)
    assert torch.equal(again.lb, best.lb)
    start = backward_bound(Ws, bs, lo, hi, pre).lb.numpy()  # the steps start from these slopes
    assert np.all(best.lb.numpy() >= start - 1e-5 * (1 + np.abs(start)))
    xs = samples(lo, hi, 300, seed)
    z = np.einsum("bkn,mn->bkm", xs, chain.weights[0]) + chain.biases[0]
    for i in range(2):
        inside = xs[i][np.all(np.where(phases[0][i].numpy() > 0, z[i] >= 0, True), axis=1)]
        if len(inside):
            ys = np.stack([chain.forward(x) for x in inside])
            assert np.all(ys >= best.lb.numpy()[i] - 1e-9)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 5))
def test_layer_one_needs_no_back_substitution_after_symbolic_bounds(seed: int, n_inputs: int) -> None:
    # crown_bounds skips back-substitution for the second ReLU layer when it has symbolic
    # bounds: through one relaxed layer both give the same linear function of the input
    chain, Ws, bs, lo, hi, pre = chain_with_bounds(seed, [n_inputs, 8, 8, 3], 6)
    W1, b1 = Ws[1], bs[1]
    back = backward_bound(Ws[:2], bs[:2], lo, hi, pre[:1], W_last=torch.cat([W1, -W1]), b_last=torch.cat([b1, -b1]))
    n = W1.shape[0]
    l, u = pre[1]
    assert torch.allclose(l, torch.maximum(l, back.lb[:, :n]), rtol=0, atol=1e-12)
    assert torch.allclose(u, torch.minimum(u, -back.lb[:, n:]), rtol=0, atol=1e-12)
