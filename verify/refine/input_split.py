"""Branch and bound by splitting the input box (for low-dimensional inputs, e.g. ACAS Xu).

The unsafe set of one input box is a disjunction of polytopes ``{y : g_p(x) <= 0}``
where ``g_p`` are the property rows of polytope ``p`` folded into the chain's last
layer.  A sub-box is *closed* for polytope ``p`` when some row of ``p`` has a positive
lower bound on it; it is done when every polytope is closed on it or on an ancestor.

Each round takes the open sub-boxes with the worst bounds and cuts each in half.  The
cut is tried, not guessed (smart branching): a box's first candidate is the dimension
with the largest "smear" ``|lambda_d| * width_d`` of its CROWN linear bound (the
dimension the bound depends on most), except that every fourth cut of a box puts its
relatively widest dimension first (the linear bound does not see dimensions that only
loosen the relaxations of unstable neurons); the next best dimensions by smear follow.
Every candidate cut's children are bounded and the cut whose children are least unsafe
is kept.  No dimension gets more than ``MAX_ASPECT`` times narrower (relative to the
root box) than the widest.  Children inherit their parent's pre-activation bounds
(valid on the smaller box) before their own are computed, all children of a round in
one batched call.  A child CROWN leaves open gets a few steps of alpha-CROWN on its
output rows, starting from its parent's slopes, unless its bound is far from closing
(below ``-alpha_ratio`` times the gap between the bound and the value at its centre):
the optimised bound closes boxes and, inherited, tightens their descendants (ACAS Xu
4_2/prop_2, whose margin is about 0.001, closes only so).

It closes what it can, tests the most suspicious points of the rest on the network,
and every few rounds runs a short gradient attack inside the worst boxes.  The split
tree and the closures (with the slopes of those alpha-CROWN made) are recorded so that
a certificate can show that the closed pieces cover the box.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from verify.bounds.linear_relax import (
    BackwardResult,
    Bounds,
    backward_bound,
    crown_bounds,
    optimize_alpha,
    relu_lower_default,
)
from verify.graph.chain import chain_eval
from verify.refine.relu_split import UNSTABLE_SLACK, DomainPool, first_unsafe

Tensor = torch.Tensor

#: Largest ratio between the relative widths of a box's widest and narrowest cut dimension
#: (tuning knob, VERIFY_ASPECT overrides it for experiments).
MAX_ASPECT = float(os.environ.get("VERIFY_ASPECT", "512"))
#: Every this many cuts of a domain go to its relatively widest dimension (VERIFY_WIDEST).
WIDEST_EVERY = int(os.environ.get("VERIFY_WIDEST", "4"))

#: Domains bounded per CROWN call: small enough that the [chunk, m, n] tensors stay in cache.
CROWN_CHUNK = 64
#: Domains per alpha-CROWN call.
ALPHA_CHUNK = 256


@dataclass
class SplitTree:
    """Node 0 is the root box; node i > 0 is the ``side`` half (0: lower, 1: upper) of node
    ``parent[i]``, cut at ``value[i]`` along ``dim[i]``.  ``closures`` lists ``(node,
    polytope, margin)``: on that node's box some row of the polytope has a lower bound at
    least ``margin`` (> 0) above its right-hand side, which refutes the polytope."""

    parent: list[int] = field(default_factory=lambda: [-1])
    dim: list[int] = field(default_factory=lambda: [-1])
    value: list[float] = field(default_factory=lambda: [0.0])
    side: list[int] = field(default_factory=lambda: [0])
    closures: list[tuple[int, int, float]] = field(default_factory=list)
    #: ``(node, polytope, slopes)`` for closures whose bound used optimised lower slopes:
    #: per chain ReLU layer ``(positions, values)`` of the nonzero entries of the
    #: ``[rows of the polytope, n_k]`` slopes (zero where the neuron is stable)
    alpha_closures: list[tuple[int, int, list[tuple[np.ndarray, np.ndarray]]]] = field(default_factory=list)

    def add_many(self, parents: list[int], dims: list[int], values: list[float], sides: list[int]) -> range:
        """Append nodes (lists of equal length); returns their ids."""
        first = len(self.parent)
        self.parent.extend(parents)
        self.dim.extend(dims)
        self.value.extend(values)
        self.side.extend(sides)
        return range(first, len(self.parent))

    @property
    def size(self) -> int:
        return len(self.parent)


@dataclass
class InputSplitResult:
    """``status``: ``verified`` (every piece closed), ``candidate`` (a point the chain
    evaluates as unsafe; the caller's replay accepted it), or ``open`` (out of time/memory)."""

    status: str
    tree: SplitTree
    candidate: np.ndarray | None = None
    min_lb: float = -np.inf  # worst lower bound over what is still open
    domains_bounded: int = 0
    rounds: int = 0
    seconds: float = 0.0
    open_boxes: tuple[np.ndarray, np.ndarray] | None = None
    alpha_tried: int = 0  # open children given to alpha-CROWN
    by_search: bool = False  # the candidate came from ``search`` (not from the split's own bounds or PGD)
    # when open: the open domains' tree nodes, worst bounds, and all their state (to go on from)
    open_nodes: np.ndarray | None = None
    open_bounds: np.ndarray | None = None
    open_frontier: Frontier | None = None
    batches: int = 0  # batches bounded on a cluster (verify.refine.distributed)


@dataclass
class InputSplitOptions:
    batch: int = 256  # domains split per round
    max_open: int = 200_000  # give up (open) past this many open domains
    threshold: float = 1e-7  # a polytope closes when a row's lower bound exceeds this
    attack_every: int = 4  # every this many rounds, a short PGD inside the worst open boxes (0: never)
    attack_boxes: int = 32
    search_at: float = 0.1  # after this fraction of the time, one run of ``search`` (if given)
    # for at most this long: on ACAS Xu 1_9/prop_7 it found the counterexample in 7 s (21 s in
    # all); capped at 3 s it did not, and the split's own PGD took until 61 s
    search_seconds: float = 10.0
    # cuts tried per box (its smear-best dimension and the next ones), all bounded, the one
    # whose children are least unsafe kept (see _best_cut).  ACAS Xu 4_2/prop_2 took about
    # 80 s (218,889 bounds) with 1, 28 s with 2, 19.5 s (41,725 bounds) with 3, 22.7 s with 5
    # cuts; choosing by the worse child alone instead of the sum left it open at 150 s with 3
    candidates: int = 3
    # alpha-CROWN steps on open children, warm-started from the parent's slopes (0: off);
    # ACAS Xu 4_2/prop_2 verified in 83 s with 2 steps, 86 s with 4, 111 s with 8; open without
    alpha_iterations: int = 2
    # skip children whose bound is below -alpha_ratio * (centre value - bound): on ACAS Xu
    # they closed in under 2% of tries (0.6-0.8 carried most of property 1's boxes)
    alpha_ratio: float = 0.8


def bound_boxes(Ws: list[Tensor], bs: list[Tensor], lo: Tensor, hi: Tensor,
                parent: Bounds | None = None) -> tuple[BackwardResult, Bounds]:
    """CROWN lower bounds of every output row on each box (chunked for cache efficiency),
    and the boxes' pre-activation bounds (``parent``: bounds valid on enclosing boxes)."""
    parts, pres = [], []
    for i in range(0, lo.shape[0], CROWN_CHUNK):
        clo, chi = lo[i:i + CROWN_CHUNK], hi[i:i + CROWN_CHUNK]
        par = None if parent is None else [(pl[i:i + CROWN_CHUNK], pu[i:i + CROWN_CHUNK]) for pl, pu in parent]
        pre = crown_bounds(Ws, bs, clo, chi, last=False, parent=par)
        parts.append(backward_bound(Ws, bs, clo, chi, pre))
        pres.append(pre)
    if len(parts) == 1:
        return parts[0], pres[0]
    res = BackwardResult(torch.cat([p.lb for p in parts]), torch.cat([p.lam for p in parts]),
                         torch.cat([p.const for p in parts]))
    pre = [(torch.cat([p[k][0] for p in pres]), torch.cat([p[k][1] for p in pres])) for k in range(len(pres[0]))]
    return res, pre


def polytope_bounds(lb: Tensor, groups: list[Tensor]) -> Tensor:
    """Per polytope: the best (largest) row lower bound, ``[N, P]``."""
    return torch.stack([lb[:, g].max(dim=1).values for g in groups], dim=1)


@dataclass
class Frontier:
    """Open domains to go on from instead of one root box (distributed branch and bound,
    :mod:`verify.refine.distributed`), exactly as a run left them: ``fields`` are the
    pool's per-domain arrays (box, open polytopes, polytope bounds, branching
    coefficients, depth, inherited hidden-layer bounds, alpha slopes; the layout of
    :func:`input_split_bab`'s pool), ``root_width`` the whole region's (the aspect rule).
    The result's tree has one root per domain: nodes ``0..K-1``, parent -1."""

    fields: list[np.ndarray]
    root_width: np.ndarray

    @property
    def size(self) -> int:
        return int(self.fields[0].shape[0])

    def take(self, rows: np.ndarray) -> Frontier:
        return Frontier([f[rows] for f in self.fields], self.root_width)


def input_split_bab(Ws: list[Tensor], bs: list[Tensor], groups: list[np.ndarray], lo: np.ndarray, hi: np.ndarray,
                    deadline: float, options: InputSplitOptions | None = None,
                    progress: Callable[[str], None] | None = None,
                    is_unsafe: Callable[[np.ndarray], bool] | None = None,
                    search: Callable[[float], np.ndarray | None] | None = None,
                    frontier: Frontier | None = None) -> InputSplitResult:
    """Refute every polytope on the box, or find a point inside one of them.

    ``Ws, bs`` is the chain with all property rows stacked in its last layer; ``groups``
    lists the row indices of each polytope.  ``is_unsafe(x)`` replays a candidate on the
    original model; candidates it rejects are ignored and the search goes on.  ``search(limit)``
    (a counterexample search on the original model for at most ``limit`` seconds, returning a
    replayed point or None) runs once when a fraction ``search_at`` of the time has passed
    without an answer.  With ``frontier``, the boxes to start from (``lo``, ``hi`` unused).
    """
    options = options or InputSplitOptions()
    start = time.monotonic()
    tree = SplitTree()
    g_t = [torch.as_tensor(np.asarray(g), dtype=torch.long) for g in groups]
    thr = options.threshold
    if frontier is not None:
        return _from_frontier(Ws, bs, g_t, frontier, deadline, options, progress, is_unsafe, start)
    lo_t = torch.as_tensor(lo, dtype=torch.float64).reshape(1, -1)
    hi_t = torch.as_tensor(hi, dtype=torch.float64).reshape(1, -1)
    root_width = torch.where(hi_t[0] > lo_t[0], hi_t[0] - lo_t[0], torch.ones_like(hi_t[0]))

    res, pre = bound_boxes(Ws, bs, lo_t, hi_t)
    lbp = polytope_bounds(res.lb, g_t)
    open_p = lbp <= thr
    for p in torch.nonzero(~open_p[0]).flatten().tolist():
        tree.closures.append((0, p, float(lbp[0, p])))
    bounded = 1
    if not open_p.any():
        return InputSplitResult("verified", tree, min_lb=float(lbp.min()), domains_bounded=1,
                                seconds=time.monotonic() - start)
    hit = first_unsafe(Ws, bs, g_t, _suspicious_points(lo_t, hi_t, res), is_unsafe)
    if hit is not None:
        return InputSplitResult("candidate", tree, candidate=hit, domains_bounded=1, seconds=time.monotonic() - start)

    alpha_on = options.alpha_iterations > 0 and len(Ws) > 1
    m_rows = Ws[-1].shape[0]
    # the open boxes: bounds, open polytopes, polytope bounds, branching coefficients, depth,
    # hidden-layer bounds and (float32: they only seed the next optimisation) lower slopes
    al0 = [relu_lower_default(l, u).unsqueeze(1).expand(1, m_rows, -1).float()
           for l, u in pre[:len(Ws) - 1]] if alpha_on else []
    pool = DomainPool([lo_t, hi_t, open_p, lbp, _worst_row_lam(res, lbp, open_p, g_t), torch.tensor([0])]
                      + [l for l, _ in pre] + [u for _, u in pre] + al0,
                      _worst_open(open_p, lbp), torch.tensor([0]))
    return _split(Ws, bs, g_t, pool, tree, root_width, bounded, deadline, options, progress, is_unsafe, search,
                  start)


def _from_frontier(Ws: list[Tensor], bs: list[Tensor], g_t: list[Tensor], frontier: Frontier, deadline: float,
                   options: InputSplitOptions, progress: Callable[[str], None] | None,
                   is_unsafe: Callable[[np.ndarray], bool] | None, start: float) -> InputSplitResult:
    """Go on from a frontier's domains (one tree root each)."""
    k = frontier.size
    tree = SplitTree()
    tree.add_many([-1] * (k - 1), [-1] * (k - 1), [0.0] * (k - 1), [0] * (k - 1))
    fields = [torch.as_tensor(f) for f in frontier.fields]
    rw = torch.as_tensor(frontier.root_width, dtype=torch.float64)
    pool = DomainPool(fields, _worst_open(fields[2], fields[3]), torch.arange(k))
    return _split(Ws, bs, g_t, pool, tree, torch.where(rw > 0, rw, torch.ones_like(rw)), 0, deadline, options,
                  progress, is_unsafe, None, start)


def _split(Ws: list[Tensor], bs: list[Tensor], g_t: list[Tensor], pool: DomainPool, tree: SplitTree,
           root_width: Tensor, bounded: int, deadline: float, options: InputSplitOptions,
           progress: Callable[[str], None] | None, is_unsafe: Callable[[np.ndarray], bool] | None,
           search: Callable[[float], np.ndarray | None] | None, start: float) -> InputSplitResult:
    """The rounds of :func:`input_split_bab` on the open domains of ``pool``."""
    thr = options.threshold
    alpha_on = options.alpha_iterations > 0 and len(Ws) > 1
    L = len(Ws) - 1
    alpha_tried = 0
    rounds = 0
    last_report = start
    search_time = start + options.search_at * max(0.0, deadline - start)
    while pool.size:
        now = time.monotonic()
        if now >= deadline or pool.size > options.max_open:
            break
        if search is not None and now >= search_time:
            hit = search(options.search_seconds)
            search = None
            if hit is not None:
                return InputSplitResult("candidate", tree, candidate=hit, domains_bounded=bounded, rounds=rounds,
                                        seconds=time.monotonic() - start, by_search=True)
        rounds += 1
        take = min(options.batch, pool.size)
        _, pid, fields = pool.take(take)
        plo, phi, popen, plbp, plam, pdepth = fields[:6]
        ppre = list(zip(fields[6:6 + L], fields[6 + L:6 + 2 * L]))
        width = phi - plo
        rel = width / root_width
        ok = (width > 0) & (rel * MAX_ASPECT >= rel.max(dim=1, keepdim=True).values)
        score = torch.where(ok, plam.abs() * width + 1e-300, torch.full_like(width, -1.0))
        dims = score.argmax(dim=1)
        # every WIDEST_EVERY-th cut of a domain goes to its relatively widest dimension,
        # so that dimensions the linear bound does not see still get cut
        if WIDEST_EVERY:
            widest = torch.where(width > 0, rel, torch.full_like(rel, -1.0)).argmax(dim=1)
            dims = torch.where(pdepth % WIDEST_EVERY == WIDEST_EVERY - 1, widest, dims)
        cand = _cut_candidates(score, dims, options.candidates)
        dims, c_lo, c_hi, res, c_pre = _best_cut(Ws, bs, g_t, plo, phi, ppre, popen, plbp, cand, thr)
        c_al = [a.repeat(2, 1, 1) for a in fields[6 + 2 * L:]]
        bounded += 2 * take * cand.shape[1]
        rows = torch.arange(take)
        mid = c_hi[rows, dims].tolist()
        d_list, p_list = dims.tolist(), pid.tolist()
        ids = tree.add_many(p_list * 2, d_list * 2, mid * 2, [0] * take + [1] * take)  # lower halves, then upper
        c_id = torch.arange(ids.start, ids.stop)
        c_open_parent = torch.cat([popen, popen])
        own = polytope_bounds(res.lb, g_t)  # the child's own bound (the parent's did not close it)
        c_lbp = torch.maximum(own, torch.cat([plbp, plbp]))  # child within parent
        newly = c_open_parent & (c_lbp > thr)
        for i, p in torch.nonzero(newly).tolist():
            tree.closures.append((int(c_id[i]), p, float(own[i, p])))
        c_open = c_open_parent & ~newly
        keep = c_open.any(dim=1)
        if alpha_on and keep.any():
            alpha_tried += _alpha_pass(Ws, bs, g_t, torch.nonzero(keep).flatten(), c_lo, c_hi, c_pre, c_al, own,
                                       c_open, c_lbp, c_id, tree, options)
            keep = c_open.any(dim=1)
        if keep.any():
            k_lo, k_hi = c_lo[keep], c_hi[keep]
            sub = BackwardResult(res.lb[keep], res.lam[keep], res.const[keep])
            hit = first_unsafe(Ws, bs, g_t, _suspicious_points(k_lo, k_hi, sub), is_unsafe)
            if hit is not None:
                return InputSplitResult("candidate", tree, candidate=hit, domains_bounded=bounded, rounds=rounds,
                                        seconds=time.monotonic() - start)
            k_open, k_lbp = c_open[keep], c_lbp[keep]
            pool.add([k_lo, k_hi, k_open, k_lbp, _worst_row_lam(sub, k_lbp, k_open, g_t), (pdepth + 1).repeat(2)[keep]]
                     + [l[keep] for l, _ in c_pre] + [u[keep] for _, u in c_pre] + [a[keep] for a in c_al],
                     _worst_open(k_open, k_lbp), c_id[keep])
        if options.attack_every and rounds % options.attack_every == 0 and pool.size:
            sel = pool.lowest(options.attack_boxes)
            hit = first_unsafe(Ws, bs, g_t, _pgd_points(Ws, bs, g_t, pool.fields[0][sel], pool.fields[1][sel], rounds),
                                is_unsafe)
            if hit is not None:
                return InputSplitResult("candidate", tree, candidate=hit, domains_bounded=bounded, rounds=rounds,
                                        seconds=time.monotonic() - start)
        if progress is not None and now - last_report > 1.0:
            last_report = now
            w = pool.worst() if pool.size else 0.0
            progress(f"input split: {pool.size} open, {len(tree.closures)} closed, {bounded} bounds "
                     f"({alpha_tried} alpha), worst bound {float(w):.4g}")
    status = "verified" if pool.size == 0 else "open"
    min_lb = _closed_min(tree) if status == "verified" else pool.worst()
    used = pool.used
    return InputSplitResult(status, tree, min_lb=min_lb, domains_bounded=bounded, rounds=rounds,
                            seconds=time.monotonic() - start,
                            open_boxes=(pool.fields[0][used].numpy(), pool.fields[1][used].numpy()),
                            alpha_tried=alpha_tried, open_nodes=pool.ids[used].numpy(),
                            open_bounds=pool.lb[used].numpy(),
                            open_frontier=Frontier([f[used].numpy() for f in pool.fields], root_width.numpy()))


def _closed_min(tree: SplitTree) -> float:
    """The smallest margin of the tree's closures (+inf when it has none)."""
    return min((m for _, _, m in tree.closures), default=float("inf"))


def _worst_open(open_p: Tensor, lbp: Tensor) -> Tensor:
    """Per box: the lowest bound among its open polytopes."""
    return torch.where(open_p, lbp, torch.full_like(lbp, torch.inf)).min(dim=1).values


def _alpha_pass(Ws: list[Tensor], bs: list[Tensor], groups: list[Tensor], idx: Tensor, lo: Tensor, hi: Tensor,
                pre: Bounds, alphas: list[Tensor], own: Tensor, open_p: Tensor, lbp: Tensor, ids: Tensor,
                tree: SplitTree, options: InputSplitOptions) -> int:
    """Warm-started alpha-CROWN on the open children ``idx`` that are not far from closing.

    Updates in place: ``open_p`` and ``lbp`` (the children's polytope bounds), ``alphas``
    (the children's slopes) and ``tree`` (a closure with its slopes per polytope refuted).
    Returns how many children were optimised.
    """
    thr = options.threshold
    centre = chain_eval(Ws, bs, (lo[idx] + hi[idx]) / 2)
    value = torch.stack([centre[:, g].max(dim=1).values for g in groups], dim=1)
    bound = own[idx]
    worst = torch.where(open_p[idx], bound, torch.full_like(bound, torch.inf)).argmin(dim=1)
    r = torch.arange(idx.numel())
    gap = (value[r, worst] - bound[r, worst]).clamp(min=1e-300)
    idx = idx[bound[r, worst] >= -options.alpha_ratio * gap]
    tried = 0
    for s in range(0, idx.numel(), ALPHA_CHUNK):
        ii = idx[s:s + ALPHA_CHUNK]
        cpre = [(l[ii], u[ii]) for l, u in pre]
        res, best, _ = optimize_alpha(Ws, bs, lo[ii], hi[ii], cpre, iterations=options.alpha_iterations, stop=thr,
                                      warm=([a[ii].double() for a in alphas], None))
        tried += ii.numel()
        for a, b in zip(alphas, best):
            a[ii] = b.float()
        albp = polytope_bounds(res.lb, groups)
        shut = open_p[ii] & (albp > thr)
        rows = torch.nonzero(shut.any(dim=1)).flatten()
        if rows.numel():
            # the slopes where they enter the bound (unstable neurons), as numpy once per chunk
            kept = [(a[rows] * ((l[rows] < UNSTABLE_SLACK) & (u[rows] > -UNSTABLE_SLACK)).unsqueeze(1)).numpy()
                    for a, (l, u) in zip(best, cpre)]
            at = {r: j for j, r in enumerate(rows.tolist())}
            for i, p in torch.nonzero(shut).tolist():
                g = groups[p].numpy()
                slopes = []
                for a in kept:
                    dense = a[at[i]][g]
                    pos = np.flatnonzero(dense)
                    slopes.append((pos.astype(np.int32), dense.reshape(-1)[pos]))
                tree.closures.append((int(ids[ii[i]]), p, float(albp[i, p])))
                tree.alpha_closures.append((int(ids[ii[i]]), p, slopes))
        open_p[ii] &= ~shut
        lbp[ii] = torch.maximum(lbp[ii], albp)
    return tried


def _cut_candidates(score: Tensor, first: Tensor, k: int) -> Tensor:
    """``[N, k]`` dimensions to try cutting each box along: ``first``, then the others with
    the highest positive ``score`` (``first`` again where a box has fewer)."""
    k = min(k, score.shape[1])
    if k <= 1:
        return first.unsqueeze(1)
    others = score.clone()
    others[torch.arange(score.shape[0]), first] = -torch.inf
    top = others.topk(k - 1, dim=1)
    rest = torch.where(top.values > 0, top.indices, first.unsqueeze(1))
    return torch.cat([first.unsqueeze(1), rest], dim=1)


def _best_cut(Ws: list[Tensor], bs: list[Tensor], groups: list[Tensor], lo: Tensor, hi: Tensor, pre: Bounds,
              open_p: Tensor, lbp: Tensor, cand: Tensor, thr: float,
              ) -> tuple[Tensor, Tensor, Tensor, BackwardResult, Bounds]:
    """Cut each box along each of its candidate dimensions ``cand`` (``[N, k]``), bound all
    the children in one call, and keep the cut whose two children are least unsafe: the
    largest sum over both of the lowest bound among their open polytopes (0 when closed or
    above 0).  Returns the dimensions chosen, the children (lower halves, then upper
    halves), their CROWN bounds and their pre-activation bounds."""
    N, k = cand.shape
    los, his = zip(*[_halves(lo, hi, cand[:, j]) for j in range(k)])
    res, c_pre = bound_boxes(Ws, bs, torch.cat(los), torch.cat(his),
                             [(l.repeat(2 * k, 1), u.repeat(2 * k, 1)) for l, u in pre])
    if k == 1:
        return cand[:, 0], los[0], his[0], res, c_pre
    rows = torch.arange(N)
    c_lbp = torch.maximum(polytope_bounds(res.lb, groups), lbp.repeat(2 * k, 1))
    still = open_p.repeat(2 * k, 1) & (c_lbp <= thr)
    worst = torch.where(still, c_lbp, torch.zeros_like(c_lbp)).min(dim=1).values.clamp(max=0.0)
    pick = worst.view(k, 2, N).sum(dim=1).argmax(dim=0)  # the first candidate on ties
    sel = torch.cat([pick * 2 * N + rows, pick * 2 * N + N + rows])
    return (cand[rows, pick], torch.cat(los)[sel], torch.cat(his)[sel],
            BackwardResult(res.lb[sel], res.lam[sel], res.const[sel]), [(l[sel], u[sel]) for l, u in c_pre])


def _halves(lo: Tensor, hi: Tensor, dims: Tensor) -> tuple[Tensor, Tensor]:
    """Children of each box cut in half along ``dims``: lower halves first, then upper halves."""
    rows = torch.arange(lo.shape[0])
    mid = (lo[rows, dims] + hi[rows, dims]) / 2
    lo_a, hi_a = lo.clone(), hi.clone()
    hi_a[rows, dims] = mid
    lo_b, hi_b = lo.clone(), hi.clone()
    lo_b[rows, dims] = mid
    return torch.cat([lo_a, lo_b]), torch.cat([hi_a, hi_b])


def _worst_row_lam(res: BackwardResult, lbp: Tensor, open_p: Tensor, groups: list[Tensor]) -> Tensor:
    """Linear coefficients (``[N, n0]``) of the best row of each domain's worst open polytope."""
    worst_p = torch.where(open_p, lbp, torch.full_like(lbp, torch.inf)).argmin(dim=1)
    rows = torch.empty_like(worst_p)
    for p, g in enumerate(groups):
        sel = worst_p == p
        if sel.any():
            rows[sel] = g[res.lb[sel][:, g].argmax(dim=1)]
    return res.lam[torch.arange(res.lam.shape[0]), rows]


def _pgd_points(Ws: list[Tensor], bs: list[Tensor], groups: list[Tensor], lo: Tensor, hi: Tensor, seed: int,
                starts: int = 8, steps: int = 15) -> Tensor:
    """End points of a short sign-gradient descent on ``min_p max_i g_i`` inside each box."""
    gen = torch.Generator().manual_seed(seed)
    n, d = lo.shape
    width = hi - lo
    x = (lo.unsqueeze(1) + torch.rand(n, starts, d, generator=gen, dtype=lo.dtype) * width.unsqueeze(1))
    x = x.reshape(-1, d)
    blo, bhi, bw = (t.repeat_interleave(starts, dim=0) for t in (lo, hi, width))
    for step in range(steps):
        x = x.detach().requires_grad_(True)
        g = chain_eval(Ws, bs, x)
        v = torch.stack([g[:, grp].max(dim=1).values for grp in groups], dim=1).min(dim=1).values
        grad, = torch.autograd.grad(v.sum(), x)
        with torch.no_grad():
            x = torch.minimum(torch.maximum(x - (0.25 * (1 - step / steps) + 0.02) * bw * grad.sign(), blo), bhi)
    return x.detach()


def _suspicious_points(lo: Tensor, hi: Tensor, res: BackwardResult) -> Tensor:
    """Per domain: its centre and, per row, the box corner minimising the row's linear bound."""
    corners = torch.where(res.lam > 0, lo.unsqueeze(1), hi.unsqueeze(1))  # [N, m, n0]
    pts = torch.cat([((lo + hi) / 2).unsqueeze(1), corners], dim=1)
    return pts.reshape(-1, lo.shape[1])
