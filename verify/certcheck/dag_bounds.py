"""Rigorous bounds on a :class:`~verify.certcheck.dag_network.DagNetwork` (numpy, float64).

The rules of docs/relaxations.md, redone with proven error bounds.  "Intermediate bounds": for every
input of a non-linear operation, in topological order, (1) interval bounds from the already tightened
bounds of its inputs, (2) intersected with the proof node's clamp and then with CROWN bounds
(back-substitution to the graph input, concretised on the box), (3) the clamp again.  CROWN rows
(:attr:`DagBounder.crown_rows`) are computed: none where the interval bounds are exact (the graph
input and the values the docs name, one single-input affine operation straight from the input; also
such an operation after per-coordinate ones of the input, e.g. a normalisation, where the interval
image is just as exact); for a value whose every reader (linear ones included) is a relu or
leaky_relu, only the rows of its neurons unstable after (1) and the clamp, per domain and per neuron,
and of those within :data:`UNSTABLE_SLACK` of unstable (where the producer's float bounds may call
unstable what ours call stable); for every other value, every row.  Wherever the checker computes a
row that the producer does not, its bound can only be tighter.  Rigorous bounds that cross prove that
no input of the box satisfies the node's splits (the domain is empty, so every claim about it holds):
the docs' emptiness rule (a clamp's ends crossing, or the clamped interval empty by more than
``1e-12 (1 + |bounds|)``) is a case of that.  The final bound (:meth:`DagBounder.lower`) is the
larger of CROWN's and the interval bound: at least the producer's plain CROWN bound.  Split
multipliers (docs, "Split multipliers (beta)"): with :class:`SplitTerms`, ``-beta s`` is added to a
split neuron's coefficient and ``+beta s value`` to the constant where the final pass reaches its
value (rounding bounded like every other step).

Checker-side choices that can only help (the producer's float bounds may sit on the other side of a
case boundary than ours): for sigmoid / tanh, an interval end within ``1e-9 (1 + max(|l|, |u|))`` of 0
also gets the lines of the neighbouring case where they are proven valid on ``[l, u]``; for max-pool,
a window whose largest lower bound ties with the others' upper bounds within ``1e-9 (1 + |u|)`` is
bounded by ``y <= x_j + gap`` (exactly the docs' rule when the gap is 0).

Back-substitution keeps ``(lam, const, err)`` per domain and row with the invariant
``row value >= sum_v lam_v . v + const - err`` for every point of the domain, ``v`` the
values on the current frontier of the pass.  A linear operation ``y = A x + b`` turns
``lam_y`` into ``fl(A^T lam_y)``, whose error is at most ``gamma(k) |A|^T |lam_y|``, so
``err`` grows by ``gamma(k) |lam_y| . (|A| |x|max)``; ``|A| |x|max`` is computed once per
operation in the forward pass.  Joins (a value used twice) add the rounding of the sum.

Every relaxation line ``a z + b`` is a pair of floats for which the line, in exact
arithmetic, is proven to lie below (above) the function on ``[l, u]``: chords by
``a z_i + b >= f(z_i)`` at both ends (valid above a convex function, below a concave one),
tangents by widening the intercept by ``|a - f'(p)| max |z - p|`` plus the rounding of
``f(p) - a p``.  ``f`` and ``f'`` are enclosed with outward rounding from numpy's ``exp``,
which is *assumed* to be within 4 ulp of the exact exponential (glibc's and numpy's SIMD
``exp`` are within 1 ulp; the enclosures widen by 8 ulp).  That assumption (for sigmoid,
tanh and softmax only) is the only one beyond IEEE-754 round-to-nearest arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from verify.certcheck.bounds import _concretize
from verify.certcheck.dag_network import Conv, DagNetwork, Dense, Diag, Elementwise, Gather, MaxPool, Op, Softmax, Sum
from verify.certcheck.rigorous import TINY, U, affine_interval, diag_interval, down, gamma, magnitude, up

#: Elements per back-substitution array (rows are processed in chunks of about this size).
BUDGET = 2**22
#: Intervals narrower than this get constant sigmoid / tanh relaxations (docs/relaxations.md).
NARROW = 1e-9
#: Neurons with ``l < tau`` and ``u > -tau``, ``tau = UNSTABLE_SLACK (1 + max(|l|, |u|))``, get CROWN rows where
#: docs/relaxations.md asks for the unstable ones only: a superset of the producer's float decision.
UNSTABLE_SLACK = 1e-9
#: Relative widening of numpy's exp: 8 ulp (16 u), twice the assumed 4 ulp error.
EXP_WIDEN = 16 * U


# -- convolutions -------------------------------------------------------------------------
def _padded_shape(op: Conv) -> tuple[int, ...]:
    return tuple(s + b + e for s, b, e in zip(op.in_shape[1:], op.pads, op.pads_end))


def _offsets(op: Conv) -> list[tuple[tuple[int, ...], tuple[slice, ...]]]:
    """Each kernel offset and the slice of the padded input (spatial axes) it reads."""
    out = []
    osp = op.out_shape[1:]
    for t in np.ndindex(*op.kernel.shape[2:]):
        sl = tuple(slice(t[i] * op.dilations[i], t[i] * op.dilations[i] + op.strides[i] * (osp[i] - 1) + 1,
                         op.strides[i]) for i in range(len(t)))
        out.append((t, sl))
    return out


def _inner(op: Conv) -> tuple[slice, ...]:
    """The input inside the padded array (layout ``[batch, channels, *spatial]``)."""
    return (slice(None), slice(None), *[slice(b, b + s) for b, s in zip(op.pads, op.in_shape[1:])])


def conv_forward(op: Conv, X: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The convolution (no bias) of ``X`` ``[B, prod(in_shape)]`` -> ``[B, prod(out_shape)]``: one
    matrix product over the channels per kernel offset."""
    B = X.shape[0]
    cin, cout, g = op.in_shape[0], op.out_shape[0], op.groups
    xp = np.zeros((B, cin, *_padded_shape(op)))
    xp[_inner(op)] = X.reshape(B, *op.in_shape)
    out = np.zeros((B, cout, int(np.prod(op.out_shape[1:]))))
    ci, co = cin // g, cout // g
    for t, sl in _offsets(op):
        patch = np.ascontiguousarray(xp[(slice(None), slice(None), *sl)]).reshape(B, cin, -1)
        k = kernel[(slice(None), slice(None), *t)]  # [cout, cin / g]
        if g == 1:
            out += np.matmul(k, patch)
        elif ci == 1:
            out += np.repeat(patch, co, axis=1) * k[:, :1]
        else:
            for j in range(g):
                out[:, j * co:(j + 1) * co] += np.matmul(k[j * co:(j + 1) * co], patch[:, j * ci:(j + 1) * ci])
    return out.reshape(B, -1)


