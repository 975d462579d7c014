"""Merge duplicate and proportional neurons of a layer.

Two neurons of one element-wise layer with the same incoming weights and bias compute
the same value: one is deleted and its outgoing column is added to the other's.  For
ReLU, a neuron whose incoming row is ``alpha > 0`` times another's computes ``alpha``
times its value (``relu(alpha z) = alpha relu(z)``): it is merged with its column scaled
by ``alpha``.  Proportionality is decided exactly, in rational arithmetic on the float64
weights (candidates are found by hashing normalised rows, then checked with
:class:`fractions.Fraction`), so the merge is exact in real arithmetic; adding the
columns rounds like a fold.
"""

from __future__ import annotations

from fractions import Fraction

import networkx as nx
import numpy as np

from verify.compress.layers import Layer, LayerNet, from_graph
from verify.compress.report import PassReport
from verify.compress.stable_relus import delete


def _rows(layer: Layer) -> np.ndarray:
    """Each neuron's incoming row: all blocks (in a fixed source order) and the bias."""
    parts = [layer.inputs[s] for s in sorted(layer.inputs)] + [layer.bias[:, None]]
    return np.concatenate(parts, axis=1)


def exact_ratio(p: np.ndarray, q: np.ndarray) -> Fraction | None:
    """The rational ``alpha > 0`` with ``q == alpha * p`` exactly, or None."""
    nz = np.flatnonzero(p)
    if nz.size == 0 or not np.array_equal(nz, np.flatnonzero(q)):
        return None
    j = int(nz[0])
    alpha = Fraction(float(q[j])) / Fraction(float(p[j]))
    if alpha <= 0:
        return None
    for k in nz[1:]:
        if Fraction(float(q[k])) != alpha * Fraction(float(p[k])):
            return None
    return alpha


def _groups(rows: np.ndarray, proportional: bool) -> list[list[int]]:
    """Candidate groups of rows that may be equal (or proportional): same hash key."""
    if proportional:
        scale = np.abs(rows).max(axis=1, keepdims=True)
        scale[scale == 0] = 1.0
        keys = np.round(rows / scale, 10)
    else:
        keys = rows
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    groups: dict[int, list[int]] = {}
    for i, k in enumerate(inverse):
        if counts[k] > 1:
            groups.setdefault(int(k), []).append(i)
    return list(groups.values())


def merge_neurons_net(net: LayerNet) -> tuple[LayerNet, PassReport]:
    """The pass on the layered form."""
    out = net.copy()
    before = out.n_weights()
    merged = merged_relus = 0
    for layer in out.hidden:
        if layer.groups is not None or layer.size < 2:
            continue
        rows = _rows(layer)
        proportional = layer.kind == "relu"
        drop = np.zeros(layer.size, dtype=bool)
        records = []
        for group in _groups(rows, proportional):
            kept: list[int] = []
            for q in group:
                for p in kept:
                    if proportional:
                        alpha = exact_ratio(rows[p], rows[q])
                    else:
                        alpha = Fraction(1) if np.array_equal(rows[p], rows[q]) else None
                    if alpha is None:
                        continue
                    for c in out.consumers(layer.name):
                        m = c.inputs[layer.name]
                        m[:, p] = m[:, p] + float(alpha) * m[:, q]
                    drop[q] = True
                    assert layer.neuron_ids is not None
                    records.append([int(layer.neuron_ids[q]), int(layer.neuron_ids[p]), float(alpha)])
                    break
                else:
                    kept.append(q)
        if drop.any():
            out.record(layer.source, "merged", records)
            delete(out, layer, drop)
            merged += int(drop.sum())
            merged_relus += int(drop.sum()) if layer.kind == "relu" else 0
    return out, PassReport("merge neurons", neurons_removed=merged,
                           relus_removed=merged_relus, weights_before=before,
                           weights_after=out.n_weights(),
                           detail=f"{merged} duplicate or proportional neuron(s) merged")


def merge_neurons(graph: nx.DiGraph) -> tuple[nx.DiGraph, PassReport]:
    """The pass on a graph: merge duplicate (and, for ReLU, positively proportional) neurons."""
    net, report = merge_neurons_net(from_graph(graph))
    return net.to_graph(), report
