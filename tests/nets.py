"""Small canonical ONNX networks with hand-checkable answers, built with onnx.helper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def save(nodes: list, inits: dict[str, np.ndarray], in_shape: list[int], out_shape: list[int], path: Path,
         opset: int = 13, check: bool = True) -> Path:
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def abs_net(path: Path) -> Path:
    """x in R^1 -> (|x|, x): hidden relu(x), relu(-x)."""
    w1 = np.array([[1.0, -1.0]])  # [in, out]
    w2 = np.array([[1.0, 1.0], [1.0, -1.0]])
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu1"),
        helper.make_node("MatMul", ["r", "w2"], ["y"], name="fc2"),
    ]
    return save(nodes, {"w1": w1, "w2": w2}, [1, 1], [1, 2], path)


def mlp(path: Path, sizes: list[int], seed: int = 0, scale: float = 1.0) -> Path:
    """A random Gemm/Relu MLP with the given layer sizes."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], {}
    cur = "x"
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        inits[f"w{i}"] = rng.normal(0, scale / np.sqrt(a), (b, a))
        inits[f"b{i}"] = rng.normal(0, 0.1, b)
        last = i == len(sizes) - 2
        out = "y" if last else f"h{i}"
        nodes.append(helper.make_node("Gemm", [cur, f"w{i}", f"b{i}"], [out], name=f"fc{i}", transB=1))
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"], name=f"relu{i}"))
            cur = f"r{i}"
    return save(nodes, inits, [1, sizes[0]], [1, sizes[-1]], path)