def conv_adjoint(op: Conv, L: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The adjoint of :func:`conv_forward`: ``[B, prod(out_shape)]`` -> ``[B, prod(in_shape)]``: one
    matrix product over the output channels for all kernel offsets, then one shifted sum per offset."""
    B = L.shape[0]
    cin, cout, g = op.in_shape[0], op.out_shape[0], op.groups
    osp = op.out_shape[1:]
    K = int(np.prod(op.kernel.shape[2:]))
    lam = L.reshape(B, cout, -1)  # [B, cout, P]
    ci, co = cin // g, cout // g
    km = kernel.reshape(cout, ci, K)
    if g == 1:
        part = np.matmul(km.transpose(2, 1, 0).reshape(K * cin, cout), lam).reshape(B, K, cin, -1)
    elif ci == 1:
        part = np.einsum("gok,bgop->bkgp", km[:, 0, :].reshape(g, co, K), lam.reshape(B, g, co, -1))
    else:
        part = np.concatenate([np.matmul(km[j * co:(j + 1) * co].transpose(2, 1, 0).reshape(K * ci, co),
                                         lam[:, j * co:(j + 1) * co]).reshape(B, K, ci, -1) for j in range(g)],
                              axis=2)
    xp = np.zeros((B, cin, *_padded_shape(op)))
    for j, (_, sl) in enumerate(_offsets(op)):
        xp[(slice(None), slice(None), *sl)] += part[:, j].reshape(B, cin, *osp)
    return np.ascontiguousarray(xp[_inner(op)]).reshape(B, -1)


def _conv_terms(op: Conv) -> tuple[int, int]:
    """Terms of one output entry of the convolution, and of one entry of its adjoint."""
    k = int(np.prod(op.kernel.shape[2:]))
    return op.in_shape[0] // op.groups * k, op.out_shape[0] // op.groups * k


# -- enclosures of exp, sigmoid, tanh -------------------------------------------------------
def exp_nonpositive(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Enclosure of ``exp(t)`` for floats ``t <= 0`` (numpy's exp within 4 ulp assumed)."""
    with np.errstate(under="ignore"):
        e = np.exp(np.minimum(t, 0.0))
        lo = np.maximum(down(e * (1 - EXP_WIDEN)) - TINY, 0.0)
        hi = np.minimum(up(e * (1 + EXP_WIDEN)) + TINY, 1.0)
    return lo, hi


def _g(e_lo: np.ndarray, e_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Enclosure of ``e / (1 + e)^2`` (increasing on ``[0, 1]``) for ``e`` in ``[e_lo, e_hi]``."""
    lo = down(e_lo / up(up(1 + e_lo) * up(1 + e_lo)))
    hi = up(e_hi / down(down(1 + e_hi) * down(1 + e_hi)))
    return np.clip(lo, 0.0, 0.25), np.clip(hi, 0.0, 0.25)


def sigmoid_enclosure(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(s_lo, s_hi, ds_lo, ds_hi)``: enclosures of ``sigmoid(x)`` and its derivative at floats ``x``."""
    e_lo, e_hi = exp_nonpositive(-np.abs(x))  # exp(-|x|)
    # x >= 0: 1 / (1 + e), decreasing in e; x < 0: e / (1 + e), increasing in e
    p_lo, p_hi = down(1.0 / up(1 + e_hi)), up(1.0 / down(1 + e_lo))
    n_lo, n_hi = down(e_lo / up(1 + e_lo)), up(e_hi / down(1 + e_hi))
    s_lo = np.where(x >= 0, p_lo, n_lo)
    s_hi = np.where(x >= 0, p_hi, n_hi)
    d_lo, d_hi = _g(e_lo, e_hi)
    return np.clip(s_lo, 0.0, 1.0), np.clip(s_hi, 0.0, 1.0), d_lo, d_hi


def tanh_enclosure(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(t_lo, t_hi, dt_lo, dt_hi)``: enclosures of ``tanh(x)`` and its derivative at floats ``x``."""
    with np.errstate(over="ignore"):
        e_lo, e_hi = exp_nonpositive(-2.0 * np.abs(x))  # exp(-2|x|); 2|x| is exact (or inf)
    h_lo = np.maximum(down(down(1 - e_hi) / up(1 + e_hi)), 0.0)  # (1 - e) / (1 + e), decreasing in e
    h_hi = np.minimum(up(up(1 - e_lo) / down(1 + e_lo)), 1.0)
    t_lo = np.where(x >= 0, h_lo, -h_hi)
    t_hi = np.where(x >= 0, h_hi, -h_lo)
    d_lo, d_hi = _g(e_lo, e_hi)
    return t_lo, t_hi, np.minimum(4 * d_lo, 1.0), np.minimum(4 * d_hi, 1.0)  # 1 - tanh^2 = 4 e / (1 + e)^2


def _enclose(fn: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return sigmoid_enclosure(x) if fn == "sigmoid" else tanh_enclosure(x)


# -- relaxation lines ---------------------------------------------------------------------
def _line_above(a: np.ndarray, z1: np.ndarray, f1_hi: np.ndarray, z2: np.ndarray, f2_hi: np.ndarray) -> np.ndarray:
    """An intercept ``b`` with ``a z_i + b >= f(z_i)`` at both points (exactly, given ``f(z_i) <= f_i_hi``):
    the line lies above a convex ``f`` between them."""
    return np.maximum(up(f1_hi - down(a * z1)), up(f2_hi - down(a * z2)))


def _line_below(a: np.ndarray, z1: np.ndarray, f1_lo: np.ndarray, z2: np.ndarray, f2_lo: np.ndarray) -> np.ndarray:
    """An intercept ``b`` with ``a z_i + b <= f(z_i)`` at both points: below a concave ``f`` between them."""
    return np.minimum(down(f1_lo - up(a * z1)), down(f2_lo - up(a * z2)))


def _tangent(fn: str, p: np.ndarray, l: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a, b_low, b_high)``: ``a z + b_low`` lies below the exact tangent of ``f`` at ``p`` on
    ``[l, u]``, ``a z + b_high`` above it (the slope's error times ``max |z - p|`` is absorbed)."""
    f_lo, f_hi, d_lo, d_hi = _enclose(fn, p)
    a = (d_lo + d_hi) / 2
    delta = up(np.maximum(up(a - d_lo), up(d_hi - a)))  # >= |a - f'(p)|
    w = up(np.maximum(up(u - p), up(p - l)))  # >= |z - p| on [l, u]
    dw = up(delta * w)
    return a, down(down(f_lo - up(a * p)) - dw), up(up(f_hi - down(a * p)) + dw)


def elementwise_lines(op: Elementwise, l: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(a_l, b_l, a_u, b_u)`` with ``a_l z + b_l <= f(z) <= a_u z + b_u`` on ``[l, u]`` (proven)."""
    zero, one = np.zeros_like(l), np.ones_like(l)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if op.fn in ("relu", "leaky_relu"):
            alpha = op.alpha
            inactive = u <= 0  # first, as in the docs: l = u = 0 (a neuron clamped to 0) is inactive
            active = (l >= 0) & ~inactive
            unstable = ~active & ~inactive
            width = np.where(unstable, u - l, 1.0)
            fl_ = np.where(unstable, l, 0.0)
            fu_ = np.where(unstable, u, 0.0)
            a = np.where(unstable, (fu_ - alpha * fl_) / width, 0.0)
            b = _line_above(a, fl_, up(alpha * fl_), fu_, fu_)  # the chord through (l, alpha l) and (u, u)
            a_u = np.where(active, one, np.where(inactive, alpha, a))
            b_u = np.where(unstable, b, zero)
            a_l = np.where(active | (unstable & (u >= -l)), one, alpha)
            return a_l, zero, a_u, b_u
        fn = op.fn
        sl_lo, sl_hi, _, _ = _enclose(fn, l)
        su_lo, su_hi, _, _ = _enclose(fn, u)
        narrow = (u - l) < NARROW
        pos = ~narrow & (l >= 0)
        neg = ~narrow & (u <= 0)
        mixed = ~narrow & ~pos & ~neg
        width = np.where(narrow, 1.0, u - l)
        a_c = np.where(narrow, 0.0, ((su_lo + su_hi) / 2 - (sl_lo + sl_hi) / 2) / width)
        m = (l + u) / 2
        a_m, blo_m, bhi_m = _tangent(fn, m, l, u)
        a_tl, blo_tl, _ = _tangent(fn, l, l, u)
        a_tu, _, bhi_tu = _tangent(fn, u, l, u)
        # mixed: the tangent at l as the lower line if it is below f(u) at u (proven), else the constant f(l)
        ok_l = up(up(a_tl * u) + blo_tl) <= su_lo
        ok_u = down(down(a_tu * l) + bhi_tu) >= sl_hi
        a_l = np.where(pos, a_c, np.where(neg, a_m, np.where(mixed & ok_l, a_tl, 0.0)))
        b_l = np.where(pos, _line_below(a_c, l, sl_lo, u, su_lo),
                       np.where(neg, blo_m, np.where(mixed & ok_l, blo_tl, sl_lo)))
        a_u = np.where(neg, a_c, np.where(pos, a_m, np.where(mixed & ok_u, a_tu, 0.0)))
        b_u = np.where(neg, _line_above(a_c, l, sl_hi, u, su_hi),
                       np.where(pos, bhi_m, np.where(mixed & ok_u, bhi_tu, su_hi)))
        # l (or u) within rounding of 0: the producer's float bound may be >= 0 (<= 0), so use the lines of
        # that case where they are proven valid on [l, u]: f lies above its tangent at 0 for z <= 0 (convex
        # side) and below it for z >= 0 (concave side); a line below f(0), f(u) and the tangent at l lies
        # below f on [l, u], a line above f(l), f(0) and the tangent at u above it
        tau = 1e-9 * (1 + np.maximum(np.abs(l), np.abs(u)))
        near_pos = mixed & (l >= -tau) & (u > tau)
        near_neg = mixed & (u <= tau) & (l < -tau)
        f0 = 0.5 if fn == "sigmoid" else 0.0
        t0_lo = down(0.5 + 0.25 * l) if fn == "sigmoid" else l  # the tangent at 0, at l
        t0_hi = up(0.5 + 0.25 * u) if fn == "sigmoid" else u  # and at u
        b_np = np.minimum(np.minimum(down(su_lo - up(a_c * u)), f0), down(t0_lo - up(a_c * l)))
        b_nn = np.maximum(np.maximum(up(sl_hi - down(a_c * l)), f0), up(t0_hi - down(a_c * u)))
        up_np = near_pos & (down(down(a_m * l) + bhi_m) >= sl_hi)  # the tangent at m > 0 is above f(l)
        low_nn = near_neg & (up(up(a_m * u) + blo_m) <= su_lo)  # the tangent at m < 0 is below f(u)
        a_l = np.where(near_pos, a_c, np.where(low_nn, a_m, a_l))
        b_l = np.where(near_pos, b_np, np.where(low_nn, blo_m, b_l))
        a_u = np.where(near_neg, a_c, np.where(up_np, a_m, a_u))
        b_u = np.where(near_neg, b_nn, np.where(up_np, bhi_m, b_u))
    return a_l, b_l, a_u, b_u


def softmax_bounds(op: Softmax, l: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigorous constant bounds of each softmax output (docs/relaxations.md), ``[N, n]``."""
    G = op.groups
    lg, ug = l[:, G], u[:, G]  # [N, groups, k]
    k = G.shape[1]
    M = ug.max(axis=-1, keepdims=True)
    # exp(l_i - M) from below and exp(u_j - M) from above; the differences (<= 0) rounded outward
    el_lo = exp_nonpositive(down(lg - M))[0]
    eu_hi = exp_nonpositive(up(ug - M))[1]
    others = 1.0 - np.eye(k)
    slack = 1 + 2 * gamma(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        b_hi = up((eu_hi @ others) * slack)  # >= sum over j != i of exp(u_j - M)
        d_lo = down((el_lo @ others) / slack)  # <= sum over j != i of exp(l_j - M)
        low = down(el_lo / up(el_lo + b_hi))  # A / (A + B): increasing in A, decreasing in B
        high = up(eu_hi / down(eu_hi + d_lo))
    low = np.where(np.isfinite(low), np.clip(low, 0.0, 1.0), 0.0)
    high = np.where(np.isfinite(high), np.clip(high, 0.0, 1.0), 1.0)
    if k == 1:
        low, high = np.ones_like(low), np.ones_like(high)
    lo, hi = np.zeros_like(l), np.ones_like(u)
    lo[:, G] = low
    hi[:, G] = high
    return lo, hi


# -- the bounds of a batch of domains -----------------------------------------------------
@dataclass
class DomainBounds:
    """Rigorous bounds of every value of the network on ``N`` domains."""

    box_lo: np.ndarray  # [N, n0] (clamped where the input itself is split)
    box_hi: np.ndarray
    lo: dict[int, np.ndarray] = field(default_factory=dict)  # value id -> [N, n]
    hi: dict[int, np.ndarray] = field(default_factory=dict)
    mag: dict[int, np.ndarray] = field(default_factory=dict)
    lines: dict[int, tuple[np.ndarray, ...]] = field(default_factory=dict)  # op index -> relaxation
    absfwd: dict[int, list[np.ndarray]] = field(default_factory=dict)  # op index -> |A_i| |x_i|max per input
    empty: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # [N]
    failed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # [N]: non-finite bounds

    @property
    def n(self) -> int:
        return int(self.box_lo.shape[0])


@dataclass
class SplitTerms:
    """The split multipliers of a final pass (docs/relaxations.md, "Split multipliers (beta)").

    ``terms``: value id -> the neuron splits on it, as arrays ``(domain, element, column, sign, value)``
    (``sign`` +1 for ``v >= value``, -1 for ``v <= value``); ``betas``: ``[N, m, k]``, finite and >= 0,
    the multiplier of split ``column`` of each domain for each of the ``m`` rows."""

    terms: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    betas: np.ndarray

    @classmethod
    def from_paths(cls, paths: list[list[tuple[int, int, float, int]]], betas: np.ndarray) -> SplitTerms:
        """From each domain's neuron splits ``(value id, element, value, side)`` in root-to-node order
        (column ``i`` of ``betas`` is split ``i``)."""
        if not (np.all(np.isfinite(betas)) and np.all(betas >= 0)):
            raise ValueError("split multipliers must be finite and >= 0")
        per: dict[int, list[tuple[int, int, int, float, float]]] = {}
        for j, path in enumerate(paths):
            if len(path) > betas.shape[2]:
                raise ValueError("fewer split multipliers than splits")
            for i, (vid, e, v, side) in enumerate(path):
                per.setdefault(vid, []).append((j, e, i, 1.0 if side == 1 else -1.0, v))
        terms = {vid: (np.array([t[0] for t in items], dtype=np.int64), np.array([t[1] for t in items], dtype=np.int64),
                       np.array([t[2] for t in items], dtype=np.int64), np.array([t[3] for t in items]),
                       np.array([t[4] for t in items], dtype=np.float64))
                 for vid, items in per.items()}
        return cls(terms, np.asarray(betas, dtype=np.float64))


class DagBounder:
    """Rigorous interval and CROWN bounds on one network, for batches of domains."""

    def __init__(self, net: DagNetwork, tick: Callable[[], None] | None = None) -> None:
        self.net = net
        self.tick = tick  # called between chunks of back-substitution rows (a deadline may stop the work)
        self.abs_w: dict[int, np.ndarray] = {}
        self.scatter: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        for k, op in enumerate(net.ops):
            if isinstance(op, Dense):
                self.abs_w[k] = np.abs(op.W)
            elif isinstance(op, Conv):
                self.abs_w[k] = np.abs(op.kernel)
            elif isinstance(op, Gather):
                self.scatter[k] = _scatter_layers(op.idx)
        self.bounded = net.bounded
        readers: dict[int, list[Op]] = {}
        for op in net.ops:
            for v in set(op.inputs):
                readers.setdefault(v, []).append(op)
        #: which neurons of each input of a non-linear operation get CROWN rows (docs/relaxations.md,
        #: "Intermediate bounds"): "none" where the interval bounds are exact (the graph input, one
        #: single-input affine operation of a box, ...), "unstable" where every reader of the value is a
        #: relu or leaky_relu (their relaxation of a stable neuron is exact), "all" otherwise
        self.crown_rows: dict[int, str] = {}
        for vid in self.bounded:
            relu_only = vid != net.output and all(isinstance(op, Elementwise) and op.fn in ("relu", "leaky_relu")
                                                  for op in readers.get(vid, []))
            self.crown_rows[vid] = "none" if net.exact[vid] else "unstable" if relu_only else "all"

    # -- forward ---------------------------------------------------------------------
    def bounds(self, lo: np.ndarray, hi: np.ndarray,
               clamps: dict[int, tuple[np.ndarray, np.ndarray]] | None = None) -> DomainBounds:
        """Bounds of every value on the boxes ``[lo, hi]`` (``[N, n0]``) with the clamps (per
        value id, ``[N, n]`` lower and upper limits; -inf / inf where there are none)."""
        clamps = clamps or {}
        N = lo.shape[0]
        lo, hi = lo.astype(np.float64), hi.astype(np.float64)
        st = DomainBounds(lo, hi, empty=np.zeros(N, dtype=bool), failed=np.zeros(N, dtype=bool))
        if 0 in clamps:
            lo, hi = np.maximum(lo, clamps[0][0]), np.minimum(hi, clamps[0][1])
        st.empty |= np.any(lo > hi, axis=1)
        lo = np.where(st.empty[:, None], np.minimum(lo, hi), lo)
        hi = np.where(st.empty[:, None], lo, hi)
        st.box_lo, st.box_hi = lo, hi
        self._set(st, 0, lo, hi)
        with np.errstate(over="ignore", invalid="ignore"):
            for k, op in enumerate(self.net.ops):
                if op.LINEAR:
                    l, u = self._interval(k, op, st)
                else:
                    l, u = self._nonlinear(k, op, st)
                self._set(st, op.output, l, u)
                if op.output in self.bounded:
                    self._finalize(st, op.output, clamps.get(op.output))
        return st

    def _set(self, st: DomainBounds, vid: int, l: np.ndarray, u: np.ndarray) -> None:
        bad = ~(np.isfinite(l).all(axis=1) & np.isfinite(u).all(axis=1)) & ~st.empty
        if bad.any():
            st.failed |= bad
            l = np.where(bad[:, None] | ~np.isfinite(l), 0.0, l)
            u = np.where(bad[:, None] | ~np.isfinite(u), 0.0, u)
        st.lo[vid], st.hi[vid] = l, u
        st.mag[vid] = magnitude(l, u)

    def _finalize(self, st: DomainBounds, vid: int, clamp: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Steps 1-3 of docs/relaxations.md, "Intermediate bounds", for an input of a non-linear operation:
        its interval (already computed from the tightened bounds of its inputs), the clamp, CROWN for the
        neurons :attr:`crown_rows` names, the clamp again; rigorous bounds that cross prove the domain empty."""
        l, u = st.lo[vid], st.hi[vid]  # 1. the interval bounds
        if clamp is not None:  # 2. the clamp, ...
            l, u = np.maximum(l, clamp[0]), np.minimum(u, clamp[1])
        mode = self.crown_rows.get(vid, "all")
        if mode != "none":  # ... then CROWN, for the neurons that need it (none on empty domains)
            live = ~st.empty[:, None]
            if mode == "unstable":  # unstable, or within rounding of it (the producer's float bounds may be)
                tau = UNSTABLE_SLACK * (1 + magnitude(l, u))
                need = (l < tau) & (u > -tau) & live
            else:
                need = np.broadcast_to(live, l.shape)
            cl, cu = self.crown(st, vid, need)
            l, u = np.maximum(l, cl), np.minimum(u, cu)
        if clamp is not None:  # 3. the clamp again
            l, u = np.maximum(l, clamp[0]), np.minimum(u, clamp[1])
        st.empty |= np.any(l > u, axis=1) & ~st.failed  # bounds after a failure prove nothing
        u = np.where(st.empty[:, None], l, u)  # an empty domain: any finite numbers do
        self._set(st, vid, l, u)

    def _interval(self, k: int, op: Op, st: DomainBounds) -> tuple[np.ndarray, np.ndarray]:
        N = st.n
        if isinstance(op, Dense):
            x = op.inputs[0]
            m, kk = op.W.shape
            l3, u3 = st.lo[x].reshape(N, op.lead, kk), st.hi[x].reshape(N, op.lead, kk)
            l, u = affine_interval(op.W, op.b.reshape(op.lead, m), l3, u3)
            st.absfwd[k] = [up((st.mag[x].reshape(N, op.lead, kk) @ self.abs_w[k].T).reshape(N, -1)
                               * (1 + gamma(kk))) + TINY]
            return l.reshape(N, -1), u.reshape(N, -1)
        if isinstance(op, Conv):
            x = op.inputs[0]
            c = (st.lo[x] + st.hi[x]) / 2
            r = up(np.maximum(st.hi[x] - c, c - st.lo[x]))
            fwd, adj = _conv_terms(op)
            apply = conv_adjoint if op.transposed else conv_forward
            terms = adj if op.transposed else fwd
            mid = apply(op, c, op.kernel) + op.bias
            both = apply(op, np.concatenate([r, np.abs(c), st.mag[x]]), self.abs_w[k])
            rad, cabs, amag = both[:N], both[N:2 * N], both[2 * N:]
            err = gamma(terms + 1) * (cabs + np.abs(op.bias) + rad) + TINY
            st.absfwd[k] = [up(amag * (1 + gamma(terms))) + TINY]
            return down(mid - rad - err), up(mid + rad + err)
        if isinstance(op, Diag):
            x = op.inputs[0]
            return diag_interval(op.s, op.s_err, op.c, op.c_err, st.lo[x], st.hi[x])
        if isinstance(op, Gather):
            lcat = np.concatenate([st.lo[v] for v in op.inputs], axis=1)
            ucat = np.concatenate([st.hi[v] for v in op.inputs], axis=1)
            mcat = np.concatenate([st.mag[v] for v in op.inputs], axis=1)
            ok = op.idx >= 0
            safe = np.where(ok, op.idx, 0)
            st.absfwd[k] = [np.where(ok, mcat[:, safe], 0.0)]
            return np.where(ok, lcat[:, safe], op.fill), np.where(ok, ucat[:, safe], op.fill)
        if isinstance(op, Sum):
            l = u = None
            for v, s in zip(op.inputs, op.signs):
                tl, tu = (st.lo[v], st.hi[v]) if s > 0 else (-st.hi[v], -st.lo[v])
                l = tl if l is None else down(l + tl)
                u = tu if u is None else up(u + tu)
            assert l is not None and u is not None
            return l, u
        raise AssertionError(f"unknown linear operation {op.KIND}")

    def _nonlinear(self, k: int, op: Op, st: DomainBounds) -> tuple[np.ndarray, np.ndarray]:
        z = op.inputs[0]
        l, u = st.lo[z], st.hi[z]
        if isinstance(op, Elementwise):
            lines = elementwise_lines(op, l, u)
            st.lines[k] = lines
            if op.fn == "relu":
                return np.maximum(l, 0.0), np.maximum(u, 0.0)
            if op.fn == "leaky_relu":
                return np.where(l < 0, down(op.alpha * l), l), np.where(u < 0, up(op.alpha * u), u)
            f_lo = _enclose(op.fn, l)[0]
            f_hi = _enclose(op.fn, u)[1]
            return f_lo, f_hi
        if isinstance(op, MaxPool):
            ok = op.win >= 0
            safe = np.where(ok, op.win, 0)
            wl = np.where(ok, l[:, safe], -np.inf)  # [N, n_out, K]
            wu = np.where(ok, u[:, safe], -np.inf)
            K = op.win.shape[1]
            # exact where some j has l_j >= max_{i != j} u_i (the first such j)
            top2 = -np.sort(-wu, axis=-1)[..., :2] if K > 1 else np.concatenate([wu, np.full_like(wu, -np.inf)], -1)
            first, second = top2[..., 0], top2[..., 1]
            others = np.where(wu == first[..., None], second[..., None], first[..., None])  # max over i != j
            # a tie for the largest u: max over i != j is that same value
            ties = (wu == first[..., None]).sum(-1) > 1
            others = np.where(ties[..., None], first[..., None], others)
            strict = ok & (wl >= others)
            # within rounding of exact (the producer's float bounds may tie): y <= x_j + (max_{i != j} u_i - l_j)
            near = ok & (wl >= others - 1e-9 * (1 + np.abs(np.where(ok, others, 0.0))))
            dominant = np.where(strict.any(-1, keepdims=True), strict, near)
            exact = dominant.any(-1)
            j_exact = np.argmax(dominant, axis=-1)
            j_low = np.argmax(wl, axis=-1)  # the first index of the largest l
            j = np.where(exact, j_exact, j_low)[..., None]
            sel = np.take_along_axis(np.broadcast_to(safe, wl.shape), j, -1)[..., 0]
            gap = np.take_along_axis(others, j, -1)[..., 0] - np.take_along_axis(wl, j, -1)[..., 0]
            delta = np.where(exact, up(np.maximum(gap, 0.0)), 0.0)
            ucap = wu.max(-1)
            st.lines[k] = (sel, ~exact, ucap, delta)
            return wl.max(-1), ucap
        if isinstance(op, Softmax):
            lo, hi = softmax_bounds(op, l, u)
            st.lines[k] = (lo, hi)
            return lo, hi
        raise AssertionError(f"unknown non-linear operation {op.KIND}")

    # -- back-substitution -----------------------------------------------------------
    def crown(self, st: DomainBounds, vid: int, need: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """CROWN lower and upper bounds of value ``vid`` (``[N, n]`` each): of every neuron, or with
        ``need`` (``[N, n]``) of the needed ones only (-inf and inf elsewhere).  Each domain's needed
        neurons are packed into rows ``+e_i``, ``-e_i`` (padded to the batch's largest count), so the
        back-substitution costs what the needed rows cost."""
        n = self.net.sizes[vid]
        N = st.n
        lower = np.full((N, n), -np.inf)
        upper = np.full((N, n), np.inf)
        if need is None:
            need = np.ones((N, n), dtype=bool)
        counts = need.sum(axis=1)
        R = int(counts.max()) if N else 0
        if R == 0:
            return lower, upper
        order = np.argsort(~need, axis=1, kind="stable")[:, :R]  # each domain's needed neurons first
        valid = np.arange(R)[None, :] < counts[:, None]
        width = max(self.net.sizes[: vid + 1])
        chunk = max(1, BUDGET // (N * width * 2))
        jj = np.arange(N)[:, None]
        for start in range(0, R, chunk):
            if self.tick is not None:
                self.tick()
            sel, ok = order[:, start:start + chunk], valid[:, start:start + chunk]
            c = sel.shape[1]
            rr = np.arange(c)[None, :]
            rows = np.zeros((N, 2 * c, n))
            rows[jj, rr, sel] = np.where(ok, 1.0, 0.0)  # sel: distinct neurons per domain (a permutation's part)
            rows[jj, c + rr, sel] = np.where(ok, -1.0, 0.0)
            got = self._backsub(st, vid, rows)
            lower[jj, sel] = np.where(ok, got[:, :c], -np.inf)
            upper[jj, sel] = np.where(ok, -got[:, c:], np.inf)
        return lower, upper

    def lower(self, st: DomainBounds, C: np.ndarray, splits: SplitTerms | None = None) -> np.ndarray:
        """Rigorous lower bounds of ``C y`` (``C``: ``[m, n_out]``) on each domain, ``[N, m]``: the
        larger of CROWN's and the interval bound (at least the producer's plain CROWN bound, on the same
        intermediate bounds); -inf on domains whose bounds are not finite.  ``splits``: CROWN bounds
        ``C_r y - sum_i beta_{r,i} s_i (v_i - value_i)`` instead, with the betas ``[N, m, k]``: still a
        lower bound of ``C_r y`` on a domain satisfying its splits, as every term is >= 0 there."""
        N = st.n
        out = self.net.output
        rows = np.broadcast_to(C.astype(np.float64), (N, *C.shape))
        if splits is not None and splits.betas.shape[:2] != (N, C.shape[0]):
            raise ValueError(f"split multipliers of shape {splits.betas.shape} for {N} domains and {C.shape[0]} rows")
        crown = np.empty((N, C.shape[0]))
        width = max(self.net.sizes)
        chunk = max(1, BUDGET // (N * width))
        for start in range(0, C.shape[0], chunk):
            part = None if splits is None else (splits.terms, splits.betas[:, start:start + chunk])
            crown[:, start:start + chunk] = self._backsub(st, out, np.array(rows[:, start:start + chunk]), part)
        zeros = np.zeros((N, C.shape[0]))
        interval = _concretize(np.array(rows), zeros, zeros, st.lo[out], st.hi[out])
        return np.where(st.failed[:, None], -np.inf, np.maximum(crown, interval))

    def _backsub(self, st: DomainBounds, target: int, rows: np.ndarray,
                 splits: tuple[dict[int, tuple[np.ndarray, ...]], np.ndarray] | None = None) -> np.ndarray:
        """Rigorous lower bounds of ``rows . v_target`` (``rows``: ``[N, R, n]``), ``[N, R]``; with
        ``splits`` (the terms and betas ``[N, R, k]`` of :class:`SplitTerms`), of
        ``rows . v_target - sum_i beta_i s_i (v_i - value_i)``: the terms of value ``v`` are added when
        the pass reaches ``v`` (all of its coefficients gathered), as the producer does."""
        net = self.net
        N, R = rows.shape[:2]
        frontier: dict[int, np.ndarray] = {target: rows}
        const = np.zeros((N, R))
        err = np.zeros((N, R))
        last = net.producer.get(target, -1)
        for k in range(last, -1, -1):
            op = net.ops[k]
            lam = frontier.pop(op.output, None)
            if lam is None:
                continue
            if splits is not None and op.output in splits[0]:
                lam, const, err = _split_terms(st, op.output, lam, const, err, splits)
            parts, const, err = self._back(k, op, lam, const, err, st)
            for vid, contrib in parts:
                if vid in frontier:
                    total = frontier[vid] + contrib
                    err = err + 2 * U * _rows_dot(np.abs(total), st.mag[vid])
                    frontier[vid] = total
                else:
                    frontier[vid] = contrib
        lam0 = frontier.pop(0, None)
        assert not frontier, "every value but the input is eliminated"
        if lam0 is not None and splits is not None and 0 in splits[0]:
            lam0, const, err = _split_terms(st, 0, lam0, const, err, splits)
        if lam0 is None:
            lam0 = np.zeros((N, R, net.sizes[0]))
        return _concretize(lam0, const, err + TINY, st.box_lo, st.box_hi)

    def _back(self, k: int, op: Op, lam: np.ndarray, const: np.ndarray, err: np.ndarray,
              st: DomainBounds) -> tuple[list[tuple[int, np.ndarray]], np.ndarray, np.ndarray]:
        """One operation backwards: the coefficients of its inputs, and the updated const and err."""
        N, R = lam.shape[:2]
        absl = np.abs(lam)
        if isinstance(op, Dense):
            m, kk = op.W.shape
            new = (lam.reshape(N, R, op.lead, m) @ op.W).reshape(N, R, op.lead * kk)
            const = const + lam @ op.b
            err = err + gamma(lam.shape[-1]) * (absl @ np.abs(op.b)) + gamma(m) * _rows_dot(absl, st.absfwd[k][0])
            return [(op.inputs[0], new)], const, err + 2 * U * np.abs(const)
        if isinstance(op, Conv):
            fwd, adj = _conv_terms(op)
            flat = lam.reshape(N * R, -1)
            new = conv_forward(op, flat, op.kernel) if op.transposed else conv_adjoint(op, flat, op.kernel)
            terms = fwd if op.transposed else adj
            const = const + lam @ op.bias
            err = err + gamma(lam.shape[-1]) * (absl @ np.abs(op.bias)) + \
                gamma(terms) * _rows_dot(absl, st.absfwd[k][0])
            return [(op.inputs[0], new.reshape(N, R, -1))], const, err + 2 * U * np.abs(const)
        if isinstance(op, Diag):
            x = op.inputs[0]
            const = const + lam @ op.c
            coef = op.c_err[None, :] + (op.s_err + 2 * U * np.abs(op.s))[None, :] * st.mag[x]
            err = err + gamma(op.c.shape[0]) * (absl @ np.abs(op.c)) + _rows_dot(absl, coef)
            return [(x, lam * op.s)], const, err + 2 * U * np.abs(const)
        if isinstance(op, Gather):
            total = sum(self.net.sizes[v] for v in op.inputs)
            cat = np.zeros((N, R, total))
            for pos, src in self.scatter[k]:
                cat[:, :, src] += lam[:, :, pos]
            if np.any(op.fill != 0):
                const = const + lam @ op.fill
                err = err + gamma(op.fill.shape[0]) * (absl @ np.abs(op.fill)) + 2 * U * np.abs(const)
            if op.multiplicity > 1:
                err = err + gamma(op.multiplicity) * _rows_dot(absl, st.absfwd[k][0])
            parts, offset = [], 0
            for v in op.inputs:
                n = self.net.sizes[v]
                parts.append((v, cat[:, :, offset:offset + n]))
                offset += n
            return parts, const, err
        if isinstance(op, Sum):
            return [(v, lam if s > 0 else -lam) for v, s in zip(op.inputs, op.signs)], const, err
        if isinstance(op, Elementwise):
            z = op.inputs[0]
            a_l, b_l, a_u, b_u = st.lines[k]
            lp = np.maximum(lam, 0.0)
            ln = lam - lp  # exact: one of lp, ln is 0 in each entry
            new = lp * a_l[:, None, :] + ln * a_u[:, None, :]  # one rounded product per entry
            const = const + (_rows_dot(lp, b_l) + _rows_dot(ln, b_u))
            err = err + 2 * U * _rows_dot(np.abs(new), st.mag[z]) + \
                gamma(2 * lam.shape[-1]) * (_rows_dot(lp, np.abs(b_l)) - _rows_dot(ln, np.abs(b_u)))
            return [(z, new)], const, err + 2 * U * np.abs(const)
        if isinstance(op, MaxPool):
            z = op.inputs[0]
            sel, relaxed, ucap, delta = st.lines[k]
            n_in = self.net.sizes[z]
            # lower y >= x_sel; upper y <= x_sel + delta (exact: delta 0) or the constant ucap (relaxed)
            take = (lam >= 0) | ~relaxed[:, None, :]
            coef = np.where(take, lam, 0.0)
            shift = np.where(take, np.minimum(lam, 0.0) * delta[:, None, :], lam * ucap[:, None, :])
            flat = (np.arange(N * R).reshape(N, R, 1) * n_in + sel[:, None, :]).reshape(-1)
            new = np.bincount(flat, weights=coef.reshape(-1), minlength=N * R * n_in).reshape(N, R, n_in)
            const = const + shift.sum(-1)
            zmag = np.take_along_axis(st.mag[z], sel, axis=1)
            err = err + gamma(lam.shape[-1]) * np.abs(shift).sum(-1) + 2 * U * np.abs(const)
            if op.multiplicity > 1:
                err = err + gamma(op.multiplicity) * _rows_dot(np.abs(coef), zmag)
            return [(z, new)], const, err
        if isinstance(op, Softmax):
            lo, hi = st.lines[k]
            shift = lam * np.where(lam >= 0, lo[:, None, :], hi[:, None, :])
            const = const + shift.sum(-1)
            err = err + gamma(lam.shape[-1]) * np.abs(shift).sum(-1) + 2 * U * np.abs(const)
            return [], const, err
        raise AssertionError(f"unknown operation {op.KIND}")


def _split_terms(st: DomainBounds, vid: int, lam: np.ndarray, const: np.ndarray, err: np.ndarray,
                 splits: tuple[dict[int, tuple[np.ndarray, ...]], np.ndarray]) -> tuple[np.ndarray, ...]:
    """Add ``-beta s`` to the coefficient of each split element of value ``vid`` and ``+beta s value`` to the
    constant (per domain and row), keeping the invariant: each rounded sum is within ``2u`` of its float
    result, so ``err`` grows by ``2u |coefficient| |v|max`` and ``2u (|beta value| + |const|)``."""
    dom, elem, col, sign, val = splits[0][vid]
    betas = splits[1]
    lam, const, err = lam.copy(), const.copy(), err.copy()  # lam may be shared (a Sum's inputs)
    mag = st.mag[vid]
    for j, e, i, s, v in zip(dom.tolist(), elem.tolist(), col.tolist(), sign.tolist(), val.tolist()):
        bs = betas[j, :, i] * s  # exact: s is +-1
        if not np.any(bs):
            continue
        lam[j, :, e] = lam[j, :, e] - bs
        prod = bs * v
        const[j] = const[j] + prod
        err[j] = err[j] + 2 * U * (np.abs(lam[j, :, e]) * mag[j, e] + np.abs(prod) + np.abs(const[j]))
    return lam, const, err


def _rows_dot(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``sum_i a[n, r, i] * v[n, i]``, ``[N, R]``."""
    return np.matmul(a, v[:, :, None])[..., 0]


def _scatter_layers(idx: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The gather's positions split into layers in which every source index occurs once, as
    ``(output positions, source indices)``: the adjoint adds each layer with fancy indexing."""
    pos = np.nonzero(idx >= 0)[0]
    src = idx[pos]
    order = np.argsort(src, kind="stable")
    pos, src = pos[order], src[order]
    if src.size == 0:
        return []
    starts = np.r_[0, np.nonzero(np.diff(src))[0] + 1]
    rank = np.arange(src.size) - np.repeat(starts, np.diff(np.r_[starts, src.size]))
    return [(pos[rank == r], src[rank == r]) for r in range(int(rank.max()) + 1)]
