"""The IR's operation set: what each op means, as a batched torch forward function.

Each entry of :data:`OPS` is an :class:`OpSpec`: how many variable inputs the op takes,
whether it is *linear* in them (affine: ``f(x) = L(x) + f(0)``), and ``forward(inputs,
attrs)`` on batches ``[N, *shape]`` (any float dtype; the constants in ``attrs`` are
float64 numpy arrays, converted to the inputs' dtype and device).  The bound engine
relies on ``linear``: the transpose of a linear op is computed from its forward by
automatic differentiation, so a new linear op needs nothing but its forward here.
Non-linear ops need a relaxation in :mod:`verify.bounds` as well.

Attributes (spatial lists have one entry per spatial axis; ``pads`` lists all begins,
then all ends, as ONNX does; axes count the *non-batch* dimensions from 0):

========================  =============================================================
``linear``                ``W`` [out, in], ``b`` [out] or None: ``x @ W.T + b`` over the
                          last axis
``conv``                  ``W`` [Co, Ci/groups, *k], ``b`` [Co] or None, ``strides``,
                          ``pads``, ``dilations``, ``groups`` (1-D or 2-D)
``conv_transpose``        ``W`` [Ci, Co/groups, *k], ``b``, ``strides``, ``pads``,
                          ``dilations``, ``groups``, ``output_padding``
``affine``                ``scale``, ``shift``: arrays broadcastable to the value's shape
                          (either may be None): ``x * scale + shift``
``add`` / ``sub``         two variable inputs of the same shape
``pad``                   ``pads`` (2 * rank entries over the non-batch axes), ``value``
``relu``                  (none)
``leaky_relu``            ``alpha``
``sigmoid``, ``tanh``     (none)
``max_pool``              ``kernel``, ``strides``, ``pads``, ``dilations``
``avg_pool``              ``kernel``, ``strides``, ``pads``, ``count_include_pad``
``reshape``               ``shape`` (the output shape)
``transpose``             ``perm`` (over the non-batch axes)
``concat``                ``axis``; any number of inputs
``slice``                 ``axis``, ``start``, ``stop``, ``step`` (normalised, step > 0)
``softmax``               ``axis``
========================  =============================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

Forward = Callable[[Sequence[torch.Tensor], dict[str, Any]], torch.Tensor]


@dataclass(frozen=True)
class OpSpec:
    name: str
    n_inputs: int | None  # None: any number (concat)
    linear: bool
    forward: Forward
    #: elementwise (output[i] depends on input[i] only): relaxations are per neuron
    elementwise: bool = False


def const(array: np.ndarray | None, like: torch.Tensor) -> torch.Tensor | None:
    """A float64 numpy constant as a tensor of ``like``'s dtype and device."""
    if array is None:
        return None
    return torch.as_tensor(np.asarray(array), dtype=like.dtype, device=like.device)


def _linear(xs: Sequence[torch.Tensor], a: dict[str, Any]) -> torch.Tensor:
    return F.linear(xs[0], const(a["W"], xs[0]), const(a.get("b"), xs[0]))


def _torch_pads(pads: Sequence[int]) -> list[int]:
    """ONNX pads (begins..., ends...) over k axes -> torch F.pad order (last axis first)."""
    k = len(pads) // 2
    out: list[int] = []
    for axis in reversed(range(k)):
        out += [int(pads[axis]), int(pads[axis + k])]
    return out


def _conv(xs: Sequence[torch.Tensor], a: dict[str, Any]) -> torch.Tensor:
    x = xs[0]
    W = const(a["W"], x)
    rank = W.dim() - 2
    pads = list(a.get("pads") or [0] * (2 * rank))
    if any(pads):
        x = F.pad(x, _torch_pads(pads))
    conv = F.conv1d if rank == 1 else F.conv2d if rank == 2 else F.conv3d
    return conv(x, W, const(a.get("b"), x), stride=tuple(a["strides"]), padding=0,
                dilation=tuple(a["dilations"]), groups=int(a["groups"]))


def _conv_transpose(xs: Sequence[torch.Tensor], a: dict[str, Any]) -> torch.Tensor:
    x = xs[0]
    W = const(a["W"], x)
    rank = W.dim() - 2
    fn = F.conv_transpose1d if rank == 1 else F.conv_transpose2d if rank == 2 else F.conv_transpose3d
    y = fn(x, W, None, stride=tuple(a["strides"]), padding=0,
           output_padding=tuple(a.get("output_padding") or [0] * rank),
           groups=int(a["groups"]), dilation=tuple(a["dilations"]))
    pads = list(a.get("pads") or [0] * (2 * rank))
    if any(pads):  # ONNX pads of a transposed convolution crop the full output
        index = [slice(None), slice(None)]
        for axis in range(rank):
            index.append(slice(int(pads[axis]), y.shape[2 + axis] - int(pads[axis + rank])))
        y = y[tuple(index)]
    b = a.get("b")
    if b is not None:
        y = y + const(b, x).reshape(1, -1, *([1] * rank))
    return y


