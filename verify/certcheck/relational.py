"""Checking the certificates of templated two-copy properties (``monotone``, ``fair``,
``lipschitz``): the proof kind ``jacobian``.

The template comes from the spec file (read here, not from the certificate), the network
from the model file (:mod:`verify.certcheck.dag_network`).  The proof is a split tree of
the template's region over input coordinates (the ``input-split`` tree layout: node 0 is
the region, node ``i`` the ``side`` half of ``parent[i]`` cut at ``value[i]`` along
``dim[i]``), every leaf listed as a closure.  For each leaf the checker computes, with
rigorous rounding:

1. bounds of every value on the leaf's box (:class:`verify.certcheck.dag_bounds.DagBounder`:
   the intermediate bounds of docs/relaxations.md);
2. interval bounds on the Jacobian columns of the template's features, forward: unit
   vectors at the input; a linear operation through its positive and negative parts
   (errors bounded by ``gamma(n)`` times the sums of magnitudes, so that a product of
   exact zeros stays exactly zero); a relu or leaky relu by its gate (1 where the
   pre-activation's lower bound is > 0, 0 (alpha) where its upper bound is < 0, the hull
   otherwise); sigmoid and tanh by enclosures of their derivative's range on the
   pre-activation interval; a max-pool output by the hull of its window's columns;
3. the template's claim on the box: ``monotone``: the output's derivative in the feature
   is >= 0 (<= 0 when decreasing); ``fair``: ``sum_{j in S} max |d y_o / d x_j| (u_j - l_j)
   <= tolerance`` with ``[l_j, u_j]`` the region's range of feature ``j`` (the tree must not
   split a sensitive feature); ``lipschitz``: ``sum_j max |d y_o / d x_j| <= L`` for every
   output named.

Why that proves the template: the region is a box, so the segment between two of its
points lies in it, and the network is Lipschitz, so ``y(x') - y(x)`` is the integral of
the gradient along the segment; every generalised gradient on a leaf lies in its bounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from verify.certcheck.dag_bounds import DagBounder, DomainBounds, _enclose, conv_adjoint, conv_forward
from verify.certcheck.dag_network import Conv, DagNetwork, Dense, Diag, Elementwise, Gather, MaxPool, Sum
from verify.certcheck.encoding import decode_array
from verify.certcheck.rigorous import TINY, U, down, gamma, up

Interval = tuple[np.ndarray, np.ndarray]


class RelationalClaimFailed(Exception):
    """A claim of a relational proof does not hold (the message says which)."""


def _dot_interval(lo: np.ndarray, hi: np.ndarray, apply: Any, Wp: np.ndarray, Wn: np.ndarray, terms: int) -> Interval:
    """``[lo, hi]`` through the linear map with non-negative part ``Wp`` and non-positive part ``Wn``
    (``apply(x, W)``), rigorously: ends widened by ``gamma(terms)`` times the sums of magnitudes, where
    those are exactly 0 nothing is widened (a sum of exact zeros is exactly zero)."""
    new_lo = apply(lo, Wp) + apply(hi, Wn)
    new_hi = apply(hi, Wp) + apply(lo, Wn)
    # each end's error is bounded by the magnitudes of the products that make it up
    mag_lo = apply(np.abs(lo), Wp) - apply(np.abs(hi), Wn)
    mag_hi = apply(np.abs(hi), Wp) - apply(np.abs(lo), Wn)
    g = gamma(terms + 1)
    out_lo = np.where(mag_lo > 0, down(new_lo - (up(g * mag_lo) + TINY)), new_lo)
    out_hi = np.where(mag_hi > 0, up(new_hi + (up(g * mag_hi) + TINY)), new_hi)
    return out_lo, out_hi


def _sum_rounded(a: np.ndarray) -> np.ndarray:
    """The rounding of a sum of two floats is at most ``U |result|`` (exact when it is 0)."""
    return 2 * U * np.abs(a)


def _scale(lo: np.ndarray, hi: np.ndarray, a: np.ndarray, b: np.ndarray, exact: bool) -> Interval:
    """``[a, b] * [lo, hi]`` elementwise (``a <= b`` broadcast over the columns)."""
    c = np.stack([a * lo, a * hi, b * lo, b * hi])
    new_lo, new_hi = c.min(axis=0), c.max(axis=0)
    if not exact:
        widen_lo = np.where(new_lo != 0, 2 * U * np.abs(new_lo) + TINY, 0.0)
        widen_hi = np.where(new_hi != 0, 2 * U * np.abs(new_hi) + TINY, 0.0)
        new_lo, new_hi = new_lo - widen_lo, new_hi + widen_hi
        # a product a*x that underflowed to 0 from a nonzero x: widen by TINY too
        new_lo = np.where((new_lo == 0) & ((lo != 0) | (hi != 0)), -TINY, new_lo)
        new_hi = np.where((new_hi == 0) & ((lo != 0) | (hi != 0)), TINY, new_hi)
    return new_lo, new_hi


def _derivative_range(fn: str, l: np.ndarray, u: np.ndarray) -> Interval:
    """An enclosure of ``{f'(z) : l <= z <= u}`` for sigmoid or tanh (largest at 0, smaller away from it)."""
    _, _, dl_lo, dl_hi = _enclose(fn, l)
    _, _, du_lo, du_hi = _enclose(fn, u)
    _, _, d0_lo, d0_hi = _enclose(fn, np.zeros_like(l))
    low = np.minimum(dl_lo, du_lo)
    high = np.where((l <= 0) & (u >= 0), d0_hi, np.maximum(dl_hi, du_hi))
    return np.maximum(low, 0.0), high


def jacobian_intervals(net: DagNetwork, st: DomainBounds, features: list[int]) -> Interval:
    """Rigorous bounds ``[N, n_outputs, J]`` on ``d y / d x_j`` (``j`` in ``features``) over the boxes of ``st``."""
    N, J = st.n, len(features)
    t0 = np.zeros((N, J, net.n_inputs))
    t0[:, np.arange(J), features] = 1.0
    tangent: dict[int, Interval] = {0: (t0, t0.copy())}
    for op in net.ops:
        ins = [tangent[v] for v in op.inputs]
        if isinstance(op, Dense):
            (lo, hi) = ins[0]
            m, k = op.W.shape
            flat = (N * J * op.lead, k)

            def apply(x: np.ndarray, W: np.ndarray, flat: tuple[int, int] = flat) -> np.ndarray:
                return x.reshape(flat) @ W.T

            W = op.W.astype(np.float64)
            out_lo, out_hi = _dot_interval(lo, hi, apply, np.maximum(W, 0), np.minimum(W, 0), k)
            out = (out_lo.reshape(N, J, -1), out_hi.reshape(N, J, -1))
        elif isinstance(op, Conv):
            lo, hi = ins[0]
            fn = conv_adjoint if op.transposed else conv_forward
            K = op.kernel.astype(np.float64)
            terms = int(np.prod(op.kernel.shape[1:])) * (op.kernel.shape[0] if op.transposed else 1)

            def apply(x: np.ndarray, W: np.ndarray, op: Conv = op, fn: Any = fn) -> np.ndarray:
                return fn(op, x.reshape(N * J, -1), W)

            out_lo, out_hi = _dot_interval(lo, hi, apply, np.maximum(K, 0), np.minimum(K, 0), terms)
            out = (out_lo.reshape(N, J, -1), out_hi.reshape(N, J, -1))
        elif isinstance(op, Diag):
            lo, hi = ins[0]
            a, b = op.s - op.s_err, op.s + op.s_err
            out = _scale(lo, hi, np.broadcast_to(a, lo.shape), np.broadcast_to(b, lo.shape), exact=False)
        elif isinstance(op, Gather):
            lcat = np.concatenate([t[0] for t in ins], axis=2)
            ucat = np.concatenate([t[1] for t in ins], axis=2)
            ok = op.idx >= 0
            safe = np.where(ok, op.idx, 0)
            out = (np.where(ok, lcat[:, :, safe], 0.0), np.where(ok, ucat[:, :, safe], 0.0))  # a constant: no tangent
        elif isinstance(op, Sum):
            lo = hi = None
            for (tl, tu), s in zip(ins, op.signs):
                tl, tu = (tl, tu) if s > 0 else (-tu, -tl)
                if lo is None:
                    lo, hi = tl, tu
                else:
                    lo, hi = lo + tl, hi + tu
                    lo, hi = lo - _sum_rounded(lo), hi + _sum_rounded(hi)
            assert lo is not None and hi is not None
            out = (lo, hi)
        elif isinstance(op, Elementwise):
            lo, hi = ins[0]
            z = op.inputs[0]
            l, u = st.lo[z][:, None, :], st.hi[z][:, None, :]
            if op.fn in ("relu", "leaky_relu"):
                low = 0.0 if op.fn == "relu" else float(op.alpha)
                a = np.where(l > 0, 1.0, low) * np.ones_like(lo)
                b = np.where(u < 0, low, 1.0) * np.ones_like(hi)
                a, b = np.minimum(a, b), np.maximum(a, b)
                out = _scale(lo, hi, a, b, exact=op.fn == "relu")
            else:
                a, b = _derivative_range(op.fn, l, u)
                out = _scale(lo, hi, np.broadcast_to(a, lo.shape), np.broadcast_to(b, hi.shape), exact=False)
        elif isinstance(op, MaxPool):
            lo, hi = ins[0]
            win = op.win
            ok = win >= 0
            safe = np.where(ok, win, 0)
            wl = np.where(ok, lo[:, :, safe], np.inf)
            wu = np.where(ok, hi[:, :, safe], -np.inf)
            out = (wl.min(axis=3), wu.max(axis=3))
        else:
            raise RelationalClaimFailed(f"model: the {op.KIND} operation has no derivative bounds in the checker")
        tangent[op.output] = out
    lo, hi = tangent[net.output]
    return lo.transpose(0, 2, 1), hi.transpose(0, 2, 1)


def template_value(template: Any, lo: np.ndarray, hi: np.ndarray) -> tuple[float, bool]:
    """For one box (``[n_outputs, J]`` Jacobian bounds): the template's quantity, rounded the safe way,
    and whether it proves the template there."""
    kind = template.KIND
    if kind == "monotone":
        o = template.output
        value = float(lo[o, 0]) if template.increasing else float(-hi[o, 0])
        return value, value >= 0.0
    mag = np.maximum(np.abs(lo), np.abs(hi))
    if kind == "fair":
        S = list(template.sensitive)
        widths = up(template.region.upper[S] - template.region.lower[S])
        row = np.where(mag[template.output] == 0, 0.0, up(mag[template.output] * widths))  # 0 * w is exact
        return _sum_up(row), _sum_up(row) <= template.tolerance
    outputs = range(lo.shape[0]) if template.output is None else [template.output]
    total = max(_sum_up(mag[o]) for o in outputs)
    return total, total <= template.L


def _sum_up(v: np.ndarray) -> float:
    """An upper bound on the exact sum of non-negative floats (exactly 0 when they all are)."""
    total = float(v.sum())
    return 0.0 if total == 0.0 else float(up(total * (1 + gamma(v.size))))


def features_of(template: Any, n_inputs: int) -> list[int]:
    if template.KIND == "monotone":
        return [template.feature]
    if template.KIND == "fair":
        return list(template.sensitive)
    return list(range(n_inputs))


def check_jacobian_proof(net: DagNetwork, template: Any, proof: dict[str, Any], boxes: Any, where: str) -> int:
    """Check a ``jacobian`` proof (see the module docstring); ``boxes(tree)`` rebuilds the split tree's boxes
    from the region (the checker's tree rules) and returns ``(lo, hi, leaves)``.  Returns the claims checked."""
    if template.KIND not in ("monotone", "fair", "lipschitz"):
        raise RelationalClaimFailed(f"{where}: a jacobian proof does not prove a {template.KIND} template")
    body = proof["jacobian"]
    lo, hi, leaves, dims = boxes(body["tree"], template.region.lower, template.region.upper)
    if template.KIND == "fair" and any(int(d) in template.sensitive for d in dims):
        raise RelationalClaimFailed(f"{where}: the tree splits a sensitive feature (each leaf must keep its "
                                    "whole range)")
    closed = decode_array(body["closures"]["node"], f"{where}: closures.node").astype(np.int64)
    if sorted(closed.tolist()) != sorted(int(v) for v in leaves):
        raise RelationalClaimFailed(f"{where}: the closures are not exactly the tree's leaves")
    features = features_of(template, net.n_inputs)
    bounder = DagBounder(net)
    chunk = 64
    for start in range(0, len(leaves), chunk):
        nodes = np.asarray(leaves[start:start + chunk], dtype=np.int64)
        st = bounder.bounds(lo[nodes], hi[nodes])
        if st.failed.any():
            raise RelationalClaimFailed(f"{where}: node {int(nodes[np.argmax(st.failed)])}: the bounds are not finite")
        jl, ju = jacobian_intervals(net, st, features)
        for k, node in enumerate(nodes):
            if st.empty[k]:
                continue
            value, ok = template_value(template, jl[k], ju[k])
            if not ok:
                raise RelationalClaimFailed(f"{where}: leaf {int(node)}: the {template.KIND} bound {value:.9g} "
                                            "does not prove the claim")
    return len(leaves)
