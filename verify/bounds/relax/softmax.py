"""The softmax relaxation of docs/relaxations.md: constant bounds per output (softmax is the last op)."""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def _ratio(own: Tensor, others: Tensor) -> Tensor:
    """``exp(own_i) / (exp(own_i) + sum_{j != i} exp(others_j))`` over the last axis, maximum subtracted."""
    k = own.shape[-1]
    eye = torch.eye(k, dtype=torch.bool, device=own.device)
    # terms[..., i, j] = own_i if j == i else others_j
    terms = torch.where(eye, own.unsqueeze(-1), others.unsqueeze(-2))
    top = terms.max(dim=-1, keepdim=True).values
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    shifted = torch.exp(terms - top)
    return shifted.diagonal(dim1=-2, dim2=-1) / shifted.sum(dim=-1)


def bounds(l: Tensor, u: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """Bounds of ``softmax(z, dim)`` for ``z`` in the box ``[l, u]`` (``dim`` indexes the tensors' axes)::

        exp(l_i) / (exp(l_i) + sum_{j != i} exp(u_j)) <= y_i <= exp(u_i) / (exp(u_i) + sum_{j != i} exp(l_j))

    Each ratio subtracts the largest exponent of its own denominator, so it never divides by 0;
    infinite ends give the sound limits (nan is replaced by 0 below and 1 above).
    """
    lm, um = l.movedim(dim, -1), u.movedim(dim, -1)
    lo = torch.nan_to_num(_ratio(lm, um), nan=0.0).clamp(0.0, 1.0)
    hi = torch.nan_to_num(_ratio(um, lm), nan=1.0).clamp(0.0, 1.0)
    return lo.movedim(-1, dim), hi.movedim(-1, dim)
