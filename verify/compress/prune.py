"""Remove what does not matter: zero-weight edges, constant neurons, neurons that reach no output
(all exact), and, only on request, small weights with a proven bound on the output error.

Exact cleanup (:func:`drop_zero_weights`):

* a block of weights that is all zero is an edge that carries nothing: it is dropped;
* a ReLU neuron whose incoming weights are all zero outputs the constant ``max(b, 0)``
  (computed exactly): it is folded into its consumers' biases and deleted;
* a neuron whose outgoing weights are all zero, or that only feeds such neurons, reaches
  no output: it is deleted, and layers left empty are removed.

Lossy pruning (:func:`prune_small_weights`): a weight ``w`` from neuron ``j`` is zeroed
when ``|w| * A_j <= tol``, where ``A_j`` bounds ``|a_j|`` on the region.  The output error
is bounded by propagating, layer by layer, ``e_L = sum_s |dM_{L,s}| A_s + |M'_{L,s}| E_s``
on the pre-activations and ``E_L = slope_L * e_L`` on the outputs (slope 1 for ReLU and
tanh, 1/4 for sigmoid, the group maximum for max pooling): by induction
``|z'_L - z_L| <= e_L`` everywhere on the region.  The bound is inflated by a relative
``1e-9`` for the rounding of this computation, stored in the report's ``error_bound``, and
the stored pre-activation bounds are widened by ``e_L`` so they stay sound for the pruned net.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from verify.compress.bounds import activation_interval, annotate
from verify.compress.layers import INPUT, Layer, LayerNet, from_graph
from verify.compress.report import PassReport
from verify.compress.stable_relus import delete, drop_empty

#: Relative inflation of a computed error bound (covers the float64 rounding of computing it).
ERROR_INFLATION = 1e-9


def _drop_zero_blocks(net: LayerNet) -> int:
    dropped = 0
    for layer in net.layers:
        for s in [s for s, m in layer.inputs.items() if not np.any(m)]:
            del layer.inputs[s]
            dropped += 1
    return dropped


def _fold_constants(net: LayerNet) -> int:
    """Fold ReLU neurons with no incoming weight into their consumers' biases."""
    folded = 0
    for layer in net.hidden:
        if layer.kind != "relu" or layer.size == 0:
            continue
        const = np.ones(layer.n_pre, dtype=bool)
        for m in layer.inputs.values():
            const &= ~np.any(m != 0, axis=1)
        if not const.any():
            continue
        value = np.maximum(layer.bias[const], 0.0)  # exact
        for c in net.consumers(layer.name):
            c.bias = c.bias + c.inputs[layer.name][:, const] @ value
        assert layer.neuron_ids is not None
        net.record(layer.source, "constant", layer.neuron_ids[const].tolist())
        delete(net, layer, const)
        folded += int(const.sum())
    return folded


def _used_outputs(net: LayerNet, layer: Layer) -> np.ndarray:
    used = np.zeros(layer.size, dtype=bool)
    for c in net.consumers(layer.name):
        used |= np.any(c.inputs[layer.name] != 0, axis=0)
    return used


def remove_unused(net: LayerNet) -> int:
    """Delete neurons that reach no output, in place (one backward sweep); return how many."""
    removed = 0
    for layer in reversed(net.hidden):
        used = _used_outputs(net, layer)
        if used.all():
            continue
        unused = ~used
        assert layer.neuron_ids is not None
        net.record(layer.source, "unused", layer.neuron_ids[unused].tolist())
        removed += int(unused.sum())
        if layer.groups is None:
            delete(net, layer, unused)
            continue
        for c in net.consumers(layer.name):
            c.inputs[layer.name] = c.inputs[layer.name][:, used]
        groups = layer.groups[used]
        rows = np.zeros(layer.n_pre, dtype=bool)
        rows[groups[groups >= 0]] = True
        new_index = np.cumsum(rows) - 1
        layer.groups = np.where(groups >= 0, new_index[np.maximum(groups, 0)], -1)
        layer.inputs = {s: m[rows] for s, m in layer.inputs.items()}
        layer.bias = layer.bias[rows]
        if layer.lower is not None and layer.upper is not None:
            layer.lower, layer.upper = layer.lower[rows], layer.upper[rows]
        layer.neuron_ids = layer.neuron_ids[used]
        layer.shape = (layer.size,)
    drop_empty(net)
    return removed


