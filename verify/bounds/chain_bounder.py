"""Whole-network bounds of ``C y`` on a chain, by verify's own engine: IBP, CROWN, alpha-CROWN.

The same interface as :class:`verify.bounds.lirpa.LirpaBounder` (``bound(lower, upper, C,
method)`` for a batch of input boxes), for networks that are chains of affine layers and
ReLUs (:class:`verify.graph.chain.LinearChain`): the incomplete pass of ``verify check``
uses it there instead of auto_LiRPA (see :meth:`verify.check._Pipeline.incomplete`).
Everything runs in float64 with the functions of :mod:`verify.bounds.linear_relax`:

* ``IBP``: interval bounds of every ReLU layer (:func:`ibp_bounds`), then the exact
  interval of the rows ``C W_K a + C b_K`` over the last layer's ReLU outputs;
* ``CROWN``: every ReLU layer's pre-activation bounds by :func:`crown_bounds` (intervals,
  symbolic bounds for low-dimensional inputs, back-substitution for the neurons still
  unstable), then back-substitution of the rows (:func:`backward_bound`, adaptive lower
  slopes, intersected with the interval bound over the last ReLU layer);
* ``alpha-CROWN``: CROWN's intermediate bounds, and the rows' lower slopes optimised by
  :func:`optimize_alpha` (every slope in [0, 1] gives a valid bound; the best bound per
  box and row is kept, never below CROWN's).

Each is a valid lower bound of the real-valued chain up to float64 rounding, which the
decision rule's margin (:func:`verify.numerics.decision_threshold`) covers; the rows are
folded into the last layer in float64 (``C W_K``), as branch and bound does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from verify.bounds.linear_relax import backward_bound, box_affine, crown_bounds, ibp_bounds, optimize_alpha
from verify.graph.chain import LinearChain

METHODS = ("IBP", "CROWN", "alpha-CROWN")


@dataclass
class ChainBoundResult:
    """Lower bounds of ``C y`` per box and row, and per ReLU layer the pre-activation bounds
    ``{relu name: (lower, upper)}`` the bound was computed from (``[batch, n_k]`` each)."""

    lower: np.ndarray  # [batch, n_spec]
    upper: np.ndarray | None
    method: str
    relu_bounds: dict[str, tuple[np.ndarray, np.ndarray]]


class ChainBounder:
    """Bounds of ``C y`` on a chain for boxes of inputs (see the module docstring)."""

    def __init__(self, chain: LinearChain, alpha_iterations: int = 20, lr: float = 0.1) -> None:
        self.chain = chain
        self.Ws, self.bs = chain.torch()
        self.n_inputs = chain.n_inputs
        self.alpha_iterations = alpha_iterations
        self.lr = lr

    def bound(self, lower: np.ndarray, upper: np.ndarray, C: np.ndarray, method: str = "CROWN") -> ChainBoundResult:
        """Lower bounds of ``C y`` for inputs in ``[lower, upper]`` (each ``[batch, n_inputs]``;
        ``C`` is ``[n_spec, n_outputs]``)."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        Ws, bs = self.Ws, self.bs
        lo = torch.as_tensor(np.atleast_2d(lower), dtype=torch.float64)
        hi = torch.as_tensor(np.atleast_2d(upper), dtype=torch.float64)
        c = torch.as_tensor(np.asarray(C, dtype=np.float64).reshape(-1, Ws[-1].shape[0]))
        W_last, b_last = c @ Ws[-1], c @ bs[-1]
        hidden = len(Ws) - 1
        with torch.no_grad():
            if method == "IBP":
                pre = ibp_bounds(Ws[:-1], bs[:-1], lo, hi) if hidden else []
                a_lo, a_hi = (pre[-1][0].clamp(min=0), pre[-1][1].clamp(min=0)) if pre else (lo, hi)
                lb = box_affine(W_last, b_last, a_lo, a_hi)[0]
            else:
                pre = crown_bounds(Ws, bs, lo, hi, last=False) if hidden else []
                lb = backward_bound(Ws, bs, lo, hi, pre, W_last=W_last, b_last=b_last).lb
        if method == "alpha-CROWN" and hidden and c.shape[0]:
            best, _, _ = optimize_alpha(Ws, bs, lo, hi, pre, iterations=self.alpha_iterations, lr=self.lr,
                                        W_last=W_last, b_last=b_last)
            lb = torch.maximum(lb, best.lb.detach())
        relu = {name: (l.numpy().copy(), u.numpy().copy()) for name, (l, u) in zip(self.chain.relu_names, pre)}
        return ChainBoundResult(lb.numpy().copy(), None, method, relu)
