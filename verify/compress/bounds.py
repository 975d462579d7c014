"""Pre-activation bounds of every layer of a :class:`~verify.compress.layers.LayerNet` on an input box.

Interval arithmetic (IBP) over the layered form works for every graph; on chains of
affine layers and ReLUs the bounds are tightened with CROWN from
:func:`verify.bounds.linear_relax.crown_bounds` (float64) and intersected with IBP.  The
stability rule of the check applies when these bounds are used: a neuron is dead only if
``u < -thr`` and active only if ``l > thr``, with ``thr = decision_threshold(scale)`` and
``scale`` the magnitude of the terms summed into that neuron (see :func:`thresholds`).
"""

from __future__ import annotations

import numpy as np
import torch

from verify.bounds.linear_relax import crown_bounds, optimize_alpha
from verify.compress.layers import INPUT, Layer, LayerNet
from verify.numerics import decision_threshold

Interval = tuple[np.ndarray, np.ndarray]

#: Gradient steps of alpha-CROWN per layer with ``method="alpha"``.
ALPHA_ITERATIONS = 20


def interval_matmul(m: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> Interval:
    """Exact (up to rounding) interval of ``m @ a`` for ``a`` in ``[lo, hi]``."""
    with np.errstate(invalid="ignore"):
        mp, mn = np.maximum(m, 0.0), np.minimum(m, 0.0)
        lo_f, hi_f = np.nan_to_num(lo, neginf=-1e300, posinf=1e300), np.nan_to_num(hi, neginf=-1e300, posinf=1e300)
        low = mp @ lo_f + mn @ hi_f
        high = mp @ hi_f + mn @ lo_f
    low = np.where(np.abs(low) > 1e299, -np.inf, low)
    high = np.where(np.abs(high) > 1e299, np.inf, high)
    return low, high


def activation_interval(layer: Layer, lo: np.ndarray, hi: np.ndarray) -> Interval:
    """Interval of the layer's outputs from the interval of its pre-activations."""
    if layer.kind == "relu":
        return np.maximum(lo, 0.0), np.maximum(hi, 0.0)
    if layer.kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-lo)), 1.0 / (1.0 + np.exp(-hi))
    if layer.kind == "tanh":
        return np.tanh(lo), np.tanh(hi)
    if layer.kind == "maxpool":
        assert layer.groups is not None
        pad_lo = np.concatenate([lo, [-np.inf]])
        pad_hi = np.concatenate([hi, [-np.inf]])
        return pad_lo[layer.groups].max(axis=1), pad_hi[layer.groups].max(axis=1)
    return lo, hi


def ibp(net: LayerNet, lower: np.ndarray, upper: np.ndarray) -> dict[str, Interval]:
    """Interval bounds of every layer's pre-activation (keyed by layer name)."""
    act: dict[str, Interval] = {INPUT: (np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64))}
    pre: dict[str, Interval] = {}
    for layer in net.layers:
        lo, hi = layer.bias.copy(), layer.bias.copy()
        for s, m in layer.inputs.items():
            a, b = interval_matmul(m, *act[s])
            lo, hi = lo + a, hi + b
        pre[layer.name] = (lo, hi)
        act[layer.name] = activation_interval(layer, lo, hi)
    return pre


def magnitudes(net: LayerNet, lower: np.ndarray, upper: np.ndarray, pre: dict[str, Interval]) -> dict[str, np.ndarray]:
    """Per layer and pre-activation row: ``|c| + sum_s |M_s| max|a_s|``, the size of the terms summed into it."""
    act = {INPUT: np.maximum(np.abs(lower), np.abs(upper))}
    out: dict[str, np.ndarray] = {}
    for layer in net.layers:
        mag = np.abs(layer.bias).copy()
        for s, m in layer.inputs.items():
            mag += np.abs(m) @ np.nan_to_num(act[s], posinf=1e300)
        out[layer.name] = mag
        lo, hi = activation_interval(layer, *pre[layer.name])
        act[layer.name] = np.maximum(np.abs(lo), np.abs(hi))
    return out


def thresholds(scale: np.ndarray) -> np.ndarray:
    """:func:`verify.numerics.decision_threshold` for each entry of ``scale``."""
    return np.array([decision_threshold(float(s)) for s in np.asarray(scale).reshape(-1)]).reshape(np.shape(scale))


