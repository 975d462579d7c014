"""Exact structural passes: drop identities, fold consecutive affine operations.

``A2 (A1 x + b1) + b2 = (A2 A1) x + (A2 b1 + b2)``: exact in real arithmetic; the
float64 product rounds each entry by at most ``n * 2^-53`` relative to ``|A2| |A1|``,
which the check's safety margin covers (README, "What a verdict means").  This folds
``Sub``/``Div`` input normalisation into the first layer and BatchNorm into the
neighbouring Conv/Linear, since all of them are affine nodes after extraction.
"""

from __future__ import annotations

import networkx as nx

from verify.compress.report import PassReport, count_weights
from verify.graph.chain import compose_affine


def _only_successor(graph: nx.DiGraph, node: str) -> str | None:
    succ = list(graph.successors(node))
    return succ[0] if len(succ) == 1 else None


def drop_identities(graph: nx.DiGraph) -> tuple[nx.DiGraph, PassReport]:
    """Remove identity nodes (flatten, reshape, Identity): on flat vectors they do nothing."""
    g = graph.copy()
    removed = 0
    for node in [n for n in nx.topological_sort(g) if g.nodes[n]["op"] == "identity"]:
        (src,) = list(g.predecessors(node))
        for _, dst, data in list(g.out_edges(node, data=True)):
            g.add_edge(src, dst, **data)
        if g.graph["output"] == node:
            g.graph["output"] = src
        g.remove_node(node)
        removed += 1
    return g, PassReport("drop identities", nodes_removed=removed,
                         detail=f"{removed} reshape/flatten/identity node(s)")


def fold_affine(graph: nx.DiGraph) -> tuple[nx.DiGraph, PassReport]:
    """Merge each affine node into a following affine node when it is that node's only input."""
    g = graph.copy()
    merged = 0
    before = count_weights(g)
    changed = True
    while changed:
        changed = False
        for node in list(nx.topological_sort(g)):
            if node not in g or g.nodes[node]["op"] != "affine":
                continue
            nxt = _only_successor(g, node)
            if nxt is None or g.nodes[nxt]["op"] != "affine" or node == g.graph["output"]:
                continue
            a, b = g.nodes[node], g.nodes[nxt]
            W, bias = compose_affine(b["W"], b["b"], a["W"], a["b"])
            b["W"], b["b"] = W, bias
            b["origin"] = list(a["origin"]) + list(b["origin"])
            (src,) = list(g.predecessors(node))
            g.add_edge(src, nxt, port=g.edges[node, nxt]["port"])
            g.remove_node(node)
            merged += 1
            changed = True
    return g, PassReport("fold affine", nodes_removed=merged, weights_before=before, weights_after=count_weights(g),
                         detail=f"{merged} affine operation(s) folded into their successor")
