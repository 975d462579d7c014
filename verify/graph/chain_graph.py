"""Between the chain form and the flat networkx graph compression rewrites."""

from __future__ import annotations

import networkx as nx
import numpy as np

from verify.compress.fold import drop_identities, fold_affine
from verify.graph.chain import LinearChain


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
