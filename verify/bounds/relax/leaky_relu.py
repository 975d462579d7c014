"""The leaky-ReLU relaxation of docs/relaxations.md (slope ``alpha`` in [0, 1] for z < 0)."""

from __future__ import annotations

from typing import Any

import torch

from verify.bounds.relax.relu import chord, unstable

Tensor = torch.Tensor
Linear4 = tuple[Tensor, Tensor, Tensor, Tensor]

__all__ = ["alpha_range", "interval", "relax", "slope", "unstable"]


def slope(attrs: dict[str, Any]) -> float:
    """The negative-side slope, checked to be in [0, 1] (the relaxation below needs convexity)."""
    alpha = float(attrs["alpha"])
    if not 0.0 <= alpha <= 1.0:
        raise NotImplementedError(f"leaky_relu with alpha={alpha}: only 0 <= alpha <= 1 has a relaxation")
    return alpha


def relax(l: Tensor, u: Tensor, attrs: dict[str, Any]) -> Linear4:
    """``(a_l, b_l, a_u, b_u)``: ``u <= 0``: ``alpha z``; ``l >= 0``: ``z``; otherwise the chord through
    ``(l, alpha l)`` and ``(u, u)`` above and ``z`` (if ``u >= -l``) or ``alpha z`` below.

    The chord is ``alpha z + (1 - alpha) * relu_chord(z)`` (leaky_relu = alpha z + (1 - alpha) relu).
    """
    alpha = slope(attrs)
    inactive = u <= 0
    active = (l >= 0) & ~inactive
    mid = ~inactive & ~active
    one, zero = torch.ones_like(l), torch.zeros_like(l)
    s, t = chord(torch.where(mid, l, -one), torch.where(mid, u, one))
    a_u = torch.where(active, one, torch.where(mid, alpha + (1.0 - alpha) * s, torch.full_like(l, alpha)))
    b_u = torch.where(mid, (1.0 - alpha) * t, zero)
    a_l = torch.where(active | (mid & (u >= -l)), one, torch.full_like(l, alpha))
    return a_l, zero, a_u, b_u


def alpha_range(attrs: dict[str, Any]) -> tuple[float, float]:
    """Sound lower slopes ``a`` (``a z <= leaky_relu(z)`` on ``l < 0 < u``): ``[alpha, 1]``."""
    return slope(attrs), 1.0


def interval(l: Tensor, u: Tensor, attrs: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """Interval bounds of ``leaky_relu(z)`` (monotone for alpha >= 0)."""
    alpha = slope(attrs)
    return torch.where(l >= 0, l, alpha * l), torch.where(u >= 0, u, alpha * u)
