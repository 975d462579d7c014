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


def _gathered(ins: list[Interval], idx: np.ndarray, fill: Any) -> Interval:
    """A copy (``Gather``) of the concatenated inputs' intervals ``[N, J, n]``; ``fill`` where ``idx < 0``."""
    lcat = np.concatenate([t[0] for t in ins], axis=2)
    ucat = np.concatenate([t[1] for t in ins], axis=2)
    ok = idx >= 0
    safe = np.where(ok, idx, 0)
    return np.where(ok, lcat[:, :, safe], fill), np.where(ok, ucat[:, :, safe], fill)


def _signed_sum(ins: list[Interval], signs: tuple[float, ...]) -> Interval:
    """``sum_i s_i x_i`` of intervals, each addition's rounding bounded (exact zeros stay exact)."""
    lo = hi = None
    for (tl, tu), s in zip(ins, signs):
        tl, tu = (tl, tu) if s > 0 else (-tu, -tl)
        if lo is None:
            lo, hi = tl, tu
        else:
            lo, hi = lo + tl, hi + tu
            lo, hi = lo - _sum_rounded(lo), hi + _sum_rounded(hi)
    assert lo is not None and hi is not None
    return lo, hi


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
            out = _gathered(ins, op.idx, 0.0)  # a constant has no tangent
        elif isinstance(op, Sum):
            out = _signed_sum(ins, op.signs)
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


# -- two models of one structure (proof kind "difference") ------------------------------------------------
def same_structure(f: DagNetwork, g: DagNetwork) -> str | None:
    """None when ``g`` is ``f`` with other weights (operations, wiring and shapes equal); else why not."""
    if len(f.ops) != len(g.ops) or f.sizes != g.sizes or f.output != g.output:
        return "the two graphs differ in size"
    for k, (a, b) in enumerate(zip(f.ops, g.ops)):
        if type(a) is not type(b) or a.inputs != b.inputs or a.output != b.output:
            return f"operation {k} differs ({a.KIND} and {b.KIND})"
        if isinstance(a, Dense) and (a.W.shape != b.W.shape or a.lead != b.lead):
            return f"operation {k}: the dense layers differ in shape"
        if isinstance(a, Conv) and (a.kernel.shape != b.kernel.shape or a.in_shape != b.in_shape or
                                    a.out_shape != b.out_shape or a.strides != b.strides or a.pads != b.pads or
                                    a.pads_end != b.pads_end or a.dilations != b.dilations or
                                    a.groups != b.groups or a.transposed != b.transposed):
            return f"operation {k}: the convolutions differ in geometry"
        if isinstance(a, Gather) and not np.array_equal(a.idx, b.idx):
            return f"operation {k}: the copies differ"
        if isinstance(a, Sum) and a.signs != b.signs:
            return f"operation {k}: the sums differ"
        if isinstance(a, Elementwise) and (a.fn != b.fn or a.alpha != b.alpha):
            return f"operation {k}: the activations differ"
        if isinstance(a, MaxPool) and not np.array_equal(a.win, b.win):
            return f"operation {k}: the pooling windows differ"
        if not isinstance(a, (Dense, Conv, Diag, Gather, Sum, Elementwise, MaxPool)):
            return f"operation {k}: {a.KIND} has no difference bounds in the checker"
    return None


