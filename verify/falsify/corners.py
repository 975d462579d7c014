"""Counterexample search from the box corners a linear bound points at.

alpha-CROWN bounds each unsafe row ``C y - d`` from below by a linear function of the
input; its minimum over the box is a corner (each input at the face its coefficient's
sign picks).  Starting a descent there finds counterexamples that random starts miss:
on MNIST-FC row 46 PGD from uniform points, faces and corners stalls at margin 0.985,
while from the corner of the row "y8 >= y1" Adam reaches -0.50 in 300 steps (six 2021
tools said the property is violated; none showed a point).

:func:`descend_from_corners` is the descent itself (ReLU-split branch and bound runs it on
its root bound); :class:`BoundCornerSearch` is the falsifier around it.  It needs the
model as a chain of affine maps and ReLUs (:mod:`verify.graph.chain`) and searches
nothing on other models.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from verify.bounds.adam import Adam
from verify.bounds.linear_relax import crown_bounds, optimize_alpha
from verify.errors import ModelError
from verify.falsify.base import Budget, Counterexample, SearchStats, confirm, float32_box
from verify.graph.chain import chain_eval, chain_from_ir
from verify.model.network import Model
from verify.spec.property import Case, Property

Tensor = torch.Tensor


def descend_from_corners(Ws: list[Tensor], bs: list[Tensor], lo: Tensor, hi: Tensor, lam: Tensor,
                         polys: list[Tensor], steps: int = 300, deadline: float | None = None) -> Tensor:
    """Points reached by Adam from the corner of each row's linear bound.

    The chain's outputs are the unsafe rows (a point is unsafe when every row of one
    polytope is <= 0); ``lam`` (``[m, n0]``) holds the input coefficients of each row's
    lower bound, ``polys`` the rows of each polytope.  The start of row ``r`` descends on
    the worst row of ``r``'s polytope; it stops early at ``deadline`` (``time.monotonic()``).
    Returns ``[m, n0]`` points inside ``[lo, hi]``.
    """
    m = lam.shape[0]
    member = torch.zeros(m, m, dtype=torch.bool)  # member[r, j]: row j is in row r's polytope
    for rows in polys:
        member[rows.unsqueeze(1), rows.unsqueeze(0)] = True
    width = (hi - lo).clamp(min=0)
    t = (lam < 0).to(lo.dtype).clone().requires_grad_(True)  # box coordinates in [0, 1]
    opt = Adam([t], lr=0.02)
    for step in range(steps):
        if deadline is not None and step % 25 == 0 and time.monotonic() >= deadline:
            break
        g = chain_eval(Ws, bs, lo + width * t)  # start r: all rows
        opt.zero_grad()
        torch.where(member, g, -torch.inf).amax(dim=1).sum().backward()
        opt.step()
        with torch.no_grad():
            t.clamp_(0.0, 1.0)
    return (lo + width * t).detach()


class BoundCornerSearch:
    """One descent per unsafe row of each case, from the corner its alpha-CROWN bound
    points at; the points are replayed on the original model."""

    name = "corners"

    def __init__(self, steps: int = 300, alpha_iterations: int = 20) -> None:
        self.steps = steps
        self.alpha_iterations = alpha_iterations
        self.stats = SearchStats()

    def search(self, model: Model, prop: Property, budget: Budget, seed: int = 0) -> Counterexample | None:
        self.stats = SearchStats()
        chain = None if model.ir is None else chain_from_ir(model.ir)
        if chain is None:  # convolutions written out as dense matrices may still make a chain
            from verify.graph.chain_graph import graph_to_chain  # here: networkx (start-up of dense chains)
            from verify.graph.extract import extract_graph

            try:
                chain = graph_to_chain(extract_graph(model))
            except ModelError:
                chain = None
        if chain is None:
            return None  # not a chain of affine maps and ReLUs: nothing to bound here
        Ws, bs = chain.torch()
        for ci, case in enumerate(prop.cases):
            if budget.expired():
                return None
            cex = self._case(model, prop, ci, case, Ws, bs, budget)
            if cex is not None:
                return cex
        return None

    def _case(self, model: Model, prop: Property, ci: int, case: Case, Ws: list[Tensor],
              bs: list[Tensor], budget: Budget) -> Counterexample | None:
        polys = [p for p in case.unsafe if p.C.shape[0] > 0]
        if not polys:
            return None
        lo32, hi32 = float32_box(case)
        if np.any(lo32 > hi32):
            return None
        C = torch.as_tensor(np.concatenate([p.C for p in polys]), dtype=torch.float64)
        d = torch.as_tensor(np.concatenate([p.d_in for p in polys]), dtype=torch.float64)
        rows, k = [], 0
        for p in polys:
            rows.append(torch.arange(k, k + p.C.shape[0]))
            k += p.C.shape[0]
        Ws = Ws[:-1] + [C @ Ws[-1]]
        bs = bs[:-1] + [C @ bs[-1] - d]
        lo = torch.as_tensor(lo32, dtype=torch.float64).reshape(1, -1)
        hi = torch.as_tensor(hi32, dtype=torch.float64).reshape(1, -1)
        pre = crown_bounds(Ws, bs, lo, hi, last=False)
        res, _, _ = optimize_alpha(Ws, bs, lo, hi, pre, iterations=self.alpha_iterations)
        points = descend_from_corners(Ws, bs, lo, hi, res.lam[0], rows, self.steps, budget.deadline)
        self.stats.examples += self.steps * points.shape[0]
        g = chain_eval(Ws, bs, points)
        worst = torch.stack([g[:, r].max(dim=1).values for r in rows], dim=1).min(dim=1).values
        for i in torch.argsort(worst)[:8].tolist():
            if float(worst[i]) > 1e-6:
                break
            x = np.clip(points[i].numpy().astype(np.float32), lo32, hi32)
            cex = confirm(model, prop, x, self.name, ci, self.stats)
            if cex is not None:
                return cex
        return None
