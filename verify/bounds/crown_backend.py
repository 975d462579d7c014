"""The CROWN backend: a module's claim from verify's own bound engine (CROWN, alpha-CROWN).

Fast (a few matrix products per layer, float64): the ReLU layers inside the module get
CROWN bounds layer by layer (:func:`verify.bounds.backend.sequential_crown`, recorded as
evidence), then the claimed rows are bounded by back-substitution with adaptive lower
slopes, or with lower slopes optimised by gradient ascent (alpha-CROWN), which are
recorded so that the checker replays the same relaxation.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from verify.bounds.backend import (
    ChainModule,
    ModuleClaim,
    RowSpec,
    check_rows,
    finish_claim,
    output_rows,
    propagation_evidence,
    sequential_crown,
)
from verify.bounds.linear_relax import backward_bound, optimize_alpha


class CrownBackend:
    """CROWN claims, or alpha-CROWN with ``alpha=True`` (see the module docstring)."""

    def __init__(self, alpha: bool = False, iterations: int = 20, lr: float = 0.1) -> None:
        self.alpha = alpha
        self.iterations = iterations
        self.lr = lr
        self.name = "alpha-crown" if alpha else "crown"

    def bound(self, module: ChainModule, lower: np.ndarray, upper: np.ndarray,
              rows: RowSpec | None = None) -> ModuleClaim:
        start = time.monotonic()
        check_rows(module, rows)
        Ws, bs = module.torch()
        lo = torch.as_tensor(lower, dtype=torch.float64)[None]
        hi = torch.as_tensor(upper, dtype=torch.float64)[None]
        pre = sequential_crown(module, lower, upper)
        W_last, b_last = output_rows(module, rows)
        alphas = None
        if self.alpha and pre:
            res, alphas, _ = optimize_alpha(Ws, bs, lo, hi, pre, iterations=self.iterations, lr=self.lr,
                                            W_last=W_last, b_last=b_last)
            # the claim is the replay of the recorded slopes (what the checker recomputes)
            res = backward_bound(Ws, bs, lo, hi, pre, alphas=alphas, W_last=W_last, b_last=b_last)
        else:
            res = backward_bound(Ws, bs, lo, hi, pre, W_last=W_last, b_last=b_last)
        method = "alpha-CROWN" if alphas is not None else "CROWN"
        return finish_claim(module, self.name, lower, upper, res.lb[0].numpy(), rows,
                            propagation_evidence(method, pre, alphas), start)
