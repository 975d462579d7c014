"""Branch and bound over sub-boxes of a region, for properties that a bound per box settles.

``bound(lo, hi)`` gives one number per box (``[B, n]`` tensors): a derivative bound, a
bound on a difference; ``closes(value)`` says whether it proves the property on that box.
Open boxes are split in half along their relatively widest dimension among
``split_dims``, the worst (largest ``gap``) first, as many per call as ``cap`` allows,
until every box is closed or the deadline passes.  When the region's own bound does not
close it, ``search`` (a pair search, until the deadline it is given) runs for a share of
the time, and again with the time left when splitting stops with boxes open.

The values of the leaves (closed and open) cover the whole region: their extreme is a
bound the region has (the certified constant, change or delta).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from verify.relational.pairs import PairCounterexample

#: Share of the time the first pair search gets.
FIRST_SEARCH_SHARE = 0.15

Search = Callable[[float], PairCounterexample | None]


@dataclass
class BoxTree:
    """The split tree (the ``input-split`` layout of certificates): node 0 is the region; node ``i`` is
    the ``side`` half (0: below, 1: above) of ``parent[i]`` cut at ``value[i]`` along ``dim[i]``."""

    parent: list[int] = field(default_factory=lambda: [-1])
    dim: list[int] = field(default_factory=lambda: [0])
    value: list[float] = field(default_factory=lambda: [0.0])
    side: list[int] = field(default_factory=lambda: [0])
    closed: list[tuple[int, float]] = field(default_factory=list)  # (node, value) of each closed leaf

    def add(self, parent: int, dim: int, value: float, side: int) -> int:
        self.parent.append(parent)
        self.dim.append(dim)
        self.value.append(float(value))
        self.side.append(side)
        return len(self.parent) - 1


@dataclass
class BoxOutcome:
    status: str  # verified, falsified, open
    values: list[float]  # the leaves' values (closed and open): together they cover the region
    pair: PairCounterexample | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    tree: BoxTree = field(default_factory=BoxTree)


def prove_on_boxes(lower: np.ndarray, upper: np.ndarray, bound: Callable[[torch.Tensor, torch.Tensor], list[float]],
                   closes: Callable[[float], bool], gap: Callable[[float], float], split_dims: list[int],
                   cap: int, deadline: float, search: Search | None = None,
                   progress: Callable[[str], None] | None = None, label: str = "bounds") -> BoxOutcome:
    start = time.monotonic()
    root_lo, root_hi = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    root_width = np.where(root_hi > root_lo, root_hi - root_lo, 1.0)
    queue: list[tuple[float, int, np.ndarray, np.ndarray, float, int]] = []
    closed: list[float] = []
    counter = boxes = 0
    tree = BoxTree()
    pending = [(root_lo, root_hi, 0)]
    searched = search is None
    while pending:
        lo = torch.as_tensor(np.stack([p[0] for p in pending]))
        hi = torch.as_tensor(np.stack([p[1] for p in pending]))
        values = bound(lo, hi)
        boxes += len(pending)
        for (plo, phi, node), value in zip(pending, values):
            if closes(value):
                closed.append(value)
                tree.closed.append((node, value))
            else:
                counter += 1
                heapq.heappush(queue, (-gap(value), counter, plo, phi, value, node))
        if not queue:
            break
        if not searched:  # the region's bound did not settle it: a short pair search first
            searched = True
            pair = search(min(deadline, time.monotonic() + FIRST_SEARCH_SHARE * (deadline - start)))  # type: ignore[misc]
            if pair is not None:
                return BoxOutcome("falsified", closed + [e[4] for e in queue], pair,
                                  {"boxes": boxes, "open": len(queue)}, tree)
        if progress is not None:
            progress(f"{label}: {len(queue)} open boxes, {boxes} bounded")
        if not split_dims or time.monotonic() >= deadline:
            break
        pending, popped = [], []
        while queue and len(pending) < cap:
            entry = heapq.heappop(queue)
            popped.append(entry)
            _, _, plo, phi, _, node = entry
            rel = np.full(root_lo.size, -1.0)
            rel[split_dims] = ((phi - plo) / root_width)[split_dims]
            d = int(np.argmax(rel))
            if rel[d] <= 1e-9:  # nothing left to split: this box stays open, and the answer with it
                pending = []
                break
            mid = (plo[d] + phi[d]) / 2
            a_hi, b_lo = phi.copy(), plo.copy()
            a_hi[d], b_lo[d] = mid, mid
            pending += [(plo, a_hi, -1), (b_lo, phi, -1), (node, d, mid)]  # children numbered once bounded
        if not pending:  # the boxes taken go back (their bounds still cover their parts of the region)
            for entry in popped:
                heapq.heappush(queue, entry)
            break
        pending = _numbered(pending, tree)
    stats = {"boxes": boxes, "open": len(queue), "tree_nodes": len(tree.parent)}
    values = closed + [e[4] for e in queue]
    if not queue:
        return BoxOutcome("verified", values, None, stats, tree)
    if search is not None and time.monotonic() < deadline:
        pair = search(deadline)
        if pair is not None:
            return BoxOutcome("falsified", values, pair, stats, tree)
    return BoxOutcome("open", values, None, stats, tree)


def answer(outcome: Any, method: str, deadline: float, loose: str, details: dict[str, Any]) -> tuple[str, str, str]:
    """``(verdict, method, reason)`` of a box proof's outcome (anything with ``status`` and ``pair``); a
    falsified one's pair goes into ``details`` (``pair``, ``pair_lines``)."""
    if outcome.status == "verified":
        return "verified", method, ""
    if outcome.status == "falsified":
        details["pair"] = outcome.pair.to_json()
        details["pair_lines"] = outcome.pair.lines()
        return "falsified", outcome.pair.method, ""
    return "unknown", method, "timeout" if time.monotonic() >= deadline else loose


def _numbered(pending: list[Any], tree: BoxTree) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """The children of a round with their tree nodes (entries come as two children then their cut)."""
    out = []
    for k in range(0, len(pending), 3):
        (alo, ahi, _), (blo, bhi, _), (parent, d, mid) = pending[k:k + 3]
        out.append((alo, ahi, tree.add(parent, d, mid, 0)))
        out.append((blo, bhi, tree.add(parent, d, mid, 1)))
    return out
