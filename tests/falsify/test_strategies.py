"""verify.strategies: drawn inputs lie in the region, reach corners and faces, and shrink to the centre."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from verify.errors import SpecError
from verify.falsify.region import Region
from verify.spec import Box, box, linf_ball, make_property, output_between
from verify.strategies import LOW_DIM, as_property, inputs, region_points

bounds = st.tuples(st.fractions(-10, 10, max_denominator=1000), st.fractions(0, 5, max_denominator=1000))


@st.composite
def boxes(draw: st.DrawFn, max_n: int = 6) -> Box:
    n = draw(st.integers(1, max_n))
    pairs = draw(st.lists(bounds, min_size=n, max_size=n))
    return Box(tuple(lo for lo, _ in pairs), tuple(lo + width for lo, width in pairs))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_drawn_inputs_lie_in_the_real_box(data: st.DataObject) -> None:
    region_box = data.draw(boxes())
    if Region.of(region_box).empty:  # e.g. lower == upper == 1/3: no float32 in the box
        with pytest.raises(SpecError):
            inputs(region_box)
        return
    x = data.draw(inputs(region_box))
    assert x.dtype == np.float32 and x.shape == (region_box.n,)
    assert region_box.contains(x)
    # exact: every coordinate within the decimal bounds, not just the float ones
    for v, lo, hi in zip(x, region_box.lower_exact, region_box.upper_exact):
        assert lo <= Fraction(float(v)) <= hi


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_disjunction_of_boxes_draws_from_every_case(data: st.DataObject) -> None:
    left, right = box([-2.0, -2.0], [-1.0, -1.0]), box([1.0, 1.0], [2.0, 2.0])
    prop = make_property([left, right], output_between(0, None, 0.0, n_outputs=1))
    ci, x = data.draw(region_points(prop))
    assert prop.cases[ci].box.contains(x)
    assert not prop.cases[1 - ci].box.contains(x)


def test_both_cases_of_a_disjunction_are_reached() -> None:
    prop = as_property([box([-2.0], [-1.0]), box([1.0], [2.0])])
    quiet = settings(database=None)
    assert find(inputs(prop), lambda x: x[0] > 0, settings=quiet)[0] == 1.5  # the second case's centre
    assert find(inputs(prop), lambda x: True, settings=quiet)[0] == -1.5  # the simplest: the first case's centre


@pytest.mark.parametrize("n", [3, LOW_DIM + 68])
def test_corners_faces_and_centre_are_reachable(n: int) -> None:
    region_box = linf_ball(np.linspace(0.1, 0.9, n), 0.05)
    region = Region.of(region_box)
    strategy = inputs(region_box)
    corner = find(strategy, lambda x: bool(np.all((x == region.lower) | (x == region.upper))),
                  settings=settings(max_examples=2000, database=None))
    assert region_box.contains(corner)
    face = find(strategy, lambda x: bool(np.any(x == region.upper)), settings=settings(database=None))
    # shrinking leaves one coordinate on the face and the others at the centre
    assert np.count_nonzero(face != region.center) == 1
    assert np.array_equal(find(strategy, lambda x: True, settings=settings(database=None)), region.center)


def test_shape_and_spec_file(tiny_true_spec) -> None:  # noqa: ANN001
    x = find(inputs(tiny_true_spec, shape=(2, 2)), lambda x: True, settings=settings(database=None))
    assert x.shape == (2, 2)
    with pytest.raises(SpecError, match="shape"):
        inputs(tiny_true_spec, shape=(3, 2))
    with pytest.raises(SpecError):
        inputs([])


def test_region_points_and_offsets_round_trip() -> None:
    region = Region.of(box([0.0, -1.0, 5.0], [1.0, 3.0, 5.0]))  # the last input is fixed
    t = np.array([[-1.0, 0.0, 1.0], [0.5, -0.5, 0.0], [1.0, 1.0, -1.0]])
    x = region.point(t)
    np.testing.assert_array_equal(x[0], [0.0, 1.0, 5.0])
    np.testing.assert_array_equal(x[2], [1.0, 3.0, 5.0])
    np.testing.assert_allclose(region.offsets(x[1])[:2], [0.5, -0.5])