def _affine(xs: Sequence[torch.Tensor], a: dict[str, Any]) -> torch.Tensor:
    y = xs[0]
    if a.get("scale") is not None:
        y = y * const(a["scale"], y)
    if a.get("shift") is not None:
        y = y + const(a["shift"], y)
    return y


def _pad(xs: Sequence[torch.Tensor], a: dict[str, Any]) -> torch.Tensor:
    return F.pad(xs[0], _torch_pads(a["pads"]), mode="constant", value=float(a.get("value", 0.0)))


def _max_pool(xs: Sequence[torch.Tensor], a: dict[str, Any]) -> torch.Tensor:
    x = xs[0]
    rank = len(a["kernel"])
    pads = list(a.get("pads") or [0] * (2 * rank))
    if any(pads):
        x = F.pad(x, _torch_pads(pads), value=float("-inf"))
    pool = F.max_pool1d if rank == 1 else F.max_pool2d
    return pool(x, tuple(a["kernel"]), tuple(a["strides"]), 0, tuple(a.get("dilations") or [1] * rank))


def _avg_pool(xs: Sequence[torch.Tensor], a: dict[str, Any]) -> torch.Tensor:
    """Average pooling; the divisor is the window size, or the count of non-pad entries."""
    x = xs[0]
    rank = len(a["kernel"])
    pads = list(a.get("pads") or [0] * (2 * rank))
    kernel = tuple(int(k) for k in a["kernel"])
    strides = tuple(int(s) for s in a["strides"])
    channels = x.shape[1]
    conv = F.conv1d if rank == 1 else F.conv2d
    ones = torch.ones((channels, 1, *kernel), dtype=x.dtype, device=x.device)
    xp = F.pad(x, _torch_pads(pads)) if any(pads) else x
    sums = conv(xp, ones, stride=strides, groups=channels)
    if a.get("count_include_pad", False) or not any(pads):
        return sums / float(np.prod(kernel))
    mask = F.pad(torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device), _torch_pads(pads))
    counts = conv(mask, ones[:1], stride=strides)
    return sums / counts


def _reshape(xs: Sequence[torch.Tensor], a: dict[str, Any]) -> torch.Tensor:
    return xs[0].reshape(xs[0].shape[0], *a["shape"])


def _transpose(xs: Sequence[torch.Tensor], a: dict[str, Any]) -> torch.Tensor:
    return xs[0].permute(0, *[int(p) + 1 for p in a["perm"]])


def _concat(xs: Sequence[torch.Tensor], a: dict[str, Any]) -> torch.Tensor:
    return torch.cat(list(xs), dim=int(a["axis"]) + 1)


def _slice(xs: Sequence[torch.Tensor], a: dict[str, Any]) -> torch.Tensor:
    index: list[slice] = [slice(None)] * xs[0].dim()
    index[int(a["axis"]) + 1] = slice(int(a["start"]), int(a["stop"]), int(a["step"]))
    return xs[0][tuple(index)]


def _softmax(xs: Sequence[torch.Tensor], a: dict[str, Any]) -> torch.Tensor:
    return torch.softmax(xs[0], dim=int(a["axis"]) + 1)


OPS: dict[str, OpSpec] = {}


def register(spec: OpSpec) -> OpSpec:
    """Add an op to the IR (one entry per op; see the module docstring)."""
    OPS[spec.name] = spec
    return spec


for _spec in (
    OpSpec("linear", 1, True, _linear),
    OpSpec("conv", 1, True, _conv),
    OpSpec("conv_transpose", 1, True, _conv_transpose),
    OpSpec("affine", 1, True, _affine),
    OpSpec("add", 2, True, lambda xs, a: xs[0] + xs[1]),
    OpSpec("sub", 2, True, lambda xs, a: xs[0] - xs[1]),
    OpSpec("pad", 1, True, _pad),
    OpSpec("avg_pool", 1, True, _avg_pool),
    OpSpec("reshape", 1, True, _reshape),
    OpSpec("transpose", 1, True, _transpose),
    OpSpec("concat", None, True, _concat),
    OpSpec("slice", 1, True, _slice),
    OpSpec("relu", 1, False, lambda xs, a: torch.relu(xs[0]), elementwise=True),
    OpSpec("leaky_relu", 1, False, lambda xs, a: F.leaky_relu(xs[0], float(a["alpha"])), elementwise=True),
    OpSpec("sigmoid", 1, False, lambda xs, a: torch.sigmoid(xs[0]), elementwise=True),
    OpSpec("tanh", 1, False, lambda xs, a: torch.tanh(xs[0]), elementwise=True),
    OpSpec("max_pool", 1, False, _max_pool),
    OpSpec("softmax", 1, False, _softmax),
):
    register(_spec)


def run_node(op: str, inputs: Sequence[torch.Tensor], attrs: dict[str, Any]) -> torch.Tensor:
    return OPS[op].forward(inputs, attrs)
