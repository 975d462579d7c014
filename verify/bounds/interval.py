"""The interval backend: a module's claim from interval bound propagation (IBP).

The cheapest backend: every ReLU layer inside the module gets interval bounds (pushed
outward by the claim slack, recorded as evidence), and the claimed output is the
interval of the last affine map over the last layer's ReLU outputs.  The checker
re-derives each recorded bound by back-substitution, which is never looser.
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
    sequential_ibp,
)
from verify.bounds.linear_relax import box_affine


class IntervalBackend:
    """IBP claims (see the module docstring)."""

    name = "interval"

    def bound(self, module: ChainModule, lower: np.ndarray, upper: np.ndarray,
              rows: RowSpec | None = None) -> ModuleClaim:
        start = time.monotonic()
        check_rows(module, rows)
        pre = sequential_ibp(module, lower, upper)
        if pre:
            a_lo, a_hi = pre[-1][0].clamp(min=0), pre[-1][1].clamp(min=0)
        else:
            a_lo = torch.as_tensor(lower, dtype=torch.float64)[None]
            a_hi = torch.as_tensor(upper, dtype=torch.float64)[None]
        W, b = output_rows(module, rows)
        lb, _ = box_affine(W, b, a_lo, a_hi)
        return finish_claim(module, self.name, lower, upper, lb[0].numpy(), rows,
                            propagation_evidence("interval", pre, None), start)
