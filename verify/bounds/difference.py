"""Interval bounds on ``f(x) - g(x)`` for two networks of the same structure (differential bounds).

A retrained, pruned or quantised copy ``g`` of a model ``f`` has the same graph with other
weights.  Bounding the product ``f - g`` by relaxing each copy on its own loses the
relation between them: on ACAS Xu's property-1 region the two copies' CROWN bounds of
``f - g`` for a network and its float16-rounded weights span 1783, for a true difference
below 1e-4.  Tracking the difference itself (the idea of ReluDiff, Paulsen et al. 2020,
here with intervals) keeps it small: with ``in_g`` the interval of ``g``'s input of an op
and ``Delta`` that of ``f``'s input minus ``g``'s,

* a linear op ``L`` with weights ``W_f``, ``W_g``: ``Delta' = L_f(Delta) + L_{W_f - W_g}(in_g)
  + (b_f - b_g)`` (both as positive and negative parts, the op's structure kept);
* ReLU: ``Delta`` where both pre-activations are surely positive, 0 where both are surely
  negative, otherwise ``[min(0, Delta_lo), max(0, Delta_hi)]`` (ReLU is monotone and
  1-Lipschitz); LeakyReLU the same with slopes in ``[alpha, 1]``;
* sigmoid, tanh: ``Delta`` times the range of the derivative over both pre-activations
  (mean value theorem); max-pool: the hull of the window's differences; sums: interval sums.

``g``'s intervals come from an interval pass whose pre-activations are intersected with
:class:`verify.bounds.dag.DagBounder`'s CROWN bounds; ``f``'s pre-activation is ``g``'s
plus ``Delta``.  Rounding is covered as in :mod:`verify.bounds.jacobian` (each linear op's
ends widened by a bound on the float64 error of its sums).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from verify.bounds.dag import DagBounder
from verify.bounds.jacobian import _UNIT, _apply, _derivative_range, _fan_in, _gamma, _scale
from verify.ir.graph import Graph, Node
from verify.numerics import decision_threshold

Tensor = torch.Tensor
Interval = tuple[Tensor, Tensor]

#: The attribute that holds each weighted op's weights and its constant term.
_WEIGHTS = {"linear": ("W", "b"), "conv": ("W", "b"), "affine": ("scale", "shift")}
_COPYING = ("reshape", "transpose", "slice", "pad", "avg_pool")
SUPPORTED = frozenset({*_WEIGHTS, *_COPYING, "concat", "add", "sub", "relu", "leaky_relu", "sigmoid", "tanh",
                       "max_pool"})


def same_structure(f: Graph, g: Graph) -> str | None:
    """None when ``g`` is ``f`` with other weights (same ops, wiring, shapes, other attributes); else why not."""
    if len(f.nodes) != len(g.nodes) or f.input_shape != g.input_shape:
        return "the graphs differ in size"
    rename = {g.input.name: f.input.name}
    for a, b in zip(f.nodes, g.nodes):
        if a.op != b.op or a.op not in SUPPORTED:
            return f"node {b.name!r} ({b.op}) has no counterpart or no difference bound"
        if tuple(rename.get(v, "?") for v in b.inputs) != a.inputs:
            return f"node {b.name!r} is wired differently"
        if f.values[a.output].shape != g.values[b.output].shape:
            return f"node {b.name!r} has another shape"
        weights = _WEIGHTS.get(a.op, ())
        for key in set(a.attrs) | set(b.attrs):
            if key in weights:
                x, y = a.attrs.get(key), b.attrs.get(key)
                if key == weights[0] and ((x is None) != (y is None) or (
                        x is not None and np.shape(x) != np.shape(y))):
                    return f"node {b.name!r}: {key} differs in shape"
                continue
            if not _equal(a.attrs.get(key), b.attrs.get(key)):
                return f"node {b.name!r}: attribute {key!r} differs"
        rename[b.output] = a.output
    return None


def _equal(x: Any, y: Any) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return x is not None and y is not None and np.array_equal(np.asarray(x), np.asarray(y))
    return bool(x == y)


def _interval_linear(node: Node, t: Interval, attrs: dict[str, Any], key: str | None) -> Interval:
    """``L(t)`` for a linear op with ``attrs`` (its constant term included), as an interval."""
    lo, hi = t
    if key is not None and attrs.get(key) is not None:
        W = np.asarray(attrs[key], dtype=np.float64)
        pos, neg = {**attrs, key: np.maximum(W, 0.0)}, {**attrs, key: np.minimum(W, 0.0)}
        const = _WEIGHTS[node.op][1]
        pos_nc, neg_nc = {**pos, const: None}, {**neg, const: None}
        c = attrs.get(const)
        new_lo = _apply(node, lo, pos_nc) + _apply(node, hi, neg_nc)
        new_hi = _apply(node, hi, pos_nc) + _apply(node, lo, neg_nc)
        err = _apply(node, torch.maximum(lo.abs(), hi.abs()), {**attrs, key: np.abs(W), const: None})
        if c is not None:
            shape = new_lo.shape
            cc = torch.as_tensor(np.asarray(c, dtype=np.float64))
            if node.op == "conv":
                cc = cc.reshape(1, 1, -1, *([1] * (len(shape) - 3)))
            new_lo, new_hi = new_lo + cc, new_hi + cc
            err = err + cc.abs()
    else:
        new_lo, new_hi = _apply(node, lo, attrs), _apply(node, hi, attrs)
        err = _apply(node, torch.maximum(lo.abs(), hi.abs()), {**attrs, "value": 0.0} if node.op == "pad" else attrs)
        err = err.abs()
    g = _gamma(_fan_in(node))
    return new_lo - g * err, new_hi + g * err


def _plain(node: Node, attrs: dict[str, Any]) -> dict[str, Any]:
    """``attrs`` without the constant term (and padding with 0): the op's linear part."""
    if node.op in _WEIGHTS:
        return {**attrs, _WEIGHTS[node.op][1]: None}
    if node.op == "pad":
        return {**attrs, "value": 0.0}
    return attrs


