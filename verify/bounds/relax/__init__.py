"""Registry of the non-linear ops' relaxations (docs/relaxations.md), by IR op name.

An elementwise entry gives ``relax(l, u, attrs) -> (a_l, b_l, a_u, b_u)`` (slopes and intercepts
with ``a_l z + b_l <= f(z) <= a_u z + b_u`` on ``[l, u]``), ``interval(l, u, attrs)`` (the
exact interval image) and, for relu and leaky_relu, the neurons whose lower slope may be chosen
(``unstable``) and the range of sound slopes (``alpha_range``).  ``max_pool`` and ``softmax``
are not elementwise: see :mod:`verify.bounds.relax.max_pool` and :mod:`verify.bounds.relax.softmax`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from verify.bounds.relax import leaky_relu, max_pool, relu, sigmoid_tanh, softmax

Tensor = torch.Tensor


@dataclass(frozen=True)
class Relaxation:
    """How the bound engine treats one non-linear op (``kind``: elementwise, max_pool or softmax)."""

    kind: str
    relax: Callable[..., Any] | None = None
    interval: Callable[..., tuple[Tensor, Tensor]] | None = None
    unstable: Callable[[Tensor, Tensor], Tensor] | None = None
    alpha_range: Callable[[dict[str, Any]], tuple[float, float]] | None = None


RELAXATIONS: dict[str, Relaxation] = {
    "relu": Relaxation("elementwise", relu.relax, relu.interval, relu.unstable, relu.alpha_range),
    "leaky_relu": Relaxation("elementwise", leaky_relu.relax, leaky_relu.interval, leaky_relu.unstable,
                             leaky_relu.alpha_range),
    "sigmoid": Relaxation("elementwise", sigmoid_tanh.relax_sigmoid, sigmoid_tanh.interval_sigmoid),
    "tanh": Relaxation("elementwise", sigmoid_tanh.relax_tanh, sigmoid_tanh.interval_tanh),
    "max_pool": Relaxation("max_pool", max_pool.relax),
    "softmax": Relaxation("softmax", softmax.bounds),
}

__all__ = ["RELAXATIONS", "Relaxation", "leaky_relu", "max_pool", "relu", "sigmoid_tanh", "softmax"]
