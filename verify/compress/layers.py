"""The layered normal form of a graph, on which the compression passes work.

Every graph made of ``input``, ``affine``, ``sum``, ``identity`` and non-linear nodes
(``relu``, ``sigmoid``, ``tanh``, ``maxpool``) is, exactly, a list of non-linear *layers*
in topological order whose pre-activations are affine maps of earlier layers and of the
input::

    z_L = sum_s M_{L,s} a_s + c_L        a_L = f_L(z_L)        y = sum_s M_{out,s} a_s + c_out

(``s`` ranges over ``"input"`` and earlier layers).  Reading a graph into this form folds
every chain of affine nodes, sums and identities (the same rounding as
:func:`verify.compress.fold.fold_affine`: each folded entry is rounded once relative to
the magnitudes involved, which the check's safety margin covers).  In this form a neuron
is a row, its incoming weights a row of the ``M`` blocks and its outgoing weights a
column of its consumers' blocks, so deleting, substituting or merging neurons is a few
array operations.  :meth:`LayerNet.to_graph` writes the form back as a graph that
:func:`verify.graph.evaluate.evaluate_graph` runs and, when it is a chain,
:func:`verify.graph.chain_graph.graph_to_chain` reads.

Traceability: each layer keeps ``source`` (the name of the ReLU/non-linear node of the
original graph it comes from) and ``neuron_ids`` (for each of its outputs, the index in
that original node); both are written to the graph's non-linear nodes.  What the passes
removed is listed in ``removed`` (``graph.graph["removed"]``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from verify.errors import ModelError

INPUT = "input"
NONLINEAR = ("relu", "sigmoid", "tanh", "maxpool")
LINEAR = ("input", "affine", "sum", "identity")
OUTPUT = "output"

# A linear form of a node's value: (blocks by source, bias).  A block is [size, n_source]
# (dense) or a 1-D array (a diagonal, only while reading a graph).
Form = tuple[dict[str, np.ndarray], np.ndarray]


@dataclass
class Layer:
    """One non-linear node with its affine pre-activation (or, with ``kind == "output"``, the output)."""

    name: str  # graph name of the non-linear node (of the output node for the output layer)
    kind: str  # relu, sigmoid, tanh, maxpool or output
    inputs: dict[str, np.ndarray]  # source -> [n_pre, n_source] dense
    bias: np.ndarray  # [n_pre]
    pre_name: str  # graph name of the affine node computing the pre-activation
    source: str = ""  # name of the original non-linear node
    neuron_ids: np.ndarray | None = None  # [size] index of each output in the original node
    groups: np.ndarray | None = None  # maxpool: [size, k] pre-activation rows (-1: padding)
    shape: tuple[int, ...] = ()
    origin: list[str] = field(default_factory=list)  # origin of the non-linear node
    pre_origin: list[str] = field(default_factory=list)  # origins of the affine nodes folded into the pre-activation
    lower: np.ndarray | None = None  # pre-activation bounds on the region, when known ([n_pre])
    upper: np.ndarray | None = None
    phase: np.ndarray | None = None  # ReLU layers: per neuron +1 active, -1 dead, 0 unstable on the region

    def __post_init__(self) -> None:
        if not self.source:
            self.source = self.name
        if self.neuron_ids is None:
            self.neuron_ids = np.arange(self.size)
        if not self.shape:
            self.shape = (self.size,)

    @property
    def n_pre(self) -> int:
        """Number of pre-activation rows."""
        return int(self.bias.shape[0])

    @property
    def size(self) -> int:
        """Number of outputs (neurons)."""
        return int(self.groups.shape[0]) if self.groups is not None else self.n_pre

    def weights(self) -> int:
        """Number of non-zero incoming weights."""
        return sum(int(np.count_nonzero(m)) for m in self.inputs.values())

    def keep_rows(self, keep: np.ndarray) -> None:
        """Keep only the pre-activation rows (= neurons, for element-wise layers) in the boolean mask ``keep``."""
        assert self.groups is None, "keep_rows is for element-wise layers"
        self.inputs = {s: m[keep] for s, m in self.inputs.items()}
        self.bias = self.bias[keep]
        assert self.neuron_ids is not None
        self.neuron_ids = self.neuron_ids[keep]
        if self.lower is not None and self.upper is not None:
            self.lower, self.upper = self.lower[keep], self.upper[keep]
        if self.phase is not None:
            self.phase = self.phase[keep]
        self.shape = (self.size,) if keep.size != int(keep.sum()) else self.shape


@dataclass
class LayerNet:
    """A network in layered normal form; ``layers[-1]`` is the output layer (kind ``output``)."""

    n_inputs: int
    input_shape: tuple[int, ...]
    layers: list[Layer]
    removed: dict[str, dict[str, list]] = field(default_factory=dict)  # source -> what -> ids
    sliced: bool = False

    @property
    def output(self) -> Layer:
        return self.layers[-1]

    @property
    def hidden(self) -> list[Layer]:
        return self.layers[:-1]

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def source_size(self, name: str) -> int:
        return self.n_inputs if name == INPUT else self.layer(name).size

    def consumers(self, name: str) -> list[Layer]:
        """Layers that read ``name``."""
        return [layer for layer in self.layers if name in layer.inputs]

    def copy(self) -> LayerNet:
        return copy.deepcopy(self)

    def record(self, source: str, what: str, items: list) -> None:
        """Remember what a pass removed from original node ``source`` (for certificates and reports)."""
        if items:
            self.removed.setdefault(source, {}).setdefault(what, []).extend(items)

    # ---- figures -------------------------------------------------------------------
    def n_relus(self) -> int:
        return sum(layer.size for layer in self.hidden if layer.kind == "relu")

    def n_neurons(self) -> int:
        """Neurons: outputs of non-linear nodes plus the network outputs."""
        return sum(layer.size for layer in self.layers)

    def n_weights(self) -> int:
        """Non-zero weights (the graph's ``count_weights`` of :meth:`to_graph`)."""
        return sum(layer.weights() for layer in self.layers)

    def is_chain(self) -> bool:
        """Whether every layer reads only the layer before it (the first one: the input)."""
        prev = INPUT
        for layer in self.layers:
            if any(s != prev for s in layer.inputs):
                return False
            if layer.kind not in ("relu", "output"):
                return False
            prev = layer.name
        return True

    # ---- evaluation -----------------------------------------------------------------
    def forward(self, x: np.ndarray, keep: bool = False) -> np.ndarray | dict[str, np.ndarray]:
        """Outputs ``[N, n_out]`` for inputs ``[N, n_in]`` (float64); with ``keep``, every
        layer's pre-activation (key ``name + ".pre"``) and output."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.n_inputs)
        values: dict[str, np.ndarray] = {INPUT: x}
        for layer in self.layers:
            z = np.broadcast_to(layer.bias, (x.shape[0], layer.n_pre)).copy()
            for s, m in layer.inputs.items():
                z += values[s] @ m.T
            values[layer.name + ".pre"] = z
            values[layer.name] = activate(layer, z)
        return values if keep else values[self.output.name]

    # ---- back to a graph ---------------------------------------------------------------
    def to_graph(self) -> nx.DiGraph:
        """The graph of this form (see the module docstring)."""
        g = nx.DiGraph()
        g.add_node(INPUT, op="input", size=self.n_inputs, shape=tuple(self.input_shape), origin=["input"])
        taken = {INPUT} | {layer.name for layer in self.layers}
        for layer in self.layers:
            is_out = layer.kind == OUTPUT
            pre = layer.name if is_out else _fresh(layer.pre_name, taken)
            taken.add(pre)
            blocks = [(s, m) for s, m in layer.inputs.items()]
            if not blocks:  # a constant pre-activation: read the input with zero weights
                blocks = [(INPUT, np.zeros((layer.n_pre, self.n_inputs)))]
            pre_attrs: dict[str, Any] = {"op": "affine", "size": layer.n_pre,
                                         "shape": layer.shape if is_out else (layer.n_pre,),
                                         "origin": list(layer.pre_origin)}
            if len(blocks) == 1:
                (s, m), = blocks
                g.add_node(pre, W=m, b=layer.bias, **pre_attrs)
                g.add_edge(s, pre, port=0)
            else:
                parts = []
                for k, (s, m) in enumerate(blocks):
                    part = _fresh(f"{pre}/{s}", taken)
                    taken.add(part)
                    g.add_node(part, W=m, b=layer.bias if k == 0 else np.zeros(layer.n_pre),
                               **{**pre_attrs, "shape": (layer.n_pre,)})
                    g.add_edge(s, part, port=0)
                    parts.append(part)
                g.add_node(pre, op="sum", size=layer.n_pre, shape=pre_attrs["shape"], origin=list(layer.pre_origin),
                           signs=[1.0] * len(parts))
                for port, part in enumerate(parts):
                    g.add_edge(part, pre, port=port)
            if is_out:
                continue
            attrs: dict[str, Any] = {"op": layer.kind, "size": layer.size, "shape": tuple(layer.shape),
                                     "origin": list(layer.origin), "source": layer.source,
                                     "neuron_ids": np.asarray(layer.neuron_ids)}
            if layer.groups is not None:
                attrs["groups"] = layer.groups
            if layer.lower is not None and layer.upper is not None:
                attrs["pre_lower"], attrs["pre_upper"] = layer.lower, layer.upper
            if layer.phase is not None:
                attrs["phase"] = layer.phase
            g.add_node(layer.name, **attrs)
            g.add_edge(pre, layer.name, port=0)
        g.graph["output"] = self.output.name
        g.graph["n_inputs"] = self.n_inputs
        g.graph["n_outputs"] = self.output.size
        g.graph["removed"] = copy.deepcopy(self.removed)
        g.graph["sliced"] = self.sliced
        if self.output.lower is not None:
            g.nodes[self.output.name]["pre_lower"] = self.output.lower
            g.nodes[self.output.name]["pre_upper"] = self.output.upper
        return g


def activate(layer: Layer, z: np.ndarray) -> np.ndarray:
    """The layer's non-linearity applied to pre-activations ``z`` ``[N, n_pre]``."""
    if layer.kind == "relu":
        return np.maximum(z, 0.0)
    if layer.kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if layer.kind == "tanh":
        return np.tanh(z)
    if layer.kind == "maxpool":
        assert layer.groups is not None
        padded = np.concatenate([z, np.full((z.shape[0], 1), -np.inf)], axis=1)
        return padded[:, layer.groups].max(axis=2)
    return z


def _fresh(name: str, taken: set[str]) -> str:
    base, k = name, 1
    while name in taken:
        name = f"{base}_{k}"
        k += 1
    return name


def _dense(m: np.ndarray) -> np.ndarray:
    return np.diag(m) if m.ndim == 1 else m


def _apply(W: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``W @ m`` where either may be a diagonal (1-D)."""
    if W.ndim == 1 and m.ndim == 1:
        return W * m
    if W.ndim == 1:
        return W[:, None] * m
    if m.ndim == 1:
        return W * m[None, :]
    return W @ m


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.ndim == 1 and b.ndim == 1:
        return a + b
    return _dense(a) + _dense(b)


def from_graph(graph: nx.DiGraph) -> LayerNet:
    """Read a graph (from :func:`verify.graph.extract.extract_graph`, or one this module wrote) into layered form."""
    forms: dict[str, Form] = {}
    layers: list[Layer] = []
    origins: dict[str, list[str]] = {}  # affine origins folded into each node's form
    input_node = next((n for n, d in graph.nodes(data=True) if d["op"] == "input"), None)
    if input_node is None:
        raise ModelError("the graph has no input node")
    n_in = int(graph.nodes[input_node]["size"])
    used_names = {INPUT}
    rename = {input_node: INPUT}
    out_name = graph.graph["output"]
    for node in nx.topological_sort(graph):
        data = graph.nodes[node]
        op = data["op"]
        preds = [src for src, _, _ in sorted(graph.in_edges(node, data="port"), key=lambda e: e[2])]
        size = int(data["size"])
        if op == "input":
            forms[node] = ({INPUT: np.ones(size)}, np.zeros(size))
            origins[node] = []
        elif op == "identity":
            forms[node] = forms[preds[0]]
            origins[node] = origins[preds[0]]
        elif op == "affine":
            W, b = np.asarray(data["W"], dtype=np.float64), np.asarray(data["b"], dtype=np.float64)
            blocks, c = forms[preds[0]]
            forms[node] = ({s: _apply(W, m) for s, m in blocks.items()}, (W * c if W.ndim == 1 else W @ c) + b)
            origins[node] = origins[preds[0]] + list(data.get("origin", []))
        elif op == "sum":
            total: dict[str, np.ndarray] = {}
            bias = np.zeros(size)
            origin: list[str] = []
            for sign, src in zip(data["signs"], preds):
                blocks, c = forms[src]
                for s, m in blocks.items():
                    term = m * sign
                    total[s] = _add(total[s], term) if s in total else term
                bias = bias + sign * c
                origin += origins[src]
            forms[node] = (total, bias)
            origins[node] = origin + list(data.get("origin", []))
        elif op in NONLINEAR:
            blocks, c = forms[preds[0]]
            name = _fresh(str(node), used_names)
            used_names.add(name)
            rename[node] = name
            pre_node = preds[0]
            pre_name = str(pre_node) if graph.nodes[pre_node]["op"] in ("affine", "sum") else f"{name}.pre"
            layers.append(Layer(
                name=name, kind=op, inputs={s: _dense(m).copy() for s, m in blocks.items()},
                bias=np.array(c, dtype=float),
                pre_name=pre_name, source=str(data.get("source", node)),
                neuron_ids=np.asarray(data["neuron_ids"]) if "neuron_ids" in data else None,
                groups=np.asarray(data["groups"]) if op == "maxpool" else None,
                shape=tuple(data.get("shape", (size,))), origin=list(data.get("origin", [])),
                pre_origin=list(origins[preds[0]]),
                lower=np.asarray(data["pre_lower"]) if "pre_lower" in data else None,
                upper=np.asarray(data["pre_upper"]) if "pre_upper" in data else None,
                phase=np.asarray(data["phase"]) if "phase" in data else None))
            forms[node] = ({name: np.ones(size)}, np.zeros(size))
            origins[node] = []
        else:
            raise ModelError(f"cannot compress a graph with {op!r} node {node!r}")
    blocks, c = forms[out_name]
    out_data = graph.nodes[out_name]
    out = Layer(name=_fresh(str(out_name), used_names), kind=OUTPUT,
                inputs={s: _dense(m).copy() for s, m in blocks.items()}, bias=np.array(c, dtype=float),
                pre_name=str(out_name), shape=tuple(out_data.get("shape", (len(c),))),
                pre_origin=list(origins[out_name]) or list(out_data.get("origin", [])),
                lower=np.asarray(out_data["pre_lower"]) if "pre_lower" in out_data else None,
                upper=np.asarray(out_data["pre_upper"]) if "pre_upper" in out_data else None)
    # keep only the layers the output depends on, in order
    net = LayerNet(n_in, tuple(graph.nodes[input_node].get("shape", (n_in,))), layers + [out],
                   removed=copy.deepcopy(graph.graph.get("removed", {})), sliced=bool(graph.graph.get("sliced", False)))
    needed = {out.name}
    for layer in reversed(net.layers):
        if layer.name in needed:
            needed |= set(layer.inputs)
    net.layers = [layer for layer in net.layers if layer.name in needed]
    return net
