"""Branch and bound by splitting unstable ReLUs (for high-dimensional inputs, e.g. MNIST).

A domain fixes the phase of some neurons (``z >= 0`` or ``z <= 0``).  Its bound uses the
root's pre-activation bounds clamped by the phases, and optimised lower slopes (alpha)
and split multipliers (beta, as in beta-CROWN) for the property rows.  Each round takes
the worst open domains, splits each on the unstable neuron with the largest
"intercept" score (the area its upper relaxation adds, weighted by how much the bound
depends on it — a BaBSR-style estimate), and bounds all children in one batch.

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

from verify.bounds.linear_relax import Bounds, backward_bound, crown_bounds, optimize_alpha, relu_upper
from verify.certcheck.encoding import encode_array

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
    batch: int = 64
    alpha_iterations: int = 30
    child_iterations: int = 12
    max_open: int = 20_000


def relu_split_bab(Ws: list[Tensor], bs: list[Tensor], groups: list[np.ndarray], case: Any, case_index: int,
                   deadline: float, threshold: float, progress: Callable[[str], None] | None = None,
                   is_unsafe: Callable[[np.ndarray], bool] | None = None,
                   options: ReluSplitOptions | None = None, neuron_map: NeuronMap | None = None) -> Any:
    """Verify the case by ReLU splitting, or return an open outcome (no candidates from here)."""
    from verify.refine import CaseOutcome

    options = options or ReluSplitOptions()
    start = time.monotonic()
    g_t = [torch.as_tensor(g, dtype=torch.long) for g in groups]
    lo = torch.as_tensor(case.box.lower, dtype=torch.float64).reshape(1, -1)
    hi = torch.as_tensor(case.box.upper, dtype=torch.float64).reshape(1, -1)
    root_pre = crown_bounds(Ws, bs, lo, hi)[:-1]
    tree = ReluTree()
    n_layers = len(root_pre)
    sizes = [int(l.shape[1]) for l, _ in root_pre]
    nmap = neuron_map or NeuronMap(list(range(n_layers)), [np.arange(n) for n in sizes], sizes)
    stats: dict[str, Any] = {"unstable_root": int(sum(int(((l < 0) & (u > 0)).sum()) for l, u in root_pre))}

    # root: alpha-CROWN
    res, alphas, _ = optimize_alpha(Ws, bs, lo, hi, root_pre, iterations=options.alpha_iterations,
                                    stop=threshold)
    lbp = torch.stack([res.lb[:, g].max(dim=1).values for g in g_t], dim=1)[0]
    open_p = lbp <= threshold
    for p in torch.nonzero(~open_p).flatten().tolist():
        tree.closures.append(_closure(0, p, groups[p], alphas, None, nmap, float(lbp[p])))
    if not open_p.any():
        return CaseOutcome("verified", "alpha-crown", float(lbp.min()), _proof(case_index, tree, nmap.sizes),
                           stats=stats)
    cand = _candidate(Ws, bs, lo, hi, res)
    if cand is not None and (is_unsafe is None or is_unsafe(cand)):
        return CaseOutcome("candidate", "alpha-crown", -np.inf, candidate=cand, stats=stats)

    # open domains: phases per layer [M, n_k], open polytopes [M, P], bounds [M, P]
    o_ph = [torch.zeros(1, n, dtype=torch.float64) for n in sizes]
    o_open, o_lbp, o_id = open_p.unsqueeze(0), lbp.unsqueeze(0), torch.tensor([0])
    bounded, rounds, last_report = 1, 0, start
    while o_id.numel():
        now = time.monotonic()
        if now >= deadline or o_id.numel() > options.max_open:
            break
        rounds += 1
        worst = torch.where(o_open, o_lbp, torch.full_like(o_lbp, torch.inf)).min(dim=1).values
        order = torch.argsort(worst)
        take = min(options.batch, o_id.numel())
        pick, rest = order[:take], order[take:]
        ph = [p[pick] for p in o_ph]
        popen, plbp, pid = o_open[pick], o_lbp[pick], o_id[pick]
        pre = _clamped(root_pre, ph, take)
        # branching: score unstable neurons with the worst open polytope's best row
        layer, neuron = _choose(Ws, bs, lo, hi, pre, ph, g_t, popen, plbp)
        if layer is None:
            break  # nothing left to split (should not happen before closing)
        c_ph = [torch.cat([p, p]) for p in ph]
        rows = torch.arange(take)
        for k in range(n_layers):
            sel = layer == k
            if sel.any():
                c_ph[k][rows[sel], neuron[sel]] = 1.0
                c_ph[k][take + rows[sel], neuron[sel]] = -1.0
        ids = [tree.add(int(p), nmap.layer[int(k)], int(nmap.ids[int(k)][int(j)]), s) for s in (1, -1)
               for p, k, j in zip(pid.tolist(), layer.tolist(), neuron.tolist())]
        c_id = torch.tensor(ids)
        c_lo, c_hi = lo.expand(2 * take, -1), hi.expand(2 * take, -1)
        c_pre = _clamped(root_pre, c_ph, 2 * take)  # only unstable neurons are split: l <= u stays
        res, c_alphas, c_betas = optimize_alpha(Ws, bs, c_lo, c_hi, c_pre, iterations=options.child_iterations,
                                                phases=c_ph, betas_init=True, stop=threshold)
        bounded += 2 * take
        own = torch.stack([res.lb[:, g].max(dim=1).values for g in g_t], dim=1)
        c_lbp = torch.maximum(own, torch.cat([plbp, plbp]))
        c_open_parent = torch.cat([popen, popen])
        newly = c_open_parent & (c_lbp > threshold)
        for i, p in torch.nonzero(newly).tolist():
            tree.closures.append(_closure(int(c_id[i]), p, groups[p], [a[i:i + 1] for a in c_alphas],
                                          [b[i:i + 1] for b in c_betas] if c_betas else None, nmap,
                                          float(own[i, p])))
        c_open = c_open_parent & ~newly
        keep = c_open.any(dim=1)
        o_ph = [torch.cat([p[rest], c[keep]]) for p, c in zip(o_ph, c_ph)]
        o_open = torch.cat([o_open[rest], c_open[keep]])
        o_lbp = torch.cat([o_lbp[rest], c_lbp[keep]])
        o_id = torch.cat([o_id[rest], c_id[keep]])
        if progress is not None and now - last_report > 1.0:
            last_report = now
            w = float(torch.where(o_open, o_lbp, torch.inf).min()) if o_id.numel() else 0.0
            progress(f"ReLU split: {o_id.numel()} open, {len(tree.closures)} closed, worst bound {w:.4g}")
    stats.update({"domains_bounded": bounded, "rounds": rounds, "tree_nodes": len(tree.parent)})
    if o_id.numel() == 0:
        margin = min(float(e["margin"]) for e in tree.closures)
        return CaseOutcome("verified", "relu-split", margin, _proof(case_index, tree, nmap.sizes), stats=stats)
    w = float(torch.where(o_open, o_lbp, torch.inf).min())
    return CaseOutcome("open", "relu-split", w, stats=stats)


def _clamped(root_pre: Bounds, phases: list[Tensor], n: int) -> Bounds:
    out = []
    for (l, u), ph in zip(root_pre, phases):
        l, u = l.expand(n, -1), u.expand(n, -1)
        out.append((torch.where(ph > 0, l.clamp(min=0), l), torch.where(ph < 0, u.clamp(max=0), u)))
    return out


def _choose(Ws: list[Tensor], bs: list[Tensor], lo: Tensor, hi: Tensor, pre: Bounds, phases: list[Tensor],
            groups: list[Tensor], open_p: Tensor, lbp: Tensor) -> tuple[Tensor | None, Tensor]:
    """Per domain, the (layer, neuron) with the largest intercept score among unstable neurons."""
    n = phases[0].shape[0]
    worst_p = torch.where(open_p, lbp, torch.full_like(lbp, torch.inf)).argmin(dim=1)
    record: dict[int, Tensor] = {}
    res = backward_bound(Ws, bs, lo.expand(n, -1), hi.expand(n, -1), pre, record=record)
    rows = torch.empty(n, dtype=torch.long)
    for p, g in enumerate(groups):
        sel = worst_p == p
        if sel.any():
            rows[sel] = g[res.lb[sel][:, g].argmax(dim=1)]
    best_score = torch.full((n,), -1.0, dtype=torch.float64)
    best_layer = torch.full((n,), -1, dtype=torch.long)
    best_neuron = torch.zeros(n, dtype=torch.long)
    for k, (l, u) in enumerate(pre):
        lam = record[k][torch.arange(n), rows]  # [n, n_k]
        unstable = (l < 0) & (u > 0) & (phases[k] == 0)
        s, t = relu_upper(l, u)
        score = torch.where(unstable, lam.clamp(max=0).abs() * t + 1e-12 * (u - l), torch.full_like(l, -1.0))
        top, idx = score.max(dim=1)
        better = top > best_score
        best_score = torch.where(better, top, best_score)
        best_layer = torch.where(better, torch.full_like(best_layer, k), best_layer)
        best_neuron = torch.where(better, idx, best_neuron)
    if bool((best_layer < 0).any()):
        return None, best_neuron
    return best_layer, best_neuron


def _candidate(Ws: list[Tensor], bs: list[Tensor], lo: Tensor, hi: Tensor, res: Any) -> np.ndarray | None:
    from verify.refine.input_split import chain_eval

    corners = torch.where(res.lam > 0, lo.unsqueeze(1), hi.unsqueeze(1))[0]
    g = chain_eval(Ws, bs, corners).max(dim=1).values
    i = int(torch.argmin(g))
    return corners[i].numpy() if float(g[i]) <= 0 else None


def _closure(node: int, polytope: int, rows: np.ndarray, alphas: list[Tensor], betas: list[Tensor] | None,
             nmap: NeuronMap, margin: float) -> dict[str, Any]:
    """A closure entry, its alphas and betas laid out on the original network's neurons."""
    from verify.certificate.build import claimed

    m = len(rows)
    entry: dict[str, Any] = {"node": node, "polytope": polytope, "margin": claimed(margin),
                             "alphas": [encode_array(a) for a in nmap.expand([a[0][rows].numpy() for a in alphas], m)]}
    if betas is not None:
        entry["betas"] = [encode_array(b) for b in nmap.expand([b[0][rows].numpy() for b in betas], m)]
    return entry


def _proof(case_index: int, tree: ReluTree, sizes: list[int]) -> dict[str, Any]:
    return {"case": case_index, "kind": "relu-split", "relu-split": {
        "layer_sizes": sizes,
        "tree": {"parent": encode_array(np.asarray(tree.parent), "<i4"),
                 "layer": encode_array(np.asarray(tree.layer), "<i2"),
                 "neuron": encode_array(np.asarray(tree.neuron), "<i4"),
                 "phase": encode_array(np.asarray(tree.phase), "|i1")},
        "closures": tree.closures}}
