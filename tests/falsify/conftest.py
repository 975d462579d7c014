"""Fixtures for the falsification tests: tiny torch and ONNX networks with known counterexamples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from tests import nets
from verify.model.network import Model, load_model
from verify.spec import Property, box, make_property, output_between

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The searches run small batches: one thread is as fast and does not fight other processes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def first_input_net(n: int) -> nn.Module:
    """y = x_0 (the other inputs do not matter)."""
    net = nn.Linear(n, 1, bias=False)
    with torch.no_grad():
        net.weight.zero_()
        net.weight[0, 0] = 1.0
    return net


@pytest.fixture
def first_input_model() -> Model:
    return load_model(first_input_net(8))


@pytest.fixture
def first_input_prop() -> Property:
    """On [-1, 1]^8, y = x_0 must stay <= 0.5 (false: unsafe when x_0 > 0.5)."""
    return make_property(box([-1.0] * 8, [1.0] * 8), output_between(0, None, 0.5, n_outputs=1), name="x0_small")


@pytest.fixture
def abs_model(tmp_path: Path) -> Model:
    """ONNX: y0 = |x0|, y1 = x0 (replayed with onnxruntime)."""
    return load_model(nets.abs_net(tmp_path / "abs.onnx"))


@pytest.fixture
def tiny_model() -> Model:
    return load_model(ROOT / "examples" / "tiny" / "classifier.onnx")


@pytest.fixture
def tiny_false_spec() -> Path:
    return ROOT / "specs" / "tiny_robust_class0_wide.vnnlib"


@pytest.fixture
def tiny_true_spec() -> Path:
    return ROOT / "specs" / "tiny_robust_class0.vnnlib"
