"""Interval bounds on the Jacobian of an IR network over a box (forward mode).

Relational properties of two copies of one network (monotonicity, fairness, a local
Lipschitz bound) compare ``f(x)`` with ``f(x')`` for nearby inputs.  Bounding the two
copies of a product network separately cannot prove them where ``x' = x``: there both
copies' relaxations leave a gap although the difference is exactly 0.  The derivative
can: for ``x, x'`` in a box, ``f_o(x') - f_o(x) = sum_j int_0^1 d_j f_o(x + t (x' - x))
(x'_j - x_j) dt`` (``f`` is Lipschitz, so this holds along every segment, and the box
contains the segment), so bounds ``[J_lo, J_hi]`` on every ``d_j f_o`` over the box
bound the difference.

The tangents ``d v / d x_j`` of every value are propagated as intervals: the input's are
unit vectors; a linear op maps an interval through its positive and negative parts
(``W+``, ``W-``, its structure kept: convolutions stay convolutions); a ReLU multiplies by
its gate, 1 where the pre-activation bound is above ``tol``, 0 where it is below
``-tol``, ``[0, 1]`` otherwise (LeakyReLU: ``alpha`` for 0); sigmoid and tanh by the range
of their derivative over the pre-activation interval; a max-pool output takes the hull
of its window's tangents.  Generalised gradients at kinks lie in these hulls, so the
bounds cover every one-sided derivative.

Rounding: each linear op's interval ends are widened by ``gamma * S``, where ``S`` is the
same op applied to the magnitudes (the sum of the absolute values of the products) and
``gamma`` a bound on the relative rounding error of a float64 sum of ``fan_in`` products
(doubled); a bound that is exactly 0 because every product is 0 stays 0, so a network
that ignores a feature gets ``[0, 0]`` for it.  The pre-activation bounds come from
:class:`verify.bounds.dag.DagBounder` (float64); ``tol`` (the decision threshold of
their magnitudes) covers their rounding.  No external library bounds Jacobians of ONNX
graphs this way (auto_LiRPA's Jacobian support needs its own module format); the ops
follow :mod:`verify.ir.ops`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from verify.bounds.dag import DagBounder
from verify.errors import ModelError
from verify.ir.graph import Graph, Node
from verify.ir.ops import run_node
from verify.numerics import decision_threshold

Tensor = torch.Tensor
Interval = tuple[Tensor, Tensor]

_UNIT = 2.0 ** -53
#: Linear ops with weights (split into positive and negative parts).
_WEIGHTED = {"linear": "W", "conv": "W", "conv_transpose": "W", "affine": "scale"}
#: Linear ops that only copy, average or pad (non-negative maps; constants dropped).
_COPYING = ("reshape", "transpose", "slice", "pad", "avg_pool")
#: Ops this module bounds.
SUPPORTED = frozenset({*_WEIGHTED, *_COPYING, "concat", "add", "sub", "relu", "leaky_relu", "sigmoid", "tanh",
                       "max_pool"})


def _gamma(fan_in: int) -> float:
    n = fan_in + 2
    return 2.0 * n * _UNIT / (1.0 - n * _UNIT)


def _fan_in(node: Node) -> int:
    key = _WEIGHTED.get(node.op)
    if node.op == "linear":
        return int(np.asarray(node.attrs["W"]).shape[1])
    if node.op in ("conv", "conv_transpose"):
        W = np.asarray(node.attrs["W"])
        return int(np.prod(W.shape[1:]) * (W.shape[0] if node.op == "conv_transpose" else 1))
    if key == "scale" or node.op in ("reshape", "transpose", "slice", "pad"):
        return 1
    if node.op == "avg_pool":
        return int(np.prod(node.attrs["kernel"]))
    return 1


def _apply(node: Node, x: Tensor, attrs: dict[str, Any]) -> Tensor:
    """The op's linear part on a batch of tangents ``[B, J, *shape]``."""
    B, J = x.shape[:2]
    y = run_node(node.op, [x.reshape(B * J, *x.shape[2:])], attrs)
    return y.reshape(B, J, *y.shape[1:])


def _linear(node: Node, t: Interval) -> Interval:
    lo, hi = t
    key = _WEIGHTED.get(node.op)
    if key is not None and node.attrs.get(key) is not None:
        W = np.asarray(node.attrs[key], dtype=np.float64)
        no_constant = {"shift": None} if node.op == "affine" else {"b": None}
        pos = {**node.attrs, key: np.maximum(W, 0.0), **no_constant}
        neg = {**node.attrs, key: np.minimum(W, 0.0), **no_constant}
        new_lo = _apply(node, lo, pos) + _apply(node, hi, neg)
        new_hi = _apply(node, hi, pos) + _apply(node, lo, neg)
        err_lo = _apply(node, lo.abs(), pos) - _apply(node, hi.abs(), neg)
        err_hi = _apply(node, hi.abs(), pos) - _apply(node, lo.abs(), neg)
    else:  # a copy, an average, padding (with 0: the padded constant has no tangent), a shift only
        attrs = {**node.attrs, "value": 0.0} if node.op == "pad" else node.attrs
        if node.op == "affine":
            attrs = {**node.attrs, "shift": None}
        new_lo, new_hi = _apply(node, lo, attrs), _apply(node, hi, attrs)
        err_lo, err_hi = _apply(node, lo.abs(), attrs), _apply(node, hi.abs(), attrs)
    g = _gamma(_fan_in(node))
    return new_lo - g * err_lo, new_hi + g * err_hi