def chain_crown(net: LayerNet, lower: np.ndarray, upper: np.ndarray, alpha_iterations: int = 0
                ) -> dict[str, Interval] | None:
    """CROWN bounds of every layer when the net is a chain of ReLU layers, else None.

    With ``alpha_iterations > 0`` the hidden layers' bounds are then tightened layer by
    layer with alpha-CROWN (:func:`verify.bounds.linear_relax.optimize_alpha`, which keeps
    the best bound over its iterations, the CROWN one included).
    """
    if not net.is_chain():
        return None
    Ws, bs = [], []
    prev_size = net.n_inputs
    prev = INPUT
    for layer in net.layers:
        m = layer.inputs.get(prev, np.zeros((layer.n_pre, prev_size)))
        Ws.append(torch.as_tensor(m, dtype=torch.float64))
        bs.append(torch.as_tensor(layer.bias, dtype=torch.float64))
        prev, prev_size = layer.name, layer.size
    lo = torch.as_tensor(np.asarray(lower, dtype=np.float64)).reshape(1, -1)
    hi = torch.as_tensor(np.asarray(upper, dtype=np.float64)).reshape(1, -1)
    with torch.no_grad():
        pre = crown_bounds(Ws, bs, lo, hi)
    if alpha_iterations > 0:
        for k in range(1, len(Ws) - 1):
            low, up = pre[k]
            rows = torch.nonzero(((low < 0) & (up > 0))[0]).flatten()
            if not rows.numel():
                continue
            W, b = Ws[k][rows], bs[k][rows]
            res, _, _ = optimize_alpha(Ws[:k + 1], bs[:k + 1], lo, hi, pre[:k], iterations=alpha_iterations,
                                       W_last=torch.cat([W, -W]), b_last=torch.cat([b, -b]))
            n = rows.numel()
            low, up = low.clone(), up.clone()
            low[0, rows] = torch.maximum(low[0, rows], res.lb[0, :n].detach())
            up[0, rows] = torch.minimum(up[0, rows], -res.lb[0, n:].detach())
            pre[k] = (low, up)
    return {layer.name: (a[0].numpy().copy(), b[0].numpy().copy()) for layer, (a, b) in zip(net.layers, pre)}


def layer_bounds(net: LayerNet, lower: np.ndarray, upper: np.ndarray, method: str = "crown") -> dict[str, Interval]:
    """Pre-activation bounds of every layer on the box: IBP, intersected with CROWN on chains.

    ``method``: ``"crown"`` (CROWN where the net is a chain, IBP elsewhere), ``"alpha"``
    (alpha-CROWN for the hidden layers of chains: tighter, slower) or ``"ibp"``.
    """
    lower, upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    bounds = ibp(net, lower, upper)
    if method in ("crown", "alpha"):
        crown = chain_crown(net, lower, upper, ALPHA_ITERATIONS if method == "alpha" else 0)
        if crown is not None:
            for name, (cl, cu) in crown.items():
                il, iu = bounds[name]
                bounds[name] = (np.maximum(il, cl), np.minimum(iu, cu))
    elif method != "ibp":
        raise ValueError(f"unknown bound method {method!r}")
    return bounds


def annotate(net: LayerNet, lower: np.ndarray, upper: np.ndarray, method: str = "crown") -> LayerNet:
    """A copy of ``net`` whose layers carry their pre-activation bounds (``lower``/``upper``) on the box."""
    out = net.copy()
    bounds = layer_bounds(out, lower, upper, method)
    for layer in out.layers:
        layer.lower, layer.upper = bounds[layer.name]
    return out


def stability(net: LayerNet, lower: np.ndarray, upper: np.ndarray, layer: Layer,
              mags: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks ``(dead, active)`` of a ReLU layer from its stored bounds, with the safety threshold."""
    assert layer.lower is not None and layer.upper is not None, "annotate the net with bounds first"
    if mags is None:
        mags = magnitudes(net, lower, upper, {ly.name: (ly.lower, ly.upper) for ly in net.layers})  # type: ignore[misc]
    scale = np.maximum(mags[layer.name], np.maximum(np.abs(layer.lower), np.abs(layer.upper)))
    thr = thresholds(np.nan_to_num(scale, posinf=1e300))
    return layer.upper < -thr, layer.lower > thr
