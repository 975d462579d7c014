"""Uniform random sampling of the region (plus its centre and corners), in batches."""

from __future__ import annotations

import torch

from verify.falsify.base import Budget, Counterexample, case_tensors, float32_box, replay, violation
from verify.model.network import Model
from verify.spec.property import Property


class RandomSearch:
    """Evaluates random points of each case's box; replays the best candidates."""

    name = "random"

    def __init__(self, batch: int = 4096, rounds: int = 8) -> None:
        self.batch = batch
        self.rounds = rounds

    def search(self, model: Model, prop: Property, budget: Budget, seed: int = 0) -> Counterexample | None:
        gen = torch.Generator().manual_seed(seed)
        batch = max(64, min(self.batch, 2_000_000 // max(model.n_inputs, 1)))
        for r in range(self.rounds):
            for ci, case in enumerate(prop.cases):
                if budget.expired():
                    return None
                lo, hi = (torch.from_numpy(a) for a in float32_box(case))
                u = torch.rand(batch, model.n_inputs, generator=gen)
                if r == 0:
                    u[0] = 0.5
                    u[1:9] = torch.randint(0, 2, (8, model.n_inputs), generator=gen).float()  # corners
                x = lo + u * (hi - lo)
                with torch.no_grad():
                    v = violation(model.net(x), case_tensors(case))
                for idx in torch.argsort(v)[:3].tolist():
                    if v[idx] <= 1e-4:
                        cex = replay(model, prop, x[idx].numpy(), self.name, ci)
                        if cex is not None:
                            return cex
        return None
