"""Branch and bound by splitting unstable ReLUs (for high-dimensional inputs, e.g. MNIST).

A domain fixes the phase of some neurons (``z >= 0`` or ``z <= 0``).  Its bound uses the
root's pre-activation bounds clamped by the phases, and optimised lower slopes (alpha)
and split multipliers (beta, as in beta-CROWN) for the property rows; children start
their optimisation from their parent's alphas and betas.  Each round takes the worst
open domains and splits each on one unstable neuron: the few with the largest
"intercept" score (the area the upper relaxation adds, weighted by how much the bound
depends on it — a BaBSR-style estimate) are tried with the parent's slopes, and the one
whose worse child is best wins (filtered smart branching).  All children are bounded in
one batch.  The box corners their bounds point at are run through the network, so a
violated property usually ends early; a domain with every unstable neuron split is a
linear program, which a long beta optimisation settles.

The proof for a certificate is the split tree (two children per split: both phases of
the same neuron) and, per closure, the alphas and betas that gave the bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from verify.bounds.linear_relax import (
    Bounds,
    backward_bound,
    cast,
    crown_bounds,
    optimize_alpha,
    optimize_intermediate,
    relu_upper,
)
from verify.certcheck.encoding import encode_array, encode_sparse
from verify.certificate.build import claimed
from verify.falsify.corners import descend_from_corners
from verify.graph.chain import chain_eval
from verify.refine.outcome import CaseOutcome

Tensor = torch.Tensor


@dataclass
class ReluTree:
    """Node 0: the whole box; node i > 0 adds ``phase[i]`` (+1: z >= 0, -1: z <= 0) on
    neuron ``neuron[i]`` of ReLU layer ``layer[i]`` to its parent's constraints."""

    parent: list[int] = field(default_factory=lambda: [-1])
    layer: list[int] = field(default_factory=lambda: [-1])
    neuron: list[int] = field(default_factory=lambda: [-1])
    phase: list[int] = field(default_factory=lambda: [0])
    closures: list[dict[str, Any]] = field(default_factory=list)

    def add(self, parent: int, layer: int, neuron: int, phase: int) -> int:
        self.parent.append(parent)
        self.layer.append(layer)
        self.neuron.append(neuron)
        self.phase.append(phase)
        return len(self.parent) - 1


@dataclass
class NeuronMap:
    """Where each neuron of the (compressed) chain sits in the original network: ReLU layer
    ``layer[k]`` of the original, neuron ``ids[k][j]``; ``sizes`` are the original layer sizes."""

    layer: list[int]
    ids: list[np.ndarray]
    sizes: list[int]

    @classmethod
    def between(cls, chain: Any, original: Any) -> NeuronMap:
        names = list(original.relu_names)
        layer = [names.index(src) for src in chain.sources]
        return cls(layer, [np.asarray(i, dtype=np.int64) for i in chain.neuron_ids], list(original.hidden_sizes))

    def expand(self, per_layer: list[np.ndarray], rows: int) -> list[np.ndarray]:
        """Arrays ``[rows, n_k]`` per chain layer -> per original layer (zeros where absent)."""
        out = [np.zeros((rows, n)) for n in self.sizes]
        for k, arr in enumerate(per_layer):
            out[self.layer[k]][:, self.ids[k]] = arr
        return out


@dataclass
class ReluSplitOptions:
    batch: int = 256  # domains split per round (MNIST row 55: 52 s at 64, 42 s at 256, same tree)
    alpha_iterations: int = 30
    child_iterations: int = 12
    # past this many open domains (about 40 KB each on MNIST 256x4) the best are split first,
    # which closes domains and frees room; past 1.5 times as many the search gives up
    max_open: int = 100_000
    # recompute the children's hidden-layer bounds after the split layer with CROWN (else: the
    # parent's, clamped by the split); off: the recomputation cost 90% of the time and three
    # times as many cheaper domains did better on MNIST-FC (rows 1, 33, 55)
    recompute: bool = False
    intermediate_iterations: int = 20  # alpha-CROWN for the hidden layers' bounds at the root (0: off)
    warm_start: bool = True  # children start from their parent's alphas and betas
    candidates: int = 4  # neurons tried per split (filtered smart branching; 1: score only)
    score_with_slopes: bool = False  # score with the domain's own alphas/betas (else CROWN's default slopes)
    exhausted_iterations: int = 100  # alpha/beta steps for a domain with every unstable neuron split
    descent_steps: int = 300  # counterexample search from the corners the root's bounds point at (0: off)
    lr_alpha: float = 0.1
    lr_beta: float = 0.1
    # the children's alpha/beta steps and the branching scores in float32; each bound that
    # closes or ranks a domain is recomputed in float64 with the slopes found
    float32_steps: bool = True
    search_seconds: float = 10.0  # at most this long for the counterexample search before splitting


