"""verify in a user's test suite: ``inputs`` with ``@given``, ``assert_property``, the pytest plugin.

The first tests are written the way a user writes them (the ``verify_property`` fixture
and the ``verify`` marker come from the plugin installed by the ``pytest11`` entry
point); the last ones run a small user suite through pytester to check what pytest
reports.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from verify.model.network import load_model
from verify.strategies import inputs
from verify.testing import PropertyViolation, assert_property, defaults

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "tiny" / "classifier.onnx"
ROBUST = ROOT / "specs" / "tiny_robust_class0.vnnlib"  # holds
WIDE = ROOT / "specs" / "tiny_robust_class0_wide.vnnlib"  # does not hold
tiny = load_model(MODEL)


@settings(max_examples=50, deadline=None)
@given(inputs(ROBUST))
def test_class_0_near_its_centre(x: np.ndarray) -> None:
    assert int(np.argmax(tiny.evaluate(x[None])[0])) == 0


def test_robust_spec_survives_the_search() -> None:
    assert_property(MODEL, ROBUST, budget=0.5, database=None)


def test_wide_spec_fails_with_the_witness() -> None:
    with pytest.raises(PropertyViolation) as info:
        assert_property(tiny, WIDE, budget=10, database=None)
    message = str(info.value)
    assert "is false on classifier.onnx" in message and "replayed on the original model" in message
    assert "x = [" in message and "y = [" in message and f"verify falsify {MODEL}" in message
    cex = info.value.counterexample
    assert "x = [" + ", ".join(f"{float(v):.9g}" for v in cex.x) + "]" in message


@pytest.mark.verify(budget=0.25, seed=4)
def test_marker_and_fixture(verify_property) -> None:  # noqa: ANN001
    assert (defaults().budget, defaults().seed) == (0.25, 4)
    verify_property(MODEL, ROBUST, database=None)


USER_SUITE = '''
import numpy as np
import pytest
import torch
from hypothesis import given
from torch import nn

from verify.spec import box, make_property, output_between
from verify.strategies import inputs
from verify.testing import assert_property, defaults

net = nn.Linear(2, 1)
with torch.no_grad():
    net.weight[:] = torch.tensor([[1.0, 1.0]])
    net.bias[:] = 0.0
REGION = box([-1, -1], [1, 1])
BELOW_3 = make_property(REGION, output_between(0, None, 3, n_outputs=1), name="below_3")
BELOW_1_5 = make_property(REGION, output_between(0, None, 1.5, n_outputs=1), name="below_1_5")


@given(inputs(BELOW_3))
def test_sum_stays_below_3(x):
    assert float(net(torch.from_numpy(x[None]))[0, 0]) <= 3


def test_below_3():
    assert defaults().budget == 0.5
    assert_property(net, BELOW_3)


def test_below_1_5():
    assert_property(net, BELOW_1_5)


@pytest.mark.verify(budget=0.1)
def test_fixture(verify_property):
    assert defaults().budget == 0.1
    verify_property(net, BELOW_3)
'''


def test_plugin_reports_through_pytest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_SUITE)
    before = defaults()
    result = pytester.runpytest("--verify-budget", "0.5", "--verify-examples-dir", "off", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        "verify: assert_property budget 0.5 s, seed 0, example database off",
        "*PropertyViolation: property 'below_1_5' is false on FlatWrapper*",
        "*2 of 2 inputs away from the centre*",
        "FAILED test_user.py::test_below_1_5*",
    ])
    assert defaults() == before  # the inner session's settings are gone


def test_plugin_reads_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nverify_budget = 0.3\nverify_seed = 11\nverify_examples_dir = off\n")
    pytester.makepyfile(test_ini="""
from verify.testing import defaults

def test_defaults():
    assert (defaults().budget, defaults().seed, defaults().database) == (0.3, 11, None)
""")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