def difference_bounds(f: Graph, g: Graph, lower: Tensor, upper: Tensor,
                      bounder: DagBounder | None = None) -> Interval:
    """Bounds ``[B, n_outputs]`` on ``f(x) - g(x)`` over each box ``[B, n_inputs]`` (``g`` of the same
    structure as ``f``: :func:`same_structure`)."""
    why = same_structure(f, g)
    if why is not None:
        raise ValueError(f"difference bounds need two graphs of the same structure: {why}")
    lower = torch.as_tensor(lower, dtype=torch.float64).reshape(lower.shape[0], -1)
    upper = torch.as_tensor(upper, dtype=torch.float64).reshape(upper.shape[0], -1)
    B = lower.shape[0]
    bounder = bounder or DagBounder(g)
    pre = bounder.bound(lower, upper, torch.eye(g.n_outputs, dtype=torch.float64), method="crown").intermediate or {}
    shape_in = (B, 1, *g.input_shape)
    val: dict[str, Interval] = {g.input.name: (lower.reshape(shape_in), upper.reshape(shape_in))}
    zero = torch.zeros(shape_in, dtype=torch.float64)
    delta: dict[str, Interval] = {g.input.name: (zero, zero.clone())}
    with torch.no_grad():
        for a, b in zip(f.nodes, g.nodes):
            vin = [val[v] for v in b.inputs]
            din = [delta[v] for v in b.inputs]
            if b.op in _WEIGHTS or b.op in _COPYING:
                key = _WEIGHTS.get(b.op, (None, None))[0]
                out_g = _interval_linear(b, vin[0], b.attrs, key)
                d = _interval_linear(a, din[0], _plain(a, a.attrs), key)
                if key is not None and a.attrs.get(key) is not None:
                    const = _WEIGHTS[b.op][1]
                    dW = np.asarray(a.attrs[key], np.float64) - np.asarray(b.attrs[key], np.float64)
                    cf, cg = a.attrs.get(const), b.attrs.get(const)
                    dc = None if cf is None and cg is None else \
                        np.asarray(0.0 if cf is None else cf, np.float64) - np.asarray(0.0 if cg is None else cg,
                                                                                       np.float64)
                    w = _interval_linear(b, vin[0], {**b.attrs, key: dW, const: dc}, key)
                    d = (d[0] + w[0], d[1] + w[1])
                    d = (d[0] - 2 * _UNIT * d[0].abs(), d[1] + 2 * _UNIT * d[1].abs())
            elif b.op == "concat":
                axis = int(b.attrs["axis"]) + 2
                out_g = (torch.cat([t[0] for t in vin], axis), torch.cat([t[1] for t in vin], axis))
                d = (torch.cat([t[0] for t in din], axis), torch.cat([t[1] for t in din], axis))
            elif b.op in ("add", "sub"):
                (p, q), (r, s) = vin
                (dp, dq), (dr, ds) = din
                if b.op == "add":
                    out_g, d = (p + r, q + s), (dp + dr, dq + ds)
                else:
                    out_g, d = (p - s, q - r), (dp - ds, dq - dr)
                out_g = (out_g[0] - 2 * _UNIT * out_g[0].abs(), out_g[1] + 2 * _UNIT * out_g[1].abs())
                d = (d[0] - 2 * _UNIT * d[0].abs(), d[1] + 2 * _UNIT * d[1].abs())
            elif b.op == "max_pool":
                (p, q), (dp, dq) = vin[0], din[0]
                out_g = (_apply(b, p, b.attrs), _apply(b, q, b.attrs))
                d = (-_apply(b, -dp, b.attrs), _apply(b, dq, b.attrs))
            else:  # relu, leaky_relu, sigmoid, tanh
                p, q = vin[0]
                name = b.inputs[0]
                if name in pre:
                    cl, cu = (t.reshape(p.shape) for t in pre[name])
                    p, q = torch.maximum(p, cl), torch.minimum(q, cu)
                dp, dq = din[0]
                tol = decision_threshold(float(torch.nan_to_num(torch.maximum(p.abs(), q.abs())).max()))
                fp, fq = p + dp, q + dq  # f's pre-activation
                if b.op in ("relu", "leaky_relu"):
                    alpha = 0.0 if b.op == "relu" else float(b.attrs["alpha"])
                    out_g = (torch.where(p > 0, p, alpha * p), torch.where(q > 0, q, alpha * q))
                    active = (p > tol) & (fp > tol)
                    inactive = (q < -tol) & (fq < -tol)
                    one, slope = torch.ones_like(p), torch.full_like(p, alpha)
                    lo_s = torch.where(active, one, slope)
                    hi_s = torch.where(inactive, slope, one)
                    d = _scale((dp, dq), lo_s, hi_s, exact=b.op == "relu")
                else:
                    fn = torch.tanh if b.op == "tanh" else torch.sigmoid
                    out_g = (fn(p) - 1e-15, fn(q) + 1e-15)
                    lo_d, hi_d = _derivative_range(b.op, torch.minimum(p, fp) - tol, torch.maximum(q, fq) + tol)
                    d = _scale((dp, dq), lo_d, hi_d, exact=False)
            val[b.output] = out_g
            delta[b.output] = d
    lo, hi = delta[g.output]
    return lo.reshape(B, -1), hi.reshape(B, -1)
