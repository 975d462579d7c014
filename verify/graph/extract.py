"""Extract a model's computational graph as a networkx ``DiGraph`` over flat vectors.

Every tensor is seen as a flat vector (C order, batch dimension dropped), so reshapes
and flattens become identities and every linear operation (Linear, Conv, BatchNorm in
eval mode, average pooling, adding or multiplying by constants) becomes an *affine*
node ``y = W x + b``.  What is left are the non-linear nodes (ReLU, Sigmoid, Tanh,
MaxPool) and sums of two tensors (residual connections).

Node attributes (all nodes): ``op`` (``input``, ``affine``, ``relu``, ``sigmoid``,
``tanh``, ``maxpool``, ``sum``, ``identity``), ``size`` (length of the output vector),
``shape`` (tensor shape without batch, for display), ``origin`` (the ONNX node(s) or
torch modules it came from).  Affine nodes also carry ``W`` (dense ``[out, in]`` float64,
or a 1-D array for a diagonal) and ``b`` (``[out]``); maxpool nodes carry ``groups``
(``[out, k]`` input indices, ``-1`` for padding); sum nodes carry ``signs`` per input
port.  Edges carry ``port`` (the input position at the destination).  The graph has
one node with ``op == "input"`` and its attribute ``graph.graph["output"]`` names the
output node.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import torch
from torch import nn

from verify.errors import ModelError
from verify.model import layers
from verify.model.network import FlatWrapper, Model
from verify.model.onnx_loader import OnnxNet

INPUT = "input"


def extract_graph(model: Model) -> nx.DiGraph:
    """The computational graph of ``model`` (see the module docstring for its attributes)."""
    graph = nx.DiGraph()
    graph.add_node(INPUT, op="input", size=model.n_inputs, shape=tuple(model.input_shape), origin=["input"])
    net = model.net
    if isinstance(net, OnnxNet):
        shapes = {net.input_name: tuple(net.input_shape)}
        producer = {net.input_name: INPUT}
        for step in net.steps:
            module = net.ops[step.name.replace(".", "_")]
            in_nodes = [producer[i] for i in step.inputs]
            in_shapes = [shapes[i] for i in step.inputs]
            node, shape = _add_module(graph, step.name, step.op_type, module, in_nodes, in_shapes)
            producer[step.output] = node
            shapes[step.output] = shape
        graph.graph["output"] = producer[net.output_name]
    elif isinstance(net, FlatWrapper):
        prev, shape = INPUT, tuple(net.input_shape)
        for name, module in _flatten_sequential(net.module):
            prev, shape = _add_module(graph, name, type(module).__name__, module, [prev], [shape])
        graph.graph["output"] = prev
    else:
        raise ModelError(f"cannot extract a graph from {type(net).__name__}")
    graph.graph["n_inputs"] = model.n_inputs
    graph.graph["n_outputs"] = model.n_outputs
    return graph


def _flatten_sequential(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        out = []
        for name, child in module.named_children():
            out.extend(_flatten_sequential(child, f"{prefix}{name}."))
        return out
    if list(module.children()) and not isinstance(module, (nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d)):
        raise ModelError(f"cannot extract a graph from module {type(module).__name__} ({prefix.rstrip('.')}): "
                         "use nn.Sequential of standard layers, or export to ONNX")
    return [(prefix.rstrip(".") or type(module).__name__, module)]


def _unique(graph: nx.DiGraph, name: str) -> str:
    base, k = name, 1
    while name in graph:
        name = f"{base}_{k}"
        k += 1
    return name


def _add_module(graph: nx.DiGraph, name: str, op_type: str, module: nn.Module, in_nodes: list[str],
                in_shapes: list[tuple[int, ...]]) -> tuple[str, tuple[int, ...]]:
    """Add the node(s) for one module; return the output node and its tensor shape."""
    name = _unique(graph, name)
    in_shape = in_shapes[0]
    n_in = int(np.prod(in_shape))
    origin = [f"{op_type} {name}"]

    def add(op: str, shape: tuple[int, ...], **attrs: Any) -> tuple[str, tuple[int, ...]]:
        graph.add_node(name, op=op, size=int(np.prod(shape)), shape=tuple(shape), origin=origin, **attrs)
        for port, src in enumerate(in_nodes):
            graph.add_edge(src, name, port=port)
        return name, tuple(shape)

    if isinstance(module, nn.Sequential):  # Pad + Conv/Pool from the converter
        node, shape = in_nodes[0], in_shape
        for i, child in enumerate(module):
            node, shape = _add_module(graph, f"{name}.{i}", op_type, child, [node], [shape])
        return node, shape
    if isinstance(module, nn.ReLU):
        return add("relu", in_shape)
    if isinstance(module, nn.Sigmoid):
        return add("sigmoid", in_shape)
    if isinstance(module, nn.Tanh):
        return add("tanh", in_shape)
    if isinstance(module, (nn.Identity, nn.Flatten, layers.Flatten, layers.Reshape)):
        with torch.no_grad():
            out_shape = tuple(module(torch.zeros(1, *in_shape)).shape[1:])
        return add("identity", out_shape)
    if isinstance(module, (layers.Add, layers.Sub)):
        signs = [1.0, 1.0] if isinstance(module, layers.Add) else [1.0, -1.0]
        return add("sum", in_shape, signs=signs)
    if isinstance(module, nn.Linear):
        W = module.weight.detach().double().numpy().copy()
        b = module.bias.detach().double().numpy().copy() if module.bias is not None else np.zeros(W.shape[0])
        if len(in_shape) != 1:
            # nn.Linear acts on the last axis of a higher-rank tensor: a block-diagonal map
            reps = int(np.prod(in_shape[:-1]))
            W = np.kron(np.eye(reps), W)
            b = np.tile(b, reps)
            return add("affine", (*in_shape[:-1], module.out_features), W=W, b=b)
        return add("affine", (module.out_features,), W=W, b=b)
    if isinstance(module, layers.ConstantOp):
        c = module.constant.detach().double().numpy()
        full = np.broadcast_to(c, (1, *in_shape)).reshape(-1).astype(np.float64)
        if module.kind == "add":
            return add("affine", in_shape, W=np.ones(n_in), b=full.copy())
        if module.kind == "sub":
            if module.constant_first:
                return add("affine", in_shape, W=-np.ones(n_in), b=full.copy())
            return add("affine", in_shape, W=np.ones(n_in), b=-full)
        if module.kind == "mul":
            return add("affine", in_shape, W=full.copy(), b=np.zeros(n_in))
        return add("affine", in_shape, W=1.0 / full, b=np.zeros(n_in))  # div (rounded: see README)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        scale = module.weight.detach().double() / torch.sqrt(module.running_var.double() + module.eps)
        shift = module.bias.detach().double() - module.running_mean.double() * scale
        per = int(np.prod(in_shape[1:])) if len(in_shape) > 1 else 1
        return add("affine", in_shape, W=np.repeat(scale.numpy(), per), b=np.repeat(shift.numpy(), per))
    if isinstance(module, (nn.Conv2d, nn.AvgPool2d, layers.Pad)) and not (
            isinstance(module, layers.Pad) and module.value != 0):
        W, b, out_shape = _linear_by_probing(module, in_shape)
        return add("affine", out_shape, W=W, b=b)
    if isinstance(module, nn.MaxPool2d) or (isinstance(module, layers.Pad) and module.value == float("-inf")):
        groups, out_shape = _pool_groups(module, in_shape)
        return add("maxpool", out_shape, groups=groups)
    raise ModelError(f"cannot extract a graph node for {type(module).__name__} ({name})")


def _linear_by_probing(module: nn.Module, in_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray,
                                                                               tuple[int, ...]]:
    """Dense matrix and bias of a linear module, by applying it to the unit vectors in float64."""
    import copy

    probe = copy.deepcopy(module).double().eval()
    bias = None
    if isinstance(probe, nn.Conv2d) and probe.bias is not None:
        bias = probe.bias.detach().clone()
        probe.bias = None
    n_in = int(np.prod(in_shape))
    with torch.no_grad():
        out_shape = tuple(probe(torch.zeros(1, *in_shape, dtype=torch.float64)).shape[1:])
        n_out = int(np.prod(out_shape))
        W = np.empty((n_out, n_in))
        chunk = max(1, min(n_in, 4_000_000 // max(n_out, 1)))
        for start in range(0, n_in, chunk):
            stop = min(n_in, start + chunk)
            basis = torch.zeros(stop - start, n_in, dtype=torch.float64)
            basis[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
            W[:, start:stop] = probe(basis.reshape(-1, *in_shape)).reshape(stop - start, -1).T.numpy()
    if bias is not None:
        per = int(np.prod(out_shape[1:]))
        b = np.repeat(bias.numpy(), per)
    else:
        b = np.zeros(n_out)
    return W, b, out_shape


def _pool_groups(module: nn.Module, in_shape: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, ...]]:
    """For max pooling: the input indices of each output's window (-1 marks padding)."""
    if isinstance(module, layers.Pad):
        left, right, top, bottom = module.pads
        c, h, w = in_shape
        idx = torch.arange(c * h * w, dtype=torch.float64).reshape(1, c, h, w)
        padded = nn.functional.pad(idx, (left, right, top, bottom), value=-1.0)
        out_shape = tuple(padded.shape[1:])
        # a padding node: each output is one input (or padding)
        return padded.reshape(-1, 1).long().numpy(), out_shape
    assert isinstance(module, nn.MaxPool2d)
    c, h, w = in_shape
    k = _pair(module.kernel_size)
    s = _pair(module.stride or module.kernel_size)
    p = _pair(module.padding)
    if _pair(module.dilation) != (1, 1) or module.ceil_mode:
        raise ModelError("max pooling with dilation or ceil_mode is not supported")
    idx = torch.arange(c * h * w, dtype=torch.float64).reshape(1, c, h, w)
    padded = nn.functional.pad(idx, (p[1], p[1], p[0], p[0]), value=-1.0)
    windows = padded.unfold(2, k[0], s[0]).unfold(3, k[1], s[1])  # [1, c, oh, ow, kh, kw]
    out_shape = (c, windows.shape[2], windows.shape[3])
    return windows.reshape(-1, k[0] * k[1]).long().numpy(), out_shape


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))
