"""The extracted graph and its evaluator agree with onnxruntime on the original ONNX file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests import graph_nets, nets
from tests.conftest import ROOT, benchmark_dir
from verify.graph.evaluate import evaluate_graph
from verify.graph.extract import extract_graph
from verify.model.network import load_model

torch.set_num_threads(1)


def _relative_disagreement(path: Path, lo: float = -1.0, hi: float = 1.0, n: int = 64) -> float:
    """Largest difference between the graph evaluator and onnxruntime, relative to the output scale."""
    model = load_model(path)
    graph = extract_graph(model)
    x = np.random.default_rng(1).uniform(lo, hi, (n, model.n_inputs)).astype(np.float32)
    want = model.evaluate(x).astype(np.float64)  # onnxruntime, float32
    got = evaluate_graph(graph, x.astype(np.float64))
    if got.shape != want.shape:
        return float("inf")
    return float(np.abs(got - want).max() / (1.0 + np.abs(want).max()))


@pytest.mark.parametrize("builder", [
    lambda p: nets.abs_net(p),
    lambda p: nets.mlp(p, [5, 8, 8, 3], seed=2),
    lambda p: graph_nets.conv_net(p),
    lambda p: graph_nets.residual_net(p),
    lambda p: graph_nets.residual_net(p, activation="Sigmoid"),
    lambda p: graph_nets.residual_net(p, activation="Tanh"),
], ids=["abs", "mlp", "conv-bn-pool", "residual", "sigmoid", "tanh"])
def test_graph_matches_onnxruntime(tmp_path: Path, builder) -> None:
    assert _relative_disagreement(builder(tmp_path / "net.onnx")) <= 1e-5


def test_tiny_example_matches_onnxruntime() -> None:
    assert _relative_disagreement(ROOT / "examples" / "tiny" / "classifier.onnx", 0.0, 1.0) <= 1e-5


def test_acasxu_matches_onnxruntime() -> None:
    folder = benchmark_dir("acasxu")
    for name in ("ACASXU_run2a_1_1_batch_2000.onnx", "ACASXU_run2a_5_9_batch_2000.onnx"):
        assert _relative_disagreement(folder / "onnx" / name, -0.5, 0.5) <= 1e-5, name


def test_graph_nodes_and_edges(tmp_path: Path) -> None:
    """Node kinds, sizes and data flow of the conv net are what the ONNX file says."""
    graph = extract_graph(load_model(graph_nets.conv_net(tmp_path / "c.onnx")))
    ops = {n: d["op"] for n, d in graph.nodes(data=True)}
    assert ops["conv"] == "affine" and ops["bn"] == "affine" and ops["pool"] == "maxpool" and ops["flat"] == "identity"
    assert graph.nodes["conv"]["size"] == 2 * 6 * 6 and graph.nodes["pool"]["size"] == 2 * 3 * 3
    assert graph.graph["output"] == "fc2"
    assert list(graph.successors("relu0")) == ["pool"]
