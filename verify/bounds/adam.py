"""Adam, step for step as ``torch.optim.Adam`` computes it with its defaults on the CPU.

Written here, not taken from torch, for one reason: the first ``torch.optim.Adam`` of a
process imports ``torch._dynamo``, which took 1.07 s here, more than the whole check of
most ACAS Xu instances (median 0.15 s in a benchmark run, where each worker pays the
import once; a single ``verify check`` pays it every time).  The update is torch's
single-tensor path (betas 0.9 and 0.999, eps 1e-8, no weight decay, no amsgrad), with
the same operations in the same order, so the results are bit-identical
(``tests/bounds/test_adam.py`` compares them).
"""

from __future__ import annotations

from typing import Any

import torch


class Adam:
    """``Adam(params, lr)`` or ``Adam([{"params": [...], "lr": ...}, ...])``; ``zero_grad`` and ``step``."""

    def __init__(self, params: list[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        groups = params if params and isinstance(params[0], dict) else [{"params": params}]
        self.groups = [(list(g["params"]), float(g.get("lr", lr))) for g in groups]
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.state: dict[int, tuple[torch.Tensor, torch.Tensor, list[int]]] = {}

    def zero_grad(self) -> None:
        for params, _ in self.groups:
            for p in params:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        b1, b2 = self.beta1, self.beta2
        for params, lr in self.groups:
            for p in params:
                if p.grad is None:
                    continue
                if id(p) not in self.state:
                    self.state[id(p)] = (torch.zeros_like(p), torch.zeros_like(p), [0])
                exp_avg, exp_avg_sq, count = self.state[id(p)]
                count[0] += 1
                grad = p.grad
                exp_avg.lerp_(grad, 1 - b1)
                exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
                step = float(count[0])
                step_size = lr / (1 - b1**step)
                denom = (exp_avg_sq.sqrt() / (1 - b2**step) ** 0.5).add_(self.eps)
                p.addcdiv_(exp_avg, denom, value=-step_size)
