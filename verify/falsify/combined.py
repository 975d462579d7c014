"""The falsifier verify uses: stored witnesses first, then bound corners, hypothesis and PGD, then shrinking.

:class:`CombinedFalsifier` spends one budget on

1. the witnesses kept in the example database for this model and property (each is
   replayed again; stale ones are dropped);
2. with ``"corners"``: one :class:`~verify.falsify.corners.BoundCornerSearch` (descents
   from the corners alpha-CROWN's bounds point at; it finds points that random starts
   miss);
3. slices of work that alternate between :class:`HypothesisSearch` and
   :class:`PGDAttack`, each slice twice the size of the one before (with one method
   only, one search for the whole budget).  The schedule counts work (examples,
   rounds), not seconds, so a run is deterministic for a given seed whenever it finds a
   counterexample before the deadline;
4. :func:`~verify.falsify.shrink.shrink` on the witness found, for at most
   ``shrink_seconds`` and never past the deadline;

and keeps the final witness in the database.  Every witness it returns was accepted by
:func:`~verify.falsify.base.replay`, and is checked once more just before it leaves.

The searches evaluate small batches, for which one torch thread is as fast as several;
extra threads only spin against other busy processes (on a loaded two-core machine a
PGD round took 50 times longer with two threads), so the search runs with ``threads``
torch threads (default 1) and restores the previous setting afterwards.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from verify.falsify import METHODS
from verify.falsify.base import Budget, Counterexample, SearchStats, confirm, replay
from verify.falsify.corners import BoundCornerSearch
from verify.falsify.database import WitnessStore, open_database
from verify.falsify.hypothesis_search import HypothesisSearch  # on top: hypothesis loads before a budget starts
from verify.falsify.pgd import PGDAttack, attackable
from verify.falsify.region import Region
from verify.falsify.shrink import shrink
from verify.model.network import Model
from verify.spec.property import Property

if TYPE_CHECKING:
    from hypothesis.database import ExampleDatabase

#: the methods that take turns in slices (``corners`` runs once, before them)
SLICED = ("hypothesis", "pgd")
#: hypothesis examples in the first slice (doubled every slice).
HYPOTHESIS_FIRST_SLICE = 100
#: PGD rounds in the first slice (doubled every slice).
PGD_FIRST_SLICE = 2


class CombinedFalsifier:
    """Database replay, then hypothesis and PGD slices in turn, then shrinking."""

    name = "combined"

    def __init__(self, methods: Sequence[str] = METHODS, database: ExampleDatabase | None = None,
                 shrink_seconds: float = 2.0, hypothesis_shrink_seconds: float = 0.5,
                 max_slices: int | None = None, threads: int | None = 1) -> None:
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise ValueError(f"methods must be a non-empty subset of {METHODS}, got {list(methods)}")
        self.methods = tuple(methods)
        self.store = WitnessStore(database) if database is not None else None
        self.shrink_seconds = shrink_seconds
        self.hypothesis_shrink_seconds = hypothesis_shrink_seconds
        self.max_slices = max_slices
        self.threads = threads
        self.stats = SearchStats()

    def search(self, model: Model, prop: Property, budget: Budget, seed: int = 0) -> Counterexample | None:
        self.stats = SearchStats()
        with _torch_threads(self.threads):
            return self._run(model, prop, budget, seed)

    def _run(self, model: Model, prop: Property, budget: Budget, seed: int) -> Counterexample | None:
        cex = self._from_database(model, prop)
        if cex is None:
            cex = self._search(model, prop, budget, seed)
            if cex is None:
                return None
            if self.shrink_seconds > 0:
                deadline = min(budget.deadline, time.monotonic() + self.shrink_seconds)
                cex = shrink(model, prop, cex, deadline, stats=self.stats)
        # the last gate: nothing leaves without the original model agreeing once more
        final = replay(model, prop, cex.x, cex.method, cex.case_index)
        if final is None:  # pragma: no cover - replay accepted this very input before
            return None
        final.raw_x, final.found_at, final.from_database = cex.raw_x, cex.found_at, cex.from_database
        if self.store is not None and not final.from_database:
            self.store.save(model, prop, final.x, final.method)
        return final

    def _from_database(self, model: Model, prop: Property) -> Counterexample | None:
        if self.store is None:
            return None
        for x, method in self.store.load(model, prop):
            cex = confirm(model, prop, x, method, None, self.stats)
            if cex is not None:
                cex.from_database = True
                return cex
            self.store.forget(model, prop, x, method)
        return None

    def _search(self, model: Model, prop: Property, budget: Budget, seed: int) -> Counterexample | None:
        if not any(attackable(case, Region.of(case)) for case in prop.cases):
            return None
        if "corners" in self.methods and not budget.expired():
            corners = BoundCornerSearch()
            cex = corners.search(model, prop, budget, seed)
            self.stats.add(corners.stats)
            if cex is not None:
                return cex
        sliced = [m for m in self.methods if m in SLICED]
        if not sliced:
            return None
        for k in itertools.count():
            if self.max_slices is not None and k >= self.max_slices:
                return None
            for method in sliced:
                if budget.expired():
                    return None
                falsifier = self._slice(method, k)
                cex = falsifier.search(model, prop, budget, seed=_slice_seed(seed, k, method))
                self.stats.add(falsifier.stats)
                if cex is not None:
                    return cex
        return None  # pragma: no cover - the loop above only ends by returning

    def _slice(self, method: str, k: int) -> HypothesisSearch | PGDAttack:
        # one method and no cap on the turns: one search until the budget ends (hypothesis's
        # targeting keeps what it learned, which restarts would throw away)
        alone = len([m for m in self.methods if m in SLICED]) == 1 and self.max_slices is None
        if method == "hypothesis":
            return HypothesisSearch(max_examples=10 ** 9 if alone else HYPOTHESIS_FIRST_SLICE * 2 ** k,
                                    shrink_seconds=self.hypothesis_shrink_seconds)
        return PGDAttack(max_rounds=None if alone else PGD_FIRST_SLICE * 2 ** k)


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch CPU threads (None: leave the setting alone)."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _slice_seed(seed: int, k: int, method: str) -> int:
    return (seed * 1_000_003 + k * 7919 + METHODS.index(method)) % (2 ** 63)


def default_falsifier(database: str | Path | ExampleDatabase | None = "default", methods: Sequence[str] = METHODS,
                      shrink_seconds: float = 2.0, max_slices: int | None = None,
                      threads: int | None = 1) -> CombinedFalsifier:
    """The falsifier ``verify check`` and ``verify falsify`` use.

    ``database``: "default" for ``$VERIFY_EXAMPLES_DIR`` or ``.verify-cache/examples``
    (see :mod:`verify.falsify.database`), a directory, an example database, or None.
    ``max_slices`` caps the hypothesis/PGD turns (None: until the budget ends); ``threads``
    is the number of torch threads during the search (None: leave it alone).
    """
    return CombinedFalsifier(methods=methods, database=open_database(database), shrink_seconds=shrink_seconds,
                             max_slices=max_slices, threads=threads)
