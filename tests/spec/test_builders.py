"""The Python property API turns requirements into the right unsafe sets."""

from __future__ import annotations

import numpy as np
import pytest

from verify.errors import SpecError, SpecMismatchError
from verify.spec import argmax_is, linear_holds, linf_ball, load_spec, make_property, output_between


def test_argmax_requirement() -> None:
    prop = make_property(linf_ball([0.5, 0.5], 0.1), argmax_is(1, n_outputs=3))
    case = prop.cases[0]
    assert len(case.unsafe) == 2
    x = np.array([0.5, 0.5], dtype=np.float32)
    assert prop.is_counterexample(x, np.array([2.0, 1.0, 0.0]))  # class 0 wins
    assert prop.is_counterexample(x, np.array([1.0, 1.0, 0.0]))  # a tie is unsafe
    assert not prop.is_counterexample(x, np.array([0.0, 1.0, 0.5]))


def test_linf_ball_clips() -> None:
    ball = linf_ball([0.0, 0.95], 0.1, clip=(0.0, 1.0))
    np.testing.assert_allclose(ball.lower, [0.0, 0.85])
    np.testing.assert_allclose(ball.upper, [0.1, 1.0])


def test_output_between_and_linear_holds() -> None:
    region = linf_ball([0.0], 1.0)
    prop = make_property(region, output_between(0, -1.0, 2.0, n_outputs=2))
    x = np.zeros(1, dtype=np.float32)
    assert prop.is_counterexample(x, np.array([2.5, 0.0]))
    assert prop.is_counterexample(x, np.array([-1.5, 0.0]))
    assert not prop.is_counterexample(x, np.array([2.0, 0.0]))  # the bound itself is allowed
    prop2 = make_property(region, linear_holds([[1.0, -1.0]], [0.0]))
    assert prop2.is_counterexample(x, np.array([1.0, 0.0]))
    assert not prop2.is_counterexample(x, np.array([0.0, 0.0]))


def test_size_mismatch_is_reported() -> None:
    prop = make_property(linf_ball([0.0, 0.0], 1.0), argmax_is(0, n_outputs=3))
    with pytest.raises(SpecMismatchError, match="declares 2 inputs but"):
        prop.check_fits(5, 3)
    with pytest.raises(SpecMismatchError, match="declares 3 outputs but"):
        prop.check_fits(2, 4)


def test_bad_arguments() -> None:
    with pytest.raises(SpecError):
        linf_ball([0.0], -1.0)
    with pytest.raises(SpecError):
        argmax_is(5, n_outputs=3)


def test_python_spec_file(tmp_path) -> None:
    good = tmp_path / "good.py"
    good.write_text("from verify.spec import *\nPROPERTY = make_property(linf_ball([0.0], 0.5), "
                    "argmax_is(0, n_outputs=2))\n")
    assert load_spec(good).n_inputs == 1
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\n")
    with pytest.raises(SpecError, match="must define PROPERTY"):
        load_spec(bad)
