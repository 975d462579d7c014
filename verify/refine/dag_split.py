"""Branch and bound on any IR network (convolutions, pooling, residual joins, smooth activations).

One case of a property: its box and unsafe polytopes ``{y : C_p y <= d_p}``.  A domain is
a node of a split tree: an input box plus *clamps* on some pre-activation neurons.  Each
domain is bounded by :class:`verify.bounds.dag.DagBounder` (interval and CROWN bounds,
the relaxations of ``docs/relaxations.md``); a polytope is closed on a domain when some
row's lower bound of ``C_r y - d_r`` clears the decision threshold.  Open domains are
split in two:

* **input splitting** (low-dimensional inputs, any activation): the input dimension that
  is widest relative to the case's box is cut at its middle;
* **neuron splitting** (high-dimensional inputs): the pre-activation neuron whose
  relaxation loses most (the area between its upper and lower lines, weighted by how
  much the bound depends on it when the engine reports that) is cut: ReLU and LeakyReLU
  at 0, sigmoid and tanh at 0 when their interval spans it and at the middle otherwise
  (the GenBaB idea: narrower intervals give tighter tangent/secant lines).  A child
  clamps the neuron's bounds to its half; bounds are recomputed from scratch under the
  clamps of the whole path, exactly what the certificate checker redoes.  The final bound
  carries a multiplier (beta) per neuron split on the path, optimised with the documented
  slopes fixed and warm-started from the parent's; each closure records its betas for the
  certificate.  The neuron cut is the one of largest BaBSR-style score from the bound's
  coefficients (:meth:`DagBounder.bound`'s ``scores``), the area above where they are all 0.
  A domain with no unstable neuron left gets longer-optimised betas, then an input split.

Max-pool neurons are not split (their inputs are: a max-pool's input is usually a ReLU's
output, and splitting that ReLU's input decides which entry can be the maximum).

Every bounded domain proposes candidate counterexamples (the input corners that minimise
its linear lower bounds); they are evaluated on the IR and, where they look unsafe,
replayed on the original model (``is_unsafe``).  The split tree and the closures are
returned so that :mod:`verify.certificate.build` can write the ``dag`` proof.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from verify.bounds.dag import DagBounder
from verify.ir.evaluate import run_flat
from verify.ir.graph import Graph
from verify.refine import case_rows
from verify.refine.outcome import CaseOutcome
from verify.spec.property import Case

#: Ops whose input neurons can be split, and where.
SPLITTABLE = ("relu", "leaky_relu", "sigmoid", "tanh")
#: Margin recorded for a domain that some clamp makes empty (any positive claim holds there).
EMPTY_MARGIN = 1.0
#: Elements of the largest tensor one bounding call may build (domains x rows x input size).
CALL_ELEMENTS = 4e7
#: Adam steps on the split multipliers (beta) per bound, warm-started from the parent's (slopes fixed: the
#: certificate carries betas, not slopes)
BETA_STEPS = 20
#: ... and on a domain with no neuron left to split, before its box is split (on the widest input, relative to
#: the case's box; the splits below it keep their betas)
BETA_LAST_STEPS = 100


@dataclass
class DagTree:
    """The split tree of one case (the certificate's ``dag`` proof; docs/relaxations.md).

    Node 0 is the case's box; node ``i > 0`` is the ``side`` half (0: ``v <= value``, 1:
    ``v >= value``) of ``parent[i]``, where ``v`` is input coordinate ``index[i]`` when
    ``what[i] == -1`` and flat element ``index[i]`` of ``neurons[what[i]]`` otherwise.
    """

    neurons: list[str] = field(default_factory=list)
    parent: list[int] = field(default_factory=lambda: [-1])
    what: list[int] = field(default_factory=lambda: [-1])
    index: list[int] = field(default_factory=lambda: [0])
    value: list[float] = field(default_factory=lambda: [0.0])
    side: list[int] = field(default_factory=lambda: [0])
    closures: list[tuple[int, int, float]] = field(default_factory=list)
    #: empty, or one per closure: its split multipliers ``[m_p, k]`` (rows of its polytope, the ``k`` neuron
    #: splits on the path from the root to its node in root-to-node order; docs/relaxations.md)
    betas: list[np.ndarray] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.parent)

    def add(self, parent: int, what: int, index: int, value: float, side: int) -> int:
        self.parent.append(parent)
        self.what.append(what)
        self.index.append(index)
        self.value.append(float(value))
        self.side.append(side)
        return len(self.parent) - 1

    def neuron_id(self, name: str) -> int:
        if name not in self.neurons:
            self.neurons.append(name)
        return self.neurons.index(name)


@dataclass
class _Domain:
    node: int
    lower: np.ndarray
    upper: np.ndarray
    clamps: dict[str, tuple[np.ndarray, np.ndarray]]  # flat per value
    open: list[int]  # polytopes not closed on this domain or an ancestor
    worst: float = -np.inf
    inter: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    scores: dict[str, np.ndarray] | None = None
    #: the neuron splits on the path, root to node: (value name, flat index, split value, side)
    splits: list[tuple[str, int, float, int]] = field(default_factory=list)
    #: the betas of its bound ``[R, len(splits)]`` (its children's start), once bounded
    betas: np.ndarray | None = None

    def __lt__(self, other: _Domain) -> bool:
        return self.worst < other.worst


@dataclass
class DagResult:
    status: str  # verified, candidate, open
    tree: DagTree
    min_lb: float
    candidate: np.ndarray | None = None
    domains: int = 0
    rounds: int = 0


class DagBab:
    """Branch and bound of one case on an IR graph (see the module docstring)."""

    def __init__(self, graph: Graph, bounder: DagBounder | None = None) -> None:
        self.graph = graph
        self.bounder = bounder or DagBounder(graph)
        self.split_values = [n.inputs[0] for n in graph.nodes if n.op in SPLITTABLE]
        self.split_ops = {n.inputs[0]: n.op for n in graph.nodes if n.op in SPLITTABLE}
        #: branching scores from the bound's coefficients (neuron splitting; set by :meth:`run`)
        self.want_scores = False

    # -- bounding ----------------------------------------------------------------------
    def _bound(self, domains: list[_Domain], C: np.ndarray, d: np.ndarray, groups: list[np.ndarray],
               beta_steps: int = BETA_STEPS
               ) -> list[tuple[np.ndarray, bool, np.ndarray | None, np.ndarray | None]]:
        """Per domain: margins per polytope, empty?, candidate points ``[R, n]``, the betas of its neuron
        splits ``[R, k]`` (optimised with the documented slopes; None without splits)."""
        lo = torch.as_tensor(np.stack([dm.lower for dm in domains]))
        hi = torch.as_tensor(np.stack([dm.upper for dm in domains]))
        names = sorted({k for dm in domains for k in dm.clamps})
        clamps: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for name in names:
            shape = self.graph.values[name].shape
            size = self.graph.values[name].size
            cl = np.full((len(domains), size), -np.inf)
            cu = np.full((len(domains), size), np.inf)
            for i, dm in enumerate(domains):
                if name in dm.clamps:
                    cl[i], cu[i] = dm.clamps[name]
            clamps[name] = (torch.as_tensor(cl).reshape(len(domains), *shape),
                            torch.as_tensor(cu).reshape(len(domains), *shape))
        splits = [dm.splits for dm in domains]
        weights = None
        if self.want_scores:  # scores for the rows of the polytopes still open
            weights = np.zeros((len(domains), C.shape[0]))
            for i, dm in enumerate(domains):
                for p in dm.open:
                    weights[i, groups[p]] = 1.0
        start = np.zeros((len(domains), C.shape[0], max(len(s) for s in splits)))
        for i, dm in enumerate(domains):  # from the parent's betas
            if dm.betas is not None:
                start[i, :, :dm.betas.shape[1]] = dm.betas
        res = self.bounder.bound(lo, hi, torch.as_tensor(C), torch.as_tensor(d), method="crown",
                                 clamps=clamps or None, splits=splits, betas="optimize" if any(splits) else None,
                                 beta_start=torch.as_tensor(start), beta_steps=beta_steps,
                                 scores=False if weights is None else torch.as_tensor(weights))
        betas = None if res.betas is None else res.betas.detach().numpy()
        scores = res.scores or {}
        lower = res.lower.detach().numpy()
        empty = res.empty.detach().numpy() if getattr(res, "empty", None) is not None else np.zeros(len(domains), bool)
        x_min = getattr(res, "x_min", None)
        x_min = x_min.detach().numpy() if x_min is not None else None
        out = []
        inter = getattr(res, "intermediate", {}) or {}
        for i, dm in enumerate(domains):
            margins = np.array([np.max(lower[i, g]) if len(g) else -np.inf for g in groups])
            dm.inter = {k: (v[0][i].reshape(-1).detach().numpy(), v[1][i].reshape(-1).detach().numpy())
                        for k, v in inter.items() if k in self.split_ops}
            dm.scores = {k: v[i].reshape(-1).detach().numpy() for k, v in scores.items() if k in self.split_ops} or None
            beta = None if betas is None or not dm.splits else betas[i, :, :len(dm.splits)]
            dm.betas = beta
            out.append((margins, bool(empty[i]), None if x_min is None else x_min[i], beta))
        return out

    # -- splitting ---------------------------------------------------------------------
    def _input_split(self, dm: _Domain, root_width: np.ndarray) -> tuple[int, int, float]:
        width = (dm.upper - dm.lower) / np.where(root_width > 0, root_width, 1.0)
        dim = int(np.argmax(width))
        return -1, dim, float((dm.lower[dim] + dm.upper[dim]) / 2)

    def _neuron_split(self, dm: _Domain) -> tuple[str, int, float] | None:
        """The neuron with the largest branching score of the bound (:meth:`DagBounder.bound`'s ``scores``)
        among the splittable ones, or, where the scores are all 0 or absent, the largest relaxation area."""
        best: tuple[float, str, int, float] | None = None
        scored: tuple[float, str, int, float] | None = None
        for name, (l, u) in (dm.inter or {}).items():
            if name in dm.clamps:
                cl, cu = dm.clamps[name]
                l, u = np.maximum(l, cl), np.minimum(u, cu)
            op = self.split_ops[name]
            if op in ("relu", "leaky_relu"):
                unstable = (l < 0) & (u > 0)
                score = np.where(unstable, -l * u / np.where(unstable, u - l, 1.0), -np.inf)
                points = np.zeros_like(l)
            else:
                s = np.tanh if op == "tanh" else (lambda z: 1.0 / (1.0 + np.exp(-z)))
                w = u - l
                score = np.where(w > 1e-6, (s(u) - s(l)) * w, -np.inf)
                points = np.where((l < 0) & (u > 0), 0.0, (l + u) / 2)
            k = int(np.argmax(score))
            if np.isfinite(score[k]) and (best is None or score[k] > best[0]):
                best = (float(score[k]), name, k, float(points[k]))
            if dm.scores is not None and name in dm.scores:
                babsr = np.where(np.isfinite(score), dm.scores[name], -np.inf)
                k = int(np.argmax(babsr))
                if babsr[k] > 0 and (scored is None or babsr[k] > scored[0]):
                    scored = (float(babsr[k]), name, k, float(points[k]))
        best = scored or best
        return None if best is None else best[1:]

    # -- the loop ----------------------------------------------------------------------
    def run(self, case: Case, deadline: float, threshold: float, *, input_split: bool,
            is_unsafe: Callable[[np.ndarray], bool] | None = None,
            search: Callable[[float], np.ndarray | None] | None = None,
            progress: Callable[[str], None] | None = None) -> DagResult:
        C, d, groups = case_rows(case)
        self.want_scores = not input_split
        tree = DagTree()
        root = _Domain(0, case.box.lower.astype(np.float64), case.box.upper.astype(np.float64), {},
                       list(range(len(groups))))
        root_width = root.upper - root.lower
        start = time.monotonic()
        searched = search is None
        batch = 1
        queue: list[_Domain] = []
        pending = [root]
        rounds = bounded = 0
        min_lb = np.inf
        per = 0.0  # seconds per domain of the last bounding call (0 before the first)
        while pending:
            if rounds and time.monotonic() + 1.1 * per * len(pending) > deadline:
                # this call would end after the deadline (a bound of a large network takes seconds): stop here,
                # with the pending domains' parents' bounds as the answer's
                return DagResult("open", tree, min_lb, None, bounded, rounds)
            t0 = time.monotonic()
            results = self._bound(pending, C, d, groups)
            elapsed = time.monotonic() - t0
            per = elapsed / max(1, len(pending))
            bounded += len(pending)
            rounds += 1
            for dm, (margins, empty, x_min, beta) in zip(pending, results):
                still = self._close(dm, margins, empty, beta, groups, threshold, tree)
                if not still:
                    continue
                dm.open = still
                dm.worst = float(min(margins[p] for p in still))
                cand = self._probe(dm, case, C, d, groups, x_min, is_unsafe)
                if cand is not None:
                    return DagResult("candidate", tree, -np.inf, cand, bounded, rounds)
                heapq.heappush(queue, dm)
            if queue:
                min_lb = min(dm.worst for dm in queue)
            if not queue:
                return DagResult("verified", tree, _closed_margin(tree), None, bounded, rounds)
            if time.monotonic() >= deadline:
                break
            if not searched and time.monotonic() - start > 0.1 * (deadline - start):
                searched = True
                x = search(0.1 * (deadline - time.monotonic()))  # type: ignore[misc]
                if x is not None:
                    return DagResult("candidate", tree, -np.inf, np.asarray(x, dtype=np.float64), bounded, rounds)
            # the next batch: as many as fit in a second and in memory
            batch = int(max(1, min(64, 2 * batch, 1.0 / max(per, 1e-4), self._memory_cap(C.shape[0]))))
            pending = []
            while not pending:
                if not queue:  # the last open domains were closed by their betas alone
                    return DagResult("verified", tree, _closed_margin(tree), None, bounded, rounds)
                stuck = []
                while queue and len(pending) + len(stuck) < 2 * batch:
                    dm = heapq.heappop(queue)
                    children = self._children(dm, tree, root_width, input_split)
                    if children is None and not dm.splits:  # nothing to split: this domain stays open
                        return DagResult("open", tree, dm.worst, None, bounded, rounds)
                    if children is None:
                        stuck.append(dm)
                    else:
                        pending.extend(children)
                if stuck and time.monotonic() + 1.1 * per * len(stuck) * BETA_LAST_STEPS / BETA_STEPS > deadline:
                    return DagResult("open", tree, min(dm.worst for dm in stuck), None, bounded, rounds)
                if stuck:  # no neuron left to split: longer-optimised betas may still close them, else the box is split
                    bounded += len(stuck)
                    for dm, (margins, empty, _, beta) in zip(stuck, self._bound(stuck, C, d, groups, BETA_LAST_STEPS)):
                        dm.open = self._close(dm, margins, empty, beta, groups, threshold, tree)
                        children = self._children(dm, tree, root_width, True) if dm.open else []
                        if children is None:  # this domain stays open
                            return DagResult("open", tree, float(min(margins[p] for p in dm.open)), None, bounded,
                                             rounds)
                        pending.extend(children)
                if not pending and queue and time.monotonic() >= deadline:
                    return DagResult("open", tree, min(dm.worst for dm in queue), None, bounded, rounds)
            if progress is not None:
                progress(f"branch and bound: {len(queue) + len(pending)} open domains, worst margin {min_lb:.4g}")
        return DagResult("open", tree, min_lb, None, bounded, rounds)

    @staticmethod
    def _close(dm: _Domain, margins: np.ndarray, empty: bool, beta: np.ndarray | None, groups: list[np.ndarray],
               threshold: float, tree: DagTree) -> list[int]:
        """Record the closures of ``dm``'s open polytopes that its bound clears, with their betas; the others."""
        still = []
        for p in dm.open:
            if empty or margins[p] > threshold:
                tree.closures.append((dm.node, p, EMPTY_MARGIN if empty else float(margins[p])))
                k = len(dm.splits)
                tree.betas.append(np.zeros((len(groups[p]), k)) if empty or beta is None else beta[groups[p]])
            else:
                still.append(p)
        return still

    def _memory_cap(self, rows: int) -> int:
        biggest = max(v.size for v in self.graph.values.values())
        return int(max(1, CALL_ELEMENTS // max(1, biggest * max(rows, biggest) // 8)))

    def _children(self, dm: _Domain, tree: DagTree, root_width: np.ndarray, input_split: bool) -> list[_Domain] | None:
        if input_split:
            what, index, value = self._input_split(dm, root_width)
            if not dm.upper[index] > dm.lower[index]:
                return None
            out = []
            for side in (0, 1):
                node = tree.add(dm.node, what, index, value, side)
                lo, hi = dm.lower.copy(), dm.upper.copy()
                if side == 0:
                    hi[index] = value
                else:
                    lo[index] = value
                out.append(_Domain(node, lo, hi, dm.clamps, list(dm.open), splits=dm.splits, betas=dm.betas))
            return out
        choice = self._neuron_split(dm)
        if choice is None:
            return None
        name, index, value = choice
        what = tree.neuron_id(name)
        size = self.graph.values[name].size
        out = []
        for side in (0, 1):
            node = tree.add(dm.node, what, index, value, side)
            clamps = dict(dm.clamps)
            cl, cu = clamps.get(name, (np.full(size, -np.inf), np.full(size, np.inf)))
            cl, cu = cl.copy(), cu.copy()
            if side == 0:
                cu[index] = min(cu[index], value)
            else:
                cl[index] = max(cl[index], value)
            clamps[name] = (cl, cu)
            out.append(_Domain(node, dm.lower, dm.upper, clamps, list(dm.open),
                               splits=[*dm.splits, (name, index, float(value), side)], betas=dm.betas))
        return out

    def _probe(self, dm: _Domain, case: Case, C: np.ndarray, d: np.ndarray, groups: list[np.ndarray],
               x_min: np.ndarray | None, is_unsafe: Callable[[np.ndarray], bool] | None) -> np.ndarray | None:
        """A replayed counterexample among the domain's suspicious points, or None."""
        points = [(dm.lower + dm.upper) / 2]
        if x_min is not None:
            points.extend(np.clip(x_min.reshape(-1, dm.lower.size), dm.lower, dm.upper))
        xs = np.stack(points)
        ys = run_flat(self.graph, xs)
        for x, y in zip(xs, ys):
            v = C @ y - d
            if any(np.all(v[g] <= 0) for g in (groups[p] for p in dm.open)):
                if is_unsafe is None or is_unsafe(x):
                    return x
        return None


def _closed_margin(tree: DagTree) -> float:
    """The smallest margin among a verified tree's closures (what the answer's margin reports)."""
    return min((m for _, _, m in tree.closures), default=0.0)


def prove_case_dag(graph: Graph, case: Case, case_index: int, deadline: float, threshold: float, *,
                   input_split: bool, bounder: DagBounder | None = None,
                   is_unsafe: Callable[[np.ndarray], bool] | None = None,
                   search: Callable[[float], np.ndarray | None] | None = None,
                   progress: Callable[[str], None] | None = None) -> CaseOutcome:
    """Verify one case on an IR graph, or find a candidate; the outcome's ``tree`` is the proof."""
    res = DagBab(graph, bounder).run(case, deadline, threshold, input_split=input_split, is_unsafe=is_unsafe,
                                     search=search, progress=progress)
    stats: dict[str, Any] = {"domains_bounded": res.domains, "rounds": res.rounds, "tree_nodes": res.tree.size,
                             "closures": len(res.tree.closures)}
    method = "crown" if res.tree.size == 1 else ("input-split" if input_split else "neuron-split")
    return CaseOutcome(res.status, method, res.min_lb, candidate=res.candidate, stats=stats, tree=res.tree)
