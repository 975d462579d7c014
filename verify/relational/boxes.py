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
class BoxOutcome:
    status: str  # verified, falsified, open
    values: list[float]  # the leaves' values (closed and open): together they cover the region
    pair: PairCounterexample | None = None
    stats: dict[str, Any] = field(default_factory=dict)


def prove_on_boxes(lower: np.ndarray, upper: np.ndarray, bound: Callable[[torch.Tensor, torch.Tensor], list[float]],
                   closes: Callable[[float], bool], gap: Callable[[float], float], split_dims: list[int],
                   cap: int, deadline: float, search: Search | None = None,
                   progress: Callable[[str], None] | None = None, label: str = "bounds") -> BoxOutcome:
    start = time.monotonic()
    root_lo, root_hi = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    root_width = np.where(root_hi > root_lo, root_hi - root_lo, 1.0)
    queue: list[tuple[float, int, np.ndarray, np.ndarray, float]] = []
    closed: list[float] = []
    counter = boxes = 0
    pending = [(root_lo, root_hi)]
    searched = search is None
    while pending:
        lo = torch.as_tensor(np.stack([p[0] for p in pending]))
        hi = torch.as_tensor(np.stack([p[1] for p in pending]))
        values = bound(lo, hi)
        boxes += len(pending)
        for (plo, phi), value in zip(pending, values):
            if closes(value):
                closed.append(value)
            else:
                counter += 1
                heapq.heappush(queue, (-gap(value), counter, plo, phi, value))
        if not queue:
            break
        if not searched:  # the region's bound did not settle it: a short pair search first
            searched = True
            pair = search(min(deadline, time.monotonic() + FIRST_SEARCH_SHARE * (deadline - start)))  # type: ignore[misc]
            if pair is not None:
                return BoxOutcome("falsified", closed + [e[4] for e in queue], pair,
                                  {"boxes": boxes, "open": len(queue)})
        if progress is not None:
            progress(f"{label}: {len(queue)} open boxes, {boxes} bounded")
        if not split_dims or time.monotonic() >= deadline:
            break
        pending, popped = [], []
        while queue and len(pending) < cap:
            entry = heapq.heappop(queue)
            popped.append(entry)
            _, _, plo, phi, _ = entry
            rel = np.full(root_lo.size, -1.0)
            rel[split_dims] = ((phi - plo) / root_width)[split_dims]
            d = int(np.argmax(rel))
            if rel[d] <= 1e-9:  # nothing left to split: this box stays open, and the answer with it
                pending = []
                break
            mid = (plo[d] + phi[d]) / 2
            a_hi, b_lo = phi.copy(), plo.copy()
            a_hi[d], b_lo[d] = mid, mid
            pending += [(plo, a_hi), (b_lo, phi)]
        if not pending:  # the boxes taken go back (their bounds still cover their parts of the region)
            for entry in popped:
                heapq.heappush(queue, entry)
            break
    stats = {"boxes": boxes, "open": len(queue)}
    values = closed + [e[4] for e in queue]
    if not queue:
        return BoxOutcome("verified", values, None, stats)
    if search is not None and time.monotonic() < deadline:
        pair = search(deadline)
        if pair is not None:
            return BoxOutcome("falsified", values, pair, stats)
    return BoxOutcome("open", values, None, stats)