def drop_zero_weights_net(net: LayerNet) -> tuple[LayerNet, PassReport]:
    """The exact cleanup on the layered form, repeated until nothing changes."""
    out = net.copy()
    before, layers_before = out.n_weights(), len(out.layers)
    edges = consts = unused = 0
    while True:
        e, c, u = _drop_zero_blocks(out), _fold_constants(out), remove_unused(out)
        edges, consts, unused = edges + e, consts + c, unused + u
        if not (e or c or u):
            break
    relus = consts
    detail = (f"{edges} zero block(s) of weights dropped, {consts} constant ReLU(s) folded, "
              f"{unused} neuron(s) that reach no output deleted")
    return out, PassReport("drop zero weights", nodes_removed=2 * (layers_before - len(out.layers)),
                           neurons_removed=consts + unused, relus_removed=relus, weights_before=before,
                           weights_after=out.n_weights(), detail=detail)


def drop_zero_weights(graph: nx.DiGraph) -> tuple[nx.DiGraph, PassReport]:
    """The exact cleanup on a graph: zero-weight edges, constant ReLUs, neurons that reach no output."""
    net, report = drop_zero_weights_net(from_graph(graph))
    return net.to_graph(), report


def _slope(layer: Layer) -> float:
    return {"relu": 1.0, "tanh": 1.0, "sigmoid": 0.25}.get(layer.kind, 1.0)


def prune_small_weights_net(net: LayerNet, lower: np.ndarray, upper: np.ndarray,
                            tol: float) -> tuple[LayerNet, PassReport]:
    """Zero the weights whose contribution ``|w| * max|a|`` is at most ``tol``, with a proven error bound.

    The layers must carry pre-activation bounds valid on the box (see
    :func:`verify.compress.bounds.annotate`).
    """
    if any(layer.lower is None or layer.upper is None for layer in net.layers):
        raise ValueError("prune_small_weights needs a net annotated with bounds on the region")
    out = net.copy()
    before = out.n_weights()
    amp = {INPUT: np.maximum(np.abs(lower), np.abs(upper)).astype(np.float64)}  # bounds of |a_s|
    err = {INPUT: np.zeros(out.n_inputs)}  # bounds of |a'_s - a_s|
    zeroed = 0
    for layer in out.layers:
        assert layer.lower is not None and layer.upper is not None
        e = np.zeros(layer.n_pre)
        for s, m in list(layer.inputs.items()):
            small = (np.abs(m) * amp[s][None, :] <= tol) & (m != 0)
            if small.any():
                dm = np.where(small, m, 0.0)
                m = np.where(small, 0.0, m)
                layer.inputs[s] = m
                zeroed += int(small.sum())
                e += np.abs(dm) @ amp[s]
            e += np.abs(m) @ err[s]
        e = e * (1 + ERROR_INFLATION)
        lo, hi = activation_interval(layer, layer.lower, layer.upper)
        amp[layer.name] = np.maximum(np.abs(lo), np.abs(hi))
        if layer.groups is not None:
            padded = np.concatenate([e, [0.0]])
            err[layer.name] = padded[layer.groups].max(axis=1)
        else:
            err[layer.name] = _slope(layer) * e
        if e.any():
            layer.lower, layer.upper = layer.lower - e, layer.upper + e
    bound = float(err[out.output.name].max()) if out.output.size else 0.0
    return out, PassReport("prune small weights", weights_before=before, weights_after=out.n_weights(),
                           error_bound=bound,
                           detail=f"{zeroed} weight(s) with |w| * max|a| <= {tol:g} zeroed; "
                                  f"output error <= {bound:.3g} (proven)")


def prune_small_weights(graph: nx.DiGraph, lower: np.ndarray, upper: np.ndarray,
                        tol: float) -> tuple[nx.DiGraph, PassReport]:
    """Lossy pruning on a graph (bounds on the box are computed first); see the module docstring."""
    net, report = prune_small_weights_net(annotate(from_graph(graph), lower, upper), lower, upper, tol)
    return net.to_graph(), report
