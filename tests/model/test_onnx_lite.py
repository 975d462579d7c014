"""verify.model.onnx_lite: onnx's protobuf classes and checker without ``import onnx``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from verify.model import onnx_lite
from verify.model.onnx_file import TENSOR_TYPES


@pytest.mark.parametrize("data_type", sorted(TENSOR_TYPES))
@pytest.mark.parametrize("raw", [True, False])
def test_to_array_agrees_with_numpy_helper(data_type: int, raw: bool) -> None:
    rng = np.random.default_rng(data_type)
    dtype = onnx_lite.NUMPY_TYPES[data_type]
    if dtype.kind == "f":
        values = rng.normal(size=(2, 3)).astype(dtype)
    elif dtype.kind == "b":
        values = rng.integers(0, 2, size=(2, 3)).astype(bool)
    else:
        info = np.iinfo(dtype)
        values = rng.integers(info.min, info.max, size=(2, 3), dtype=dtype, endpoint=True)
    if raw:
        t = numpy_helper.from_array(values, "t")
    else:
        t = helper.make_tensor("t", data_type, values.shape, values.reshape(-1).tolist())
    assert t.HasField("raw_data") == raw
    ours, theirs = onnx_lite.to_array(t), numpy_helper.to_array(t)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


def test_same_classes_checker_and_opset_as_onnx() -> None:
    assert type(onnx_lite.model_proto()) is onnx.ModelProto
    assert onnx_lite.validation_error() is onnx.checker.ValidationError
    assert onnx_lite.opset_version() == onnx.defs.onnx_opset_version()
    assert onnx_lite.data_type_name(TensorProto.FLOAT16) == "FLOAT16"
    bad = helper.make_model(helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"])], "g",
                                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]))
    with pytest.raises(onnx.checker.ValidationError, match="NoSuchOp"):
        onnx_lite.check_model(bad)


def test_loading_without_onnx_then_importing_onnx(tmp_path) -> None:
    """A fresh process: the loader does not import onnx (nor ml_dtypes); a later ``import onnx`` works and
    shares the classes."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                                opset_imports=[helper.make_opsetid("", 13)]), path)
    code = f"""
import sys
from verify.model.network import load_model
m = load_model({str(path)!r})
assert "onnx" not in sys.modules and "ml_dtypes" not in sys.modules, sorted(k for k in sys.modules if "onnx" in k)
import onnx
from onnx import helper, numpy_helper
assert onnx.ModelProto is type(m.proto) if hasattr(m, "proto") else True
proto = onnx.load({str(path)!r})
onnx.checker.check_model(proto)
assert numpy_helper.to_array(numpy_helper.from_array(__import__("numpy").ones(2, "float32"))).sum() == 2
print("ok", m.n_inputs)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "2"]
