"""Shrinking keeps a counterexample a counterexample and makes it simpler."""

from __future__ import annotations

import time

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from verify.falsify.base import Budget, replay
from verify.falsify.pgd import PGDAttack
from verify.falsify.region import Region
from verify.falsify.shrink import shrink, simplicity
from verify.model.network import Model, load_model
from verify.spec import Property, box, make_property, output_between


def test_irrelevant_inputs_go_back_to_the_centre(first_input_model: Model, first_input_prop: Property) -> None:
    x = np.array([0.9, 0.7, -0.3, 0.2, -1.0, 1.0, 0.5, -0.6], dtype=np.float32)
    raw = replay(first_input_model, first_input_prop, x, "test")
    assert raw is not None
    small = shrink(first_input_model, first_input_prop, raw, time.monotonic() + 10)
    region = Region.of(first_input_prop.cases[0])
    assert np.flatnonzero(region.away(small.x)).tolist() == [0]  # only x_0 matters
    assert 0.5 < small.x[0] < 0.51  # and it is pulled close to the unsafe set's edge
    np.testing.assert_array_equal(small.raw_x, x)
    assert first_input_prop.is_counterexample(small.x, first_input_model.evaluate(small.x[None])[0])


def test_onnx_counterexample_is_replayed_with_onnxruntime(abs_model: Model) -> None:
    prop = make_property(box([-1.0], [1.0]), output_between(0, None, 0.5, n_outputs=2))
    raw = replay(abs_model, prop, np.array([-0.95], dtype=np.float32), "test")
    assert raw is not None
    small = shrink(abs_model, prop, raw, time.monotonic() + 10)
    assert -0.51 < small.x[0] < -0.5 and prop.is_counterexample(small.x, abs_model.evaluate(small.x[None])[0])


def test_no_time_means_no_change(first_input_model: Model, first_input_prop: Property) -> None:
    raw = replay(first_input_model, first_input_prop, np.full(8, 0.9, dtype=np.float32), "test")
    assert raw is not None
    assert shrink(first_input_model, first_input_prop, raw, time.monotonic() - 1) is raw


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2 ** 16), threshold=st.floats(-0.5, 0.5), n=st.integers(2, 6))
def test_shrunk_is_valid_and_never_less_simple(seed: int, threshold: float, n: int) -> None:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(n, 8), nn.ReLU(), nn.Linear(8, 2))
    model = load_model(net)
    prop = make_property(box([-1.0] * n, [1.0] * n), output_between(0, None, threshold, n_outputs=2))
    raw = PGDAttack(restarts=64, steps=30, max_rounds=4).search(model, prop, Budget.seconds(1), seed=seed)
    if raw is None:
        return  # this random network never exceeds the threshold on the box
    small = shrink(model, prop, raw, time.monotonic() + 5)
    assert prop.is_counterexample(small.x, model.evaluate(small.x[None])[0])
    region = Region.of(prop.cases[small.case_index])
    assert simplicity(region, small.x) <= simplicity(region, raw.x)
