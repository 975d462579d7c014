"""The chain form of a graph: ``z_k = W_k a_{k-1} + b_k``, ``a_k = relu(z_k)``, ``y = z_K``.

Most verification benchmarks (ACAS Xu, MNIST-FC, OVAL21 after Conv -> dense) are such
chains once identities are dropped and consecutive affine nodes folded.  The chain is
what the batched bound engine and branch-and-bound work on.  ``neuron_ids[k]`` keeps,
for each hidden neuron of ReLU layer ``k``, its index in the original ReLU node, so
compression (which deletes neurons) stays traceable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import torch

from verify.compress.fold import drop_identities, fold_affine


@dataclass
class LinearChain:
    """Affine layers with ReLUs between them (float64)."""

    weights: list[np.ndarray]  # W_k: [n_k, n_{k-1}]
    biases: list[np.ndarray]  # b_k: [n_k]
    relu_names: list[str] = field(default_factory=list)  # graph name of ReLU layer k (len K-1)
    neuron_ids: list[np.ndarray] = field(default_factory=list)  # original index of each hidden neuron
    sources: list[str] = field(default_factory=list)  # original ReLU node of each hidden layer

    def __post_init__(self) -> None:
        if not self.relu_names:
            self.relu_names = [f"relu{k}" for k in range(len(self.weights) - 1)]
        if not self.neuron_ids:
            self.neuron_ids = [np.arange(w.shape[0]) for w in self.weights[:-1]]
        if not self.sources:
            self.sources = list(self.relu_names)
        for k in range(1, len(self.weights)):
            assert self.weights[k].shape[1] == self.weights[k - 1].shape[0], "chain layer sizes do not match"

    @property
    def n_inputs(self) -> int:
        return int(self.weights[0].shape[1])

    @property
    def n_outputs(self) -> int:
        return int(self.weights[-1].shape[0])

    @property
    def hidden_sizes(self) -> list[int]:
        return [int(w.shape[0]) for w in self.weights[:-1]]

    def forward(self, x: np.ndarray) -> np.ndarray:
        a = np.asarray(x, dtype=np.float64)
        for k, (W, b) in enumerate(zip(self.weights, self.biases)):
            a = a @ W.T + b
            if k < len(self.weights) - 1:
                a = np.maximum(a, 0.0)
        return a

    def with_spec(self, C: np.ndarray, d: np.ndarray) -> LinearChain:
        """The chain whose outputs are ``C y - d`` (the property rows folded into the last layer)."""
        W = np.asarray(C, dtype=np.float64) @ self.weights[-1]
        b = np.asarray(C, dtype=np.float64) @ self.biases[-1] - np.asarray(d, dtype=np.float64)
        return LinearChain(self.weights[:-1] + [W], self.biases[:-1] + [b], list(self.relu_names),
                           list(self.neuron_ids), list(self.sources))

    def torch(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return ([torch.as_tensor(w, dtype=torch.float64) for w in self.weights],
                [torch.as_tensor(b, dtype=torch.float64) for b in self.biases])


def chain_eval(Ws: list[torch.Tensor], bs: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The outputs at the points ``x`` (float64) of the chain with these weights and biases
    (:meth:`LinearChain.torch`, possibly with the property rows folded into the last layer)."""
    a = x
    for k, (W, b) in enumerate(zip(Ws, bs)):
        a = a @ W.T + b
        if k < len(Ws) - 1:
            a = a.clamp(min=0)
    return a


def graph_to_chain(graph: nx.DiGraph) -> LinearChain | None:
    """The chain form of a graph, or None when it is not a chain of affine and ReLU nodes."""
    g, _ = drop_identities(graph)
    g, _ = fold_affine(g)
    order = list(nx.topological_sort(g))
    if any(g.out_degree(n) > 1 or g.in_degree(n) > 1 for n in order):
        return None
    ops = [g.nodes[n]["op"] for n in order]
    if ops[0] != "input" or order[-1] != g.graph["output"]:
        return None
    weights, biases, relu_names, ids, sources = [], [], [], [], []
    expect_affine = True
    for name, op in zip(order[1:], ops[1:]):
        data = g.nodes[name]
        if expect_affine:
            if op != "affine":
                return None
            W = data["W"]
            weights.append(np.diag(W) if W.ndim == 1 else np.asarray(W, dtype=np.float64))
            biases.append(np.asarray(data["b"], dtype=np.float64))
            expect_affine = False
        else:
            if op != "relu":
                return None
            relu_names.append(name)
            ids.append(np.asarray(data.get("neuron_ids", np.arange(data["size"]))))
            sources.append(str(data.get("source", name)))
            expect_affine = True
    if not weights:
        return None
    if expect_affine:  # the output is a ReLU: append an identity layer
        n = weights[-1].shape[0]
        weights.append(np.eye(n))
        biases.append(np.zeros(n))
    return LinearChain(weights, biases, relu_names, ids, sources)


def chain_to_graph(chain: LinearChain) -> nx.DiGraph:
    """The chain as a verify graph (affine and ReLU nodes); the inverse of :func:`graph_to_chain`."""
    g = nx.DiGraph()
    g.add_node("input", op="input", size=chain.n_inputs, shape=(chain.n_inputs,), origin=["input"])
    prev = "input"
    for k, (W, b) in enumerate(zip(chain.weights, chain.biases)):
        name = f"affine{k}"
        g.add_node(name, op="affine", size=W.shape[0], shape=(W.shape[0],), origin=[name], W=W, b=b)
        g.add_edge(prev, name, port=0)
        prev = name
        if k < len(chain.weights) - 1:
            relu = chain.relu_names[k]
            g.add_node(relu, op="relu", size=W.shape[0], shape=(W.shape[0],), origin=[relu])
            g.add_edge(prev, relu, port=0)
            prev = relu
    g.graph.update(output=prev, n_inputs=chain.n_inputs, n_outputs=chain.n_outputs)
    return g
