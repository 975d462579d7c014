"""The falsifier interface, the violation objective, and replay on the original model.

A falsifier searches a property's region for an input whose output lands in the unsafe
set.  Whatever it finds is only a *candidate* until :func:`replay` has run it through the
original model (onnxruntime for ONNX) and checked it exactly against the spec; only
replayed counterexamples leave this package.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from verify.spec.property import Case, Property

if TYPE_CHECKING:
    import torch

    from verify.model.network import Model


@dataclass
class Counterexample:
    """An input in the region whose output (from the original model) is unsafe."""

    x: np.ndarray  # float32, flat
    y: np.ndarray  # float32 output of the original model
    case_index: int
    method: str
    raw_x: np.ndarray | None = None  # before shrinking, when shrunk
    found_at: float | None = None  # time.monotonic() when the first (raw) witness was confirmed
    from_database: bool = False  # replayed from the example database rather than searched for

    def to_json(self) -> dict:
        out = {"x": [float(v) for v in self.x], "y": [float(v) for v in self.y], "method": self.method,
               "case": self.case_index}
        if self.raw_x is not None:
            out["raw_x"] = [float(v) for v in self.raw_x]
        if self.from_database:
            out["from_database"] = True
        return out

    def witness(self) -> str:
        """VNN-COMP witness format: ``((X_0 v) ... (Y_0 v) ...)``, values that round-trip."""
        parts = [f"(X_{i} {_repr32(v)})" for i, v in enumerate(self.x)]
        parts += [f"(Y_{i} {_repr32(v)})" for i, v in enumerate(self.y)]
        return "(" + "\n ".join(parts) + ")"


def _repr32(v: float) -> str:
    return repr(float(np.float32(v)))


@dataclass
class Budget:
    """A wall-clock deadline (``time.monotonic()`` seconds) shared by a search."""

    deadline: float
    cancelled: list[bool] = field(default_factory=lambda: [False])

    @classmethod
    def seconds(cls, s: float) -> Budget:
        return cls(time.monotonic() + s)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def expired(self) -> bool:
        return self.cancelled[0] or time.monotonic() >= self.deadline


@dataclass
class SearchStats:
    """What a search did: candidates sent to :func:`replay` and how many it turned down."""

    candidates: int = 0
    rejected: int = 0
    examples: int = 0  # inputs evaluated (hypothesis examples, PGD points x steps)

    def add(self, other: SearchStats) -> None:
        self.candidates += other.candidates
        self.rejected += other.rejected
        self.examples += other.examples


class Falsifier(Protocol):
    """Searches for counterexamples; returns a replayed one or None."""

    name: str

    def search(self, model: Model, prop: Property, budget: Budget, seed: int = 0) -> Counterexample | None:
        ...


def case_tensors(case: Case, dtype: torch.dtype | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(C, d)`` tensors of each unsafe polytope of a case (``d`` is the inner value; float32 by default)."""
    import torch  # here, not on top: replay (the gate's cached answers) must not need torch

    dtype = torch.float32 if dtype is None else dtype
    out = []
    for poly in case.unsafe:
        out.append((torch.as_tensor(poly.C, dtype=dtype), torch.as_tensor(poly.d_in, dtype=dtype)))
    return out


def violation(y: torch.Tensor, polys: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Per row of ``y``: ``min_j max_i (C_j y - d_j)_i``; ``<= 0`` means inside an unsafe polytope."""
    import torch  # here, not on top: replay (the gate's cached answers) must not need torch

    values = []
    for C, d in polys:
        if C.shape[0] == 0:
            values.append(torch.full((y.shape[0],), -1.0, dtype=y.dtype))
        else:
            values.append((y @ C.T - d).max(dim=1).values)
    return torch.stack(values, dim=1).min(dim=1).values


def replay(model: Model, prop: Property, x: np.ndarray, method: str,
           case_index: int | None = None) -> Counterexample | None:
    """Run ``x`` (rounded to float32) through the original model; keep it if it is a real counterexample.

    ``model`` is anything with :meth:`~verify.model.network.Model.evaluate`: a loaded model,
    or the gate's onnxruntime session on the file (:mod:`verify.gate.reference`)."""
    x32 = np.asarray(x, dtype=np.float32).reshape(-1)
    cases = range(len(prop.cases)) if case_index is None else [case_index]
    inside = [i for i in cases if prop.cases[i].box.contains(x32)]
    if not inside:
        return None
    y = model.evaluate(x32.reshape(1, -1))[0]
    for i in inside:
        if any(p.contains(y) for p in prop.cases[i].unsafe):
            return Counterexample(x32.copy(), y.astype(np.float32), i, method)
    return None


def replay_in_box(model: Model, prop: Property, x: np.ndarray, method: str, case_index: int) -> Counterexample | None:
    """:func:`replay` the float32 point of case ``case_index``'s box nearest to ``x``.

    Bounds point at box corners, and float32 rounding can move a corner just outside the box
    (2.9 becomes 2.9000001): the point is clipped into the float32 box first."""
    lo, hi = float32_box(prop.cases[case_index])
    x32 = np.clip(np.asarray(x, dtype=np.float64).reshape(-1).astype(np.float32), lo, hi)
    return replay(model, prop, x32, method, case_index)


def clamp_into(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    return x.minimum(hi).maximum(lo)  # torch.maximum(torch.minimum(x, hi), lo), without importing torch here


def float32_box(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """The float32 box of points that lie inside the real box (inner values, rounded inward)."""
    lo = case.box.lower_in.astype(np.float32)
    hi = case.box.upper_in.astype(np.float32)
    lo = np.where(lo.astype(np.float64) < case.box.lower_in, np.nextafter(lo, np.float32(np.inf)), lo)
    hi = np.where(hi.astype(np.float64) > case.box.upper_in, np.nextafter(hi, np.float32(-np.inf)), hi)
    return lo.astype(np.float32), hi.astype(np.float32)


def confirm(model: Model, prop: Property, x: np.ndarray, method: str, case_index: int | None,
            stats: SearchStats) -> Counterexample | None:
    """:func:`replay` a candidate, counting it in ``stats``; stamps ``found_at`` on success."""
    stats.candidates += 1
    cex = replay(model, prop, x, method, case_index)
    if cex is None:
        stats.rejected += 1
    else:
        cex.found_at = time.monotonic()
    return cex