def relu_split_bab(Ws: list[Tensor], bs: list[Tensor], groups: list[np.ndarray], case: Any, case_index: int,
                   deadline: float, threshold: float, progress: Callable[[str], None] | None = None,
                   is_unsafe: Callable[[np.ndarray], bool] | None = None,
                   options: ReluSplitOptions | None = None, neuron_map: NeuronMap | None = None,
                   search: Callable[[float], np.ndarray | None] | None = None) -> Any:
    """Verify the case by ReLU splitting, or return an open outcome.

    The root is bounded with alpha-CROWN for every row; each unsafe polytope it does not
    refute gets a branch and bound of its own (easiest first, each with the time left
    shared among those left), since the splits that refute one polytope rarely help another.
    """
    options = options or ReluSplitOptions()
    lo = torch.as_tensor(case.box.lower, dtype=torch.float64).reshape(1, -1)
    hi = torch.as_tensor(case.box.upper, dtype=torch.float64).reshape(1, -1)
    root_pre = crown_bounds(Ws, bs, lo, hi, last=False)
    inter: dict[int, tuple[Tensor, list[Tensor]]] = {}
    if options.intermediate_iterations:
        root_pre, inter = optimize_intermediate(Ws, bs, lo, hi, root_pre, options.intermediate_iterations)
    n_layers = len(root_pre)
    sizes = [int(l.shape[1]) for l, _ in root_pre]
    nmap = neuron_map or NeuronMap(list(range(n_layers)), [np.arange(n) for n in sizes], sizes)
    stats: dict[str, Any] = {"unstable_root": int(sum(int(((l < 0) & (u > 0)).sum()) for l, u in root_pre))}

    res, alphas, _ = optimize_alpha(Ws, bs, lo, hi, root_pre, iterations=options.alpha_iterations, stop=threshold)
    lbp = np.array([float(res.lb[0, torch.as_tensor(g)].max()) for g in groups])
    root_tree = ReluTree()
    for p in np.nonzero(lbp > threshold)[0].tolist():
        root_tree.closures += _closures(torch.tensor([0]), [0], [float(lbp[p])], p, groups[p], alphas, None,
                                        root_pre, None, nmap)
    trees = [root_tree] if root_tree.closures else []
    if np.all(lbp > threshold):
        return CaseOutcome("verified", "alpha-crown", float(lbp.min()),
                           _proof(case_index, trees, nmap.sizes, _root_slopes(inter, nmap), options.recompute),
                           stats=stats)
    polys = [torch.as_tensor(g, dtype=torch.long) for g in groups]
    cand = _unsafe_corner(Ws, bs, lo, hi, res.lam, is_unsafe, polys)
    if cand is None:
        cand = _descend_from_corners(Ws, bs, lo, hi, res.lam[0], polys, is_unsafe, options.descent_steps, deadline)
    if cand is not None:
        return CaseOutcome("candidate", "alpha-crown", -np.inf, candidate=cand, stats=stats)
    if search is not None:
        # ReLU splitting finds no counterexamples itself: look for one first
        hit = search(options.search_seconds)
        if hit is not None:
            return CaseOutcome("candidate", "search", -np.inf, candidate=hit, stats=stats)
    todo = sorted(np.nonzero(lbp <= threshold)[0].tolist(), key=lambda p: -lbp[p])
    margins = [float(lbp[p]) for p in np.nonzero(lbp > threshold)[0]]
    totals = {"domains_bounded": 1, "rounds": 0, "tree_nodes": 1}
    for p in todo:
        g = torch.as_tensor(groups[p], dtype=torch.long)
        sub_alphas = [a[:, g] for a in alphas]
        tree, open_lb, st, hit = _bab_one(Ws[:-1] + [Ws[-1][g]], bs[:-1] + [bs[-1][g]], lo, hi, root_pre,
                                          float(lbp[p]), sub_alphas, p, groups[p], deadline, threshold,
                                          options, nmap, progress, f"polytope {p + 1}/{len(groups)}", is_unsafe)
        for key in totals:
            totals[key] += st[key]
        if hit is not None:
            stats.update(totals)
            return CaseOutcome("candidate", "relu-split", -np.inf, candidate=hit, stats=stats)
        if tree is None:
            stats.update(totals)
            return CaseOutcome("open", "relu-split", open_lb, stats=stats)
        trees.append(tree)
        margins.append(min(float(e["margin"]) for e in tree.closures))
    stats.update(totals)
    return CaseOutcome("verified", "relu-split", min(margins),
                       _proof(case_index, trees, nmap.sizes, _root_slopes(inter, nmap), options.recompute), stats=stats)


