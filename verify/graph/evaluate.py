"""Evaluate a graph from :mod:`verify.graph.extract` on a batch of flat inputs (float64)."""

from __future__ import annotations

import networkx as nx
import numpy as np


def apply_affine(W: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x @ W.T + b`` for a dense ``W`` or ``x * W + b`` for a diagonal one (batch first)."""
    return (x * W if W.ndim == 1 else x @ W.T) + b


def evaluate_graph(graph: nx.DiGraph, x: np.ndarray, keep: bool = False) -> np.ndarray | dict[str, np.ndarray]:
    """Outputs ``[N, n_out]`` for inputs ``[N, n_in]``; with ``keep`` every node's value."""
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(x.shape[0] if x.ndim > 1 else 1, -1)
    values: dict[str, np.ndarray] = {}
    for node in nx.topological_sort(graph):
        data = graph.nodes[node]
        op = data["op"]
        preds = sorted(graph.in_edges(node, data="port"), key=lambda e: e[2])
        ins = [values[src] for src, _, _ in preds]
        if op == "input":
            values[node] = x
        elif op == "identity":
            values[node] = ins[0]
        elif op == "affine":
            values[node] = apply_affine(data["W"], data["b"], ins[0])
        elif op == "relu":
            values[node] = np.maximum(ins[0], 0.0)
        elif op == "sigmoid":
            values[node] = 1.0 / (1.0 + np.exp(-ins[0]))
        elif op == "tanh":
            values[node] = np.tanh(ins[0])
        elif op == "sum":
            values[node] = sum(s * v for s, v in zip(data["signs"], ins))
        elif op == "maxpool":
            groups = data["groups"]
            padded = np.concatenate([ins[0], np.full((ins[0].shape[0], 1), -np.inf)], axis=1)
            values[node] = padded[:, groups].max(axis=2)  # index -1 picks the -inf column
        else:
            raise ValueError(f"unknown op {op!r} at node {node!r}")
    if keep:
        return values
    return values[graph.graph["output"]]
