"""The relaxations of verify/bounds/relax: sound on random intervals and the exact rules of docs/relaxations.md."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.bounds.relax import RELAXATIONS, leaky_relu, max_pool, relu, sigmoid_tanh, softmax

FUNCTIONS = {
    "relu": lambda z, a: torch.relu(z),
    "leaky_relu": lambda z, a: torch.where(z >= 0, z, a * z),
    "sigmoid": lambda z, a: torch.sigmoid(z),
    "tanh": lambda z, a: torch.tanh(z),
}

#: an interval: its left end (moderate, large or saturating) and log10 of its width (tiny to wide)
intervals = st.lists(st.tuples(st.one_of(st.floats(-20, 20), st.floats(-1e4, 1e4), st.sampled_from([0.0, -40.0, 40.0])),
                               st.one_of(st.floats(-13, 4), st.just(-math.inf))), min_size=1, max_size=12)
fractions = st.lists(st.floats(0, 1), min_size=1, max_size=8).map(lambda ts: [0.0, 1.0, *ts])


def _boxes(pairs: list[tuple[float, float]], ts: list[float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    l = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
    u = l + torch.tensor([10.0 ** p[1] for p in pairs], dtype=torch.float64)  # width 0 where log10 is -inf
    t = torch.tensor(ts, dtype=torch.float64)
    z = (l[:, None] + t[None, :] * (u - l)[:, None]).clamp(max=u[:, None])
    return l, u, z


def _check_sound(op: str, l: torch.Tensor, u: torch.Tensor, z: torch.Tensor, alpha: float = 0.0) -> None:
    a_l, b_l, a_u, b_u = RELAXATIONS[op].relax(l, u, {"alpha": alpha})
    f = FUNCTIONS[op](z, alpha)
    low = a_l[:, None] * z + b_l[:, None]
    up = a_u[:, None] * z + b_u[:, None]
    tol = 1e-12 * (1 + (a_l[:, None] * z).abs() + b_l.abs()[:, None] + (a_u[:, None] * z).abs() + b_u.abs()[:, None])
    assert torch.all(low <= f + tol), (op, l, u)
    assert torch.all(f <= up + tol), (op, l, u)
    for t in (a_l, b_l, a_u, b_u):
        assert not torch.isnan(t).any()


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["relu", "leaky_relu", "sigmoid", "tanh"]), intervals, fractions, st.floats(0, 1))
def test_relaxation_encloses_the_function(op: str, pairs: list[tuple[float, float]], ts: list[float],
                                          alpha: float) -> None:
    l, u, z = _boxes(pairs, ts)
    _check_sound(op, l, u, z, alpha)


@pytest.mark.parametrize("op", ["relu", "leaky_relu", "sigmoid", "tanh"])
def test_relaxation_is_sound_at_infinite_and_huge_ends(op: str) -> None:
    inf = math.inf
    l = torch.tensor([-inf, -inf, -3.0, 2.0, -inf, -1e300, -800.0, 700.0], dtype=torch.float64)
    u = torch.tensor([2.0, -1.0, inf, inf, inf, 1e300, -750.0, 800.0], dtype=torch.float64)
    z = torch.stack([torch.clamp(torch.tensor(v, dtype=torch.float64), l, u) for v in (-1e308, -5.0, -0.5, 0.0, 0.7,
                                                                                         3.0, 1e308)], dim=1)
    _check_sound(op, l, u, z, 0.2)


def test_relu_follows_the_documented_rules() -> None:
    l = torch.tensor([-2.0, -1.0, -3.0, 0.0, -1.0, 2.0], dtype=torch.float64)
    u = torch.tensor([-1.0, 3.0, 1.0, 0.0, 1.0, 2.0], dtype=torch.float64)
    a_l, b_l, a_u, b_u = relu.relax(l, u)
    assert a_l.tolist() == [0.0, 1.0, 0.0, 0.0, 1.0, 1.0]  # u <= 0 first (l = u = 0 is inactive); u >= -l ties: 1
    assert a_u.tolist() == [0.0, 0.75, 0.25, 0.0, 0.5, 1.0]
    assert b_u.tolist() == [0.0, 0.75, 0.75, 0.0, 0.5, 0.0]
    assert relu.unstable(l, u).tolist() == [False, True, True, False, True, False]


def test_leaky_relu_chord_passes_through_both_ends() -> None:
    l = torch.tensor([-2.0, -5.0], dtype=torch.float64)
    u = torch.tensor([3.0, 1.0], dtype=torch.float64)
    a_l, b_l, a_u, b_u = leaky_relu.relax(l, u, {"alpha": 0.1})
    torch.testing.assert_close(a_u * l + b_u, 0.1 * l)
    torch.testing.assert_close(a_u * u + b_u, u)
    assert a_l.tolist() == [1.0, 0.1]
    with pytest.raises(NotImplementedError):
        leaky_relu.relax(l, u, {"alpha": 1.5})


@pytest.mark.parametrize("op,f,df", [("sigmoid", torch.sigmoid, lambda z: torch.sigmoid(z) * torch.sigmoid(-z)),
                                     ("tanh", torch.tanh, lambda z: 1 - torch.tanh(z) ** 2)])
def test_sigmoid_tanh_follow_the_documented_rules(op: str, f, df) -> None:
    relax = RELAXATIONS[op].relax
    # l >= 0: lower chord, upper tangent at the midpoint; u <= 0 mirrored
    for l, u in ((0.5, 2.0), (-2.0, -0.5)):
        lt, ut = torch.tensor([l], dtype=torch.float64), torch.tensor([u], dtype=torch.float64)
        a_l, b_l, a_u, b_u = relax(lt, ut)
        chord = (a_l, b_l) if l >= 0 else (a_u, b_u)
        tangent = (a_u, b_u) if l >= 0 else (a_l, b_l)
        torch.testing.assert_close(chord[0] * lt + chord[1], f(lt))
        torch.testing.assert_close(chord[0] * ut + chord[1], f(ut))
        m = (lt + ut) / 2
        torch.testing.assert_close(tangent[0], df(m))
        torch.testing.assert_close(tangent[0] * m + tangent[1], f(m))
    # tiny width: constants f(l) below, f(u) above
    lt = torch.tensor([0.3], dtype=torch.float64)
    a_l, b_l, a_u, b_u = relax(lt, lt + 1e-10)
    assert a_l.item() == 0 and a_u.item() == 0 and b_l.item() == f(lt).item() and b_u.item() == f(lt + 1e-10).item()
    # crossing zero: the tangents at the ends where they stay on the right side at the far end, else constants
    l2, u2 = torch.tensor([-0.5, -1.0], dtype=torch.float64), torch.tensor([0.5, 5.0], dtype=torch.float64)
    a_l, b_l, a_u, b_u = relax(l2, u2)
    torch.testing.assert_close(a_l[0], df(l2[0]))
    torch.testing.assert_close(a_u, df(u2))
    assert a_l[1].item() == 0 and b_l[1].item() == f(l2[1]).item()  # the tangent at -1 overshoots f(5)


def test_sigmoid_saturated_bounds_are_flat_and_sound() -> None:
    l = torch.tensor([-1000.0, 900.0, -40.0], dtype=torch.float64)
    u = torch.tensor([-900.0, 1000.0, 40.0], dtype=torch.float64)
    a_l, b_l, a_u, b_u = sigmoid_tanh.relax_sigmoid(l, u)
    assert torch.all(torch.isfinite(torch.stack([a_l, b_l, a_u, b_u])))
    _check_sound("sigmoid", l, u, torch.stack([l, (l + u) / 2, u], dim=1))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3), st.sampled_from([0.1, 2.0, 30.0]))
def test_max_pool_relaxation_encloses_the_window_max(seed: int, kernel: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    attrs = {"kernel": [kernel, kernel], "strides": [max(1, kernel - 1)] * 2, "pads": [kernel // 2] * 4,
             "dilations": [1, 1]}
    spatial = (5, 4)
    lo = torch.tensor(rng.normal(size=(2, 3, *spatial)) * scale)
    hi = lo + torch.tensor(rng.exponential(size=lo.shape) * rng.choice([0.0, 0.1, 1.0, 5.0]))
    ok = max_pool.valid(spatial, attrs, lo)
    r = max_pool.relax(max_pool.windows(lo, attrs), max_pool.windows(hi, attrs), ok)
    x = lo + (hi - lo) * torch.rand(20, *lo.shape, dtype=torch.float64)
    w = max_pool.windows(x.reshape(-1, *lo.shape[1:]), attrs).reshape(20, *r.lower.shape)
    y = torch.where(ok, w, -math.inf).max(dim=-2).values
    low = (r.lower * w).sum(-2)
    up = (r.upper * w).sum(-2) + r.upper_const
    assert torch.all(low <= y + 1e-12) and torch.all(y <= up + 1e-12)
    assert torch.all((r.lower * ~ok).sum(-2) == 0) and torch.all((r.upper * ~ok).sum(-2) == 0)


def test_max_pool_rules_exact_window_and_first_indices() -> None:
    ok = torch.ones(3, 1, dtype=torch.bool)
    # x_1 in [1, 5] dominates x_0 in [1, 1] and x_2 in [0, 1]: exact, y = x_1
    r = max_pool.relax(torch.tensor([1.0, 1.0, 0.0]).reshape(1, 1, 3, 1),
                       torch.tensor([1.0, 5.0, 1.0]).reshape(1, 1, 3, 1),
                       ok)
    assert r.lower.flatten().tolist() == [0, 1, 0] and r.upper.flatten().tolist() == [0, 1, 0]
    assert r.upper_const.item() == 0
    # overlapping: lower is the first largest l, upper the constant max u
    r = max_pool.relax(torch.tensor([0.0, 2.0, 2.0]).reshape(1, 1, 3, 1),
                       torch.tensor([3.0, 4.0, 2.5]).reshape(1, 1, 3, 1),
                       ok)
    assert r.lower.flatten().tolist() == [0, 1, 0] and r.upper.flatten().tolist() == [0, 0, 0]
    assert r.upper_const.item() == 4.0
    # padded entries never count: a window with one real entry is exact
    r = max_pool.relax(torch.tensor([0.0, -1.0]).reshape(1, 1, 2, 1), torch.tensor([9.0, 1.0]).reshape(1, 1, 2, 1),
                       torch.tensor([[False], [True]]))
    assert r.lower.flatten().tolist() == [0, 1] and r.upper.flatten().tolist() == [0, 1]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([0.1, 3.0, 100.0, 1000.0]), st.integers(2, 6))
def test_softmax_bounds_enclose_softmax(seed: int, scale: float, k: int) -> None:
    rng = np.random.default_rng(seed)
    lo = torch.tensor(rng.normal(size=(4, k)) * scale)
    hi = lo + torch.tensor(rng.exponential(size=(4, k)) * rng.choice([0.0, 0.5, scale]))
    b_lo, b_hi = softmax.bounds(lo, hi, 1)
    assert not torch.isnan(b_lo).any() and not torch.isnan(b_hi).any()
    z = lo + (hi - lo) * torch.rand(200, 4, k, dtype=torch.float64)
    y = torch.softmax(z, dim=-1)
    assert torch.all(b_lo <= y + 1e-12) and torch.all(y <= b_hi + 1e-12)


def test_softmax_bounds_at_infinite_ends() -> None:
    lo = torch.tensor([[-math.inf, 0.0, 1.0]], dtype=torch.float64)
    hi = torch.tensor([[math.inf, 0.5, 1.0]], dtype=torch.float64)
    b_lo, b_hi = softmax.bounds(lo, hi, 1)
    assert b_lo.tolist() == [[0.0, 0.0, 0.0]]
    assert b_hi[0, 0].item() == 1.0 and 0 < b_hi[0, 1].item() < 1
