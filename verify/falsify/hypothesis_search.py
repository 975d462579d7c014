"""Counterexample search with hypothesis: draw from the region, climb the violation margin, shrink.

The search is :func:`hypothesis.find` over :func:`verify.strategies.region_points`.  Each
drawn input is run through the converted torch network and its violation margin
(``<= 0`` inside the unsafe set) is reported with :func:`hypothesis.target`, so
hypothesis's targeting phase hill-climbs towards the unsafe set.  An input is a hit
only once :func:`~verify.falsify.base.replay` accepted it on the original model; then
hypothesis shrinks it (towards the centre, fewer coordinates away from it) for at most
``shrink_seconds``, every shrink step replayed again.

The search is seeded (``find(..., random=Random(seed))``), so it is deterministic for a
given seed; hypothesis turns its own database off for seeded runs, so found witnesses
are kept by :class:`verify.falsify.database.WitnessStore` (a hypothesis example
database) instead, which the combined falsifier replays before searching.

Hypothesis has no wall-clock limit, so the condition raises :class:`_OutOfBudget` at
the deadline; it derives from ``KeyboardInterrupt``, the exception hypothesis's engine
lets through at once, without shrinking or reporting the current input.
"""

from __future__ import annotations

import math
import time
from random import Random

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, Verbosity, find, settings, target
from hypothesis.errors import NoSuchExample, Unsatisfiable

from verify.errors import SpecError
from verify.falsify.base import Budget, Counterexample, SearchStats, case_tensors, confirm, violation
from verify.model.network import Model
from verify.spec.property import Property
from verify.strategies import region_points


class _OutOfBudget(KeyboardInterrupt):
    """Raised inside the hypothesis condition when the search's time is up."""


class HypothesisSearch:
    """:func:`hypothesis.find` with ``target()`` on the violation margin, over the property's region."""

    name = "hypothesis"

    def __init__(self, max_examples: int = 1_000_000, shrink_seconds: float = 1.0, tolerance: float = 1e-6) -> None:
        self.max_examples = max_examples
        self.shrink_seconds = shrink_seconds
        self.tolerance = tolerance
        self.stats = SearchStats()

    def settings(self) -> settings:
        phases = [Phase.generate, Phase.target]
        if self.shrink_seconds > 0:
            phases.append(Phase.shrink)
        return settings(database=None, max_examples=self.max_examples, deadline=None,
                        derandomize=False, phases=phases, verbosity=Verbosity.quiet,
                        suppress_health_check=list(HealthCheck), print_blob=False, report_multiple_bugs=False)

    def search(self, model: Model, prop: Property, budget: Budget, seed: int = 0) -> Counterexample | None:
        self.stats = SearchStats()
        try:
            strategy = region_points(prop)
        except SpecError:
            return None  # no float32 input in the region: nothing to search
        polys = [case_tensors(case) for case in prop.cases]
        found: list[Counterexample] = []
        stop_at = [budget.deadline]

        def condition(drawn: tuple[int, np.ndarray]) -> bool:
            if budget.expired() or time.monotonic() >= stop_at[0]:
                raise _OutOfBudget
            ci, x = drawn
            self.stats.examples += 1
            with torch.no_grad():
                v = float(violation(model.net(torch.from_numpy(x.reshape(1, -1))), polys[ci])[0])
            if math.isfinite(v):
                target(-v, label="violation margin")
            if not v <= self.tolerance:
                return False
            cex = confirm(model, prop, x, self.name, ci, self.stats)
            if cex is None:
                return False
            if not found:
                stop_at[0] = min(budget.deadline, time.monotonic() + self.shrink_seconds)
            found.append(cex)
            return True

        try:
            find(strategy, condition, settings=self.settings(), random=Random(seed))
        except (_OutOfBudget, NoSuchExample, Unsatisfiable):
            pass
        if not found:
            return None
        best = found[-1]  # hypothesis only tries candidates simpler than its current best
        if best is not found[0]:
            best.raw_x = found[0].x
            best.found_at = found[0].found_at
        return best
