"""Slice the network to the property: fold the spec's output rows into the last affine layer.

A property reads the outputs only through ``C y <= d``.  Replacing the output layer
``y = sum_s M_s a_s + c`` by ``C y - d = sum_s (C M_s) a_s + (C c - d)`` keeps exactly what
the property reads (a row is violated iff its value is ``<= 0``); afterwards every neuron
that no longer reaches these rows (a zero column of ``C M``, or an output ``C`` never reads)
is deleted by :func:`verify.compress.prune.remove_unused`.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from verify.compress.layers import LayerNet, from_graph
from verify.compress.prune import _drop_zero_blocks, remove_unused
from verify.compress.report import PassReport


def slice_to_property_net(net: LayerNet, C: np.ndarray, d: np.ndarray) -> tuple[LayerNet, PassReport]:
    """The pass on the layered form: the output becomes ``C y - d``."""
    C = np.atleast_2d(np.asarray(C, dtype=np.float64))
    d = np.asarray(d, dtype=np.float64).reshape(-1)
    out = net.copy()
    head = out.output
    if C.shape[1] != head.size or C.shape[0] != d.shape[0]:
        raise ValueError(f"property rows have shape {C.shape} and {d.shape}, the net has {head.size} outputs")
    before, neurons_before, layers_before = out.n_weights(), out.n_neurons(), len(out.layers)
    head.inputs = {s: C @ m for s, m in head.inputs.items()}
    head.bias = C @ head.bias - d
    head.neuron_ids = np.arange(C.shape[0])
    head.shape = (C.shape[0],)
    head.lower = head.upper = None
    head.pre_origin = list(head.pre_origin) + [f"property rows C y - d ({C.shape[0]})"]
    out.sliced = True
    _drop_zero_blocks(out)
    unused = remove_unused(out)
    return out, PassReport("slice to property", nodes_removed=2 * (layers_before - len(out.layers)),
                           neurons_removed=neurons_before - out.n_neurons(), weights_before=before,
                           weights_after=out.n_weights(),
                           detail=f"{net.output.size} outputs -> {C.shape[0]} property row(s); "
                                  f"{unused} neuron(s) no longer read deleted")


def slice_to_property(graph: nx.DiGraph, C: np.ndarray, d: np.ndarray) -> tuple[nx.DiGraph, PassReport]:
    """The pass on a graph: its output becomes ``C y - d``, and what does not reach it is dropped."""
    net, report = slice_to_property_net(from_graph(graph), C, d)
    return net.to_graph(), report
