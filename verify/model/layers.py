"""Small torch modules for the ONNX operations that ``torch.nn`` has no exact twin for.

Every module here takes a batched tensor (batch first) and is traceable by
auto_LiRPA's graph parser: only plain torch operations, constants held as buffers.
"""

from __future__ import annotations

import torch
from torch import nn


class ConstantOp(nn.Module):
    """``x (op) c`` or ``c (op) x`` for op in add, sub, mul, div with a constant ``c``."""

    def __init__(self, kind: str, constant: torch.Tensor, constant_first: bool) -> None:
        super().__init__()
        if kind not in ("add", "sub", "mul", "div"):
            raise ValueError(kind)
        if kind == "div" and constant_first:
            raise ValueError("c / x is not affine")
        self.kind = kind
        self.constant_first = constant_first
        self.register_buffer("constant", constant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.constant
        if self.kind == "add":
            return x + c
        if self.kind == "mul":
            return x * c
        if self.kind == "div":
            return x / c
        return c - x if self.constant_first else x - c


class Add(nn.Module):
    """Sum of two variable tensors (residual connections)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Sub(nn.Module):
    """Difference of two variable tensors."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a - b


class Reshape(nn.Module):
    """Reshape that keeps the batch dimension: ``x.reshape(N, *shape)``."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Flatten(nn.Module):
    """ONNX Flatten with axis >= 1: keeps the batch, joins the rest after ``axis``."""

    def __init__(self, inner_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.inner_shape = tuple(int(s) for s in inner_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.inner_shape)


class Pad(nn.Module):
    """Constant zero padding of the two spatial dimensions, for asymmetric pool/conv pads."""

    def __init__(self, pads: tuple[int, int, int, int], value: float = 0.0) -> None:
        super().__init__()
        self.pads = pads  # left, right, top, bottom (torch order)
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pad(x, self.pads, value=self.value)
