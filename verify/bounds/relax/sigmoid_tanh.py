"""The sigmoid and tanh relaxations of docs/relaxations.md: chords and tangents of an S-shaped function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

Tensor = torch.Tensor
Linear4 = tuple[Tensor, Tensor, Tensor, Tensor]

#: below this width, both bounds are constants (``s(l)`` below, ``s(u)`` above)
TINY = 1e-9


def _dsigmoid(z: Tensor) -> Tensor:
    return torch.sigmoid(z) * torch.sigmoid(-z)  # accurate where sigmoid(z) rounds to 1


def _dtanh(z: Tensor) -> Tensor:
    return 1.0 / torch.cosh(z) ** 2  # 0 where cosh overflows (|z| > 710): the tangent is then flat


def _relax(l: Tensor, u: Tensor, f: Callable[[Tensor], Tensor], df: Callable[[Tensor], Tensor]) -> Linear4:
    """The rules for an increasing ``f``, convex for z < 0 and concave for z > 0."""
    finite = torch.isfinite(l) & torch.isfinite(u)
    zero = torch.zeros_like(l)
    ls, us = torch.where(finite, l, zero), torch.where(finite, u, zero)
    fl, fu = f(l), f(u)  # exact limits at infinite ends
    fls, fus = f(ls), f(us)
    tiny = (us - ls) < TINY
    width = torch.where(tiny, torch.ones_like(us), us - ls)
    # chord through (l, f(l)) and (u, f(u))
    a_ch = (fus - fls) / width
    b_ch = fls - a_ch * ls
    # tangent at the midpoint
    m = ls / 2 + us / 2
    a_m = df(m)
    b_m = f(m) - a_m * m
    # l < 0 < u: tangent at l below if it stays under f(u) at u, tangent at u above if over f(l) at l
    a_tl = df(ls)
    b_tl = fls - a_tl * ls
    low_ok = a_tl * us + b_tl <= fus
    a_tu = df(us)
    b_tu = fus - a_tu * us
    up_ok = a_tu * ls + b_tu >= fls
    a_cross_l = torch.where(low_ok, a_tl, zero)
    b_cross_l = torch.where(low_ok, b_tl, fls)
    a_cross_u = torch.where(up_ok, a_tu, zero)
    b_cross_u = torch.where(up_ok, b_tu, fus)

    pos, neg = ls >= 0, us <= 0
    a_l = torch.where(pos, a_ch, torch.where(neg, a_m, a_cross_l))
    b_l = torch.where(pos, b_ch, torch.where(neg, b_m, b_cross_l))
    a_u = torch.where(pos, a_m, torch.where(neg, a_ch, a_cross_u))
    b_u = torch.where(pos, b_m, torch.where(neg, b_ch, b_cross_u))
    const = tiny | ~finite  # constants: the rule for tiny widths, and the limit of every rule at infinite ends
    a_l = torch.where(const, zero, a_l)
    b_l = torch.where(const, fl, b_l)
    a_u = torch.where(const, zero, a_u)
    b_u = torch.where(const, fu, b_u)
    return a_l, b_l, a_u, b_u


def relax_sigmoid(l: Tensor, u: Tensor, attrs: dict[str, Any] | None = None) -> Linear4:
    """``(a_l, b_l, a_u, b_u)`` with ``a_l z + b_l <= sigmoid(z) <= a_u z + b_u`` on ``[l, u]``."""
    return _relax(l, u, torch.sigmoid, _dsigmoid)


def relax_tanh(l: Tensor, u: Tensor, attrs: dict[str, Any] | None = None) -> Linear4:
    """``(a_l, b_l, a_u, b_u)`` with ``a_l z + b_l <= tanh(z) <= a_u z + b_u`` on ``[l, u]``."""
    return _relax(l, u, torch.tanh, _dtanh)


def interval_sigmoid(l: Tensor, u: Tensor, attrs: dict[str, Any] | None = None) -> tuple[Tensor, Tensor]:
    """Interval bounds of ``sigmoid(z)`` (increasing)."""
    return torch.sigmoid(l), torch.sigmoid(u)


def interval_tanh(l: Tensor, u: Tensor, attrs: dict[str, Any] | None = None) -> tuple[Tensor, Tensor]:
    """Interval bounds of ``tanh(z)`` (increasing)."""
    return torch.tanh(l), torch.tanh(u)
