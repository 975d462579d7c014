"""The model's IR as a networkx ``DiGraph`` over flat vectors (the form compression reads).

Every tensor is seen as a flat vector (C order, batch dimension dropped), so reshapes
and flattens become identities and every other linear IR op (linear, conv, affine, pad,
average pooling, transpose, slice) becomes an *affine* node ``y = W x + b`` with a dense
``W`` read off the op's own forward function (applied to unit vectors in float64).
What is left are the non-linear nodes (ReLU, Sigmoid, Tanh, MaxPool) and sums of two
tensors (residual connections).  Ops this flat form has no node for (leaky ReLU,
softmax, concatenation, transposed convolution of several inputs) raise
:class:`~verify.errors.ModelError`: such networks are bounded on the IR itself.

Node attributes (all nodes): ``op`` (``input``, ``affine``, ``relu``, ``sigmoid``,
``tanh``, ``maxpool``, ``sum``, ``identity``), ``size`` (length of the output vector),
``shape`` (tensor shape without batch, for display), ``origin`` (the model node(s) it
came from).  Affine nodes also carry ``W`` (dense ``[out, in]`` float64, or a 1-D array for
a diagonal) and ``b`` (``[out]``); maxpool nodes carry ``groups`` (``[out, k]`` input
indices, ``-1`` for padding); sum nodes carry ``signs`` per input port.  Edges carry
``port`` (the input position at the destination).  The graph has one node with
``op == "input"`` and its attribute ``graph.graph["output"]`` names the output node.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import torch

from verify.errors import ModelError
from verify.ir.evaluate import dense_matrix
from verify.ir.graph import Graph, Node
from verify.model.network import Model

INPUT = "input"
#: IR ops that become affine nodes (their matrices are read off their forward functions).
_AFFINE = ("linear", "conv", "conv_transpose", "pad", "avg_pool", "transpose", "slice")
_SAME = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}


def extract_graph(model: Model) -> nx.DiGraph:
    """The computational graph of ``model`` (see the module docstring for its attributes)."""
    graph = graph_from_ir(model.ir)
    graph.graph["n_inputs"] = model.n_inputs
    graph.graph["n_outputs"] = model.n_outputs
    return graph


def graph_from_ir(ir: Graph) -> nx.DiGraph:
    """The flat networkx form of an IR graph."""
    graph = nx.DiGraph()
    graph.add_node(INPUT, op="input", size=ir.n_inputs, shape=tuple(ir.input_shape), origin=["input"])
    producer = {ir.input.name: INPUT}
    for node in ir.nodes:
        name = _unique(graph, node.name)
        out = ir.values[node.output]
        origin = [f"{node.op} {o}" for o in (node.origin or (node.name,))]
        attrs = _attributes(ir, node)
        graph.add_node(name, size=out.size, shape=tuple(out.shape), origin=origin, **attrs)
        for port, src in enumerate(node.inputs):
            graph.add_edge(producer[src], name, port=port)
        producer[node.output] = name
    graph.graph["output"] = producer[ir.output]
    graph.graph["n_inputs"] = ir.n_inputs
    graph.graph["n_outputs"] = ir.n_outputs
    return graph


def _attributes(ir: Graph, node: Node) -> dict[str, Any]:
    if node.op in _SAME:
        return {"op": _SAME[node.op]}
    if node.op == "reshape":
        return {"op": "identity"}
    if node.op in ("add", "sub"):
        return {"op": "sum", "signs": [1.0, 1.0] if node.op == "add" else [1.0, -1.0]}
    if node.op == "affine":
        shape = ir.values[node.inputs[0]].shape
        scale, shift = node.attrs.get("scale"), node.attrs.get("shift")
        W = np.broadcast_to(np.asarray(1.0 if scale is None else scale, dtype=np.float64), shape).reshape(-1).copy()
        b = np.broadcast_to(np.asarray(0.0 if shift is None else shift, dtype=np.float64), shape).reshape(-1).copy()
        return {"op": "affine", "W": W, "b": b}
    if node.op in _AFFINE:
        W, b = dense_matrix(ir, node)
        return {"op": "affine", "W": W, "b": b}
    if node.op == "max_pool":
        return {"op": "maxpool", "groups": _pool_groups(ir, node)}
    raise ModelError(f"node {node.name!r} ({node.op}) has no flat-graph form; it is bounded on the IR")


def _pool_groups(ir: Graph, node: Node) -> np.ndarray:
    """For max pooling: the input indices of each output's window (-1 marks padding)."""
    a = node.attrs
    in_shape = ir.values[node.inputs[0]].shape
    if len(in_shape) != 3 or any(int(v) != 1 for v in (a.get("dilations") or [1, 1])):
        raise ModelError(f"node {node.name!r}: only 2-D max pooling without dilation has a flat-graph form")
    c, h, w = in_shape
    kh, kw = (int(k) for k in a["kernel"])
    sh, sw = (int(s) for s in a["strides"])
    pads = list(a.get("pads") or [0, 0, 0, 0])
    idx = torch.arange(c * h * w, dtype=torch.float64).reshape(1, c, h, w)
    padded = torch.nn.functional.pad(idx, (int(pads[1]), int(pads[3]), int(pads[0]), int(pads[2])), value=-1.0)
    windows = padded.unfold(2, kh, sh).unfold(3, kw, sw)  # [1, c, oh, ow, kh, kw]
    return windows.reshape(-1, kh * kw).long().numpy()


def _unique(graph: nx.DiGraph, name: str) -> str:
    base, k = name, 1
    while name in graph:
        name = f"{base}_{k}"
        k += 1
    return name
