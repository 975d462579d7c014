"""Input-split branch and bound of one property spread over a Ray cluster (``verify check
--cluster``, issue 20).

1. This process splits the case's box (:func:`~verify.refine.input_split.input_split_bab`)
   until :data:`FRONTIER_PER_CPU` open boxes per cluster CPU wait.
2. The open boxes, worst bound first, are cut into batches; each batch is a Ray task
   (:func:`solve_batch`) that runs the same branch and bound from those boxes (a
   :class:`~verify.refine.input_split.Frontier`) for a slice of time, and returns its
   split tree, the boxes it left open (with the polytopes still open on each), or a
   candidate that it replayed on the original model (loaded in the worker from the
   model file's bytes: the same replay as in one process).
3. Each returned tree is grafted under the boxes it started from, so that the proof is one
   :class:`~verify.refine.input_split.SplitTree`, the kind a single process makes (the
   certificate and its checker are the same); the open boxes go back into the queue; the
   lowest open bound is the run's best bound.  The first candidate this process replays
   too ends the run; the tasks still running are cancelled.

A batch whose worker dies is retried by Ray (:data:`verify.cluster.RETRIES` times); a
batch lost beyond that, or one that overruns its slice, leaves its boxes unrefuted: the
answer is then open (unknown), never verified.  ReLU splitting (high-dimensional inputs)
and IR networks stay in one process.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from verify.cluster import RayPool, Task, TaskOutcome
from verify.falsify.base import replay_in_box
from verify.model.network import load_model
from verify.refine.input_split import Frontier, InputSplitOptions, InputSplitResult, SplitTree, input_split_bab
from verify.spec.property import Property

#: Open boxes per cluster CPU before the work is handed out.
FRONTIER_PER_CPU = 64
#: Seconds a batch runs before it hands its open boxes back (shorter near the deadline).
SLICE_SECONDS = 2.0
#: Most boxes in one batch.
MAX_BATCH = 256

#: Per worker process: the problems seen (their chains, polytopes and replay), by key.
_PROBLEMS: dict[str, tuple[list[torch.Tensor], list[torch.Tensor], list[np.ndarray], Callable[[np.ndarray], bool]]] = {}


def make_problem(Ws: list[torch.Tensor], bs: list[torch.Tensor], groups: list[np.ndarray], model_file: str,
                 prop: Property, case_index: int, options: InputSplitOptions) -> dict[str, Any]:
    """What every batch of one case needs, stored once in the object store: the chain
    (with the property's rows folded in), the polytopes' rows, the model file's bytes and
    the property (for the replay), and the options."""
    with open(model_file, "rb") as fh:
        model_bytes = fh.read()
    key = hashlib.sha256(model_bytes + repr((case_index, prop.sha256, prop.name)).encode()).hexdigest()
    return {"key": key, "Ws": [w.numpy() for w in Ws], "bs": [b.numpy() for b in bs], "groups": groups,
            "model_bytes": model_bytes, "model_name": os.path.basename(model_file), "prop": prop,
            "case_index": case_index, "options": options}


def _prepared(problem: dict[str, Any]) -> tuple[list[torch.Tensor], list[torch.Tensor], list[np.ndarray],
                                                 Callable[[np.ndarray], bool]]:
    key = problem["key"]
    if key not in _PROBLEMS:
        folder = tempfile.mkdtemp(prefix="verify-bab-")
        path = os.path.join(folder, problem["model_name"])
        with open(path, "wb") as fh:
            fh.write(problem["model_bytes"])
        model = load_model(path)
        prop, ci = problem["prop"], problem["case_index"]

        def is_unsafe(x: np.ndarray) -> bool:
            return replay_in_box(model, prop, x, "bab", ci) is not None

        _PROBLEMS[key] = ([torch.as_tensor(w) for w in problem["Ws"]], [torch.as_tensor(b) for b in problem["bs"]],
                          problem["groups"], is_unsafe)
    return _PROBLEMS[key]


def solve_batch(problem: dict[str, Any], frontier: Frontier, seconds: float) -> dict[str, Any]:
    """A Ray task: branch and bound from the boxes of ``frontier`` for at most ``seconds``."""
    torch.set_num_threads(1)
    Ws, bs, groups, is_unsafe = _prepared(problem)
    res = input_split_bab(Ws, bs, groups, frontier.fields[0][0], frontier.fields[1][0], time.monotonic() + seconds,
                          problem["options"], is_unsafe=is_unsafe, frontier=frontier)
    t = res.tree
    return {"status": res.status, "parent": np.asarray(t.parent), "dim": np.asarray(t.dim),
            "value": np.asarray(t.value), "side": np.asarray(t.side), "closures": t.closures,
            "alpha_closures": t.alpha_closures, "candidate": res.candidate, "min_lb": res.min_lb,
            "bounded": res.domains_bounded, "rounds": res.rounds, "alpha_tried": res.alpha_tried,
            "open": None if res.status != "open" else (res.open_nodes, res.open_bounds, res.open_frontier)}


def graft(tree: SplitTree, part: dict[str, Any], roots: np.ndarray) -> np.ndarray:
    """Append the nodes of a batch's tree ``part`` (its first ``len(roots)`` nodes are the
    batch's boxes, which are the nodes ``roots`` of ``tree``) with their closures; returns
    the id in ``tree`` of each node of ``part``."""
    k = len(roots)
    n = len(part["parent"])
    ids = np.empty(n, dtype=np.int64)
    ids[:k] = roots
    ids[k:] = np.arange(tree.size, tree.size + n - k)
    if n > k:
        parents = ids[part["parent"][k:]]
        tree.add_many(parents.tolist(), part["dim"][k:].tolist(), part["value"][k:].tolist(),
                      part["side"][k:].tolist())
    tree.closures.extend((int(ids[node]), p, m) for node, p, m in part["closures"])
    tree.alpha_closures.extend((int(ids[node]), p, slopes) for node, p, slopes in part["alpha_closures"])
    return ids


class _Queue:
    """The open domains waiting for a batch (tree nodes, worst bounds, state), worst first."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, np.ndarray, Frontier]] = []

    def add(self, nodes: np.ndarray, bounds: np.ndarray, frontier: Frontier) -> None:
        if len(nodes):
            self.parts.append((nodes, bounds, frontier))

    def __len__(self) -> int:
        return sum(len(p[0]) for p in self.parts)

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray, Frontier]:
        nodes = np.concatenate([p[0] for p in self.parts])
        bounds = np.concatenate([p[1] for p in self.parts])
        merged = Frontier([np.concatenate(f) for f in zip(*(p[2].fields for p in self.parts))],
                          self.parts[0][2].root_width)
        order = np.argsort(bounds, kind="stable")
        taken, rest = order[:n], order[n:]
        self.parts = [(nodes[rest], bounds[rest], merged.take(rest))] if len(rest) else []
        return nodes[taken], bounds[taken], merged.take(taken)

    def worst(self) -> float:
        return min((float(p[1].min()) for p in self.parts), default=float("inf"))


