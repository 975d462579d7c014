"""Small networks for the graph, compression and module tests: ONNX nets with every supported
operator kind, and torch nets with hand-checkable compression on a box."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from onnx import helper
from torch import nn

from tests.nets import save


def conv_net(path: Path, seed: int = 0) -> Path:
    """x [1,1,6,6] -> Sub/Div normalisation -> Conv 3x3 (2 ch) -> BatchNorm -> Relu -> MaxPool 2 -> AveragePool
    (1, i.e. identity pooling) -> Flatten -> Gemm 18->5 -> Relu -> Gemm 5->3."""
    rng = np.random.default_rng(seed)
    inits = {
        "mean": np.array(0.3), "std": np.array(0.5),
        "cw": rng.normal(0, 0.5, (2, 1, 3, 3)), "cb": rng.normal(0, 0.1, 2),
        "bn_s": np.array([1.2, 0.8]), "bn_b": np.array([0.1, -0.2]), "bn_m": np.array([0.05, -0.1]),
        "bn_v": np.array([0.9, 1.1]),
        "w1": rng.normal(0, 0.4, (5, 18)), "b1": rng.normal(0, 0.1, 5),
        "w2": rng.normal(0, 0.5, (3, 5)), "b2": rng.normal(0, 0.1, 3),
    }
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["n0"], name="sub"),
        helper.make_node("Div", ["n0", "std"], ["n1"], name="div"),
        helper.make_node("Conv", ["n1", "cw", "cb"], ["c"], name="conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], name="bn"),
        helper.make_node("Relu", ["bn"], ["r"], name="relu0"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["p"], ["ap"], name="avg", kernel_shape=[1, 1]),
        helper.make_node("Flatten", ["ap"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w1", "b1"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["hr"], name="relu1"),
        helper.make_node("Gemm", ["hr", "w2", "b2"], ["y"], name="fc2", transB=1),
    ]
    return save(nodes, inits, [1, 1, 6, 6], [1, 3], path)


def residual_net(path: Path, seed: int = 0, activation: str = "Relu") -> Path:
    """x [1,4] -> Gemm -> act -> Gemm -> Add(x) -> act -> Gemm 4->2: a skip connection (not a chain)."""
    rng = np.random.default_rng(seed)
    inits = {"w0": rng.normal(0, 0.6, (4, 4)), "b0": rng.normal(0, 0.2, 4),
             "w1": rng.normal(0, 0.6, (4, 4)), "b1": rng.normal(0, 0.2, 4),
             "w2": rng.normal(0, 0.6, (2, 4)), "b2": rng.normal(0, 0.2, 2)}
    nodes = [
        helper.make_node("Gemm", ["x", "w0", "b0"], ["h0"], name="fc0", transB=1),
        helper.make_node(activation, ["h0"], ["a0"], name="act0"),
        helper.make_node("Gemm", ["a0", "w1", "b1"], ["h1"], name="fc1", transB=1),
        helper.make_node("Add", ["h1", "x"], ["s"], name="add"),
        helper.make_node(activation, ["s"], ["a1"], name="act1"),
        helper.make_node("Gemm", ["a1", "w2", "b2"], ["y"], name="fc2", transB=1),
    ]
    return save(nodes, inits, [1, 4], [1, 2], path)


def _linear(W: list[list[float]], b: list[float]) -> nn.Linear:
    W_t = torch.tensor(W, dtype=torch.float32)
    layer = nn.Linear(W_t.shape[1], W_t.shape[0])
    with torch.no_grad():
        layer.weight.copy_(W_t)
        layer.bias.copy_(torch.tensor(b, dtype=torch.float32))
    return layer


def stable_net() -> nn.Sequential:
    """On the box [0, 1]^2: h0 = x0 + x1 + 1 is always active (l = 1), h1 = -x0 - x1 - 1 is always
    dead (u = -1), h2 = x0 - x1 is unstable.  y = h0 + h1 + h2, y1 = h0 - h2."""
    return nn.Sequential(_linear([[1, 1], [-1, -1], [1, -1]], [1, -1, 0]), nn.ReLU(),
                         _linear([[1, 1, 1], [1, 0, -1]], [0, 0]))


def duplicate_net() -> nn.Sequential:
    """h0 = relu(x0 - x1), h1 = h0 (duplicate), h2 = relu(2 x0 - 2 x1) = 2 h0 (proportional),
    h3 = relu(x0 + 0.5), h4 = relu(-x0 + x1) (the mirror: not proportional, alpha < 0)."""
    return nn.Sequential(_linear([[1, -1], [1, -1], [2, -2], [1, 0], [-1, 1]], [0, 0, 0, 0.5, 0]), nn.ReLU(),
                         _linear([[1, 2, 3, 1, 1]], [0.25]))


def zero_net() -> nn.Sequential:
    """h0 has no incoming weight (constant relu(0.5) = 0.5); h1 is read by nobody (zero column);
    h2 = relu(x0 + x1) is the only real neuron."""
    return nn.Sequential(_linear([[0, 0], [1, 2], [1, 1]], [0.5, 0, 0]), nn.ReLU(),
                         _linear([[2, 0, 1]], [0]))


def parallel_net(width: int = 6, seed: int = 0) -> nn.Sequential:
    """Two independent sub-networks side by side (block-diagonal weights): inputs 0-1 feed neurons
    0..width-1 of every layer, inputs 2-3 the others; output 0 reads the first, output 1 the second."""
    rng = np.random.default_rng(seed)

    def block(n_out: int, n_in: int) -> np.ndarray:
        W = np.zeros((2 * n_out, 2 * n_in))
        W[:n_out, :n_in] = rng.normal(0, 1, (n_out, n_in))
        W[n_out:, n_in:] = rng.normal(0, 1, (n_out, n_in))
        return W

    W0, W1, W2 = block(width, 2), block(width, width), block(1, width)
    return nn.Sequential(_linear(W0.tolist(), rng.normal(0, 0.1, 2 * width).tolist()), nn.ReLU(),
                         _linear(W1.tolist(), rng.normal(0, 0.1, 2 * width).tolist()), nn.ReLU(),
                         _linear(W2.tolist(), [0.0, 0.0]))


def random_mlp(sizes: list[int], seed: int) -> nn.Sequential:
    """A random ReLU MLP (float32 weights)."""
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(nn.Linear(a, b))
        if k < len(sizes) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).eval()
