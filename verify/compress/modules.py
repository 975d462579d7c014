"""Split a (compressed) network into modules: series stages, parallel components, a size rule.

The last pass of :func:`verify.compress.compress`; :mod:`verify.modules` re-exports it with
the module pictures.

The neuron-level graph has one node per neuron (output of a non-linear node) and an
edge wherever a non-zero weight (or a max-pooling window) connects two neurons.  The
layers, in topological order, are cut into *stages* (series cuts): a stage grows by the
next layer as long as each connected component of its neuron graph (edges inside the
stage only) has at most ``max_unstable`` unstable ReLUs, the size the exact backend
handles; a layer that alone exceeds it forms a stage by itself.  Within a stage the
connected components are independent (*parallel*) sub-networks given the stage's
inputs; they are packed, in order, into modules of at most ``max_unstable`` unstable
ReLUs each.  The network's output is a last module of its own (kind ``output``).

A module knows its interfaces: ``inputs`` (for each node outside the module that it
reads, the neuron indices read) and ``outputs`` (for each of its nodes, the neurons read
outside it).  Node names are the graph's non-linear nodes (each comes with the affine
node that computes its pre-activation) and the output node.  Unstable means a ReLU
whose phase is not known on the region: from the graph's ``phase`` attributes (written by
:func:`verify.compress.compress`), from ``pre_bounds`` if given, else every ReLU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from verify.compress.bounds import thresholds
from verify.compress.layers import INPUT, Layer, LayerNet, from_graph

#: Stages whose neuron graph would have more edges than this are not grown further (cost guard).
MAX_STAGE_EDGES = 200_000


@dataclass
class Module:
    """A group of neurons with its input and output interface."""

    name: str
    stage: int
    kind: str  # "hidden" or "output"
    nodes: dict[str, np.ndarray]  # graph node -> indices of its neurons in the module
    inputs: dict[str, np.ndarray] = field(default_factory=dict)  # node outside -> neuron indices read
    outputs: dict[str, np.ndarray] = field(default_factory=dict)  # own node -> neuron indices read outside
    n_unstable: int = 0

    @property
    def n_neurons(self) -> int:
        return int(sum(len(v) for v in self.nodes.values()))

    @property
    def input_width(self) -> int:
        return int(sum(len(v) for v in self.inputs.values()))

    @property
    def output_width(self) -> int:
        return int(sum(len(v) for v in self.outputs.values()))

    def to_json(self) -> dict[str, Any]:
        def ids(d: dict[str, np.ndarray]) -> dict[str, list[int]]:
            return {k: [int(i) for i in v] for k, v in d.items()}

        return {"name": self.name, "stage": self.stage, "kind": self.kind, "n_neurons": self.n_neurons,
                "n_unstable": self.n_unstable, "nodes": ids(self.nodes), "inputs": ids(self.inputs),
                "outputs": ids(self.outputs)}


def dependency(layer: Layer, source: str) -> np.ndarray:
    """Boolean ``[size, n_source]``: which source neurons each output of ``layer`` depends on."""
    dep = layer.inputs[source] != 0
    if layer.groups is None:
        return dep
    padded = np.concatenate([dep, np.zeros((1, dep.shape[1]), dtype=bool)])
    return padded[layer.groups].any(axis=1)


def unstable_mask(layer: Layer) -> np.ndarray:
    """Per neuron of the layer: an unstable ReLU (phase unknown or 0)."""
    if layer.kind != "relu":
        return np.zeros(layer.size, dtype=bool)
    if layer.phase is None:
        return np.ones(layer.size, dtype=bool)
    return layer.phase == 0


def _components(net: LayerNet, stage: list[Layer]) -> list[list[tuple[str, int]]] | None:
    names = {layer.name for layer in stage}
    g = nx.Graph()
    edges = 0
    for layer in stage:
        g.add_nodes_from((layer.name, i) for i in range(layer.size))
        for s in layer.inputs:
            if s in names:
                rows, cols = np.nonzero(dependency(layer, s))
                edges += rows.size
                if edges > MAX_STAGE_EDGES:
                    return None
                g.add_edges_from(((layer.name, int(i)), (s, int(j))) for i, j in zip(rows, cols))
    order = {layer.name: k for k, layer in enumerate(stage)}
    comps = [sorted(c, key=lambda n: (order[n[0]], n[1])) for c in nx.connected_components(g)]
    return sorted(comps, key=lambda c: (order[c[0][0]], c[0][1]))


def _unstable(comp: list[tuple[str, int]], masks: dict[str, np.ndarray]) -> int:
    return int(sum(masks[name][i] for name, i in comp))


def split_net(net: LayerNet, max_unstable: int = 12) -> list[Module]:
    """Modules of a network in layered form (see the module docstring)."""
    masks = {layer.name: unstable_mask(layer) for layer in net.hidden}
    stages: list[tuple[list[Layer], list[list[tuple[str, int]]]]] = []
    cur: list[Layer] = []
    cur_comps: list[list[tuple[str, int]]] = []
    for layer in net.hidden:
        cand = _components(net, cur + [layer]) if cur else None
        if cur and cand is not None and max(_unstable(c, masks) for c in cand) <= max_unstable:
            cur, cur_comps = cur + [layer], cand
            continue
        if cur:
            stages.append((cur, cur_comps))
        cur = [layer]
        cur_comps = [[(layer.name, i)] for i in range(layer.size)]
    if cur:
        stages.append((cur, cur_comps))

    modules: list[Module] = []
    for k, (_, comps) in enumerate(stages):
        group: list[tuple[str, int]] = []
        count = 0
        for comp in comps:
            u = _unstable(comp, masks)
            if group and count + u > max_unstable:
                modules.append(_module(f"M{len(modules) + 1}", k + 1, group, count))
                group, count = [], 0
            group += comp
            count += u
        if group:
            modules.append(_module(f"M{len(modules) + 1}", k + 1, group, count))
    out = net.output
    modules.append(Module(name="out", stage=len(stages) + 1, kind="output",
                          nodes={out.name: np.arange(out.size)}))
    _interfaces(net, modules)
    return modules


def _module(name: str, stage: int, members: list[tuple[str, int]], unstable: int) -> Module:
    nodes: dict[str, list[int]] = {}
    for layer, i in members:
        nodes.setdefault(layer, []).append(i)
    return Module(name=name, stage=stage, kind="hidden", nodes={k: np.array(sorted(v)) for k, v in nodes.items()},
                  n_unstable=unstable)


def _interfaces(net: LayerNet, modules: list[Module]) -> None:
    owner: dict[str, np.ndarray] = {layer.name: np.full(layer.size, -1) for layer in net.layers}
    for k, mod in enumerate(modules):
        for name, idx in mod.nodes.items():
            owner[name][idx] = k
    for k, mod in enumerate(modules):
        reads: dict[str, np.ndarray] = {}
        for name, idx in mod.nodes.items():
            layer = net.layer(name)
            for s in layer.inputs:
                used = dependency(layer, s)[idx].any(axis=0)
                if s != INPUT:
                    used &= owner[s] != k
                if used.any():
                    reads[s] = reads[s] | used if s in reads else used
        mod.inputs = {s: np.flatnonzero(v) for s, v in reads.items()}
    for k, mod in enumerate(modules):
        if mod.kind == "output":
            mod.outputs = dict(mod.nodes)
            continue
        for name, idx in mod.nodes.items():
            read = np.zeros(net.layer(name).size, dtype=bool)
            for c in net.consumers(name):
                outside = owner[c.name] != k
                read |= dependency(c, name)[outside].any(axis=0)
            sel = idx[read[idx]]
            if sel.size:
                mod.outputs[name] = sel


def set_phases_from_bounds(net: LayerNet, pre_bounds: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Phases of the ReLU layers named in ``pre_bounds`` (threshold on ``max(|l|, |u|)``), in place."""
    for layer in net.hidden:
        if layer.kind == "relu" and layer.name in pre_bounds:
            lo, hi = (np.asarray(v, dtype=np.float64).reshape(-1) for v in pre_bounds[layer.name])
            thr = thresholds(np.maximum(np.abs(lo), np.abs(hi)))
            layer.phase = np.where(lo > thr, 1, np.where(hi < -thr, -1, 0)).astype(np.int8)


