"""hypothesis search and PGD find counterexamples on small networks, within their budgets."""

from __future__ import annotations

import time

import numpy as np
import pytest

from verify.falsify.base import Budget
from verify.falsify.hypothesis_search import HypothesisSearch
from verify.falsify.pgd import PGDAttack
from verify.falsify.region import Region
from verify.model.network import Model
from verify.spec import Property, box, make_property, output_between
from verify.spec.vnnlib import parse_vnnlib


@pytest.mark.parametrize("falsifier", [HypothesisSearch(), PGDAttack()], ids=["hypothesis", "pgd"])
def test_finds_a_replayed_counterexample(falsifier, tiny_model: Model, tiny_false_spec) -> None:  # noqa: ANN001
    from verify.spec import load_spec

    prop = load_spec(tiny_false_spec)
    cex = falsifier.search(tiny_model, prop, Budget.seconds(10), seed=0)
    assert cex is not None and cex.method == falsifier.name
    y = tiny_model.evaluate(cex.x[None])[0]
    assert prop.is_counterexample(cex.x, y)
    np.testing.assert_array_equal(cex.y, y)
    assert falsifier.stats.candidates >= 1 and cex.found_at is not None


def test_hypothesis_reaches_faces(abs_model: Model) -> None:
    """|x0| >= 0.999 on [-1, 1]: only slivers next to the faces are unsafe; the faces carry mass."""
    prop = make_property(box([-1.0], [1.0]), output_between(0, None, 0.999, n_outputs=2))
    search = HypothesisSearch()
    cex = search.search(abs_model, prop, Budget.seconds(10), seed=3)
    assert cex is not None and abs(float(cex.x[0])) > 0.999
    # shrinking by hypothesis keeps it a counterexample and moves it towards the centre
    assert cex.raw_x is None or abs(float(cex.x[0])) <= abs(float(cex.raw_x[0]))


def _sliver(width: str) -> Property:
    """y1 = x0 must stay outside [0.3, 0.3 + width], inside [-1, 1]."""
    return parse_vnnlib(f"""(declare-const X_0 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (>= X_0 -1))
(assert (<= X_0 1))
(assert (>= Y_1 0.3))
(assert (<= Y_1 {0.3 + float(width)!r}))
""", "sliver")


@pytest.mark.parametrize("seed", [0, 1])
def test_hypothesis_target_climbs_into_a_thin_sliver(abs_model: Model, seed: int) -> None:
    # a 1e-5 sliver is hit by chance about once in 1e5 draws; target() on the margin gets there in hundreds
    search = HypothesisSearch(max_examples=5000)
    cex = search.search(abs_model, _sliver("1e-5"), Budget.seconds(10), seed=seed)
    assert cex is not None and 0.3 <= float(cex.x[0]) <= 0.30001
    assert search.stats.examples < 5000


def test_pgd_climbs_into_a_thin_sliver(abs_model: Model) -> None:
    cex = PGDAttack().search(abs_model, _sliver("1e-4"), Budget.seconds(10), seed=0)
    assert cex is not None and 0.3 <= float(cex.x[0]) <= 0.3001


def test_budget_is_honoured(first_input_model: Model) -> None:
    # y = x0 <= 2 on [-1, 1]^8: true, so the searches run until the budget ends
    prop = make_property(box([-1.0] * 8, [1.0] * 8), output_between(0, None, 2.0, n_outputs=1))
    for falsifier in (HypothesisSearch(), PGDAttack()):
        start = time.monotonic()
        assert falsifier.search(first_input_model, prop, Budget.seconds(0.5)) is None
        assert time.monotonic() - start < 1.5


def test_every_case_is_searched(first_input_model: Model) -> None:
    # the first case is safe (x0 <= 0), the second has counterexamples (x0 > 0.5)
    region = [box([-1.0] * 8, [0.0] * 8), box([0.0] * 8, [1.0] * 8)]
    prop: Property = make_property(region, output_between(0, None, 0.5, n_outputs=1))
    for falsifier in (HypothesisSearch(), PGDAttack()):
        cex = falsifier.search(first_input_model, prop, Budget.seconds(5))
        assert cex is not None and cex.case_index == 1
        assert Region.of(prop.cases[1]).lower[0] <= cex.x[0]