def distributed_input_split(Ws: list[torch.Tensor], bs: list[torch.Tensor], groups: list[np.ndarray],
                            lo: np.ndarray, hi: np.ndarray, deadline: float, options: InputSplitOptions,
                            pool: RayPool, problem: dict[str, Any],
                            is_unsafe: Callable[[np.ndarray], bool] | None = None,
                            progress: Callable[[str], None] | None = None,
                            frontier_per_cpu: int | None = None) -> InputSplitResult:
    """:func:`~verify.refine.input_split.input_split_bab` with its boxes bounded on the
    cluster of ``pool`` (``problem``: :func:`make_problem`'s); ``is_unsafe`` is this
    process's replay, which a worker's candidate must pass too."""
    start = time.monotonic()
    cpus = pool.cpus
    wide = replace(options, max_open=(frontier_per_cpu or FRONTIER_PER_CPU) * cpus)
    first = input_split_bab(Ws, bs, groups, lo, hi, deadline, wide, progress=progress, is_unsafe=is_unsafe)
    if first.status != "open" or time.monotonic() >= deadline:
        return first
    tree = first.tree
    queue = _Queue()
    queue.add(first.open_nodes, first.open_bounds, first.open_frontier)
    ref = pool.put(problem)
    batches: dict[int, np.ndarray] = {}  # task index: the tree nodes of its boxes
    state = {"bounded": first.domains_bounded, "rounds": first.rounds, "alpha": first.alpha_tried, "lost": 0,
             "tasks": 0, "candidate": None, "last": start, "running_worst": {}}

    def more(room: int) -> list[tuple[int, Task]] | None:
        left = deadline - time.monotonic()
        if state["candidate"] is not None or state["lost"] or left < 0.05:
            return None
        if not len(queue):
            return None if not batches else []
        size = int(np.clip(len(queue) // max(1, cpus), 1, MAX_BATCH))
        out = []
        for _ in range(room):
            if not len(queue):
                break
            nodes, bbound, frontier = queue.take(size)
            index = state["tasks"]
            state["tasks"] += 1
            batches[index] = nodes
            state["running_worst"][index] = float(bbound.min())
            seconds = min(SLICE_SECONDS, left)
            out.append((index, Task(solve_batch, (ref, frontier, seconds), timeout=seconds + 5.0, name="verify-bab")))
        return out

    def done(outcome: TaskOutcome) -> None:
        roots = batches.pop(outcome.index)
        state["running_worst"].pop(outcome.index, None)
        if outcome.exception is not None:
            raise outcome.exception
        if outcome.error is not None:  # lost beyond the retries, or overran its slice: its boxes stay open
            state["lost"] += 1
            return
        part = outcome.value
        ids = graft(tree, part, roots)
        state["bounded"] += part["bounded"]
        state["rounds"] += part["rounds"]
        state["alpha"] += part["alpha_tried"]
        if part["status"] == "candidate":
            x = part["candidate"]
            if is_unsafe is None or is_unsafe(x):
                state["candidate"] = x
            else:  # the worker's replay and this one disagree: do not go on as if it were refuted
                state["lost"] += 1
            return
        if part["open"] is not None:
            nodes, obound, ofrontier = part["open"]
            queue.add(ids[nodes], obound, ofrontier)
        now = time.monotonic()
        if progress is not None and now - state["last"] > 1.0:
            state["last"] = now
            progress(f"distributed input split: {len(queue)} open, {len(tree.closures)} closed, {state['bounded']} "
                     f"bounds, {len(batches)} batches on {cpus} CPUs, worst bound {_worst(queue, state):.4g}")

    pool.stream(more, done, stop=lambda: state["candidate"] is not None)
    stats = {"domains_bounded": state["bounded"], "rounds": state["rounds"], "alpha_tried": state["alpha"],
             "seconds": time.monotonic() - start, "batches": state["tasks"]}
    if state["candidate"] is not None:
        return InputSplitResult("candidate", tree, candidate=state["candidate"], **stats)
    if not len(queue) and not batches and not state["lost"]:
        return InputSplitResult("verified", tree, min_lb=min(m for _, _, m in tree.closures), **stats)
    return InputSplitResult("open", tree, min_lb=_worst(queue, state), **stats)


def _worst(queue: _Queue, state: dict[str, Any]) -> float:
    """The lowest bound of a box not yet refuted (queued or in a running batch)."""
    return min([queue.worst(), *state["running_worst"].values()])
