"""The auto_LiRPA backend: a module's claim from auto_LiRPA's CROWN or alpha-CROWN.

The module becomes a float64 ``nn.Sequential`` (Linear, ReLU, ..., Linear) bounded by
auto_LiRPA 0.3 (through :mod:`verify.bounds.lirpa_compat`).  Its intermediate bounds
are fixed to the recorded evidence (:func:`verify.bounds.backend.sequential_crown`,
passed as ``intermediate_layer_bounds``), so that the lower slopes auto_LiRPA optimises
for the claimed rows (read from its ``BoundRelu`` nodes) refer to the same relaxation
the checker replays.  The claim is the smaller of auto_LiRPA's bound and the float64
replay of the recorded slopes: a number auto_LiRPA found and the evidence reproduces.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from verify.bounds.backend import (
    BackendFailed,
    ChainModule,
    ModuleClaim,
    RowSpec,
    check_rows,
    finish_claim,
    output_rows,
    propagation_evidence,
    sequential_crown,
)
from verify.bounds.linear_relax import backward_bound
from verify.bounds.lirpa import float64_default
from verify.bounds.lirpa_compat import SAFE_BOUND_OPTS, auto_lirpa


def module_net(module: ChainModule) -> nn.Sequential:
    """The module as a float64 torch network (Linear layers with ReLUs between them)."""
    layers: list[nn.Module] = []
    for k, (W, b) in enumerate(zip(module.weights, module.biases)):
        lin = nn.Linear(W.shape[1], W.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(W, dtype=torch.float64))
            lin.bias.copy_(torch.as_tensor(b, dtype=torch.float64))
        layers.append(lin)
        if k < len(module.weights) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class LirpaBackend:
    """auto_LiRPA claims: CROWN, or alpha-CROWN with ``alpha=True`` (see the module docstring)."""

    def __init__(self, alpha: bool = True, iterations: int = 20, lr: float = 0.1) -> None:
        self.alpha = alpha
        self.iterations = iterations
        self.lr = lr
        self.name = "lirpa-alpha" if alpha else "lirpa-crown"
        self._modules: dict[tuple[int, int, int], Any] = {}

    def _bounded(self, module: ChainModule) -> Any:
        key = (module.start, module.end, id(module.weights[0]))
        if key not in self._modules:
            al = auto_lirpa()
            with float64_default(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._modules[key] = al.BoundedModule(module_net(module),
                                                      torch.zeros(1, module.n_inputs, dtype=torch.float64),
                                                      bound_opts=dict(SAFE_BOUND_OPTS), verbose=False)
        return self._modules[key]

    def bound(self, module: ChainModule, lower: np.ndarray, upper: np.ndarray,
              rows: RowSpec | None = None) -> ModuleClaim:
        start = time.monotonic()
        check_rows(module, rows)
        al = auto_lirpa()
        bm = self._bounded(module)
        Ws, bs = module.torch()
        lo = torch.as_tensor(lower, dtype=torch.float64)[None]
        hi = torch.as_tensor(upper, dtype=torch.float64)[None]
        pre = sequential_crown(module, lower, upper)
        relus = list(bm.relus)
        if len(relus) != len(pre):
            raise BackendFailed(f"auto_LiRPA sees {len(relus)} ReLU layers in module {module.name}, "
                                f"expected {len(pre)}")
        # the spec matrix over the module's outputs, and the constant to add afterwards
        n = module.n_outputs
        if rows is None:
            eye = torch.eye(n, dtype=torch.float64)
            C, shift = torch.cat([eye, -eye]), torch.zeros(2 * n, dtype=torch.float64)
        else:
            C = torch.as_tensor(rows.C, dtype=torch.float64)
            shift = -torch.as_tensor(rows.d, dtype=torch.float64)
        fixed = {r.inputs[0].name: (l, u) for r, (l, u) in zip(relus, pre)}
        method = "CROWN-Optimized" if self.alpha and pre else "CROWN"
        with float64_default(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = al.BoundedTensor((lo + hi) / 2, al.PerturbationLpNorm(norm=float("inf"), x_L=lo, x_U=hi))
            if method == "CROWN-Optimized":
                bm.set_bound_opts({"optimize_bound_args": {"iteration": self.iterations, "lr_alpha": self.lr}})
            try:
                lb, _ = bm.compute_bounds(x=(x,), C=C[None], method=method, bound_upper=False,
                                          intermediate_layer_bounds=fixed)
            except Exception as exc:  # auto_LiRPA 0.3 raises many kinds of errors
                raise BackendFailed(f"auto_LiRPA failed on module {module.name}: {type(exc).__name__}: {exc}") from None
        lirpa_lb = lb.detach()[0] + shift
        alphas = None
        if method == "CROWN-Optimized":
            final = bm.final_name
            try:
                # alpha[start node]: [2 (lower, upper), spec rows, batch, neurons]; the lower bound's
                alphas = [r.alpha[final][0].detach().permute(1, 0, 2).contiguous() for r in relus]
            except (AttributeError, KeyError, IndexError):
                alphas = None
            if alphas is not None and any(a.shape != (1, C.shape[0], l.shape[1]) for a, (l, _) in zip(alphas, pre)):
                alphas = None
        W_last, b_last = output_rows(module, rows)
        replay = backward_bound(Ws, bs, lo, hi, pre, alphas=alphas, W_last=W_last, b_last=b_last).lb[0]
        claim_lb = torch.minimum(replay, lirpa_lb)
        ev = propagation_evidence("auto_LiRPA " + ("alpha-CROWN" if alphas is not None else "CROWN"), pre, alphas)
        ev["lirpa_lower"] = lirpa_lb.numpy().copy()
        return finish_claim(module, self.name, lower, upper, claim_lb.numpy(), rows, ev, start)
