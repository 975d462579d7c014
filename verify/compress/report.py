"""What a compression pass did: a small record every pass returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import networkx as nx
import numpy as np


@dataclass
class PassReport:
    """Figures of one pass.  ``error_bound`` is a proven bound on how much the pass can
    change any property row's value on the region (0 for exact passes)."""

    name: str
    nodes_removed: int = 0
    neurons_removed: int = 0
    relus_removed: int = 0
    relus_to_identity: int = 0
    weights_before: int = 0
    weights_after: int = 0
    error_bound: float = 0.0
    detail: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def count_weights(graph: nx.DiGraph) -> int:
    """Number of non-zero weights of the graph's affine nodes."""
    total = 0
    for _, data in graph.nodes(data=True):
        if data["op"] == "affine":
            total += int(np.count_nonzero(data["W"]))
    return total


def count_relus(graph: nx.DiGraph) -> int:
    """Number of ReLU neurons in the graph."""
    return sum(int(d["size"]) for _, d in graph.nodes(data=True) if d["op"] == "relu")
