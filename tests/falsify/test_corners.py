"""Counterexample search from the corners alpha-CROWN's bounds point at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import helper

from tests import nets
from tests.conftest import benchmark_dir
from verify.falsify.base import Budget
from verify.falsify.combined import CombinedFalsifier
from verify.falsify.corners import BoundCornerSearch
from verify.model.network import load_model
from verify.spec import load_spec

TENT_SPEC = """(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(assert (>= X_0 0)) (assert (<= X_0 1))
(assert (>= X_1 0)) (assert (<= X_1 1))
(assert (<= Y_0 0))
"""


def _tent(tmp_path: Path, top: float) -> tuple[Path, Path]:
    """y = top - relu(x0 + x1) on [0, 1]^2; "y <= 0" is reachable exactly when top <= 2."""
    nodes = [helper.make_node("Gemm", ["x", "w0", "b0"], ["h"], name="fc0", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="relu0"),
             helper.make_node("Gemm", ["r", "w1", "b1"], ["y"], name="fc1", transB=1)]
    inits = {"w0": np.array([[1.0, 1.0]]), "b0": np.zeros(1), "w1": np.array([[-1.0]]), "b1": np.array([top])}
    spec = tmp_path / "tent.vnnlib"
    spec.write_text(TENT_SPEC)
    return nets.save(nodes, inits, [1, 2], [1, 1], tmp_path / f"tent{top}.onnx"), spec


def test_finds_and_replays_the_corner_counterexample(tmp_path: Path) -> None:
    model_path, spec = _tent(tmp_path, 1.5)
    search = BoundCornerSearch()
    cex = search.search(load_model(model_path), load_spec(spec), Budget.seconds(30))
    assert cex is not None and cex.method == "corners"
    assert cex.x.sum() >= 1.5 and np.all((cex.x >= 0) & (cex.x <= 1)) and cex.y[0] <= 0
    assert search.stats.candidates >= 1


def test_nothing_to_find_on_a_safe_property(tmp_path: Path) -> None:
    model_path, spec = _tent(tmp_path, 2.5)  # y >= 0.5 on the whole box
    falsifier = CombinedFalsifier(methods=("corners",), database=None)
    assert falsifier.search(load_model(model_path), load_spec(spec), Budget.seconds(30)) is None


def test_mnist_row_46_falsified_from_a_bound_corner() -> None:
    """MNIST-FC 256x4, prop_1_0.05: six 2021 tools said violated without a point, and PGD
    from random starts stalls at margin 0.985; the descent from the corner of "y8 >= y1"
    reaches a counterexample, replayed with onnxruntime."""
    folder = benchmark_dir("mnistfc")
    model = load_model(folder / "onnx" / "mnist-net_256x4.onnx")
    prop = load_spec(folder / "vnnlib" / "prop_1_0.05.vnnlib")
    cex = BoundCornerSearch().search(model, prop, Budget.seconds(120))
    assert cex is not None
    assert int(np.argmax(cex.y)) != 1  # the image's label is 1
    assert prop.cases[0].box.contains(cex.x)


def test_corners_run_first_in_the_combined_falsifier(tmp_path: Path) -> None:
    model_path, spec = _tent(tmp_path, 1.5)
    cex = CombinedFalsifier(methods=("pgd", "corners"), database=None).search(
        load_model(model_path), load_spec(spec), Budget.seconds(30))
    assert cex is not None and cex.method == "corners"
