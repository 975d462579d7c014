"""Hostile and broken model files: each is one line naming the file and the place, exit 2.

One test per class of bad input (issue 23).  The models are built here with onnx.helper;
every refusal must be a :class:`~verify.errors.VerifyError` (never a traceback, a hang or
a runaway allocation) whose message is one line naming the file and, where there is one,
the node or tensor.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from tests import nets
from tests.conftest import ROOT
from verify import cli
from verify.errors import InputFileError, ModelError, UnsupportedOperatorError, VerifyError
from verify.model.network import load_model
from verify.model.onnx_file import MAX_MODEL_BYTES_ENV

SPEC = str(ROOT / "specs" / "tiny_robust_class0.vnnlib")
WIDE_SPEC = str(ROOT / "specs" / "tiny_robust_class0_wide.vnnlib")
CLASSIFIER = ROOT / "examples" / "tiny" / "classifier.onnx"


# ---------------------------------------------------------------------- building models
def _f32(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _save(path: Path, nodes: list, inits: list, in_shape=(1, 3), out_shape=(1, 2), in_type=TensorProto.FLOAT,
          out_type=None, inputs=None, outputs=None, opset: int = 13) -> Path:
    """Save a graph without checking it (the point is what the loader makes of it)."""
    inputs = inputs if inputs is not None else [helper.make_tensor_value_info("x", in_type, list(in_shape))]
    outputs = outputs if outputs is not None else [
        helper.make_tensor_value_info("y", out_type or in_type, list(out_shape) if out_shape else None)]
    graph = helper.make_graph(nodes, "hostile", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def _matmul(path: Path, weight: onnx.TensorProto, name: str = "fc") -> Path:
    return _save(path, [helper.make_node("MatMul", ["x", weight.name], ["y"], name=name)], [weight])


def _refused(path: Path, kind: type[VerifyError] = ModelError, *needles: str) -> str:
    """Loading ``path`` raises ``kind`` with one line naming the file and each needle."""
    with pytest.raises(VerifyError) as info:
        load_model(path)
    message = str(info.value)
    assert isinstance(info.value, kind), f"{type(info.value).__name__}: {message}"
    assert "\n" not in message and "\r" not in message, message
    assert str(path) in message or path.name in message, message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


def _cli(capsys: pytest.CaptureFixture, model: Path | str, spec: str = SPEC) -> tuple[int, list[str]]:
    code = cli.main(["check", str(model), spec, "--quiet"])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


# ---------------------------------------------------------------------- shapes between inputs
def _gemm_bias(p: Path) -> tuple[Path, str]:
    return _save(p, [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)],
                 [_f32("w", np.ones((2, 3))), _f32("b", np.ones(5))]), "'fc'"


def _gemm_inner(p: Path) -> tuple[Path, str]:
    return _save(p, [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)],
                 [_f32("w", np.ones((2, 4)))]), "'fc'"


def _matmul_inner(p: Path) -> tuple[Path, str]:
    return _matmul(p, _f32("w", np.ones((4, 2))), "mm"), "'mm'"


def _add_const(p: Path) -> tuple[Path, str]:
    return _save(p, [helper.make_node("Add", ["x", "c"], ["y"], name="plus")], [_f32("c", np.ones(4))],
                 out_shape=(1, 3)), "'plus'"


def _add_vars(p: Path) -> tuple[Path, str]:
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Add", ["x", "h"], ["y"], name="residual")]
    return _save(p, nodes, [_f32("w", np.ones((3, 2)))]), "'residual'"


def _conv_channels(p: Path) -> tuple[Path, str]:
    return _save(p, [helper.make_node("Conv", ["x", "k"], ["y"], name="conv")], [_f32("k", np.ones((2, 3, 1, 1)))],
                 in_shape=(1, 2, 4, 4), out_shape=(1, 2, 4, 4)), "'conv'"


def _conv_bias(p: Path) -> tuple[Path, str]:
    return _save(p, [helper.make_node("Conv", ["x", "k", "b"], ["y"], name="conv")],
                 [_f32("k", np.ones((2, 1, 1, 1))), _f32("b", np.ones(3))],
                 in_shape=(1, 1, 4, 4), out_shape=(1, 2, 4, 4)), "'conv'"


def _conv_kernel_too_big(p: Path) -> tuple[Path, str]:
    return _save(p, [helper.make_node("Conv", ["x", "k"], ["y"], name="conv")], [_f32("k", np.ones((1, 1, 5, 5)))],
                 in_shape=(1, 1, 2, 2), out_shape=(1, 1, 1, 1)), "'conv'"


def _batchnorm(p: Path) -> tuple[Path, str]:
    inits = [_f32("s", np.ones(3)), _f32("b", np.zeros(3)), _f32("m", np.zeros(2)), _f32("v", np.ones(3))]
    return _save(p, [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn")], inits,
                 in_shape=(1, 3, 2, 2), out_shape=(1, 3, 2, 2)), "'bn'"


def _reshape(p: Path) -> tuple[Path, str]:
    shape = numpy_helper.from_array(np.array([1, 4], dtype=np.int64), "shape")
    return _save(p, [helper.make_node("Reshape", ["x", "shape"], ["y"], name="rs")], [shape],
                 out_shape=(1, 4)), "'rs'"


def _reshape_float_target(p: Path) -> tuple[Path, str]:
    return _save(p, [helper.make_node("Reshape", ["x", "shape"], ["y"], name="rs")], [_f32("shape", [1, 3])],
                 out_shape=(1, 3)), "'rs'"


def _flatten_axis(p: Path) -> tuple[Path, str]:
    return _save(p, [helper.make_node("Flatten", ["x"], ["y"], name="flat", axis=7)], [], out_shape=(1, 3)), "'flat'"


def _pool_pads(p: Path) -> tuple[Path, str]:
    node = helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2], pads=[3, 3, 3, 3])
    return _save(p, [node], [], in_shape=(1, 1, 4, 4), out_shape=(1, 1, 9, 9)), "'pool'"


def _declared_output(p: Path) -> tuple[Path, str]:
    return _matmul(p, _f32("w", np.ones((3, 5))), "fc"), "'y'"


SHAPE_MISMATCHES = {
    "gemm-bias-length": _gemm_bias, "gemm-inner-dimension": _gemm_inner, "matmul-inner-dimension": _matmul_inner,
    "add-constant-broadcast": _add_const, "add-two-variables": _add_vars, "conv-channels": _conv_channels,
    "conv-bias-length": _conv_bias, "conv-kernel-larger-than-input": _conv_kernel_too_big,
    "batchnorm-parameter-length": _batchnorm, "reshape-element-count": _reshape,
    "reshape-float-target": _reshape_float_target, "flatten-axis": _flatten_axis, "pool-pads": _pool_pads,
    "declared-output-shape": _declared_output,
}


@pytest.mark.parametrize("case", list(SHAPE_MISMATCHES), ids=list(SHAPE_MISMATCHES))
def test_shape_mismatch_between_inputs_names_the_node(tmp_path: Path, case: str) -> None:
    path, place = SHAPE_MISMATCHES[case](tmp_path / f"{case}.onnx")
    assert _refused(path, ModelError, place)


def test_gemm_bias_mismatch_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path, _ = _gemm_bias(tmp_path / "bias.onnx")
    code, lines = _cli(capsys, path)
    assert code == 2 and len(lines) == 1, lines
    assert "'fc'" in lines[0] and "bias C" in lines[0] and str(path) in lines[0]


# ---------------------------------------------------------------------- tensors
def _unknown_type(t: onnx.TensorProto) -> None:
    t.data_type = 999


def _string_type(t: onnx.TensorProto) -> None:
    t.data_type = TensorProto.STRING


def _bfloat16_type(t: onnx.TensorProto) -> None:
    t.data_type = TensorProto.BFLOAT16


def _short_raw(t: onnx.TensorProto) -> None:
    t.raw_data = t.raw_data[:-3]


def _long_raw(t: onnx.TensorProto) -> None:
    t.raw_data = t.raw_data + b"\0" * 8


def _typed_count(t: onnx.TensorProto) -> None:
    t.ClearField("raw_data")
    t.float_data.extend([1.0] * 5)


def _no_data(t: onnx.TensorProto) -> None:
    t.ClearField("raw_data")


def _negative_dim(t: onnx.TensorProto) -> None:
    t.dims[0] = -3


def _huge_dims(t: onnx.TensorProto) -> None:
    t.dims[:] = [99999999999, 99999999999]


TENSOR_DEFECTS = {
    "unknown-data-type": (_unknown_type, "999"), "string-data-type": (_string_type, "string"),
    "bfloat16-data-type": (_bfloat16_type, "bfloat16"), "raw-data-too-short": (_short_raw, "bytes of raw data"),
    "raw-data-too-long": (_long_raw, "bytes of raw data"), "typed-data-count": (_typed_count, "5 values"),
    "no-data": (_no_data, "0 values"), "negative-dimension": (_negative_dim, "negative"),
    "huge-dimensions": (_huge_dims, "bytes of raw data"),
}


@pytest.mark.parametrize("case", list(TENSOR_DEFECTS), ids=list(TENSOR_DEFECTS))
def test_broken_tensor_encoding_names_the_tensor(tmp_path: Path, case: str) -> None:
    mutate, needle = TENSOR_DEFECTS[case]
    weight = _f32("w", np.ones((3, 2)))
    mutate(weight)
    assert _refused(_matmul(tmp_path / f"{case}.onnx", weight), ModelError, "'w'", needle)


def test_broken_constant_node_tensor_names_the_node(tmp_path: Path) -> None:
    value = _f32("v", np.ones((3, 2)))
    value.data_type = 12345
    nodes = [helper.make_node("Constant", [], ["w"], name="const_w", value=value),
             helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")]
    assert _refused(_save(tmp_path / "const.onnx", nodes, []), ModelError, "'const_w'", "12345")


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.float16, np.float64])
def test_weights_of_the_wrong_type_are_refused(tmp_path: Path, dtype: type) -> None:
    weight = numpy_helper.from_array(np.ones((3, 2), dtype=dtype), "w")
    assert _refused(_matmul(tmp_path / "typed.onnx", weight), ModelError, "'fc'", "'w'", np.dtype(dtype).name)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_name_the_tensor(tmp_path: Path, bad: float) -> None:
    w = np.ones((3, 2))
    w[2, 1] = bad
    assert _refused(_matmul(tmp_path / "nan.onnx", _f32("w", w)), ModelError, "'w'", "NaN or infinite")


def test_non_finite_constant_attribute_and_alpha(tmp_path: Path) -> None:
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1, alpha=float("inf"))]
    assert _refused(_save(tmp_path / "alpha.onnx", nodes, [_f32("w", np.ones((2, 3)))]), ModelError, "'fc'", "alpha")
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1, alpha=1e30)]
    assert _refused(_save(tmp_path / "alpha2.onnx", nodes, [_f32("w", np.full((2, 3), 1e30))]), ModelError, "'fc'",
             "infinite")


def _external(tmp_path: Path, location: str, length: int | None = None, offset: int = 0) -> Path:
    weight = _f32("w", np.arange(6).reshape(3, 2))
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", None if length is None
                                                                          else str(length))):
        if value is not None:
            entry = weight.external_data.add()
            entry.key, entry.value = key, value
    return _matmul(tmp_path / "external.onnx", weight)


def test_external_data_is_validated_and_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = np.arange(6, dtype=np.float32).reshape(3, 2).tobytes()
    (tmp_path / "weights.bin").write_bytes(b"\0" * 8 + raw)
    model = load_model(_external(tmp_path, "weights.bin", offset=8))
    x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    np.testing.assert_allclose(model.evaluate(x), x @ np.arange(6).reshape(3, 2))
    np.testing.assert_allclose(model.net(torch.from_numpy(x)).detach().numpy(), x @ np.arange(6).reshape(3, 2))
    assert _refused(_external(tmp_path, "missing.bin"), ModelError, "'w'", "missing.bin", "not found")
    (tmp_path / "short.bin").write_bytes(raw[:10])
    assert _refused(_external(tmp_path, "short.bin"), ModelError, "'w'", "10 bytes")
    assert _refused(_external(tmp_path, "weights.bin", length=7), ModelError, "'w'", "24 bytes")
    assert _refused(_external(tmp_path, "../../etc/passwd"), ModelError, "'w'", "outside the model's folder")
    assert _refused(_external(tmp_path, "/etc/passwd"), ModelError, "'w'", "outside the model's folder")
    (tmp_path / "sub").mkdir()
    assert _refused(_external(tmp_path, "sub"), ModelError, "'w'", "directory")
    os.mkfifo(tmp_path / "pipe.bin")
    assert _refused(_external(tmp_path, "pipe.bin"), ModelError, "'w'", "FIFO")
    path = _external(tmp_path, "weights.bin", offset=8)
    monkeypatch.setenv(MAX_MODEL_BYTES_ENV, str(path.stat().st_size + 10))  # the file fits, its data does not
    assert _refused(path, InputFileError, MAX_MODEL_BYTES_ENV, "external data")


# ---------------------------------------------------------------------- input types
def _double_classifier(path: Path, perturb: bool = False) -> Path:
    model = onnx.load(str(CLASSIFIER))
    for i, t in enumerate(model.graph.initializer):
        value = numpy_helper.to_array(t).astype(np.float64)
        if perturb and i == 0:
            value = value + 1e-12  # no longer float32 values
        model.graph.initializer[i].CopyFrom(numpy_helper.from_array(value, t.name))
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    onnx.save(model, str(path))
    return path


def test_double_model_replays_its_counterexample_in_double(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _double_classifier(tmp_path / "double.onnx")
    model = load_model(path)
    assert (model.input_dtype, model.output_dtype) == ("float64", "float64")
    x = np.random.default_rng(0).uniform(0, 1, (5, 4)).astype(np.float32)
    y = model.evaluate(x)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, load_model(CLASSIFIER).evaluate(x), rtol=1e-5, atol=1e-5)
    code, lines = _cli(capsys, path, WIDE_SPEC)
    assert code == 1, "\n".join(lines)


def test_double_model_with_non_float32_weights_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _double_classifier(tmp_path / "double.onnx", perturb=True)
    assert _refused(path, ModelError, "'fc0'", "'fc0.weight'", "float32")
    code, lines = _cli(capsys, path)
    assert code == 2 and len(lines) == 1 and "float32" in lines[0], lines


@pytest.mark.parametrize("elem", [TensorProto.INT32, TensorProto.INT64, TensorProto.FLOAT16, TensorProto.BOOL,
                                  TensorProto.STRING, 999])
def test_unsupported_input_types_are_refused_up_front(tmp_path: Path, elem: int,
                                                      capsys: pytest.CaptureFixture) -> None:
    path = _save(tmp_path / "typed_input.onnx", [helper.make_node("Relu", ["x"], ["y"], name="r")], [],
                 in_shape=(1, 4), out_shape=(1, 4), in_type=elem)
    assert _refused(path, ModelError, "input 'x'", "element type")
    code, lines = _cli(capsys, path)
    assert code == 2 and len(lines) == 1 and "element type" in lines[0], lines


def test_symbolic_batch_that_mixes_rows_is_evaluated_one_input_at_a_time(tmp_path: Path) -> None:
    # a Reshape to [1, -1] mixes the rows of a batch: the model's meaning is at batch size 1
    nodes = [helper.make_node("Constant", [], ["shape"], name="shape",
                              value=helper.make_tensor("v", TensorProto.INT64, [2], [1, -1])),
             helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
             helper.make_node("Mul", ["r", "scale"], ["y"], name="scale")]
    path = _save(tmp_path / "mixing.onnx", nodes, [_f32("scale", [1.0, 2.0, 3.0])], in_shape=("N", 3),
                 out_shape=(1, 3))
    model = load_model(path)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(model.evaluate(x), x * [1.0, 2.0, 3.0])
    np.testing.assert_allclose(model.net(torch.from_numpy(x)).numpy(), x * [1.0, 2.0, 3.0])


# ---------------------------------------------------------------------- corrupted files
def _truncated(p: Path) -> Path:
    data = CLASSIFIER.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def _random_bytes(p: Path) -> Path:
    p.write_bytes(np.random.default_rng(7).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return p


def _empty_file(p: Path) -> Path:
    p.write_bytes(b"")
    return p


def _tensor_not_model(p: Path) -> Path:
    p.write_bytes(_f32("w", np.ones((3, 3))).SerializeToString())
    return p


def _graph_not_model(p: Path) -> Path:
    p.write_bytes(onnx.load(str(CLASSIFIER)).graph.SerializeToString())
    return p


def _text_file(p: Path) -> Path:
    p.write_text("(declare-const X_0 Real)\n")
    return p


def _empty_graph(p: Path) -> Path:
    return _save(p, [], [])


def _no_inputs(p: Path) -> Path:
    nodes = [helper.make_node("Constant", [], ["y"], name="c", value=_f32("v", [[1.0, 2.0]]))]
    return _save(p, nodes, [], inputs=[])


def _no_outputs(p: Path) -> Path:
    return _save(p, [helper.make_node("Relu", ["x"], ["y"], name="r")], [], outputs=[])


def _several_inputs(p: Path) -> Path:
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3]) for n in ("x", "z")]
    return _save(p, [helper.make_node("Add", ["x", "z"], ["y"], name="sum")], [], inputs=inputs, out_shape=(1, 3))


def _several_outputs(p: Path) -> Path:
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3]) for n in ("y", "z")]
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r"), helper.make_node("Relu", ["x"], ["z"], name="r2")]
    return _save(p, nodes, [], outputs=outputs)


def _symbolic_dim(p: Path) -> Path:
    return _save(p, [helper.make_node("Relu", ["x"], ["y"], name="r")], [], in_shape=(1, "features"),
                 out_shape=(1, "features"))


def _zero_dim(p: Path) -> Path:
    return _save(p, [helper.make_node("Relu", ["x"], ["y"], name="r")], [], in_shape=(1, 0), out_shape=(1, 0))


def _huge_dim(p: Path) -> Path:
    return _save(p, [helper.make_node("Relu", ["x"], ["y"], name="r")], [], in_shape=(1, 99999999999),
                 out_shape=(1, 99999999999))


def _huge_total(p: Path) -> Path:
    return _save(p, [helper.make_node("Relu", ["x"], ["y"], name="r")], [], in_shape=(1, 100000, 100000),
                 out_shape=(1, 100000, 100000))


def _batch_of_two(p: Path) -> Path:
    return _save(p, [helper.make_node("Relu", ["x"], ["y"], name="r")], [], in_shape=(2, 3), out_shape=(2, 3))


def _no_shape(p: Path) -> Path:
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)]
    return _save(p, [helper.make_node("Relu", ["x"], ["y"], name="r")], [], inputs=inputs)


def _cycle(p: Path) -> Path:
    nodes = [helper.make_node("Add", ["x", "z"], ["h"], name="a"), helper.make_node("Relu", ["h"], ["z"], name="r"),
             helper.make_node("Identity", ["z"], ["y"], name="out")]
    return _save(p, nodes, [], out_shape=(1, 3))


def _missing_value(p: Path) -> Path:
    return _save(p, [helper.make_node("MatMul", ["x", "nowhere"], ["y"], name="fc")], [])


def _defined_twice(p: Path) -> Path:
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r1"), helper.make_node("Relu", ["x"], ["y"], name="r2")]
    return _save(p, nodes, [], out_shape=(1, 3))


def _duplicate_node_names(p: Path) -> Path:
    nodes = [helper.make_node("Relu", ["x"], ["h"], name="same"), helper.make_node("Relu", ["h"], ["y"], name="same")]
    return _save(p, nodes, [], out_shape=(1, 3))


def _output_not_computed(p: Path) -> Path:
    return _save(p, [helper.make_node("Relu", ["x"], ["h"], name="r")], [], out_shape=(1, 3))


def _old_opset(p: Path) -> Path:
    return _save(p, [helper.make_node("Relu", ["x"], ["y"], name="r")], [], out_shape=(1, 3), opset=1)


def _future_opset(p: Path) -> Path:
    return _save(p, [helper.make_node("Relu", ["x"], ["y"], name="r")], [], out_shape=(1, 3), opset=999)


def _custom_domain(p: Path) -> Path:
    node = helper.make_node("Relu", ["x"], ["y"], name="r", domain="com.example")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.example", 1)])
    model.ir_version = 8
    p.write_bytes(model.SerializeToString())
    return p


def _old_reshape(p: Path) -> Path:  # Reshape-1 took the shape as an attribute: one input only
    return _save(p, [helper.make_node("Reshape", ["x"], ["y"], name="rs")], [], out_shape=(1, 3))


CORRUPT = {
    "truncated": (_truncated, "ONNX"), "random-bytes": (_random_bytes, ""), "empty-file": (_empty_file, "empty"),
    "tensor-not-model": (_tensor_not_model, "not an ONNX model"), "graph-not-model": (_graph_not_model, "ONNX"),
    "text-file": (_text_file, "ONNX"), "empty-graph": (_empty_graph, "no nodes"),
    "no-inputs": (_no_inputs, "found 0"), "no-outputs": (_no_outputs, "found 0"),
    "several-inputs": (_several_inputs, "found 2"), "several-outputs": (_several_outputs, "found 2"),
    "symbolic-dimension": (_symbolic_dim, "'features'"), "zero-sized-dimension": (_zero_dim, "zero-sized"),
    "huge-dimension": (_huge_dim, "99999999999"), "huge-element-count": (_huge_total, "10000000000"),
    "batch-of-two": (_batch_of_two, "batch dimension 2"), "no-shape": (_no_shape, "no static shape"),
    "cycle": (_cycle, "cycle"), "missing-value": (_missing_value, "'nowhere'"),
    "value-defined-twice": (_defined_twice, "'r2'"), "output-not-computed": (_output_not_computed, "'y'"),
    "duplicate-node-names": (_duplicate_node_names, "'same'"),
    "opset-too-old": (_old_opset, "opset is 1"), "opset-too-new": (_future_opset, "opset is 999"),
    "custom-domain": (_custom_domain, "'r'"), "missing-node-input": (_old_reshape, "rs"),
}


@pytest.mark.parametrize("case", list(CORRUPT), ids=list(CORRUPT))
def test_corrupt_or_malformed_file_is_one_line(tmp_path: Path, case: str) -> None:
    build, needle = CORRUPT[case]
    assert _refused(build(tmp_path / f"{case}.onnx"), ModelError, *([needle] if needle else []))


@pytest.mark.parametrize("case", ["truncated", "random-bytes", "cycle", "huge-dimension", "symbolic-dimension"])
def test_corrupt_file_through_the_cli(tmp_path: Path, case: str, capsys: pytest.CaptureFixture) -> None:
    path = CORRUPT[case][0](tmp_path / f"{case}.onnx")
    code, lines = _cli(capsys, path)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("verify: error: ") and str(path) in lines[0], lines


# ---------------------------------------------------------------------- attributes and sizes
def _conv(p: Path, **attrs) -> Path:
    return _save(p, [helper.make_node("Conv", ["x", "k"], ["y"], name="conv", **attrs)],
                 [_f32("k", np.ones((1, 1, 1, 1)))], in_shape=(1, 1, 4, 4), out_shape=(1, 1, 4, 4))


BAD_ATTRIBUTES = {
    "huge-pads": lambda p: _conv(p, pads=[10**6, 10**6, 10**6, 10**6]),
    "negative-pads": lambda p: _conv(p, pads=[-1, 0, 0, 0]),
    "zero-stride": lambda p: _conv(p, strides=[0, 1]),
    "short-strides": lambda p: _conv(p, strides=[1]),
    "bad-group": lambda p: _conv(p, group=0),
    "kernel-shape-disagrees": lambda p: _conv(p, kernel_shape=[3, 3]),
    "auto-pad-unknown": lambda p: _conv(p, auto_pad="SIDEWAYS"),
    "huge-pool-kernel": lambda p: _save(p, [helper.make_node("MaxPool", ["x"], ["y"], name="pool",
                                                             kernel_shape=[10**9, 10**9])], [],
                                        in_shape=(1, 1, 4, 4), out_shape=(1, 1, 4, 4)),
    "flatten-axis-attribute-type": lambda p: _save(p, [helper.make_node("Flatten", ["x"], ["y"], name="flat",
                                                                        axis=1.5)], [], out_shape=(1, 3)),
}


@pytest.mark.parametrize("case", list(BAD_ATTRIBUTES), ids=list(BAD_ATTRIBUTES))
def test_bad_attributes_are_refused_before_use(tmp_path: Path, case: str) -> None:
    path = BAD_ATTRIBUTES[case](tmp_path / f"{case}.onnx")
    node = "pool" if "pool" in case else "flat" if "flatten" in case else "conv"
    assert _refused(path, ModelError, node)


def test_blown_up_activations_are_refused_without_allocating(tmp_path: Path) -> None:
    # small files whose constant folds would make 10**10 elements
    inits = [_f32("a", np.ones((100000, 1))), _f32("b", np.ones((1, 100000)))]
    for op, needle in (("MatMul", "multiply-adds"), ("Add", "elements")):
        nodes = [helper.make_node(op, ["a", "b"], ["w"], name="outer"),
                 helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")]
        assert _refused(_save(tmp_path / f"{op}.onnx", nodes, inits), ModelError, "'outer'", needle)
    # and a convolution whose output would
    nodes = [helper.make_node("Conv", ["x", "k"], ["y"], name="wide")]
    inits = [_f32("k", np.ones((100000, 1, 1, 1)))]
    wide = _save(tmp_path / "conv.onnx", nodes, inits, in_shape=(1, 1, 100, 100), out_shape=(1, 100000, 100, 100))
    assert _refused(wide, ModelError, "'wide'", "elements")


# ---------------------------------------------------------------------- the file itself
def test_model_larger_than_the_limit_is_refused_with_the_override(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "classifier.onnx"
    path.write_bytes(CLASSIFIER.read_bytes())
    monkeypatch.setenv(MAX_MODEL_BYTES_ENV, "1000")
    assert _refused(path, InputFileError, MAX_MODEL_BYTES_ENV, "limit of 1000")
    code, lines = _cli(capsys, path)
    assert code == 2 and len(lines) == 1 and MAX_MODEL_BYTES_ENV in lines[0], lines
    monkeypatch.setenv(MAX_MODEL_BYTES_ENV, "lots")
    with pytest.raises(InputFileError, match=MAX_MODEL_BYTES_ENV):
        load_model(path)
    monkeypatch.setenv(MAX_MODEL_BYTES_ENV, "100000")
    assert load_model(path).n_outputs == 3


def test_fifo_is_refused_without_blocking(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(_cli(capsys, fifo)), daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "verify check blocked on a FIFO"
    code, lines = result[0]  # type: ignore[misc]
    assert code == 2 and len(lines) == 1 and "FIFO" in lines[0], lines
    assert _refused(fifo, InputFileError, "FIFO")


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
def test_device_is_refused(device: str) -> None:
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    assert _refused(Path(device), InputFileError, "device")


def test_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "model.onnx"
    folder.mkdir()
    assert _refused(folder, InputFileError, "directory")
    code, lines = _cli(capsys, folder)
    assert code == 2 and len(lines) == 1 and "directory" in lines[0], lines


UNUSABLE_PATHS = {
    "5000-characters": ("a" * 5000 + ".onnx", "too long"),
    "300-character-component": ("b" * 300 + ".onnx", "too long"),
    "300-character-folder": ("c" * 300 + "/m.onnx", "too long"),
    "nul-byte": ("bad\0name.onnx", "NUL"),
}


@pytest.mark.parametrize("case", list(UNUSABLE_PATHS), ids=list(UNUSABLE_PATHS))
def test_unusable_paths_give_one_line(tmp_path: Path, case: str, capsys: pytest.CaptureFixture) -> None:
    path, needle = UNUSABLE_PATHS[case]
    full = str(tmp_path / path)
    with pytest.raises(InputFileError) as info:
        load_model(full)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400 and needle in message, message
    code, lines = _cli(capsys, full)
    assert code == 2 and len(lines) == 1, lines


def test_other_unreadable_paths(tmp_path: Path) -> None:
    plain = tmp_path / "plain.onnx"
    plain.write_bytes(CLASSIFIER.read_bytes())
    assert _refused(plain / "inner.onnx", InputFileError, "not found")
    loop = tmp_path / "loop.onnx"
    loop.symlink_to(loop)
    assert _refused(loop, InputFileError)
    if os.geteuid() != 0:
        locked = tmp_path / "locked.onnx"
        locked.write_bytes(CLASSIFIER.read_bytes())
        locked.chmod(0)
        assert _refused(locked, InputFileError, "not readable")


# ---------------------------------------------------------------------- names
@pytest.mark.parametrize("name", ["forward", "keys", "training", "", "a.b.c", "x" * 2000, "two\nlines"])
def test_awkward_node_names_load_or_give_one_line(tmp_path: Path, name: str) -> None:
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name=name),
             helper.make_node("Relu", ["h"], ["y"], name=name + "_relu")]
    path = _save(tmp_path / "named.onnx", nodes, [_f32("w", np.ones((3, 2)))])
    model = load_model(path)
    x = np.ones((2, 3), dtype=np.float32)
    np.testing.assert_allclose(model.net(torch.from_numpy(x)).detach().numpy(), model.evaluate(x))
    bad = _save(tmp_path / "bad.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"], name=name)],
                [_f32("w", np.ones((4, 2)))])
    message = _refused(bad, ModelError)
    assert len(message) < 600, message


def test_unsupported_operator_names_file_and_node(tmp_path: Path) -> None:
    path = nets.save([helper.make_node("Hardmax", ["x"], ["y"], name="hard")], {}, [1, 3], [1, 3],
                     tmp_path / "hardmax.onnx")
    assert _refused(path, UnsupportedOperatorError, "'Hardmax'", "'hard'")