def _exact_difference(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a - b`` in float64 and a bound on its rounding error (0 where it is exact)."""
    d = a.astype(np.float64) - b.astype(np.float64)
    return d, np.where(d != 0, 2 * U * np.abs(d), 0.0)


def _widen(lo: np.ndarray, hi: np.ndarray, err: np.ndarray) -> Interval:
    return np.where(err > 0, down(lo - up(err)), lo), np.where(err > 0, up(hi + up(err)), hi)


def difference_intervals(f: DagNetwork, g: DagNetwork, st: DomainBounds) -> Interval:
    """Rigorous bounds ``[N, n_outputs]`` on ``f(x) - g(x)`` over the boxes of ``st`` (``g``'s bounds on them)."""
    N = st.n
    zero = np.zeros((N, 1, f.n_inputs))
    delta: dict[int, Interval] = {0: (zero, zero.copy())}
    for a, b in zip(f.ops, g.ops):
        ins = [delta[v] for v in b.inputs]
        if isinstance(b, Dense):
            m, k = b.W.shape
            flat = (N * b.lead, k)

            def apply(x: np.ndarray, W: np.ndarray, flat: tuple[int, int] = flat) -> np.ndarray:
                return x.reshape(flat) @ W.T

            lo, hi = ins[0]
            Wf = a.W.astype(np.float64)
            t_lo, t_hi = _dot_interval(lo, hi, apply, np.maximum(Wf, 0), np.minimum(Wf, 0), k)
            dW, dW_err = _exact_difference(a.W, b.W)
            x = b.inputs[0]
            xl, xh = st.lo[x][:, None, :], st.hi[x][:, None, :]
            w_lo, w_hi = _dot_interval(xl, xh, apply, np.maximum(dW, 0), np.minimum(dW, 0), k)
            w_err = apply(np.maximum(np.abs(xl), np.abs(xh)), dW_err) if np.any(dW_err) else 0.0
            db, db_err = _exact_difference(a.b, b.b)
            lo = t_lo.reshape(N, 1, -1) + w_lo.reshape(N, 1, -1) + db
            hi = t_hi.reshape(N, 1, -1) + w_hi.reshape(N, 1, -1) + db
            err = np.reshape(w_err, (N, 1, -1)) if np.ndim(w_err) else 0.0
            err = err + db_err + 4 * U * np.maximum(np.abs(lo), np.abs(hi))
            out = _widen(lo, hi, err)
        elif isinstance(b, Conv):
            fn = conv_adjoint if b.transposed else conv_forward
            terms = int(np.prod(b.kernel.shape[1:])) * (b.kernel.shape[0] if b.transposed else 1)

            def apply(x: np.ndarray, W: np.ndarray, op: Conv = b, fn: Any = fn) -> np.ndarray:
                return fn(op, x.reshape(N, -1), W)

            lo, hi = ins[0]
            Kf = a.kernel.astype(np.float64)
            t_lo, t_hi = _dot_interval(lo, hi, apply, np.maximum(Kf, 0), np.minimum(Kf, 0), terms)
            dK, dK_err = _exact_difference(a.kernel, b.kernel)
            x = b.inputs[0]
            xl, xh = st.lo[x], st.hi[x]
            w_lo, w_hi = _dot_interval(xl, xh, apply, np.maximum(dK, 0), np.minimum(dK, 0), terms)
            w_err = apply(np.maximum(np.abs(xl), np.abs(xh)), dK_err) if np.any(dK_err) else 0.0
            db, db_err = _exact_difference(a.bias, b.bias)
            lo = (t_lo + w_lo + db)[:, None, :]
            hi = (t_hi + w_hi + db)[:, None, :]
            err = (np.reshape(w_err, (N, 1, -1)) if np.ndim(w_err) else 0.0) + db_err
            out = _widen(lo, hi, err + 4 * U * np.maximum(np.abs(lo), np.abs(hi)))
        elif isinstance(b, Diag):  # s_f x_f + c_f - (s_g x_g + c_g) = s_f Delta + (s_f - s_g) x_g + (c_f - c_g)
            lo, hi = ins[0]
            s_lo, s_hi = np.broadcast_to(a.s - a.s_err, lo.shape), np.broadcast_to(a.s + a.s_err, lo.shape)
            t_lo, t_hi = _scale(lo, hi, s_lo, s_hi, exact=False)
            ds, ds_err = _exact_difference(a.s, b.s)
            x = b.inputs[0]
            xl, xh = st.lo[x][:, None, :], st.hi[x][:, None, :]
            w_lo, w_hi = _scale(xl, xh, np.broadcast_to(ds, xl.shape), np.broadcast_to(ds, xl.shape), exact=False)
            dc, dc_err = _exact_difference(a.c, b.c)
            lo, hi = t_lo + w_lo + dc, t_hi + w_hi + dc
            err = (ds_err + a.s_err + b.s_err) * np.maximum(np.abs(xl), np.abs(xh)) + dc_err + a.c_err + b.c_err
            out = _widen(lo, hi, err + 4 * U * np.maximum(np.abs(lo), np.abs(hi)))
        elif isinstance(b, Gather):
            dfill, dfill_err = _exact_difference(np.asarray(a.fill, np.float64), np.asarray(b.fill, np.float64))
            lo, hi = _gathered(ins, b.idx, dfill)
            out = _widen(lo, hi, np.where(b.idx >= 0, 0.0, dfill_err))
        elif isinstance(b, Sum):
            out = _signed_sum(ins, b.signs)
        elif isinstance(b, Elementwise):
            lo, hi = ins[0]
            z = b.inputs[0]
            l, u = st.lo[z][:, None, :], st.hi[z][:, None, :]
            fl, fu = down(l + lo), up(u + hi)  # f's pre-activation
            if b.fn in ("relu", "leaky_relu"):
                low = 0.0 if b.fn == "relu" else float(b.alpha)
                active = (l > 0) & (fl > 0)
                inactive = (u < 0) & (fu < 0)
                s_lo = np.where(active, 1.0, low) * np.ones_like(lo)
                s_hi = np.where(inactive, low, 1.0) * np.ones_like(hi)
                out = _scale(lo, hi, np.minimum(s_lo, s_hi), np.maximum(s_lo, s_hi), exact=b.fn == "relu")
            else:
                d_lo, d_hi = _derivative_range(b.fn, np.minimum(l, fl), np.maximum(u, fu))
                out = _scale(lo, hi, d_lo, d_hi, exact=False)
        elif isinstance(b, MaxPool):
            lo, hi = ins[0]
            ok = b.win >= 0
            safe = np.where(ok, b.win, 0)
            out = (np.where(ok, lo[:, :, safe], np.inf).min(axis=3), np.where(ok, hi[:, :, safe], -np.inf).max(axis=3))
        else:
            raise RelationalClaimFailed(f"model: the {b.KIND} operation has no difference bounds in the checker")
        delta[b.output] = out
    lo, hi = delta[g.output]
    return lo.reshape(N, -1), hi.reshape(N, -1)


def check_difference_proof(f: DagNetwork, g: DagNetwork, template: Any, proof: dict[str, Any], boxes: Any,
                           where: str) -> int:
    """Check a ``difference`` proof of an ``equivalent`` template: on every leaf of the split tree of the region,
    ``max_o |f(x)_o - g(x)_o| <= delta`` by :func:`difference_intervals`.  Returns the claims checked."""
    if template.KIND != "equivalent":
        raise RelationalClaimFailed(f"{where}: a difference proof does not prove a {template.KIND} template")
    why = same_structure(f, g)
    if why is not None:
        raise RelationalClaimFailed(f"{where}: the two models are not one structure ({why})")
    body = proof["difference"]
    lo, hi, leaves, _ = boxes(body["tree"], template.region.lower, template.region.upper)
    closed = decode_array(body["closures"]["node"], f"{where}: closures.node").astype(np.int64)
    if sorted(closed.tolist()) != sorted(int(v) for v in leaves):
        raise RelationalClaimFailed(f"{where}: the closures are not exactly the tree's leaves")
    outputs = list(range(f.n_outputs)) if template.output is None else [template.output]
    bounder = DagBounder(g)
    for start in range(0, len(leaves), 64):
        nodes = np.asarray(leaves[start:start + 64], dtype=np.int64)
        st = bounder.bounds(lo[nodes], hi[nodes])
        if st.failed.any():
            raise RelationalClaimFailed(f"{where}: node {int(nodes[np.argmax(st.failed)])}: the bounds are not finite")
        dl, du = difference_intervals(f, g, st)
        for k, node in enumerate(nodes):
            value = float(max(du[k, outputs].max(), -dl[k, outputs].min()))
            if not value <= template.delta:
                raise RelationalClaimFailed(f"{where}: leaf {int(node)}: |f - g| may reach {value:.9g} > delta "
                                            f"{template.delta:.9g}")
    return len(leaves)
