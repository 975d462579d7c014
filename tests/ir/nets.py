"""Small ONNX models built with ``onnx.helper`` for the IR's tests (each function returns a
checked ``ModelProto``; :func:`save` writes one to a file).

Single-op models (:func:`op_models` lists them by name, several attribute combinations
per op) and the canonical networks the end-to-end tests use (:data:`NETWORKS`; their
names and signatures are stable).  Weights are random from a fixed numpy seed, float32
(float64 for :func:`double_net`); every input has at most 64 elements, so bounding any of
them takes milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INT64_MAX = 2**63 - 1


def save(model: onnx.ModelProto, path: str | Path) -> Path:
    """Write ``model`` to ``path``; returns the path."""
    path = Path(path)
    onnx.save(model, str(path))
    return path


def make_model(nodes: list[Any], inits: dict[str, np.ndarray], in_shape: Sequence[int | str], *,
               opset: int = 13, elem: int = TensorProto.FLOAT, input_name: str = "x",
               output_name: str = "y") -> onnx.ModelProto:
    """A checked model with one input ``x`` and one output ``y`` (its type and shape inferred).

    Float initializers become float32 values of the model's float type; integer ones become
    int64, bool ones stay.
    """
    dtype = np.float64 if elem == TensorProto.DOUBLE else np.float32
    tensors = []
    for key, value in inits.items():
        value = np.asarray(value)
        if value.dtype.kind == "f":
            value = value.astype(np.float32).astype(dtype)  # float32 values, as verify requires
        elif value.dtype.kind != "b":
            value = value.astype(np.int64)
        tensors.append(numpy_helper.from_array(value, key))
    graph = helper.make_graph(nodes, "ir_test", [helper.make_tensor_value_info(input_name, elem, list(in_shape))],
                              [helper.make_tensor_value_info(output_name, TensorProto.UNDEFINED, None)], tensors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    out = inferred.graph.output[0]
    assert out.type.tensor_type.HasField("shape"), "shape inference gave the output no shape"
    model.graph.output[0].CopyFrom(out)
    onnx.checker.check_model(model)
    return model


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _w(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.normal(0.0, 1.0 / np.sqrt(max(1, int(np.prod(shape[1:])))), shape).astype(np.float32)


def _gemm_layers(rng: np.random.Generator, sizes: list[int], act: str, inits: dict[str, np.ndarray],
                 **act_attrs: Any) -> list[Any]:
    """Gemm -> act -> ... -> Gemm with the given sizes (input ``x``, output ``y``)."""
    nodes: list[Any] = []
    cur = "x"
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        inits[f"W{i}"] = _w(rng, b, a)
        inits[f"b{i}"] = rng.normal(0, 0.5, b)
        last = i == len(sizes) - 2
        out = "y" if last else f"fc{i}"
        nodes.append(helper.make_node("Gemm", [cur, f"W{i}", f"b{i}"], [out], name=f"Gemm_{i}", transB=1))
        if not last:
            nodes.append(helper.make_node(act, [out], [f"{act.lower()}{i}"], name=f"{act}_{i}", **act_attrs))
            cur = f"{act.lower()}{i}"
    return nodes


# ------------------------------------------------------------------ canonical networks
def residual_net() -> onnx.ModelProto:
    """[1,1,6,6] -> Conv -> Relu -> (Conv 3x3 | Conv 1x1) -> Add -> Relu -> Flatten -> Gemm -> 3."""
    rng = _rng(1)
    inits = {"c0_w": _w(rng, 2, 1, 3, 3), "c0_b": rng.normal(0, 0.3, 2), "ca_w": _w(rng, 2, 2, 3, 3),
             "ca_b": rng.normal(0, 0.3, 2), "cb_w": _w(rng, 2, 2, 1, 1), "cb_b": rng.normal(0, 0.3, 2),
             "fc_w": _w(rng, 3, 72), "fc_b": rng.normal(0, 0.3, 3)}
    nodes = [
        helper.make_node("Conv", ["x", "c0_w", "c0_b"], ["conv0"], name="Conv_0", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv0"], ["relu0"], name="Relu_1"),
        helper.make_node("Conv", ["relu0", "ca_w", "ca_b"], ["conv_a"], name="Conv_2", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["relu0", "cb_w", "cb_b"], ["conv_b"], name="Conv_3"),
        helper.make_node("Add", ["conv_a", "conv_b"], ["sum"], name="Add_4"),
        helper.make_node("Relu", ["sum"], ["relu1"], name="Relu_5"),
        helper.make_node("Flatten", ["relu1"], ["flat"], name="Flatten_6"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], name="Gemm_7", transB=1),
    ]
    return make_model(nodes, inits, [1, 1, 6, 6])


def conv_pad_avgpool_net() -> onnx.ModelProto:
    """[1,1,8,8] -> Pad (zero pads) -> Conv 3x3 -> Relu -> AveragePool 2x2/2 -> Flatten -> Gemm -> 3."""
    rng = _rng(2)
    inits = {"pads": np.zeros(8, np.int64), "c_w": _w(rng, 2, 1, 3, 3), "c_b": rng.normal(0, 0.3, 2),
             "fc_w": _w(rng, 3, 18), "fc_b": rng.normal(0, 0.3, 3)}
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["padded"], name="Pad_0", mode="constant"),
        helper.make_node("Conv", ["padded", "c_w", "c_b"], ["conv"], name="Conv_1"),
        helper.make_node("Relu", ["conv"], ["relu"], name="Relu_2"),
        helper.make_node("AveragePool", ["relu"], ["pool"], name="AveragePool_3", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Flatten", ["pool"], ["flat"], name="Flatten_4"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], name="Gemm_5", transB=1),
    ]
    return make_model(nodes, inits, [1, 1, 8, 8])


def maxpool_net() -> onnx.ModelProto:
    """[1,1,6,6] -> Conv 3x3 (pad 1) -> Relu -> MaxPool 2x2/2 -> Flatten -> Gemm -> 3."""
    rng = _rng(3)
    inits = {"c_w": _w(rng, 2, 1, 3, 3), "c_b": rng.normal(0, 0.3, 2), "fc_w": _w(rng, 3, 18),
             "fc_b": rng.normal(0, 0.3, 3)}
    nodes = [
        helper.make_node("Conv", ["x", "c_w", "c_b"], ["conv"], name="Conv_0", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"], name="Relu_1"),
        helper.make_node("MaxPool", ["relu"], ["pool"], name="MaxPool_2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool"], ["flat"], name="Flatten_3"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], name="Gemm_4", transB=1),
    ]
    return make_model(nodes, inits, [1, 1, 6, 6])


def tanh_net() -> onnx.ModelProto:
    """[1,4] -> Gemm 8 -> Tanh -> Gemm 8 -> Tanh -> Gemm 3."""
    inits: dict[str, np.ndarray] = {}
    return make_model(_gemm_layers(_rng(4), [4, 8, 8, 3], "Tanh", inits), inits, [1, 4])


def sigmoid_net() -> onnx.ModelProto:
    """[1,4] -> Gemm 8 -> Sigmoid -> Gemm 8 -> Sigmoid -> Gemm 3."""
    inits: dict[str, np.ndarray] = {}
    return make_model(_gemm_layers(_rng(5), [4, 8, 8, 3], "Sigmoid", inits), inits, [1, 4])


def leaky_relu_net() -> onnx.ModelProto:
    """[1,4] -> Gemm 8 -> LeakyRelu(0.1) -> Gemm 8 -> LeakyRelu(0.1) -> Gemm 3."""
    inits: dict[str, np.ndarray] = {}
    return make_model(_gemm_layers(_rng(6), [4, 8, 8, 3], "LeakyRelu", inits, alpha=0.1), inits, [1, 4])


def dropout_cnn1d_net() -> onnx.ModelProto:
    """[1,2,8] -> Conv1d k3 -> Relu -> Dropout -> Shape/Gather/Unsqueeze/Concat/Reshape to [1,18] -> Gemm 2."""
    rng = _rng(7)
    inits = {"c_w": _w(rng, 3, 2, 3), "c_b": rng.normal(0, 0.3, 3), "fc_w": _w(rng, 2, 18),
             "fc_b": rng.normal(0, 0.3, 2), "zero": np.array(0, np.int64), "axes0": np.array([0], np.int64),
             "minus1": np.array([-1], np.int64)}
    nodes = [
        helper.make_node("Conv", ["x", "c_w", "c_b"], ["conv"], name="Conv_0", kernel_shape=[3]),
        helper.make_node("Relu", ["conv"], ["relu"], name="Relu_1"),
        helper.make_node("Dropout", ["relu"], ["drop"], name="Dropout_2"),
        helper.make_node("Shape", ["drop"], ["shape"], name="Shape_3"),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], name="Gather_4", axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"], name="Unsqueeze_5"),
        helper.make_node("Concat", ["batch1", "minus1"], ["target"], name="Concat_6", axis=0),
        helper.make_node("Reshape", ["drop", "target"], ["flat"], name="Reshape_7"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], name="Gemm_8", transB=1),
    ]
    return make_model(nodes, inits, [1, 2, 8])


def softmax_net() -> onnx.ModelProto:
    """[1,4] -> Gemm 6 -> Relu -> Gemm 3 -> Softmax (the output)."""
    rng = _rng(8)
    inits: dict[str, np.ndarray] = {}
    nodes = _gemm_layers(rng, [4, 6, 3], "Relu", inits)
    nodes[-1].output[0] = "logits"
    nodes.append(helper.make_node("Softmax", ["logits"], ["y"], name="Softmax_3", axis=1))
    return make_model(nodes, inits, [1, 4])


def double_net() -> onnx.ModelProto:
    """A float64 model: [1,3] -> Gemm 5 -> Relu -> Gemm 2, input and weights double."""
    inits: dict[str, np.ndarray] = {}
    return make_model(_gemm_layers(_rng(9), [3, 5, 2], "Relu", inits), inits, [1, 3], elem=TensorProto.DOUBLE)


#: The canonical networks by name (stable: other tests use them end to end).
NETWORKS: dict[str, Callable[[], onnx.ModelProto]] = {
    "residual_net": residual_net,
    "conv_pad_avgpool_net": conv_pad_avgpool_net,
    "maxpool_net": maxpool_net,
    "tanh_net": tanh_net,
    "sigmoid_net": sigmoid_net,
    "leaky_relu_net": leaky_relu_net,
    "dropout_cnn1d_net": dropout_cnn1d_net,
    "softmax_net": softmax_net,
    "double_net": double_net,
}


# ------------------------------------------------------------------ single ops
def single(op: str, in_shape: Sequence[int | str], inputs: Sequence[str] = (), inits: dict[str, Any] | None = None,
           opset: int = 13, **attrs: Any) -> onnx.ModelProto:
    """One ``op`` node reading ``x`` (then ``inputs``, initializers or '' for absent ones)."""
    node = helper.make_node(op, ["x", *inputs], ["y"], name=f"{op}_0", **attrs)
    return make_model([node], dict(inits or {}), in_shape, opset=opset)


def gemm(trans_b: int = 1, alpha: float = 1.0, beta: float = 1.0, bias: str | None = "vector") -> onnx.ModelProto:
    """x[1,5] -> Gemm -> 4; ``bias``: "vector" [4], "row" [1,4], "scalar" [] or None."""
    rng = _rng(10)
    w = _w(rng, 4, 5)
    inits: dict[str, Any] = {"B": w if trans_b else w.T}
    inputs = ["B"]
    if bias is not None:
        inits["C"] = {"vector": rng.normal(0, 1, 4), "row": rng.normal(0, 1, (1, 4)),
                      "scalar": np.array(rng.normal())}[bias]
        inputs.append("C")
    return single("Gemm", [1, 5], inputs, inits, transB=trans_b, alpha=alpha, beta=beta)


def matmul(in_shape: Sequence[int], w_shape: Sequence[int]) -> onnx.ModelProto:
    """x @ B with a constant B."""
    return single("MatMul", in_shape, ["B"], {"B": _w(_rng(11), *w_shape)})


def matmul_const_left() -> onnx.ModelProto:
    """A[3,4] @ x[1,2,4,5] -> [1,2,3,5]."""
    node = helper.make_node("MatMul", ["A", "x"], ["y"], name="MatMul_0")
    return make_model([node], {"A": _w(_rng(12), 3, 4)}, [1, 2, 4, 5])


def conv(in_shape: Sequence[int] = (1, 2, 6, 6), out_channels: int = 4, kernel: Sequence[int] = (3, 3),
         bias: bool = True, group: int = 1, **attrs: Any) -> onnx.ModelProto:
    """One Conv (1-D or 2-D by ``kernel``); ``attrs`` are the node's attributes."""
    rng = _rng(13)
    inits: dict[str, Any] = {"W": _w(rng, out_channels, in_shape[1] // group, *kernel)}
    if bias:
        inits["B"] = rng.normal(0, 0.5, out_channels)
    return single("Conv", in_shape, ["W", "B"] if bias else ["W"], inits, group=group, **attrs)


def conv_transpose(in_shape: Sequence[int] = (1, 2, 3, 3), out_channels: int = 2, kernel: Sequence[int] = (3, 3),
                   bias: bool = True, group: int = 1, **attrs: Any) -> onnx.ModelProto:
    """One ConvTranspose (1-D or 2-D by ``kernel``)."""
    rng = _rng(14)
    inits: dict[str, Any] = {"W": _w(rng, in_shape[1], out_channels // group, *kernel)}
    if bias:
        inits["B"] = rng.normal(0, 0.5, out_channels)
    return single("ConvTranspose", in_shape, ["W", "B"] if bias else ["W"], inits, group=group, **attrs)


def batchnorm(in_shape: Sequence[int] = (1, 3, 2, 2)) -> onnx.ModelProto:
    """BatchNormalization (inference) over the channels of ``in_shape``."""
    rng = _rng(15)
    c = in_shape[1]
    inits = {"s": rng.normal(1, 0.3, c), "b": rng.normal(0, 0.3, c), "m": rng.normal(0, 0.3, c),
             "v": rng.uniform(0.5, 2.0, c)}
    return single("BatchNormalization", in_shape, ["s", "b", "m", "v"], inits, epsilon=1e-3)


def pad(pads: Sequence[int], value: float = 0.0, opset: int = 13, in_shape: Sequence[int] = (1, 2, 3, 3),
        axes: Sequence[int] | None = None) -> onnx.ModelProto:
    """Pad (constant mode): pads as an attribute (opset < 11) or an input."""
    if opset < 11:
        return single("Pad", in_shape, opset=opset, pads=list(pads), value=value, mode="constant")
    inits: dict[str, Any] = {"pads": np.asarray(pads, np.int64), "value": np.array(value, np.float32)}
    inputs = ["pads", "value"]
    if axes is not None:
        inits["axes"] = np.asarray(axes, np.int64)
        inputs.append("axes")
    return single("Pad", in_shape, inputs, inits, opset=opset, mode="constant")


def binary(op: str, const_shape: Sequence[int], const_first: bool = False,
           in_shape: Sequence[int] = (1, 2, 3, 3)) -> onnx.ModelProto:
    """``op`` (Add/Sub/Mul/Div) of ``x`` and a constant of ``const_shape``."""
    rng = _rng(16)
    c = rng.uniform(0.5, 2.0, const_shape) * rng.choice([-1.0, 1.0], const_shape)
    ins = ["c", "x"] if const_first else ["x", "c"]
    node = helper.make_node(op, ins, ["y"], name=f"{op}_0")
    return make_model([node], {"c": np.asarray(c)}, in_shape)


def branches(op: str) -> onnx.ModelProto:
    """x[1,6] -> (Gemm 4 | Gemm 4) -> ``op`` (Add or Sub) of the two variable branches."""
    rng = _rng(17)
    inits = {"Wa": _w(rng, 4, 6), "Wb": _w(rng, 4, 6)}
    nodes = [helper.make_node("Gemm", ["x", "Wa"], ["a"], name="Gemm_a", transB=1),
             helper.make_node("Gemm", ["x", "Wb"], ["b"], name="Gemm_b", transB=1),
             helper.make_node(op, ["a", "b"], ["y"], name=f"{op}_0")]
    return make_model(nodes, inits, [1, 6])


def pool(op: str, in_shape: Sequence[int] = (1, 2, 6, 6), **attrs: Any) -> onnx.ModelProto:
    """One MaxPool or AveragePool."""
    return single(op, in_shape, **attrs)


def flatten(axis: int, in_shape: Sequence[int]) -> onnx.ModelProto:
    return single("Flatten", in_shape, axis=axis)


def reshape(target: Sequence[int], in_shape: Sequence[int] = (1, 2, 3, 4)) -> onnx.ModelProto:
    return single("Reshape", in_shape, ["shape"], {"shape": np.asarray(target, np.int64)})


def transpose(perm: Sequence[int], in_shape: Sequence[int] = (1, 2, 3, 4)) -> onnx.ModelProto:
    return single("Transpose", in_shape, perm=list(perm))


def concat(axis: int) -> onnx.ModelProto:
    """x[1,2,3,4] -> Concat(Relu(x), Tanh(x), x) along ``axis``."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="Relu_0"),
             helper.make_node("Tanh", ["x"], ["t"], name="Tanh_1"),
             helper.make_node("Concat", ["r", "t", "x"], ["y"], name="Concat_2", axis=axis)]
    return make_model(nodes, {}, [1, 2, 3, 4])


def slice_(starts: Sequence[int], ends: Sequence[int], axes: Sequence[int] | None = None,
           steps: Sequence[int] | None = None, opset: int = 13,
           in_shape: Sequence[int] = (1, 3, 4, 5)) -> onnx.ModelProto:
    """Slice with constant starts/ends/axes/steps (attributes before opset 10)."""
    if opset < 10:
        extra = {} if axes is None else {"axes": list(axes)}
        return single("Slice", in_shape, opset=opset, starts=list(starts), ends=list(ends), **extra)
    inits: dict[str, Any] = {"starts": np.asarray(starts, np.int64), "ends": np.asarray(ends, np.int64)}
    inputs = ["starts", "ends"]
    if axes is not None or steps is not None:
        inits["axes"] = np.asarray(axes if axes is not None else range(len(starts)), np.int64)
        inputs.append("axes")
    if steps is not None:
        inits["steps"] = np.asarray(steps, np.int64)
        inputs.append("steps")
    return single("Slice", in_shape, inputs, inits, opset=opset)


def squeeze(op: str, axes: Sequence[int], in_shape: Sequence[int], opset: int = 13) -> onnx.ModelProto:
    """Squeeze or Unsqueeze with ``axes`` (an attribute before opset 13, an input after)."""
    if opset < 13:
        return single(op, in_shape, opset=opset, axes=list(axes))
    return single(op, in_shape, ["axes"], {"axes": np.asarray(axes, np.int64)}, opset=opset)


def dropout(opset: int = 13, ratio: bool = False, training_mode: bool = False) -> onnx.ModelProto:
    """x[1,6] -> MatMul 4 -> Dropout -> Relu."""
    inits: dict[str, Any] = {"W": _w(_rng(18), 6, 4)}
    ins = ["h"]
    if ratio or training_mode:
        inits["ratio"] = np.array(0.5, np.float32)
        ins.append("ratio")
    if training_mode:
        inits["mode"] = np.array(False)
        ins.append("mode")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="MatMul_0"),
             helper.make_node("Dropout", ins, ["d"], name="Dropout_1"),
             helper.make_node("Relu", ["d"], ["y"], name="Relu_2")]
    return make_model(nodes, inits, [1, 6], opset=opset)


def identity_chain() -> onnx.ModelProto:
    """x[1,4] -> Identity -> Relu -> Identity -> Cast(float) -> Gemm 2 (the aliases emit no node)."""
    nodes = [helper.make_node("Identity", ["x"], ["i0"], name="Identity_0"),
             helper.make_node("Relu", ["i0"], ["r"], name="Relu_1"),
             helper.make_node("Identity", ["r"], ["i1"], name="Identity_2"),
             helper.make_node("Cast", ["i1"], ["c"], name="Cast_3", to=TensorProto.FLOAT),
             helper.make_node("Gemm", ["c", "W"], ["y"], name="Gemm_4", transB=1)]
    return make_model(nodes, {"W": _w(_rng(19), 2, 4)}, [1, 4])


def constant_weight() -> onnx.ModelProto:
    """Weights from Constant nodes (value tensor and value_floats): x[1,3] -> MatMul -> Add."""
    w = _w(_rng(20), 3, 2)
    nodes = [helper.make_node("Constant", [], ["W"], name="Constant_0", value=numpy_helper.from_array(w, "W")),
             helper.make_node("Constant", [], ["b"], name="Constant_1", value_floats=[0.5, -0.25]),
             helper.make_node("MatMul", ["x", "W"], ["h"], name="MatMul_2"),
             helper.make_node("Add", ["h", "b"], ["y"], name="Add_3")]
    return make_model(nodes, {}, [1, 3])


def softmax(axis: int, opset: int = 13, in_shape: Sequence[int] = (1, 2, 3)) -> onnx.ModelProto:
    return single("Softmax", in_shape, opset=opset, axis=axis)


def shape_chain_net() -> onnx.ModelProto:
    """x[1,2,3,4] -> Relu -> Reshape to [1, 2*3, 4] computed by Shape/Slice/Gather/Mul/Cast/Concat folding."""
    inits = {"i1": np.array(1, np.int64), "i2": np.array(2, np.int64), "ax": np.array([0], np.int64),
             "s0": np.array([0], np.int64), "s1": np.array([1], np.int64)}
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="Relu_0"),
        helper.make_node("Shape", ["r"], ["shape"], name="Shape_1"),
        helper.make_node("Slice", ["shape", "s0", "s1"], ["batch"], name="Slice_2"),
        helper.make_node("Gather", ["shape", "i1"], ["c"], name="Gather_3", axis=0),
        helper.make_node("Gather", ["shape", "i2"], ["h"], name="Gather_4", axis=0),
        helper.make_node("Mul", ["c", "h"], ["ch"], name="Mul_5"),
        helper.make_node("Unsqueeze", ["ch", "ax"], ["ch1"], name="Unsqueeze_6"),
        helper.make_node("Cast", ["ch1"], ["ch2"], name="Cast_7", to=TensorProto.INT64),
        helper.make_node("Shape", ["x"], ["last"], name="Shape_8", start=-1),
        helper.make_node("Concat", ["batch", "ch2", "last"], ["target"], name="Concat_9", axis=0),
        helper.make_node("Reshape", ["r", "target"], ["y"], name="Reshape_10"),
    ]
    return make_model(nodes, inits, [1, 2, 3, 4], opset=15)


def op_models() -> dict[str, Callable[[], onnx.ModelProto]]:
    """Every single-op fixture by name (the name says the op and its attributes)."""
    models: dict[str, Callable[[], onnx.ModelProto]] = {
        "gemm": lambda: gemm(),
        "gemm_transB0_alpha_beta": lambda: gemm(trans_b=0, alpha=0.5, beta=2.0),
        "gemm_row_bias": lambda: gemm(bias="row"),
        "gemm_scalar_bias": lambda: gemm(bias="scalar", beta=-1.5),
        "gemm_no_bias": lambda: gemm(bias=None),
        "matmul_2d": lambda: matmul((1, 5), (5, 3)),
        "matmul_3d": lambda: matmul((1, 3, 4), (4, 5)),
        "matmul_vector": lambda: matmul((1, 3, 4), (4,)),
        "matmul_weight_3d": lambda: matmul((1, 3, 4), (1, 4, 2)),
        "matmul_const_left": matmul_const_left,
        "conv2d": lambda: conv(),
        "conv2d_stride_pads": lambda: conv(strides=[2, 1], pads=[1, 0, 2, 1]),
        "conv2d_dilation_no_bias": lambda: conv(bias=False, dilations=[2, 1], pads=[1, 1, 1, 1]),
        "conv2d_groups": lambda: conv(in_shape=(1, 4, 4, 4), out_channels=6, group=2, kernel=(2, 3)),
        "conv2d_depthwise": lambda: conv(in_shape=(1, 3, 4, 4), out_channels=3, group=3),
        "conv2d_same_upper": lambda: conv(strides=[2, 2], auto_pad="SAME_UPPER", kernel=(2, 2)),
        "conv2d_same_lower": lambda: conv(strides=[2, 2], auto_pad="SAME_LOWER", kernel=(2, 2)),
        "conv2d_valid": lambda: conv(auto_pad="VALID", kernel_shape=[3, 3]),
        "conv1d": lambda: conv(in_shape=(1, 2, 8), kernel=(3,)),
        "conv1d_stride_pads_dilation": lambda: conv(in_shape=(1, 2, 8), kernel=(3,), strides=[2], pads=[2, 1],
                                                    dilations=[2]),
        "conv1d_groups_same": lambda: conv(in_shape=(1, 4, 7), out_channels=2, kernel=(4,), group=2,
                                           auto_pad="SAME_UPPER"),
        "conv_transpose2d": lambda: conv_transpose(),
        "conv_transpose2d_stride_pads": lambda: conv_transpose(strides=[2, 2], pads=[1, 0, 1, 1]),
        "conv_transpose2d_output_padding": lambda: conv_transpose(strides=[2, 3], output_padding=[1, 2],
                                                                  bias=False),
        "conv_transpose2d_groups_dilation": lambda: conv_transpose(in_shape=(1, 4, 3, 3), out_channels=6, group=2,
                                                                   dilations=[2, 1], kernel=(2, 2)),
        "conv_transpose2d_output_shape": lambda: conv_transpose(strides=[2, 2], output_shape=[6, 5]),
        "conv_transpose2d_same_upper": lambda: conv_transpose(strides=[2, 2], auto_pad="SAME_UPPER"),
        "conv_transpose2d_same_lower": lambda: conv_transpose(strides=[2, 2], auto_pad="SAME_LOWER",
                                                              kernel=(2, 2)),
        "conv_transpose1d": lambda: conv_transpose(in_shape=(1, 2, 5), kernel=(3,), strides=[2], pads=[1, 0]),
        "batchnorm_4d": lambda: batchnorm(),
        "batchnorm_2d": lambda: batchnorm((1, 5)),
        "batchnorm_3d": lambda: batchnorm((1, 3, 4)),
        "pad_input": lambda: pad([0, 1, 2, 0, 0, 0, 1, 3], value=0.5),
        "pad_zero": lambda: pad([0] * 8),
        "pad_attr_opset10": lambda: pad([0, 0, 1, 1, 0, 0, 1, 1], value=-1.0, opset=10),
        "pad_axes_opset18": lambda: pad([1, 2, 0, 1], opset=18, axes=[-1, 2]),
        "add_const_full": lambda: binary("Add", (1, 2, 3, 3)),
        "add_const_channel": lambda: binary("Add", (2, 1, 1)),
        "add_const_scalar_first": lambda: binary("Add", (), const_first=True),
        "sub_const": lambda: binary("Sub", (3,)),
        "sub_const_first": lambda: binary("Sub", (1, 1, 3, 1), const_first=True),
        "mul_const": lambda: binary("Mul", (2, 3, 3)),
        "mul_const_first": lambda: binary("Mul", (1,), const_first=True),
        "div_const": lambda: binary("Div", (2, 1, 3)),
        "add_branches": lambda: branches("Add"),
        "sub_branches": lambda: branches("Sub"),
        "relu": lambda: single("Relu", [1, 2, 3]),
        "leaky_relu": lambda: single("LeakyRelu", [1, 2, 3], alpha=0.2),
        "leaky_relu_default": lambda: single("LeakyRelu", [1, 6]),
        "sigmoid": lambda: single("Sigmoid", [1, 2, 3]),
        "tanh": lambda: single("Tanh", [1, 2, 3]),
        "maxpool": lambda: pool("MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
        "maxpool_pads_stride": lambda: pool("MaxPool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        "maxpool_dilation_storage_order": lambda: pool("MaxPool", kernel_shape=[2, 2], dilations=[2, 2],
                                                       storage_order=1),
        "maxpool_ceil_noop": lambda: pool("MaxPool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        "maxpool_same_upper": lambda: pool("MaxPool", in_shape=(1, 2, 5, 5), kernel_shape=[2, 2], strides=[2, 2],
                                           auto_pad="SAME_UPPER"),
        "maxpool1d": lambda: pool("MaxPool", in_shape=(1, 2, 9), kernel_shape=[3], strides=[2], pads=[1, 0]),
        "avgpool": lambda: pool("AveragePool", kernel_shape=[2, 2], strides=[2, 2]),
        "avgpool_pads_exclude": lambda: pool("AveragePool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 0, 1]),
        "avgpool_pads_include": lambda: pool("AveragePool", kernel_shape=[3, 3], strides=[1, 2], pads=[1, 0, 1, 2],
                                             count_include_pad=1),
        "avgpool_ceil_noop": lambda: pool("AveragePool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        "avgpool_same_lower": lambda: pool("AveragePool", in_shape=(1, 2, 5, 5), kernel_shape=[3, 3],
                                           strides=[2, 2], auto_pad="SAME_LOWER"),
        "avgpool1d": lambda: pool("AveragePool", in_shape=(1, 2, 9), kernel_shape=[3], strides=[2], pads=[1, 1]),
        "global_avgpool": lambda: single("GlobalAveragePool", [1, 3, 4, 5]),
        "global_avgpool1d": lambda: single("GlobalAveragePool", [1, 3, 6]),
        "global_maxpool": lambda: single("GlobalMaxPool", [1, 3, 4, 4]),
        "flatten": lambda: flatten(1, (1, 2, 3, 4)),
        "flatten_axis2": lambda: flatten(2, (1, 1, 3, 4)),
        "flatten_negative_axis": lambda: flatten(-3, (1, 2, 3, 4)),
        "reshape_minus1": lambda: reshape([1, -1]),
        "reshape_zero_copy": lambda: reshape([0, 0, -1]),
        "reshape_4d": lambda: reshape([1, 3, 2, 4]),
        "transpose": lambda: transpose([0, 2, 3, 1]),
        "transpose_2": lambda: transpose([0, 1, 3, 2]),
        "concat_channels": lambda: concat(1),
        "concat_last_negative": lambda: concat(-1),
        "slice_one_axis": lambda: slice_([1], [3], [2]),
        "slice_negative_huge": lambda: slice_([-3, 1], [INT64_MAX, -1], [3, 1]),
        "slice_steps": lambda: slice_([0, 1], [5, 4], [3, 2], [2, 3]),
        "slice_several_axes": lambda: slice_([1, 0, 1], [3, 4, 4], [1, 2, 3], [1, 2, 2]),
        "slice_batch_noop": lambda: slice_([0, 1], [INT64_MAX, 3], [0, 1]),
        "slice_attr_opset9": lambda: slice_([1, -2], [INT64_MAX, 5], [1, 3], opset=9),
        "squeeze_input": lambda: squeeze("Squeeze", [2], (1, 3, 1, 4)),
        "squeeze_attr_opset11": lambda: squeeze("Squeeze", [-1, 2], (1, 3, 1, 1), opset=11),
        "unsqueeze_input": lambda: squeeze("Unsqueeze", [1, -1], (1, 3, 4)),
        "unsqueeze_attr_opset11": lambda: squeeze("Unsqueeze", [2], (1, 3, 4), opset=11),
        "identity_cast_chain": identity_chain,
        "dropout": lambda: dropout(),
        "dropout_opset10": lambda: dropout(opset=10),
        "dropout_ratio_training_false": lambda: dropout(opset=13, ratio=True, training_mode=True),
        "constant_nodes": constant_weight,
        "shape_chain": shape_chain_net,
        "softmax_last_axis": lambda: softmax(-1),
        "softmax_axis1": lambda: softmax(1),
        "softmax_opset11_coerced": lambda: softmax(1, opset=11, in_shape=(1, 4, 1)),
    }
    return models