class DomainPool:
    """Open domains in preallocated tensors (first dimension: slots), with their bounds and
    tree nodes; ReLU splitting and input splitting both keep their frontier here.  Taking
    the worst and adding children move only those domains: copying a frontier of 100k
    domains (about 3 GB on MNIST 256x4) every round cost more than the bounding itself."""

    def __init__(self, fields: list[Tensor], lb: Tensor, ids: Tensor) -> None:
        self.fields = [f.clone() for f in fields]
        self.lb = lb.clone()
        self.ids = ids.clone()
        self.used = torch.ones(lb.shape[0], dtype=torch.bool)
        self.size = int(lb.shape[0])  # how many slots hold an open domain

    def worst(self) -> float:
        """The lowest bound of an open domain (the pool must not be empty)."""
        return float(self.lb[self.used].min())

    def lowest(self, n: int, best: bool = False) -> Tensor:
        """The slots of the (at most) ``n`` open domains with the lowest bounds (``best``: the
        highest), left in the pool."""
        key = torch.where(self.used, self.lb, torch.full_like(self.lb, -torch.inf if best else torch.inf))
        return torch.topk(key, min(n, self.size), largest=best).indices

    def take(self, n: int, best: bool = False) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Remove the ``n`` domains with the lowest bounds (``best``: the highest): their
        bounds, nodes and fields."""
        slots = self.lowest(n, best)
        self.used[slots] = False
        self.size -= slots.numel()
        return self.lb[slots], self.ids[slots], [f[slots] for f in self.fields]

    def add(self, fields: list[Tensor], lb: Tensor, ids: Tensor) -> None:
        n = lb.shape[0]
        free = torch.nonzero(~self.used).flatten()
        if free.numel() < n:
            grow = max(n - free.numel(), self.lb.shape[0])
            self.fields = [torch.cat([f, f.new_zeros((grow, *f.shape[1:]))]) for f in self.fields]
            self.lb = torch.cat([self.lb, self.lb.new_zeros(grow)])
            self.ids = torch.cat([self.ids, self.ids.new_zeros(grow)])
            self.used = torch.cat([self.used, torch.zeros(grow, dtype=torch.bool)])
            free = torch.nonzero(~self.used).flatten()
        slots = free[:n]
        for f, new in zip(self.fields, fields):
            f[slots] = new
        self.lb[slots] = lb
        self.ids[slots] = ids
        self.used[slots] = True
        self.size += n


def _bab_one(Ws: list[Tensor], bs: list[Tensor], lo: Tensor, hi: Tensor, root_pre: Bounds, root_lb: float,
             root_alphas: list[Tensor], polytope: int, rows: np.ndarray, deadline: float, threshold: float,
             options: ReluSplitOptions, nmap: NeuronMap, progress: Callable[[str], None] | None,
             label: str, is_unsafe: Callable[[np.ndarray], bool] | None = None,
             ) -> tuple[ReluTree | None, float, dict[str, int], np.ndarray | None]:
    """Branch and bound for one polytope (its rows are the chain's outputs): the tree, or None."""
    n_layers = len(root_pre)
    sizes = [int(l.shape[1]) for l, _ in root_pre]
    local = np.arange(len(rows))
    tree = ReluTree()
    # the open domains: phases, hidden-layer bounds, alphas and betas (children start their
    # optimisation from their parent's), tree node and bound
    pool = DomainPool([torch.zeros(1, n, dtype=torch.float64) for n in sizes]
                      + [l.clone() for l, _ in root_pre] + [u.clone() for _, u in root_pre]
                      + [a.clone() for a in root_alphas] + [torch.zeros_like(a) for a in root_alphas],
                      torch.tensor([root_lb], dtype=torch.float64), torch.tensor([0]))
    L = n_layers

    def unpack(ts: list[Tensor]) -> tuple[list[Tensor], Bounds, tuple[list[Tensor], list[Tensor]]]:
        return ts[:L], list(zip(ts[L:2 * L], ts[2 * L:3 * L])), (ts[3 * L:4 * L], ts[4 * L:5 * L])

    bounded, rounds, last_report = 0, 0, time.monotonic()
    stuck: list[float] = []  # bounds of fully split domains that stay open

    def stats() -> dict[str, int]:
        return {"domains_bounded": bounded, "rounds": rounds, "tree_nodes": len(tree.parent)}

    while pool.size:
        now = time.monotonic()
        if now >= deadline or pool.size > 1.5 * options.max_open:
            break
        rounds += 1
        take = min(options.batch, pool.size)
        # every open domain must be closed, and the tree does not depend on the order, so a
        # full pool takes the domains likeliest to close instead of the worst
        plb, pid, fields = pool.take(take, best=pool.size > options.max_open)
        ph, pre, slopes = unpack(fields)
        layer, neuron = _choose(Ws, bs, lo, hi, pre, ph, slopes if options.score_with_slopes else None,
                                slopes, options.candidates, options.float32_steps)
        exhausted = layer < 0
        if exhausted.any():
            # every unstable neuron is split: the domain is a linear program, which its betas
            # solve in the limit; optimise them longer, and try the points their bound points at
            sel = torch.nonzero(exhausted).flatten()
            ex = _settle(Ws, bs, lo, hi, [(l[sel], u[sel]) for l, u in pre], [p[sel] for p in ph],
                         ([a[sel] for a in slopes[0]], [b[sel] for b in slopes[1]]), threshold, options)
            bounded += int(sel.numel())
            lb_ex = ex[0].lb.max(dim=1).values
            fine = torch.nonzero(lb_ex > threshold).flatten()
            tree.closures += _closures(fine, pid[sel[fine]].tolist(), lb_ex[fine].tolist(), polytope, local,
                                       ex[1], ex[2], [(l[sel], u[sel]) for l, u in pre], [p[sel] for p in ph], nmap)
            hit = _unsafe_corner(Ws, bs, lo, hi, ex[0].lam[lb_ex <= threshold], is_unsafe)
            if hit is not None:
                return None, -np.inf, stats(), hit
            stuck.extend(lb_ex[lb_ex <= threshold].tolist())
            live = ~exhausted
            layer, neuron, plb, pid = layer[live], neuron[live], plb[live], pid[live]
            ph, pre, slopes = unpack([t[live] for t in fields])
            take = int(live.sum())
            if take == 0:
                continue
        warm = ([torch.cat([a, a]) for a in slopes[0]], [torch.cat([b, b]) for b in slopes[1]])
        c_ph = [torch.cat([p, p]) for p in ph]
        idx = torch.arange(take)
        for k in range(n_layers):
            sel = layer == k
            if sel.any():
                c_ph[k][idx[sel], neuron[sel]] = 1.0
                c_ph[k][take + idx[sel], neuron[sel]] = -1.0
        ids = [tree.add(int(p), nmap.layer[int(k)], int(nmap.ids[int(k)][int(j)]), s) for s in (1, -1)
               for p, k, j in zip(pid.tolist(), layer.tolist(), neuron.tolist())]
        c_id = torch.tensor(ids)
        c_lo, c_hi = lo.expand(2 * take, -1), hi.expand(2 * take, -1)
        # the children's bounds: the parent's, clamped by the split (with ``recompute``: the
        # parent's up to the split layer, CROWN with the split phases from there on)
        parent2 = [(torch.cat([l, l]), torch.cat([u, u])) for l, u in pre]
        c_pre = crown_bounds(Ws, bs, c_lo, c_hi, phases=c_ph, last=False, parent=parent2,
                             start=int(layer.min()) if options.recompute else n_layers)
        res, c_alphas, c_betas = optimize_alpha(Ws, bs, c_lo, c_hi, c_pre, iterations=options.child_iterations,
                                                phases=c_ph, betas_init=True, stop=threshold,
                                                warm=warm if options.warm_start else None, lr=options.lr_alpha,
                                                lr_beta=options.lr_beta, fast=options.float32_steps)
        bounded += 2 * take
        own = res.lb.max(dim=1).values
        c_lb = torch.maximum(own, torch.cat([plb, plb]))
        done = c_lb > threshold
        hit = _unsafe_corner(Ws, bs, lo, hi, res.lam[~done], is_unsafe)
        if hit is not None:
            return None, -np.inf, stats(), hit
        fine = torch.nonzero(done).flatten()
        tree.closures += _closures(fine, c_id[fine].tolist(), own[fine].tolist(), polytope, local, c_alphas,
                                   c_betas or None, c_pre, c_ph, nmap)
        keep = ~done
        assert c_betas is not None
        pool.add([t[keep] for t in c_ph + [l for l, _ in c_pre] + [u for _, u in c_pre] + c_alphas + c_betas],
                 c_lb[keep], c_id[keep])
        if progress is not None and now - last_report > 1.0:
            last_report = now
            worst = pool.worst() if pool.size else 0.0
            progress(f"ReLU split, {label}: {pool.size} open, {len(tree.closures)} closed, "
                     f"worst bound {worst:.4g}" + (f", {len(stuck)} fully split and open" if stuck else ""))
    if pool.size or stuck:
        return None, min(([pool.worst()] if pool.size else []) + stuck), stats(), None
    return tree, 0.0, stats(), None


def _choose(Ws: list[Tensor], bs: list[Tensor], lo: Tensor, hi: Tensor, pre: Bounds, phases: list[Tensor],
            score_slopes: tuple[list[Tensor], list[Tensor]] | None = None,
            try_slopes: tuple[list[Tensor], list[Tensor]] | None = None,
            candidates: int = 1, fast: bool = False) -> tuple[Tensor, Tensor]:
    """Per domain, the (layer, neuron) to split (layer -1: no unstable neuron is left).

    Scores: the intercept (BaBSR-style) of each unstable neuron, weighted by the coefficient
    of the domain's best row in a bound with ``score_slopes`` (default slopes if None).  With
    ``candidates > 1`` (filtered smart branching), the best-scored neurons are tried: each
    one's two children are bounded with ``try_slopes`` (no new optimisation) and the
    neuron whose worse child is best wins.  With ``fast`` the scores are computed in float32
    (they only choose; no bound from here is trusted).
    """
    if fast and lo.dtype == torch.float64:
        f32 = torch.float32
        return _choose(cast(Ws, f32), cast(bs, f32), lo.float(), hi.float(), [(l.float(), u.float()) for l, u in pre],
                       cast(phases, f32), None if score_slopes is None else (cast(score_slopes[0], f32),
                                                                             cast(score_slopes[1], f32)),
                       None if try_slopes is None else (cast(try_slopes[0], f32), cast(try_slopes[1], f32)),
                       candidates)
    n = phases[0].shape[0]
    record: dict[int, Tensor] = {}
    alphas, betas = score_slopes or (None, None)
    res = backward_bound(Ws, bs, lo.expand(n, -1), hi.expand(n, -1), pre, alphas, betas, phases, record=record)
    rows = res.lb.argmax(dim=1)
    scores, offsets = [], [0]
    for k, (l, u) in enumerate(pre):
        lam = record[k][torch.arange(n), rows]  # [n, n_k]
        unstable = (l < 0) & (u > 0) & (phases[k] == 0)
        _, t = relu_upper(l, u)
        scores.append(torch.where(unstable, lam.clamp(max=0).abs() * t + 1e-12 * (u - l), torch.full_like(l, -1.0)))
        offsets.append(offsets[-1] + l.shape[1])
    flat = torch.cat(scores, dim=1)  # [n, total neurons]
    k_top = min(candidates, flat.shape[1])
    top, where = flat.topk(k_top, dim=1)
    if k_top > 1:
        # bound both children of each candidate with the domain's slopes: [2 * k_top * n] domains
        valid = top >= 0
        cand = where.T.reshape(-1)  # candidate-major: [k_top * n]
        dom = torch.arange(n).repeat(k_top)
        c_ph = [torch.cat([p[dom], p[dom]]) for p in phases]
        c_pre = [(torch.cat([l[dom], l[dom]]), torch.cat([u[dom], u[dom]])) for l, u in pre]
        m = k_top * n
        for k in range(len(pre)):
            sel = (cand >= offsets[k]) & (cand < offsets[k + 1])
            idx = torch.nonzero(sel).flatten()
            j = cand[idx] - offsets[k]
            c_ph[k][idx, j] = 1.0
            c_ph[k][m + idx, j] = -1.0
            cl, cu = c_pre[k]
            cl[idx, j] = cl[idx, j].clamp(min=0)
            cu[m + idx, j] = cu[m + idx, j].clamp(max=0)
        alphas, betas = try_slopes or (None, None)
        c_al = None if alphas is None else [torch.cat([a[dom], a[dom]]) for a in alphas]
        c_be = None if betas is None else [torch.cat([b[dom], b[dom]]) for b in betas]
        both = backward_bound(Ws, bs, lo.expand(2 * m, -1), hi.expand(2 * m, -1), c_pre, c_al, c_be, c_ph)
        worse = torch.minimum(both.lb[:m].max(dim=1).values, both.lb[m:].max(dim=1).values).view(k_top, n).T
        worse = torch.where(valid, worse, torch.full_like(worse, -torch.inf))
        pick = worse.argmax(dim=1)
        chosen = where[torch.arange(n), pick]
    else:
        chosen = where[:, 0]
    bounds = torch.tensor(offsets[1:])
    layer = torch.bucketize(chosen, bounds, right=True)
    neuron = chosen - torch.tensor(offsets)[layer]
    exhausted = top[:, 0] < 0
    return torch.where(exhausted, -1, layer), torch.where(exhausted, 0, neuron)


def _settle(Ws: list[Tensor], bs: list[Tensor], lo: Tensor, hi: Tensor, pre: Bounds, phases: list[Tensor],
            slopes: tuple[list[Tensor], list[Tensor]], threshold: float,
            options: ReluSplitOptions) -> tuple[Any, list[Tensor], list[Tensor]]:
    """A long alpha/beta optimisation of fully split domains (their bound is then the LP's)."""
    n = phases[0].shape[0]
    res, alphas, betas = optimize_alpha(Ws, bs, lo.expand(n, -1), hi.expand(n, -1), pre,
                                        iterations=options.exhausted_iterations, phases=phases, betas_init=True,
                                        stop=threshold, warm=slopes, lr=options.lr_alpha, lr_beta=options.lr_beta,
                                        fast=options.float32_steps)
    assert betas is not None
    return res, alphas, betas


def first_unsafe(Ws: list[Tensor], bs: list[Tensor], groups: list[Tensor], pts: Tensor,
                 is_unsafe: Callable[[np.ndarray], bool] | None) -> np.ndarray | None:
    """Of the points ``pts`` inside an unsafe polytope of the chain (``groups``: each polytope's
    rows), the deepest one (of at most 8 tried) that ``is_unsafe`` (the replay) accepts, if any."""
    g = chain_eval(Ws, bs, pts)
    inside = torch.stack([g[:, grp].max(dim=1).values for grp in groups], dim=1).min(dim=1).values
    bad = torch.nonzero(inside <= 0).flatten()
    for i in bad[torch.argsort(inside[bad])][:8].tolist():
        x = pts[i].numpy()
        if is_unsafe is None or is_unsafe(x):
            return x
    return None


def _unsafe_corner(Ws: list[Tensor], bs: list[Tensor], lo: Tensor, hi: Tensor, lam: Tensor,
                   is_unsafe: Callable[[np.ndarray], bool] | None,
                   polys: list[Tensor] | None = None) -> np.ndarray | None:
    """Of the box corners that minimise the domains' linear bounds (``lam``: ``[n, m, n0]``),
    one inside an unsafe polytope (``polys``: their rows; default one polytope of all rows)
    that the replay accepts, if any."""
    if lam.shape[0] == 0:
        return None
    corners = torch.where(lam > 0, lo.unsqueeze(1), hi.unsqueeze(1)).reshape(-1, lo.shape[1])
    return first_unsafe(Ws, bs, polys or [torch.arange(lam.shape[1])], corners, is_unsafe)


def _descend_from_corners(Ws: list[Tensor], bs: list[Tensor], lo: Tensor, hi: Tensor, lam: Tensor,
                          polys: list[Tensor], is_unsafe: Callable[[np.ndarray], bool] | None,
                          steps: int, deadline: float) -> np.ndarray | None:
    """A counterexample reached by descent from the corners the bound points at (see
    :mod:`verify.falsify.corners`) that the replay accepts, if any."""
    if steps <= 0 or lam.shape[0] == 0:
        return None
    return first_unsafe(Ws, bs, polys, descend_from_corners(Ws, bs, lo, hi, lam, polys, steps, deadline),
                          is_unsafe)


# a neuron whose bounds are this close to 0 keeps its alpha in a certificate: the checker's
# rigorous bounds differ from ours by rounding and may find it unstable
UNSTABLE_SLACK = 1e-6


def _closures(idx: Tensor, nodes: list[int], margins: list[float], polytope: int, select: np.ndarray,
              alphas: list[Tensor], betas: list[Tensor] | None, pre: Bounds, phases: list[Tensor] | None,
              nmap: NeuronMap) -> list[dict[str, Any]]:
    """Closure entries for the domains ``idx`` of a batch (tree nodes ``nodes``), their
    alphas and betas laid out on the original network's neurons (``select``: the polytope's
    rows among the rows the alphas were computed for).

    An alpha is kept only where it enters the bound (the neuron is neither split nor
    provably stable, with slack for the checker's rounding) and a beta only on a split
    neuron; both are stored sparse.  Dense slopes made certificates of several GB on
    MNIST 256x4, where a closure deep in a tree has few unstable and few split neurons.
    """
    rows, m = torch.as_tensor(select, dtype=torch.long), len(select)
    kept_a, kept_b = [], []
    for k, (l, u) in enumerate(pre):
        l, u = l[idx], u[idx]
        split = phases[k][idx] != 0 if phases is not None else torch.zeros_like(l, dtype=torch.bool)
        unstable = (l < UNSTABLE_SLACK) & (u > -UNSTABLE_SLACK) & ~split
        kept_a.append((alphas[k][idx][:, rows] * unstable.unsqueeze(1)).numpy())
        if betas is not None:
            kept_b.append((betas[k][idx][:, rows] * split.unsqueeze(1)).numpy())
    out = []
    for j, (node, margin) in enumerate(zip(nodes, margins)):
        entry: dict[str, Any] = {"node": node, "polytope": polytope, "margin": claimed(margin),
                                 "alphas": [encode_sparse(a) for a in nmap.expand([a[j] for a in kept_a], m)]}
        if betas is not None:
            entry["betas"] = [encode_sparse(b) for b in nmap.expand([b[j] for b in kept_b], m)]
        out.append(entry)
    return out


def _root_slopes(inter: dict[int, tuple[Tensor, list[Tensor]]], nmap: NeuronMap) -> list[dict[str, Any]]:
    """The root's optimised hidden-layer slopes, on the original network's neurons: for each
    layer, its neurons and, per earlier layer, the slopes ``[2 n, n_j]`` (rows ``+z``, then ``-z``)."""
    out = []
    for k, (rows, alphas) in sorted(inter.items()):
        ids = nmap.ids[k][rows.numpy()]
        original = nmap.layer[k]
        expanded = nmap.expand([a.numpy() for a in alphas], 2 * len(ids))[:original]
        out.append({"layer": original, "neurons": encode_array(ids, "<i4"),
                    "alphas": [encode_array(a) for a in expanded]})
    return out


def _proof(case_index: int, trees: list[ReluTree], sizes: list[int],
           root_slopes: list[dict[str, Any]] | None = None, recompute: bool = False) -> dict[str, Any]:
    """One tree per group of polytopes: each tree's leaves are closed for the polytopes it covers."""
    out = []
    for tree in trees:
        out.append({"polytopes": sorted({int(e["polytope"]) for e in tree.closures}),
                    "tree": {"parent": encode_array(np.asarray(tree.parent), "<i4"),
                             "layer": encode_array(np.asarray(tree.layer), "<i2"),
                             "neuron": encode_array(np.asarray(tree.neuron), "<i4"),
                             "phase": encode_array(np.asarray(tree.phase), "|i1")},
                    "closures": tree.closures})
    body: dict[str, Any] = {"layer_sizes": sizes, "trees": out,
                            "children_bounds": "recomputed" if recompute else "parent"}
    if root_slopes:
        body["root_slopes"] = root_slopes
    return {"case": case_index, "kind": "relu-split", "relu-split": body}