def split_modules(graph: nx.DiGraph, pre_bounds: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
                  max_unstable: int = 12) -> list[Module]:
    """Modules of a graph (usually the compressed one); ``pre_bounds`` maps ReLU node names to
    their pre-activation bounds ``(l, u)`` on the region."""
    net = from_graph(graph)
    if pre_bounds is not None:
        set_phases_from_bounds(net, pre_bounds)
    return split_net(net, max_unstable)


def module_graph(modules: list[Module], n_inputs: int) -> nx.DiGraph:
    """The module-level graph: nodes ``input`` and the modules, edges labelled with the interface width."""
    g = nx.DiGraph()
    g.add_node(INPUT, kind="input", n_neurons=n_inputs, n_unstable=0, stage=0)
    where: dict[tuple[str, int], str] = {}
    for mod in modules:
        g.add_node(mod.name, kind=mod.kind, n_neurons=mod.n_neurons, n_unstable=mod.n_unstable, stage=mod.stage)
        for name, idx in mod.nodes.items():
            for i in idx:
                where[(name, int(i))] = mod.name
    for mod in modules:
        for s, idx in mod.inputs.items():
            counts: dict[str, int] = {}
            for i in idx:
                src = INPUT if s == INPUT else where[(s, int(i))]
                counts[src] = counts.get(src, 0) + 1
            for src, n in counts.items():
                width = g.edges[src, mod.name]["width"] + n if g.has_edge(src, mod.name) else n
                g.add_edge(src, mod.name, width=width)
    return g
