"""The max-pool relaxation of docs/relaxations.md, on windows extracted by a linear op.

``windows(x)`` is linear (zero padding, then ``F.unfold``): the bound engine transposes it by
automatic differentiation like any other linear op.  Window entries are ordered as the kernel
offsets in C order (row by row), padded entries are excluded (``valid`` marks the others).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from verify.ir.ops import _torch_pads

Tensor = torch.Tensor


def geometry(attrs: dict[str, Any]) -> tuple[int, list[int], list[int], list[int], list[int]]:
    """``(rank, kernel, strides, pads, dilations)``; refuses pooling over more than 2 spatial axes."""
    rank = len(attrs["kernel"])
    if rank not in (1, 2):
        raise NotImplementedError(f"max_pool over {rank} spatial axes: only 1-D and 2-D have a relaxation")
    kernel = [int(k) for k in attrs["kernel"]]
    strides = [int(s) for s in attrs["strides"]]
    pads = [int(p) for p in (attrs.get("pads") or [0] * (2 * rank))]
    dilations = [int(d) for d in (attrs.get("dilations") or [1] * rank)]
    return rank, kernel, strides, pads, dilations


def windows(x: Tensor, attrs: dict[str, Any]) -> Tensor:
    """The pooling windows of ``x`` (``[N, C, *spatial]``) as ``[N, C, K, L]`` (``K`` kernel entries,
    ``L`` output positions in C order); padded entries are 0 (see :func:`valid`)."""
    rank, kernel, strides, pads, dilations = geometry(attrs)
    if any(pads):
        x = F.pad(x, _torch_pads(pads))
    if rank == 1:
        x = x.unsqueeze(2)
        kernel, strides, dilations = [1, *kernel], [1, *strides], [1, *dilations]
    n, c = x.shape[0], x.shape[1]
    cols = F.unfold(x, kernel_size=tuple(kernel), dilation=tuple(dilations), stride=tuple(strides))
    return cols.reshape(n, c, -1, cols.shape[-1])


def valid(spatial: tuple[int, ...], attrs: dict[str, Any], like: Tensor) -> Tensor:
    """``[K, L]`` bool: which window entries are real inputs (not padding)."""
    ones = torch.ones((1, 1, *spatial), dtype=like.dtype, device=like.device)
    return windows(ones, attrs)[0, 0] > 0


class MaxPoolRelax(NamedTuple):
    """``sum_k lower[k] x_k <= y <= sum_k upper[k] x_k + upper_const`` per window (one-hot picks)."""

    lower: Tensor  # [N, C, K, L] 0/1
    upper: Tensor  # [N, C, K, L] 0/1 (all 0 where the upper bound is the constant)
    upper_const: Tensor  # [N, C, L] (0 where the upper bound is exact)


def relax(wl: Tensor, wu: Tensor, ok: Tensor) -> MaxPoolRelax:
    """The relaxation of ``y = max_j x_j`` on window bounds ``wl``, ``wu`` (``[N, C, K, L]``; ``ok``
    ``[K, L]`` marks the non-padded entries): if some ``j`` has ``l_j >= max_{i != j} u_i`` (the first
    such ``j``), ``y = x_j``; otherwise ``x_k <= y <= max_j u_j`` with ``k`` the first largest ``l_j``."""
    ninf = torch.full_like(wl, float("-inf"))
    wl = torch.where(ok, wl, ninf)
    wu = torch.where(ok, wu, ninf)
    k = wl.shape[-2]
    top = wu.max(dim=-2, keepdim=True)
    first = torch.arange(k, device=wl.device).reshape(k, 1)
    is_top = first == top.indices  # [N, C, K, L]
    second = torch.where(is_top, ninf, wu).max(dim=-2, keepdim=True).values
    others = torch.where(is_top, second, top.values)  # max_{i != j} u_i
    exact = (wl >= others) & ok
    has_exact = exact.any(dim=-2)  # [N, C, L]
    j = exact.to(torch.int8).argmax(dim=-2, keepdim=True)  # the first exact entry (argmax returns the first)
    kl = wl.argmax(dim=-2, keepdim=True)  # the first largest lower bound
    pick_exact = (first == j) & has_exact.unsqueeze(-2)
    pick_low = torch.where(has_exact.unsqueeze(-2), pick_exact, first == kl)
    dtype = wl.dtype
    upper_const = torch.where(has_exact, torch.zeros_like(top.values[..., 0, :]), top.values[..., 0, :])
    return MaxPoolRelax(pick_low.to(dtype), pick_exact.to(dtype), upper_const)
