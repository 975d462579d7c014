"""The module-backend interface: bound one module of a chain over an input box.

A *module* is a contiguous range of blocks ``[start, end]`` of a chain (block ``k`` is the
affine map from ReLU layer ``k-1``'s output, or the input, to ReLU layer ``k``'s
pre-activation; the last block ends at the network output), the same blocks the
certificate checker reads from the model file.  Its input is a box on the vector the
first block reads (the network input, or a ReLU layer's output, i.e. after the ReLU);
its output is the pre-activation of the ReLU layer it ends at or, for the last module,
the property rows ``C y - d``.

A backend turns a module and an input box into a :class:`ModuleClaim`: "inputs in A
give outputs in B" (a box, or per unsafe polytope a lower bound of its best row), with
the evidence a checker needs to re-derive it.  Every claimed number is pushed outward
by a relative slack (:data:`SLACK`) so that a rigorous recomputation, which differs
from the producer's float64 values by rounding, confirms it.

Backends (one file each): :mod:`verify.bounds.interval` (IBP),
:mod:`verify.bounds.crown_backend` (CROWN / alpha-CROWN, verify's engine),
:mod:`verify.bounds.lirpa_backend` (CROWN / alpha-CROWN through auto_LiRPA) and
:mod:`verify.bounds.z3_backend` (exact, for few unstable ReLUs).  Bound-propagation
backends share :func:`sequential_crown` and :func:`finish_claim` here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from verify.bounds.linear_relax import backward_bound, box_affine
from verify.graph.chain import LinearChain

TorchBounds = list[tuple[torch.Tensor, torch.Tensor]]

#: Relative slack of claimed numbers (the same as :func:`verify.certificate.build.claimed`).
SLACK = 1e-9


def push_down(v: np.ndarray) -> np.ndarray:
    """``v`` lowered by the claim slack ``1e-9 (1 + |v|)``."""
    v = np.asarray(v, dtype=np.float64)
    return v - SLACK * (1.0 + np.abs(v))


def push_up(v: np.ndarray) -> np.ndarray:
    """``v`` raised by the claim slack ``1e-9 (1 + |v|)``."""
    v = np.asarray(v, dtype=np.float64)
    return v + SLACK * (1.0 + np.abs(v))


class BackendFailed(Exception):
    """The backend could not bound this module (time limit, solver gave up)."""


@dataclass
class ChainModule:
    """Blocks ``[start, end]`` (inclusive) of a chain, with their weights (float64)."""

    name: str
    start: int
    end: int
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    last: bool = False  # ends at the network output

    @classmethod
    def of(cls, chain: LinearChain, start: int, end: int, name: str = "") -> ChainModule:
        if not 0 <= start <= end < len(chain.weights):
            raise ValueError(f"blocks [{start}, {end}] outside a chain of {len(chain.weights)} blocks")
        return cls(name or f"blocks{start}-{end}", start, end, list(chain.weights[start:end + 1]),
                   list(chain.biases[start:end + 1]), end == len(chain.weights) - 1)

    @property
    def n_inputs(self) -> int:
        return int(self.weights[0].shape[1])

    @property
    def n_outputs(self) -> int:
        return int(self.weights[-1].shape[0])

    @property
    def n_internal(self) -> int:
        """ReLU layers inside the module (between its blocks)."""
        return self.end - self.start

    def torch(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return ([torch.as_tensor(w, dtype=torch.float64) for w in self.weights],
                [torch.as_tensor(b, dtype=torch.float64) for b in self.biases])


@dataclass
class RowSpec:
    """The property rows a last module is bounded on: ``C y - d`` per row, rows grouped by polytope."""

    C: np.ndarray  # [m, n_out]
    d: np.ndarray  # [m] (outer: rounded up)
    groups: list[np.ndarray]

    @property
    def n_polytopes(self) -> int:
        return len(self.groups)


@dataclass
class ModuleClaim:
    """``for every input in [in_lower, in_upper]``: the module output lies in
    ``[out_lower, out_upper]``, or (last module) every unsafe polytope ``p`` has a row with
    ``C_r y - d_r >= margins[p]``.  Claimed numbers already carry the slack."""

    name: str
    blocks: tuple[int, int]
    backend: str
    in_lower: np.ndarray
    in_upper: np.ndarray
    out_lower: np.ndarray | None = None
    out_upper: np.ndarray | None = None
    margins: np.ndarray | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def is_last(self) -> bool:
        return self.margins is not None

    def worst_margin(self) -> float:
        """The smallest claimed polytope margin (``-inf`` for a non-last module)."""
        if self.margins is None or not self.margins.size:
            return -np.inf
        return float(np.min(self.margins))


class Backend(Protocol):
    """Bounds a module over an input box (``rows``: the property rows, for a last module)."""

    name: str

    def bound(self, module: ChainModule, lower: np.ndarray, upper: np.ndarray,
              rows: RowSpec | None = None) -> ModuleClaim: ...


def output_rows(module: ChainModule, rows: RowSpec | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows whose lower bounds make the claim, as a last affine map over the module's
    last ReLU layer (or input): ``[W; -W]`` (lower, then minus upper bounds) or ``C W``."""
    W = torch.as_tensor(module.weights[-1], dtype=torch.float64)
    b = torch.as_tensor(module.biases[-1], dtype=torch.float64)
    if rows is None:
        return torch.cat([W, -W]), torch.cat([b, -b])
    C = torch.as_tensor(rows.C, dtype=torch.float64)
    return C @ W, C @ b - torch.as_tensor(rows.d, dtype=torch.float64)


