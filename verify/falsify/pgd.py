"""Projected gradient descent on the violation margin, with random restarts.

Gradients come from the converted float32 torch module; every candidate is replayed on
the original model (onnxruntime for ONNX) before it counts.  Each *round* attacks every
case of the property from a fresh batch of starts: uniform points, points with some
coordinates snapped to a face of the box, and corners (counterexamples of ReLU networks
often sit on faces).  Rounds alternate between sign-gradient steps (the classic
L-infinity attack) and Adam steps (finer, better in few dimensions), and between the
untargeted margin (the whole unsafe disjunction) and one unsafe polytope at a time.
"""

from __future__ import annotations

import torch

from verify.falsify.base import Budget, Counterexample, SearchStats, case_tensors, confirm, violation
from verify.falsify.region import Region
from verify.model.network import Model
from verify.spec.property import Case, Property

#: A candidate is replayed when its float32 margin is at most this (the original model decides).
TOLERANCE = 1e-6


def starts(region: Region, count: int, gen: torch.Generator, with_center: bool) -> torch.Tensor:
    """``count`` start points in ``[0, 1]^n`` box coordinates: half uniform, a quarter with
    faces (each coordinate snapped with probability 0.3), a quarter corners."""
    n = region.n
    u = torch.rand(count, n, generator=gen)
    snap = torch.rand(count, n, generator=gen) < 0.3
    faces = (torch.rand(count, n, generator=gen) < 0.5).float()
    half, three_quarters = count // 2, (3 * count) // 4
    u[half:three_quarters] = torch.where(snap[half:three_quarters], faces[half:three_quarters],
                                         u[half:three_quarters])
    u[three_quarters:] = faces[three_quarters:]
    if with_center:
        u[0] = 0.5
    return u


def attackable(case: Case, region: Region) -> bool:
    """Whether a case has float32 inputs and an unsafe set to aim at."""
    return not region.empty and bool(case.unsafe)


class PGDAttack:
    """Gradient attack from many starts in each case's box, restarted until the budget ends."""

    name = "pgd"

    def __init__(self, restarts: int = 512, steps: int = 100, max_rounds: int | None = None) -> None:
        self.restarts = restarts
        self.steps = steps
        self.max_rounds = max_rounds
        self.stats = SearchStats()

    def search(self, model: Model, prop: Property, budget: Budget, seed: int = 0) -> Counterexample | None:
        self.stats = SearchStats()
        gen = torch.Generator().manual_seed(seed)
        batch = max(8, min(self.restarts, 400_000 // max(model.n_inputs, 1)))
        regions = [Region.of(case) for case in prop.cases]
        if not any(attackable(case, region) for case, region in zip(prop.cases, regions)):
            return None
        rounds = 0
        while not budget.expired() and (self.max_rounds is None or rounds < self.max_rounds):
            mode = "sign" if rounds % 2 == 0 else "adam"
            targeted = (rounds // 2) % 2 == 1
            for ci, case in enumerate(prop.cases):
                if not attackable(case, regions[ci]):
                    continue
                polys = case_tensors(case)
                groups = [[p] for p in polys] if targeted and len(polys) > 1 else [polys]
                for group in groups:
                    if budget.expired():
                        return None
                    cex = self._attack(model, prop, ci, regions[ci], group, batch, gen, budget, mode,
                                       with_center=rounds == 0)
                    if cex is not None:
                        return cex
            rounds += 1
        return None

    def _attack(self, model: Model, prop: Property, ci: int, region: Region,
                polys: list[tuple[torch.Tensor, torch.Tensor]], batch: int, gen: torch.Generator,
                budget: Budget, mode: str, with_center: bool) -> Counterexample | None:
        lo = torch.from_numpy(region.lower)
        hi = torch.from_numpy(region.upper)
        width = hi - lo
        u = starts(region, batch, gen, with_center).requires_grad_(True)
        # each start gets its own step size, log-uniform over two decades (unsafe regions
        # can be slivers that one large step jumps over)
        scale = 10.0 ** (-1.0 - 2.0 * torch.rand(batch, 1, generator=gen))
        if with_center:
            scale[0] = 0.1
        moment1 = torch.zeros_like(u)
        moment2 = torch.zeros_like(u)
        for step in range(self.steps + 1):
            if budget.expired():
                break
            x = torch.minimum(torch.maximum(lo + u * width, lo), hi)
            v = violation(model.net(x), polys)
            self.stats.examples += batch
            with torch.no_grad():
                for i in torch.argsort(v)[:2].tolist():
                    if not float(v[i]) <= TOLERANCE:
                        break
                    cex = confirm(model, prop, x[i].detach().numpy(), self.name, ci, self.stats)
                    if cex is not None:
                        return cex
            if step == self.steps:
                break
            grad, = torch.autograd.grad(v.sum(), u)
            decay = 1 - step / self.steps
            with torch.no_grad():
                if mode == "sign":
                    u -= (scale * decay ** 2 + 1e-5) * torch.sign(grad)
                else:  # Adam, with a step size per start
                    moment1.mul_(0.9).add_(grad, alpha=0.1)
                    moment2.mul_(0.999).addcmul_(grad, grad, value=0.001)
                    m_hat = moment1 / (1 - 0.9 ** (step + 1))
                    v_hat = moment2 / (1 - 0.999 ** (step + 1))
                    u -= (scale * decay + 1e-5) * m_hat / (v_hat.sqrt() + 1e-12)
                u.clamp_(0.0, 1.0)
        return None
