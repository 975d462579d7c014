"""Delete ReLUs that are always inactive on the region and turn always-active ones into the identity.

From sound pre-activation bounds on the input box (CROWN on chains, interval arithmetic
elsewhere; :mod:`verify.compress.bounds`) a ReLU neuron is

* *dead* when ``u < -thr``: its output is exactly 0 on the region, so the neuron, its
  incoming row and its outgoing column are deleted;
* *active* when ``l > thr``: its output equals its pre-activation, so it is replaced by
  the identity and the affine maps around it are folded: every consumer's column for it
  is multiplied into the neuron's incoming row (``M_c[:, i] M_i``) and added to the
  consumer's blocks for the neuron's sources;

with ``thr = decision_threshold(scale)`` of the check (never trust a closer margin).
Both rewrites are exact in real arithmetic on the region; the fold rounds like
:func:`verify.compress.fold.fold_affine`.

Replacing only *some* neurons of a layer by the identity adds skip connections (the
consumers then read the layer's sources directly).  With ``keep_chain`` (the default)
active neurons are folded only when every remaining neuron of their layer is active, so
a chain stays a chain (the bound engine and branch and bound work on chains); the
others stay ReLUs whose phase is known (``phase == +1``), which bounding treats exactly.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from verify.compress.bounds import annotate, magnitudes, stability
from verify.compress.layers import Layer, LayerNet, from_graph
from verify.compress.report import PassReport


def set_phases(net: LayerNet, lower: np.ndarray, upper: np.ndarray) -> None:
    """Store each ReLU layer's phases (+1 active, -1 dead, 0 unstable) from its bounds, in place."""
    mags = magnitudes(net, lower, upper, {ly.name: (ly.lower, ly.upper) for ly in net.layers})  # type: ignore[misc]
    for layer in net.hidden:
        if layer.kind == "relu" and layer.lower is not None:
            dead, active = stability(net, lower, upper, layer, mags)
            layer.phase = np.where(active, 1, np.where(dead, -1, 0)).astype(np.int8)


def count_unstable(net: LayerNet) -> int | None:
    """Unstable ReLUs of a net whose phases are set (None when some ReLU layer has none)."""
    total = 0
    for layer in net.hidden:
        if layer.kind == "relu":
            if layer.phase is None:
                return None
            total += int(np.count_nonzero(layer.phase == 0))
    return total


def substitute(net: LayerNet, layer: Layer, rows: np.ndarray) -> None:
    """Replace the neurons ``rows`` (boolean mask) of an element-wise layer by their pre-activation,
    in place: fold them into every consumer (exact when they are in the identity regime)."""
    for c in net.consumers(layer.name):
        mc = c.inputs[layer.name]
        ma = mc[:, rows]
        for s, m in layer.inputs.items():
            term = ma @ m[rows]
            c.inputs[s] = c.inputs[s] + term if s in c.inputs else term
        c.bias = c.bias + ma @ layer.bias[rows]
        c.inputs[layer.name] = mc[:, ~rows]


def delete(net: LayerNet, layer: Layer, rows: np.ndarray) -> None:
    """Delete the neurons ``rows`` (boolean mask) of an element-wise layer and their outgoing columns, in place."""
    for c in net.consumers(layer.name):
        c.inputs[layer.name] = c.inputs[layer.name][:, ~rows]
    layer.keep_rows(~rows)


def drop_empty(net: LayerNet) -> int:
    """Remove layers without neurons (and the blocks that read them), in place; return how many."""
    empty = [layer for layer in net.hidden if layer.size == 0]
    for layer in empty:
        for c in net.consumers(layer.name):
            del c.inputs[layer.name]
        net.layers.remove(layer)
    return len(empty)


def remove_stable_relus_net(net: LayerNet, lower: np.ndarray, upper: np.ndarray, keep_chain: bool = True,
                            annotated: bool = False) -> tuple[LayerNet, PassReport]:
    """The pass on the layered form.  Bounds on the box are computed first (CROWN/IBP) unless
    ``annotated`` says the layers already carry bounds valid on this box."""
    out = net.copy() if annotated else annotate(net, lower, upper)
    set_phases(out, lower, upper)
    before = out.n_weights()
    n_dead = n_active = kept_active = 0
    for layer in list(out.hidden):
        if layer.kind != "relu" or layer.phase is None:
            continue
        dead = layer.phase < 0
        if dead.any():
            assert layer.neuron_ids is not None
            out.record(layer.source, "dead", layer.neuron_ids[dead].tolist())
            delete(out, layer, dead)
            n_dead += int(dead.sum())
        active = layer.phase > 0
        if active.any() and (not keep_chain or active.all()):
            assert layer.neuron_ids is not None
            out.record(layer.source, "active", layer.neuron_ids[active].tolist())
            substitute(out, layer, active)
            layer.keep_rows(~active)
            n_active += int(active.sum())
        else:
            kept_active += int(active.sum())
    removed_layers = drop_empty(out)
    detail = f"{n_dead} dead ReLU(s) deleted, {n_active} active ReLU(s) replaced by the identity"
    if kept_active:
        detail += f", {kept_active} active ReLU(s) kept to keep the chain shape"
    return out, PassReport("stable ReLUs", nodes_removed=2 * removed_layers,
                           neurons_removed=n_dead + n_active, relus_removed=n_dead, relus_to_identity=n_active,
                           weights_before=before, weights_after=out.n_weights(), detail=detail)


def remove_stable_relus(graph: nx.DiGraph, lower: np.ndarray, upper: np.ndarray,
                        keep_chain: bool = True) -> tuple[nx.DiGraph, PassReport]:
    """The pass on a graph: bounds on the box ``[lower, upper]``, then delete dead and fold active ReLUs."""
    net, report = remove_stable_relus_net(from_graph(graph), lower, upper, keep_chain)
    return net.to_graph(), report