def check_rows(module: ChainModule, rows: RowSpec | None) -> None:
    if module.last and rows is None:
        raise ValueError(f"module {module.name} ends at the output: bound it on the property rows")
    if rows is not None and not module.last:
        raise ValueError(f"module {module.name} does not end at the output: it has no property rows")


def sequential_crown(module: ChainModule, lower: np.ndarray, upper: np.ndarray) -> TorchBounds:
    """CROWN bounds of every ReLU layer inside the module, layer by layer, each pushed outward
    by the slack before the next layer is bounded from it (``[1, n_k]`` tensors).

    Each layer is bounded by back-substitution over all its neurons (adaptive lower slopes,
    at least as tight as the interval bound), from the recorded (pushed) bounds of the layers
    before: exactly what the checker re-derives, so its rigorous values confirm the
    recorded ones.
    """
    Ws, bs = module.torch()
    lo = torch.as_tensor(lower, dtype=torch.float64)[None]
    hi = torch.as_tensor(upper, dtype=torch.float64)[None]
    pre: TorchBounds = []
    for j in range(module.n_internal):
        W, b = Ws[j], bs[j]
        if j == 0:
            l, u = box_affine(W, b, lo, hi)  # exact over the box: what back-substitution gives
        else:
            res = backward_bound(Ws[:j + 1], bs[:j + 1], lo, hi, pre, W_last=torch.cat([W, -W]),
                                 b_last=torch.cat([b, -b]))
            n = W.shape[0]
            l, u = res.lb[:, :n], -res.lb[:, n:]
        pre.append((torch.as_tensor(push_down(l.numpy())), torch.as_tensor(push_up(u.numpy()))))
    return pre


def sequential_ibp(module: ChainModule, lower: np.ndarray, upper: np.ndarray) -> TorchBounds:
    """Interval bounds of every ReLU layer inside the module, pushed outward layer by layer."""
    Ws, bs = module.torch()
    l = torch.as_tensor(lower, dtype=torch.float64)[None]
    u = torch.as_tensor(upper, dtype=torch.float64)[None]
    pre: TorchBounds = []
    for j in range(module.n_internal):
        if j > 0:
            l, u = l.clamp(min=0), u.clamp(min=0)
        l, u = box_affine(Ws[j], bs[j], l, u)
        l, u = torch.as_tensor(push_down(l.numpy())), torch.as_tensor(push_up(u.numpy()))
        pre.append((l, u))
    return pre


def finish_claim(module: ChainModule, backend: str, lower: np.ndarray, upper: np.ndarray,
                 row_lb: np.ndarray, rows: RowSpec | None, evidence: dict[str, Any], start: float) -> ModuleClaim:
    """A claim from the lower bounds ``row_lb`` of :func:`output_rows`' rows (float64 values)."""
    row_lb = np.asarray(row_lb, dtype=np.float64).reshape(-1)
    if np.isnan(row_lb).any():
        raise BackendFailed(f"{backend}: NaN bound on module {module.name}")
    claim = ModuleClaim(module.name, (module.start, module.end), backend, np.asarray(lower, dtype=np.float64),
                        np.asarray(upper, dtype=np.float64), evidence=evidence)
    if rows is None:
        n = module.n_outputs
        claim.out_lower = push_down(row_lb[:n])
        claim.out_upper = push_up(-row_lb[n:])
    else:
        claim.margins = push_down(np.array([row_lb[g].max() if g.size else -np.inf for g in rows.groups]))
        evidence.setdefault("row_lower", row_lb)
    claim.seconds = time.monotonic() - start
    return claim


def propagation_evidence(method: str, pre: TorchBounds,
                         alphas: list[torch.Tensor] | None) -> dict[str, Any]:
    """Evidence of a bound-propagation claim: the recorded intermediate bounds and slopes."""
    layers = [{"lower": l[0].numpy().copy(), "upper": u[0].numpy().copy()} for l, u in pre]
    ev: dict[str, Any] = {"method": method, "intermediate": layers}
    if alphas is not None:
        ev["alphas"] = [a[0].detach().numpy().astype(np.float64).copy() for a in alphas]
    else:
        ev["slopes"] = "adaptive"
    return ev