def _scale(t: Interval, a: Tensor, b: Tensor, exact: bool) -> Interval:
    """``[a, b] * t`` elementwise (``a <= b``, shaped like one tangent ``[B, 1, *shape]``)."""
    lo, hi = t
    cands = torch.stack([a * lo, a * hi, b * lo, b * hi])
    new_lo, new_hi = cands.min(dim=0).values, cands.max(dim=0).values
    if not exact:
        new_lo = new_lo - 2 * _UNIT * new_lo.abs()
        new_hi = new_hi + 2 * _UNIT * new_hi.abs()
    return new_lo, new_hi


def _derivative_range(op: str, l: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """The range of ``sigmoid'`` or ``tanh'`` over ``[l, u]`` (unimodal, largest at 0), widened for rounding."""
    def d(z: Tensor) -> Tensor:
        if op == "tanh":
            return 1.0 - torch.tanh(z) ** 2
        s = torch.sigmoid(z)
        return s * (1.0 - s)

    at_l, at_u = d(l), d(u)
    low = torch.minimum(at_l, at_u)
    high = torch.where((l <= 0) & (u >= 0), d(torch.zeros_like(l)), torch.maximum(at_l, at_u))
    return torch.clamp(low * (1 - 1e-12) - 1e-300, min=0.0), high * (1 + 1e-12) + 1e-300


def jacobian_bounds(graph: Graph, lower: Tensor, upper: Tensor, features: list[int],
                    pre: dict[str, Interval] | None = None, bounder: DagBounder | None = None) -> Interval:
    """Bounds ``[B, n_outputs, len(features)]`` on ``d y_o / d x_j`` over each box ``[B, n_inputs]``
    (``features``: the input indices ``j``); ``pre``: the pre-activation bounds of the values the
    non-linear ops read (:attr:`DagResult.intermediate`), computed here with CROWN when None."""
    bad = sorted({n.op for n in graph.nodes} - SUPPORTED)
    if bad:
        raise ModelError(f"{graph.source or 'the model'}: derivative bounds (monotone, fair, lipschitz) do not "
                         f"support {', '.join(bad)} yet")
    lower = torch.as_tensor(lower, dtype=torch.float64).reshape(lower.shape[0], -1)
    upper = torch.as_tensor(upper, dtype=torch.float64).reshape(upper.shape[0], -1)
    B, J = lower.shape[0], len(features)
    if pre is None:
        bounder = bounder or DagBounder(graph)
        eye = torch.eye(graph.n_outputs, dtype=torch.float64)
        pre = bounder.bound(lower, upper, eye, method="crown").intermediate or {}
    t0 = torch.zeros(B, J, graph.n_inputs, dtype=torch.float64)
    t0[:, torch.arange(J), torch.as_tensor(features, dtype=torch.long)] = 1.0
    t0 = t0.reshape(B, J, *graph.input_shape)
    tangent: dict[str, Interval] = {graph.input.name: (t0, t0.clone())}
    with torch.no_grad():
        for node in graph.nodes:
            ins = [tangent[v] for v in node.inputs]
            if node.op in _WEIGHTED or node.op in _COPYING:
                out = _linear(node, ins[0])
            elif node.op == "concat":
                axis = int(node.attrs["axis"]) + 2
                out = (torch.cat([t[0] for t in ins], dim=axis), torch.cat([t[1] for t in ins], dim=axis))
            elif node.op in ("add", "sub"):
                (alo, ahi), (blo, bhi) = ins
                lo, hi = (alo + blo, ahi + bhi) if node.op == "add" else (alo - bhi, ahi - blo)
                out = (lo - 2 * _UNIT * lo.abs(), hi + 2 * _UNIT * hi.abs())
            elif node.op in ("relu", "leaky_relu", "sigmoid", "tanh"):
                l, u = (v.reshape(B, 1, *graph.values[node.inputs[0]].shape) for v in pre[node.inputs[0]])
                tol = decision_threshold(float(torch.nan_to_num(torch.maximum(l.abs(), u.abs())).max()))
                if node.op in ("relu", "leaky_relu"):
                    low = 0.0 if node.op == "relu" else float(node.attrs["alpha"])
                    one, slope = torch.ones_like(l), torch.full_like(l, low)  # float64 (not where's float32)
                    a = torch.where(l > tol, one, slope)
                    b = torch.where(u < -tol, slope, one)
                    a, b = torch.minimum(a, b), torch.maximum(a, b)
                    out = _scale(ins[0], a, b, exact=node.op == "relu")
                else:
                    a, b = _derivative_range(node.op, l - tol, u + tol)
                    out = _scale(ins[0], a, b, exact=False)
            elif node.op == "max_pool":  # the hull of the window's tangents (padding is never the maximum)
                lo, hi = ins[0]
                out = (-_apply(node, -lo, node.attrs), _apply(node, hi, node.attrs))
            else:  # pragma: no cover - SUPPORTED is checked above
                raise ModelError(f"derivative bounds do not support {node.op}")
            tangent[node.output] = out
    lo, hi = tangent[graph.output]
    lo = lo.reshape(B, J, -1).transpose(1, 2)
    hi = hi.reshape(B, J, -1).transpose(1, 2)
    if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        lo = torch.nan_to_num(lo, nan=-math.inf)
        hi = torch.nan_to_num(hi, nan=math.inf)
    return lo, hi
