"""Shrink a counterexample to a simpler one that is still a counterexample.

Simpler means, in this order: fewer inputs away from the centre of the case's box, then
a smaller total offset from the centre (:func:`simplicity`).  The shrinker is greedy and
deterministic, and runs passes until nothing improves or its deadline passes:

0. in many dimensions (where a witness found by PGD sits on the edge of the unsafe
   set, with no margin to give), first push it deeper with a few gradient steps on
   the inputs already away from the centre, then do 1., and repeat while that pays;
1. put groups of inputs back at the centre (halving the group size, as delta
   debugging does; the inputs whose reset costs the least margin, to first order,
   are tried first);
2. pull the whole input towards the centre along the line between them;
3. in few dimensions, pull each input towards the centre on its own.

Candidates are screened in batches with the converted torch network; a candidate is
accepted only after :func:`~verify.falsify.base.replay` confirmed it on the original
model, so every intermediate and the result are real counterexamples.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from verify.falsify.base import Counterexample, SearchStats, case_tensors, confirm, violation
from verify.falsify.region import Region
from verify.model.network import Model
from verify.spec.property import Property

#: Candidates with a float32 margin above this are not replayed.
TOLERANCE = 1e-6
#: Replays tried per batch of candidates before the batch is given up.
REPLAYS_PER_BATCH = 4
#: Pull factors towards the centre (fractions of the current offset kept).
PULLS = (0.0, 0.125, 0.25, 0.5, 0.75, 0.875, 0.9375)
#: Inputs up to which step 3 (one input at a time) runs.
PER_INPUT_MAX = 64


def simplicity(region: Region, x: np.ndarray) -> tuple[int, float]:
    """``(inputs away from the centre, sum of |offsets|)``: smaller is simpler."""
    return int(np.count_nonzero(region.away(x))), float(np.abs(region.offsets(x)).sum())


class _Shrinker:
    def __init__(self, model: Model, prop: Property, cex: Counterexample, deadline: float,
                 stats: SearchStats) -> None:
        self.model = model
        self.prop = prop
        self.ci = cex.case_index
        self.region = Region.of(prop.cases[self.ci])
        self.polys = case_tensors(prop.cases[self.ci])
        self.best = cex
        self.key = simplicity(self.region, cex.x)
        self.deadline = deadline
        self.stats = stats

    def out_of_time(self) -> bool:
        return time.monotonic() >= self.deadline

    def margins(self, xs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return violation(self.model.net(torch.from_numpy(np.ascontiguousarray(xs, dtype=np.float32))),
                             self.polys).numpy()

    def attempt(self, candidates: np.ndarray) -> bool:
        """Accept the first candidate (in the given order) that is simpler and replays."""
        if len(candidates) == 0 or self.out_of_time():
            return False
        v = self.margins(candidates)
        tries = 0
        for i in range(len(candidates)):
            if not v[i] <= TOLERANCE:
                continue
            key = simplicity(self.region, candidates[i])
            if key >= self.key:
                continue
            tries += 1
            cex = confirm(self.model, self.prop, candidates[i], self.best.method, self.ci, self.stats)
            if cex is not None:
                self.best, self.key = cex, key
                return True
            if tries >= REPLAYS_PER_BATCH or self.out_of_time():
                break
        return False

    def deepen(self, steps: int = 30) -> None:
        """Move the witness deeper into the unsafe set (sign-gradient steps on the inputs already
        away from the centre), so that the resets that follow have margin to spend.

        The deeper point replaces the witness only when replay confirms it.
        """
        lo, hi = torch.from_numpy(self.region.lower), torch.from_numpy(self.region.upper)
        width = (hi - lo) * torch.from_numpy(self.region.away(self.best.x).astype(np.float32))
        x = torch.from_numpy(self.best.x.copy())
        for step in range(steps):
            if self.out_of_time():
                return
            x = x.detach().requires_grad_(True)
            v = violation(self.model.net(x[None]), self.polys)
            grad, = torch.autograd.grad(v.sum(), x)
            with torch.no_grad():
                x = torch.minimum(torch.maximum(x - 0.02 * (1 - step / steps) * width * torch.sign(grad), lo), hi)
        deeper = x.detach().numpy()
        if self.margins(deeper[None])[0] < self.margins(self.best.x[None])[0]:
            cex = confirm(self.model, self.prop, deeper, self.best.method, self.ci, self.stats)
            if cex is not None:
                self.best, self.key = cex, simplicity(self.region, cex.x)

    def reset_groups(self) -> bool:
        improved = False
        x = self.best.x
        away = self._away_order(x)
        size = max(1, len(away) // 2)
        while away.size and not self.out_of_time():
            groups = [away[i:i + size] for i in range(0, len(away), size)]
            candidates = np.repeat(x[None], len(groups), axis=0)
            for row, group in enumerate(groups):
                candidates[row, group] = self.region.center[group]
            if self.attempt(candidates):
                improved = True
                x = self.best.x
                away = self._away_order(x)
                size = min(size, max(1, len(away) // 2))
            elif size == 1:
                break
            else:
                size = max(1, size // 2)
        return improved

    def pull_all(self) -> bool:
        x = self.best.x.astype(np.float64)
        c = self.region.center.astype(np.float64)
        candidates = np.stack([self.region.point(self.region.offsets(c + f * (x - c))) for f in PULLS])
        return self.attempt(candidates)

    def pull_each(self) -> bool:
        improved = False
        for i in self._away_order(self.best.x):
            if self.out_of_time():
                break
            x = self.best.x
            t = self.region.offsets(x)
            candidates = np.repeat(x[None], len(PULLS), axis=0)
            for row, f in enumerate(PULLS):
                ti = t.copy()
                ti[i] = f * t[i]
                candidates[row, i] = self.region.point(ti)[i]
            improved |= self.attempt(candidates)
        return improved

    def _away_order(self, x: np.ndarray) -> np.ndarray:
        """Inputs away from the centre, those whose reset should cost the least margin first.

        The cost is the first-order change of the margin, ``grad_i * (c_i - x_i)``.
        """
        away = np.flatnonzero(self.region.away(x))
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        v = violation(self.model.net(xt[None]), self.polys)
        grad, = torch.autograd.grad(v.sum(), xt)
        cost = (grad.numpy().astype(np.float64) * (self.region.center.astype(np.float64) - x))[away]
        return away[np.argsort(cost, kind="stable")]

    def run(self, max_passes: int) -> Counterexample:
        while self.region.n > PER_INPUT_MAX and not self.out_of_time():
            start, start_key = self.best, self.key
            self.deepen()
            self.reset_groups()
            if start_key <= self.key:
                self.best, self.key = start, start_key
                break
        for _ in range(max_passes):
            improved = self.reset_groups()
            improved |= self.pull_all()
            if self.region.n <= PER_INPUT_MAX:
                improved |= self.pull_each()
            if not improved or self.out_of_time():
                break
        return self.best


def shrink(model: Model, prop: Property, cex: Counterexample, deadline: float, max_passes: int = 8,
           stats: SearchStats | None = None) -> Counterexample:
    """A simpler replayed counterexample than ``cex`` (or ``cex`` itself), by ``deadline`` (monotonic).

    The result keeps ``cex``'s method and ``found_at``; its ``raw_x`` is the input the
    search first found.
    """
    raw = cex.x if cex.raw_x is None else cex.raw_x
    best = _Shrinker(model, prop, cex, deadline, stats or SearchStats()).run(max_passes)
    if best is cex:
        return cex
    best.raw_x = raw.copy()
    best.found_at = cex.found_at
    return best
