"""Projected gradient descent on the violation margin, with random restarts.

Runs on the converted float32 torch module (gradients); candidates are replayed on the
original model before they count.
"""

from __future__ import annotations

import torch

from verify.falsify.base import Budget, Counterexample, case_tensors, clamp_into, float32_box, replay, violation
from verify.model.network import Model
from verify.spec.property import Property


class PGDAttack:
    """Sign-gradient descent from many starts in each case's box, restarted until the budget ends."""

    name = "pgd"

    def __init__(self, restarts: int = 256, steps: int = 60, max_rounds: int | None = None) -> None:
        self.restarts = restarts
        self.steps = steps
        self.max_rounds = max_rounds

    def search(self, model: Model, prop: Property, budget: Budget, seed: int = 0) -> Counterexample | None:
        gen = torch.Generator().manual_seed(seed)
        restarts = max(8, min(self.restarts, 400_000 // max(model.n_inputs, 1)))
        rounds = 0
        while not budget.expired() and (self.max_rounds is None or rounds < self.max_rounds):
            for ci, case in enumerate(prop.cases):
                for poly_index in range(len(case.unsafe)):
                    if budget.expired():
                        return None
                    cex = self._attack(model, prop, ci, poly_index, restarts, gen, budget, rounds)
                    if cex is not None:
                        return cex
            rounds += 1
        return None

    def _attack(self, model: Model, prop: Property, ci: int, poly_index: int, restarts: int,
                gen: torch.Generator, budget: Budget, round_no: int) -> Counterexample | None:
        case = prop.cases[ci]
        lo, hi = (torch.from_numpy(a) for a in float32_box(case))
        polys = [case_tensors(case)[poly_index]]
        width = hi - lo
        x = lo + torch.rand(restarts, model.n_inputs, generator=gen) * width
        if round_no == 0:
            x[0] = (lo + hi) / 2
        best_v, best_x = None, None
        for step in range(self.steps):
            if step % 10 == 0 and budget.expired():
                break
            x = x.detach().requires_grad_(True)
            v = violation(model.net(x), polys)
            grad, = torch.autograd.grad(v.sum(), x)
            with torch.no_grad():
                i = int(torch.argmin(v))
                if best_v is None or v[i] < best_v:
                    best_v, best_x = float(v[i]), x[i].detach().clone()
                if best_v < 0:
                    cex = replay(model, prop, best_x.numpy(), self.name, ci)
                    if cex is not None:
                        return cex
                alpha = 0.1 * (1 - step / self.steps) + 0.005
                x = clamp_into(x - alpha * width * torch.sign(grad), lo, hi)
        if best_x is not None and best_v is not None and best_v <= 1e-4:
            return replay(model, prop, best_x.numpy(), self.name, ci)
        return None
