"""The ReLU relaxation of docs/relaxations.md: upper chord, lower slope 1 if ``u >= -l`` else 0."""

from __future__ import annotations

from typing import Any

import torch

Tensor = torch.Tensor
Linear4 = tuple[Tensor, Tensor, Tensor, Tensor]


def unstable(l: Tensor, u: Tensor) -> Tensor:
    """Neurons whose relaxation is not exact (``l < 0 < u``): where a lower slope may be chosen."""
    return (l < 0) & (u > 0)


def chord(l: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """Slope and intercept of ``u (z - l) / (u - l)`` for ``l < 0 < u`` (the caller masks other entries).

    Written so that it stays finite and sound at infinite ends: ``u = inf`` gives ``z - l``,
    ``l = -inf`` gives the constant ``u``, both infinite give the constant ``+inf``.
    """
    both = torch.isinf(l) & torch.isinf(u)
    ls = torch.where(both, -torch.ones_like(l), l)
    us = torch.where(both, torch.ones_like(u), u)
    slope = 1.0 / (1.0 - ls / us)
    intercept = torch.where(us >= -ls, -ls * slope, us * (1.0 - slope))
    slope = torch.where(both, torch.zeros_like(slope), slope)
    intercept = torch.where(both, torch.full_like(intercept, float("inf")), intercept)
    return slope, intercept


def relax(l: Tensor, u: Tensor, attrs: dict[str, Any] | None = None) -> Linear4:
    """``(a_l, b_l, a_u, b_u)`` with ``a_l z + b_l <= relu(z) <= a_u z + b_u`` on ``[l, u]``."""
    inactive = u <= 0
    active = (l >= 0) & ~inactive
    mid = ~inactive & ~active
    one, zero = torch.ones_like(l), torch.zeros_like(l)
    s, t = chord(torch.where(mid, l, -one), torch.where(mid, u, one))
    a_u = torch.where(active, one, torch.where(mid, s, zero))
    b_u = torch.where(mid, t, zero)
    a_l = torch.where(active | (mid & (u >= -l)), one, zero)
    return a_l, zero, a_u, b_u


def alpha_range(attrs: dict[str, Any] | None = None) -> tuple[float, float]:
    """The interval of sound lower slopes ``a`` (``a z <= relu(z)``) of an unstable neuron."""
    return 0.0, 1.0


def interval(l: Tensor, u: Tensor, attrs: dict[str, Any] | None = None) -> tuple[Tensor, Tensor]:
    """Interval bounds of ``relu(z)`` for ``z`` in ``[l, u]``."""
    return l.clamp(min=0), u.clamp(min=0)
