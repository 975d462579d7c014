"""The ONNX converter matches onnxruntime, and rejects what it cannot convert."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper

from tests import nets
from tests.conftest import SHARED
from verify.errors import InputFileError, ModelError, UnsupportedOperatorError
from verify.model.network import load_model


def _max_difference(path: Path, rng: np.random.Generator, n: int = 16, scale: float = 1.0) -> tuple[float, float]:
    """Largest difference between our float32/float64 networks and onnxruntime, and the allowed tolerance."""
    model = load_model(path)
    x = rng.uniform(-scale, scale, (n, model.n_inputs)).astype(np.float32)
    ref = model.evaluate(x)
    ours32 = model.net(torch.from_numpy(x)).detach().numpy()
    ours64 = model.forward64(x).numpy()
    err = max(np.abs(ref - ours32).max(), np.abs(ref - ours64).max())
    return float(err), 1e-5 * max(1.0, float(np.abs(ref).max()))


def _conv_net(path: Path, rng: np.random.Generator) -> Path:
    """Every supported op in one graph."""
    c = lambda *shape: rng.normal(0, 0.5, shape)  # noqa: E731
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["s"], name="normalise_sub"),
        helper.make_node("Div", ["s", "std"], ["d"], name="normalise_div"),
        helper.make_node("Conv", ["d", "cw", "cb"], ["c"], name="conv", pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("BatchNormalization", ["c", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], name="bn"),
        helper.make_node("Relu", ["bn"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["mp"], name="maxpool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["mp"], ["ap"], name="avgpool", kernel_shape=[2, 2], strides=[1, 1],
                         pads=[1, 1, 1, 1], count_include_pad=1),
        helper.make_node("Identity", ["ap"], ["id"], name="identity"),
        helper.make_node("Flatten", ["id"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "gw", "gb"], ["g"], name="gemm", transB=1),
        helper.make_node("Tanh", ["g"], ["t"], name="tanh"),
        helper.make_node("MatMul", ["t", "mw"], ["m"], name="matmul"),
        helper.make_node("Add", ["m", "mb"], ["a"], name="add_bias"),
        helper.make_node("Sigmoid", ["a"], ["sg"], name="sigmoid"),
        helper.make_node("Mul", ["sg", "scale"], ["ml"], name="mul"),
        helper.make_node("Constant", [], ["shape"], name="shape_const",
                         value=helper.make_tensor("v", onnx.TensorProto.INT64, [2], [1, -1])),
        helper.make_node("Reshape", ["ml", "shape"], ["rs"], name="reshape"),
        helper.make_node("Add", ["rs", "a"], ["y"], name="residual"),
    ]
    inits = {"mean": np.full((1, 2, 1, 1), 0.1), "std": np.full((1, 2, 1, 1), 0.5), "cw": c(3, 2, 3, 3),
             "cb": c(3), "bn_s": c(3), "bn_b": c(3), "bn_m": c(3), "bn_v": np.abs(c(3)) + 0.5,
             "gw": c(5, 3 * 4 * 4), "gb": c(5), "mw": c(5, 4), "mb": c(4), "scale": c(4)}
    return nets.save(nodes, inits, [1, 2, 6, 6], [1, 4], path)


def test_every_supported_op_matches_onnxruntime(tmp_path: Path, rng: np.random.Generator) -> None:
    err, tol = _max_difference(_conv_net(tmp_path / "all_ops.onnx", rng), rng)
    assert err <= tol


def test_mlp_matches_onnxruntime(tmp_path: Path, rng: np.random.Generator) -> None:
    err, tol = _max_difference(nets.mlp(tmp_path / "mlp.onnx", [7, 20, 20, 3]), rng)
    assert err <= tol


@pytest.mark.parametrize("family", ["acasxu", "mnistfc", "oval21"])
def test_benchmark_networks_match_onnxruntime(family: str, rng: np.random.Generator) -> None:
    folder = SHARED / family / "onnx"
    if not folder.exists():
        pytest.skip(f"{folder} missing (../shared is outside the repository)")
    paths = sorted(folder.glob("*.onnx"))[:4]
    assert paths, f"no ONNX files in {folder}"
    for path in paths:
        err, tol = _max_difference(path, rng)
        assert err <= tol, f"{path.name}: max difference {err}"


def test_abs_net_is_hand_checkable(abs_net_path: Path) -> None:
    model = load_model(abs_net_path)
    y = model.evaluate(np.array([[-2.0], [3.0]], dtype=np.float32))
    np.testing.assert_allclose(y, [[2.0, -2.0], [3.0, 3.0]])


def test_unsupported_op_names_op_and_node(tmp_path: Path) -> None:
    nodes = [helper.make_node("Hardmax", ["x"], ["y"], name="the_hardmax")]
    path = nets.save(nodes, {}, [1, 3], [1, 3], tmp_path / "hardmax.onnx")
    with pytest.raises(UnsupportedOperatorError) as info:
        load_model(path)
    assert "'Hardmax'" in str(info.value) and "'the_hardmax'" in str(info.value)


def test_product_of_two_variables_is_rejected(tmp_path: Path) -> None:
    nodes = [helper.make_node("Mul", ["x", "x"], ["y"], name="square")]
    path = nets.save(nodes, {}, [1, 3], [1, 3], tmp_path / "square.onnx")
    with pytest.raises(UnsupportedOperatorError, match="square"):
        load_model(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_are_rejected(tmp_path: Path, bad: float) -> None:
    w = np.ones((3, 2))
    w[1, 1] = bad
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")]
    path = nets.save(nodes, {"w": w}, [1, 3], [1, 2], tmp_path / "nan.onnx")
    with pytest.raises(ModelError, match="NaN or infinite"):
        load_model(path)


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not found"):
        load_model(tmp_path / "nope.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07this is not protobuf\xff\xff")
    with pytest.raises(ModelError):
        load_model(corrupt)


def test_torch_module_is_accepted() -> None:
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    model = load_model(net)
    assert (model.n_inputs, model.n_outputs, model.kind) == (3, 2, "torch")
    x = np.ones((2, 3), dtype=np.float32)
    np.testing.assert_allclose(model.evaluate(x), net(torch.ones(2, 3)).detach().numpy(), rtol=1e-6)
