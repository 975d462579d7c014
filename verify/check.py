"""Check a property on a model: bound it, hunt for counterexamples, decide.

The pipeline: a quick counterexample search (two turns of hypothesis and PGD); then, per
case of the property, bounds of increasing cost (IBP, CROWN, alpha-CROWN via auto_LiRPA
in float64) until every unsafe polytope is shown unreachable; then the combined
falsifier (hypothesis and PGD) for the time that is left, on the cases still open.

Decision rule (see README, "What a verdict means"): a polytope ``C y <= d`` is
unreachable when for some row ``i`` the lower bound of ``(C y)_i`` exceeds ``d_i`` by more
than :func:`decision_threshold`; a counterexample counts only after it has been replayed
on the original model and checked exactly against the spec.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from verify.falsify.base import Budget, Counterexample
from verify.model.network import Model
from verify.spec.property import Case, Property

VERIFIED, FALSIFIED, UNKNOWN = "verified", "falsified", "unknown"

#: Relative margin demanded on top of a float64 bound (see README: 1e-9 of the magnitudes
#: involved covers float64 rounding in these computations with a wide safety factor).
RELATIVE_SAFETY = 1e-9
#: Absolute floor of the margin: never trust a bound closer to the boundary than this.
ABSOLUTE_SAFETY = 1e-7


def decision_threshold(scale: float) -> float:
    """How far above zero a float64 lower bound must be before we believe it."""
    return ABSOLUTE_SAFETY + RELATIVE_SAFETY * max(scale, 0.0)


@dataclass
class CheckOptions:
    """Knobs of :func:`check`; the defaults are what the CLI uses."""

    timeout: float = 60.0
    methods: tuple[str, ...] = ("IBP", "CROWN", "alpha-CROWN")
    falsify: bool = True
    seed: int = 0
    alpha_iterations: int = 20
    progress: Callable[[str], None] | None = None


@dataclass
class CheckResult:
    """The answer, with what supports it."""

    verdict: str
    seconds: float
    method: str
    margin: float | None
    counterexample: Counterexample | None = None
    reason: str = ""
    model: str = ""
    spec: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "seconds": round(self.seconds, 4),
            "method": self.method,
            "margin": None if self.margin is None or not np.isfinite(self.margin) else float(self.margin),
            "counterexample": None if self.counterexample is None else self.counterexample.to_json(),
            "reason": self.reason,
            "model": self.model,
            "spec": self.spec,
            **self.details,
        }


class Progress:
    """Prints progress lines on stderr once a run has lasted ``after`` seconds."""

    def __init__(self, sink: Callable[[str], None] | None, after: float = 2.0) -> None:
        self.sink = sink
        self.after = after
        self.start = time.monotonic()
        self.pending: list[str] = []

    def __call__(self, message: str) -> None:
        if self.sink is None:
            return
        elapsed = time.monotonic() - self.start
        line = f"[{elapsed:6.1f}s] {message}"
        if elapsed < self.after:
            self.pending = [line]
            return
        for p in self.pending:
            self.sink(p)
        self.pending = []
        self.sink(line)


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def polytope_margins(lower: np.ndarray, case: Case) -> np.ndarray:
    """Per unsafe polytope: ``max_i (lb_i - d_i - coef_err_i * |y|max)``; > 0 means unreachable."""
    out = np.empty(len(case.unsafe))
    row = 0
    for j, poly in enumerate(case.unsafe):
        k = poly.n_rows
        if k == 0:
            out[j] = -np.inf
            continue
        out[j] = np.max(lower[row:row + k] - poly.d - poly.coef_err * 1e30 * (poly.coef_err > 0))
        row += k
    return out


def stacked_spec(case: Case, n_outputs: int) -> np.ndarray:
    rows = [p.C for p in case.unsafe if p.n_rows]
    return np.concatenate(rows, axis=0) if rows else np.zeros((0, n_outputs))


def check(model: Model, prop: Property, options: CheckOptions | None = None) -> CheckResult:
    """Decide whether ``prop`` holds on ``model``: verified, falsified or unknown."""
    from verify.bounds.lirpa import LirpaBounder
    from verify.falsify.combined import default_falsifier

    options = options or CheckOptions()
    start = time.monotonic()
    budget = Budget(start + options.timeout)
    progress = Progress(options.progress)
    prop.check_fits(model.n_inputs, model.n_outputs, model.name)

    def result(verdict: str, method: str, margin: float | None, cex: Counterexample | None = None,
               reason: str = "") -> CheckResult:
        return CheckResult(verdict, time.monotonic() - start, method, margin, cex, reason,
                           model=str(model.path or model.name), spec=str(prop.source or prop.name))

    if options.falsify:
        progress("quick counterexample search")
        quick = default_falsifier(max_slices=2, shrink_seconds=1.0)
        cex = quick.search(model, prop, Budget(min(budget.deadline, time.monotonic() + 2.0)), options.seed)
        if cex is not None:
            return result(FALSIFIED, cex.method, None, cex)

    bounder = LirpaBounder(model.net64(), model.n_inputs, options.alpha_iterations)
    worst_margin = np.inf
    method_used = "none"
    open_cases: list[int] = []
    for ci, case in enumerate(prop.cases):
        C = stacked_spec(case, model.n_outputs)
        margins = np.full(len(case.unsafe), -np.inf)
        scale = 0.0
        for method in options.methods:
            if budget.expired():
                break
            progress(f"case {ci + 1}/{len(prop.cases)}: {method}")
            res = bounder.bound(case.box.lower[None], case.box.upper[None], C, method)
            scale = max(scale, _scale(res, case))
            margins = np.maximum(margins, polytope_margins(res.lower[0], case))
            method_used = method
            progress(f"case {ci + 1}/{len(prop.cases)}: {method} margin {margins.min():.6g}")
            if np.all(margins > decision_threshold(scale)):
                break
        case_margin = float(margins.min()) if margins.size else np.inf
        worst_margin = min(worst_margin, case_margin)
        if not (case_margin > decision_threshold(scale)):
            open_cases.append(ci)
    if not open_cases:
        return result(VERIFIED, method_used, worst_margin)

    if options.falsify and not budget.expired():
        progress("counterexample search (hypothesis, PGD)")
        sub = Property(tuple(prop.cases[i] for i in open_cases), prop.n_inputs, prop.n_outputs, prop.name)
        cex = default_falsifier(shrink_seconds=1.0).search(model, sub, budget, options.seed)
        if cex is not None:
            cex.case_index = open_cases[cex.case_index]
            return result(FALSIFIED, cex.method, None, cex)
    reason = "timeout" if budget.expired() else "bounds too loose (no counterexample found)"
    return result(UNKNOWN, method_used, worst_margin, reason=reason)


def _scale(res: Any, case: Case) -> float:
    """Magnitude of the numbers a bound was computed from (for the float64 safety margin)."""
    values = [np.abs(res.lower).max(initial=0.0)]
    for lo, hi in res.relu_bounds.values():
        values.append(np.abs(lo).max(initial=0.0))
        values.append(np.abs(hi).max(initial=0.0))
    values.append(np.abs(case.box.lower).max(initial=0.0))
    values.append(np.abs(case.box.upper).max(initial=0.0))
    return float(max(values))
