"""Bounds from auto_LiRPA: IBP, CROWN and alpha-CROWN on a whole torch module.

All computations run in float64 (auto_LiRPA 0.3 needs the *default* dtype set to
float64 for alpha-CROWN, see :func:`float64_default`).  The bounds are on ``C y`` for a
specification matrix ``C`` over the model's flat outputs, for a batch of input boxes.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from verify.bounds.lirpa_compat import SAFE_BOUND_OPTS, auto_lirpa

METHODS = ("IBP", "CROWN", "alpha-CROWN")
_LIRPA_METHOD = {"IBP": "IBP", "CROWN": "CROWN", "alpha-CROWN": "CROWN-Optimized"}
_dtype_lock = threading.RLock()


@contextlib.contextmanager
def float64_default() -> Iterator[None]:
    """Temporarily make float64 torch's default dtype (restored afterwards)."""
    with _dtype_lock:
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            yield
        finally:
            torch.set_default_dtype(previous)


@dataclass
class LirpaResult:
    """Lower (and upper) bounds of ``C y`` per box and spec row, plus per-ReLU
    pre-activation bounds ``{node name: (lower, upper)}`` from the last call."""

    lower: np.ndarray  # [batch, n_spec]
    upper: np.ndarray | None
    method: str
    relu_bounds: dict[str, tuple[np.ndarray, np.ndarray]]


class LirpaBounder:
    """A BoundedModule built once for a network and reused for many boxes."""

    def __init__(self, net64: nn.Module, n_inputs: int, alpha_iterations: int = 20) -> None:
        al = auto_lirpa()
        self.n_inputs = n_inputs
        self.alpha_iterations = alpha_iterations
        with float64_default(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.module = al.BoundedModule(net64, torch.zeros(1, n_inputs, dtype=torch.float64),
                                           bound_opts=dict(SAFE_BOUND_OPTS), verbose=False)
        self._al = al

    def bound(self, lower: np.ndarray, upper: np.ndarray, C: np.ndarray, method: str = "CROWN",
              upper_too: bool = False) -> LirpaResult:
        """Bounds of ``C y`` for inputs in ``[lower, upper]`` (each ``[batch, n_inputs]``).

        ``C`` is ``[n_spec, n_outputs]`` (shared) or ``[batch, n_spec, n_outputs]``.
        """
        al = self._al
        lo = torch.as_tensor(np.atleast_2d(lower), dtype=torch.float64)
        hi = torch.as_tensor(np.atleast_2d(upper), dtype=torch.float64)
        c = torch.as_tensor(C, dtype=torch.float64)
        if c.dim() == 2:
            c = c.unsqueeze(0).expand(lo.shape[0], -1, -1).contiguous()
        with float64_default(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ptb = al.PerturbationLpNorm(norm=float("inf"), x_L=lo, x_U=hi)
            x = al.BoundedTensor((lo + hi) / 2, ptb)
            kwargs = {}
            if method == "alpha-CROWN":
                self.module.set_bound_opts({"optimize_bound_args": {"iteration": self.alpha_iterations,
                                                                    "lr_alpha": 0.1}})
            lb, ub = self.module.compute_bounds(x=(x,), C=c, method=_LIRPA_METHOD[method],
                                                bound_upper=upper_too or method == "IBP", **kwargs)
        relu = {}
        if method != "IBP":
            for node in self.module.relus:
                if True:
                    pre = node.inputs[0]
                    if getattr(pre, "lower", None) is not None and getattr(pre, "upper", None) is not None:
                        relu[node.name] = (pre.lower.detach().numpy().reshape(lo.shape[0], -1),
                                           pre.upper.detach().numpy().reshape(lo.shape[0], -1))
        return LirpaResult(lb.detach().numpy(), None if ub is None else ub.detach().numpy(), method, relu)
