"""Small ONNX MLPs with hand-checkable relational answers (weights chosen, not trained)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import helper

from tests.ir.nets import make_model, save


def mlp(path: Path, weights: list[np.ndarray], biases: list[np.ndarray]) -> Path:
    """Gemm -> Relu -> ... -> Gemm (float32 weights ``[out, in]``) written to ``path``."""
    nodes, inits, cur = [], {}, "x"
    for i, (W, b) in enumerate(zip(weights, biases)):
        inits[f"W{i}"], inits[f"b{i}"] = np.asarray(W, np.float32), np.asarray(b, np.float32)
        last = i == len(weights) - 1
        out = "y" if last else f"z{i}"
        nodes.append(helper.make_node("Gemm", [cur, f"W{i}", f"b{i}"], [out], name=f"fc{i}", transB=1))
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"a{i}"], name=f"relu{i}"))
            cur = f"a{i}"
    return save(make_model(nodes, inits, [1, weights[0].shape[1]]), path)


def random_layers(seed: int, sizes: list[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(0, 1 / np.sqrt(a), (b, a)).astype(np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(0, 0.3, b).astype(np.float32) for b in sizes[1:]]
    return Ws, bs


def monotone_by_construction(path: Path, feature: int = 0, seed: int = 0) -> Path:
    """Non-negative weights on ``feature`` and in every later layer: increasing in it."""
    Ws, bs = random_layers(seed, [3, 8, 8, 1])
    Ws[0][:, feature] = np.abs(Ws[0][:, feature])
    Ws[1], Ws[2] = np.abs(Ws[1]), np.abs(Ws[2])
    return mlp(path, Ws, bs)


def ignoring(path: Path, feature: int, seed: int = 1) -> Path:
    """A random MLP whose first layer gives ``feature`` zero weight (so the output ignores it)."""
    Ws, bs = random_layers(seed, [3, 8, 2])
    Ws[0][:, feature] = 0.0
    return mlp(path, Ws, bs)


def standard(path: Path, seed: int = 2, sizes: tuple[int, ...] = (3, 8, 2)) -> Path:
    Ws, bs = random_layers(seed, list(sizes))
    return mlp(path, Ws, bs)


def pruned(source: tuple[list[np.ndarray], list[np.ndarray]], path: Path, threshold: float) -> Path:
    """The MLP with every weight of magnitude below ``threshold`` set to 0."""
    Ws, bs = source
    return mlp(path, [np.where(np.abs(W) < threshold, 0, W).astype(np.float32) for W in Ws], bs)
