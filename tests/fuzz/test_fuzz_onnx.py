"""Fuzzing the model loader: mutated ONNX files load or give one line, nothing else.

Starting from ``examples/tiny/classifier.onnx`` and small models built here (every
supported operator appears in one of them), hypothesis mutates the protobuf bytes
(flip, overwrite, insert, delete, duplicate, truncate) or the model itself (dimensions,
data types, attributes, raw data, external data, names, nodes, initializers, opsets) and
runs each result through :func:`verify.model.network.load_model` in this process.  Each
must either load, and then run (the converted network, its float64 copy and
onnxruntime agree on a random input, or onnxruntime's refusal is one line), or raise a
:class:`~verify.errors.VerifyError` whose message is one line naming the file; anything
else fails the test (hypothesis shrinks it).  Each example must finish within
:data:`EXAMPLE_SECONDS`, and the whole run must not grow the process's peak memory by
more than :data:`PEAK_GROWTH_BYTES`.

``VERIFY_FUZZ_EXAMPLES`` sets the number of examples in all (default 300, half of them
byte mutations); ``VERIFY_FUZZ_SEED`` the seed (default 23).  Both are printed, with the
counts (tried, loaded, VerifyError, other), at the end of the run (``-s`` shows them).
"""

from __future__ import annotations

import faulthandler
import os
import resource
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from verify.errors import VerifyError
from verify.model.network import load_model

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = max(2, int(os.environ.get("VERIFY_FUZZ_EXAMPLES", "300"))) // 2  # per test
SEED = int(os.environ.get("VERIFY_FUZZ_SEED", "23"))
EXAMPLE_SECONDS = 5.0
PEAK_GROWTH_BYTES = 2 * 1024**3
STATS: Counter[str] = Counter()
SLOWEST = [0.0]

torch.set_num_threads(1)


# ---------------------------------------------------------------------- the models mutated
def _f32(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _model(nodes: list, inits: list, in_shape: list, out_shape: list) -> bytes:
    graph = helper.make_graph(nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _conv_model(rng: np.random.Generator) -> bytes:
    nodes = [
        helper.make_node("Conv", ["x", "k", "kb"], ["c"], name="conv", pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"], name="bn"),
        helper.make_node("Relu", ["bn"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["mp"], name="maxpool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["mp"], ["ap"], name="avgpool", kernel_shape=[2, 2], pads=[0, 0, 1, 1],
                         count_include_pad=1),
        helper.make_node("Flatten", ["ap"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "w", "wb"], ["y"], name="gemm", transB=1, alpha=0.5),
    ]
    inits = [_f32("k", rng.normal(0, 0.5, (2, 1, 3, 3))), _f32("kb", rng.normal(0, 0.1, 2)),
             _f32("s", rng.uniform(0.5, 1.5, 2)), _f32("b", rng.normal(0, 0.1, 2)), _f32("m", rng.normal(0, 0.1, 2)),
             _f32("v", rng.uniform(0.5, 1.5, 2)), _f32("w", rng.normal(0, 0.3, (3, 18))),
             _f32("wb", rng.normal(0, 0.1, 3))]
    return _model(nodes, inits, [1, 1, 5, 5], [1, 3])


def _matmul_model(rng: np.random.Generator) -> bytes:
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["s"], name="normalise_sub"),
        helper.make_node("Div", ["s", "std"], ["d"], name="normalise_div"),
        helper.make_node("MatMul", ["d", "w1"], ["m"], name="matmul"),
        helper.make_node("Add", ["m", "b1"], ["a"], name="bias"),
        helper.make_node("Tanh", ["a"], ["t"], name="tanh"),
        helper.make_node("Constant", [], ["shape"], name="shape",
                         value=helper.make_tensor("v", TensorProto.INT64, [2], [1, -1])),
        helper.make_node("Reshape", ["t", "shape"], ["rs"], name="reshape"),
        helper.make_node("Mul", ["rs", "scale"], ["ml"], name="scale"),
        helper.make_node("Sigmoid", ["ml"], ["sg"], name="sigmoid"),
        helper.make_node("Identity", ["sg"], ["y"], name="identity"),
    ]
    inits = [_f32("mean", np.full((1, 4), 0.1)), _f32("std", np.full((1, 4), 0.5)),
             _f32("w1", rng.normal(0, 0.5, (4, 5))), _f32("b1", rng.normal(0, 0.1, 5)),
             _f32("scale", rng.normal(0, 1.0, 5))]
    return _model(nodes, inits, [1, 4], [1, 5])


def _residual_model(rng: np.random.Generator) -> bytes:
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "w2"], ["g"], name="fc2"),
        helper.make_node("Add", ["g", "x"], ["sum"], name="residual"),
        helper.make_node("Sub", ["sum", "h"], ["y"], name="difference"),
    ]
    inits = [_f32("w1", rng.normal(0, 0.5, (3, 3))), _f32("b1", rng.normal(0, 0.1, 3)),
             _f32("w2", rng.normal(0, 0.5, (3, 3)))]
    return _model(nodes, inits, [1, 3], [1, 3])


_RNG = np.random.default_rng(SEED)
BASES = {
    "classifier": (ROOT / "examples" / "tiny" / "classifier.onnx").read_bytes(),
    "conv": _conv_model(_RNG),
    "matmul": _matmul_model(_RNG),
    "residual": _residual_model(_RNG),
}


# ---------------------------------------------------------------------- mutations
DIMS = [0, -1, 1, 2, 3, 4, 5, 7, 16, 1000, 2**31 - 1, 2**32, 99999999999, 2**63 - 1]
TYPES = list(range(0, 26)) + [999, -5]
INTS = [-(2**63), -(2**31), -1000, -2, -1, 0, 1, 2, 3, 7, 1000, 2**31, 99999999999, 2**62]
FLOATS = [0.0, -1.0, 0.5, 1.0, 2.0, 1e-30, 1e30, 3.4e38, float("inf"), float("-inf"), float("nan")]
ATTRIBUTES = ["axis", "alpha", "beta", "transA", "transB", "pads", "strides", "dilations", "kernel_shape", "group",
              "epsilon", "training_mode", "spatial", "ceil_mode", "count_include_pad", "auto_pad", "allowzero",
              "value", "storage_order", "momentum"]
OPS = ["Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Sigmoid", "Tanh", "Flatten", "Reshape", "Conv",
       "BatchNormalization", "AveragePool", "MaxPool", "Constant", "Identity", "Softmax", "Loop", "Cast", ""]


def _value_infos(model: onnx.ModelProto) -> list:
    return list(model.graph.input) + list(model.graph.output)


def _names(model: onnx.ModelProto) -> list[str]:
    g = model.graph
    names = [i.name for i in g.input] + [t.name for t in g.initializer]
    for n in g.node:
        names.extend(n.output)
    return names or ["x"]


PLAUSIBLE_DIMS = [1, 2, 3, 4, 5, 6]
PLAUSIBLE_INTS = [-2, -1, 0, 1, 2, 3]
SAME_ARITY = [["Relu", "Sigmoid", "Tanh", "Identity", "Flatten"], ["Add", "Sub", "Mul", "Div", "MatMul"],
              ["MaxPool", "AveragePool"], ["Gemm", "Conv"]]


def _dim(data: st.DataObject) -> int:
    return data.draw(st.sampled_from(PLAUSIBLE_DIMS if data.draw(st.booleans()) else DIMS))


def _mutate_dims(model: onnx.ModelProto, data: st.DataObject) -> None:
    targets = [v.type.tensor_type.shape for v in _value_infos(model) if v.type.tensor_type.shape.dim]
    tensors = list(model.graph.initializer)
    if tensors and (not targets or data.draw(st.booleans())):
        t = data.draw(st.sampled_from(tensors))
        if t.dims and data.draw(st.booleans()):
            t.dims[data.draw(st.integers(0, len(t.dims) - 1))] = _dim(data)
        else:
            t.dims[:] = data.draw(st.lists(st.sampled_from(DIMS), max_size=4))
        return
    if not targets:
        return
    shape = data.draw(st.sampled_from(targets))
    how = data.draw(st.sampled_from(["value", "param", "clear", "drop", "add"]))
    dim = shape.dim[data.draw(st.integers(0, len(shape.dim) - 1))]
    if how == "value":
        dim.dim_value = _dim(data)
    elif how == "param":
        dim.dim_param = data.draw(st.sampled_from(["N", "batch", "", "x" * 300]))
    elif how == "clear":
        dim.Clear()
    elif how == "drop":
        del shape.dim[data.draw(st.integers(0, len(shape.dim) - 1))]
    else:
        shape.dim.add().dim_value = _dim(data)


def _mutate_types(model: onnx.ModelProto, data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(["initializer", "value"]))
    if kind == "initializer" and model.graph.initializer:
        data.draw(st.sampled_from(list(model.graph.initializer))).data_type = data.draw(st.sampled_from(TYPES))
    elif _value_infos(model):
        v = data.draw(st.sampled_from(_value_infos(model)))
        v.type.tensor_type.elem_type = data.draw(st.sampled_from(TYPES))


def _set_attribute(a: onnx.AttributeProto, data: st.DataObject) -> None:
    kinds = ["int", "ints", "float", "floats", "string", "tensor", "retype"]
    same = {onnx.AttributeProto.INT: "int", onnx.AttributeProto.INTS: "ints", onnx.AttributeProto.FLOAT: "float"}
    if a.type in same and data.draw(st.booleans()):  # a plausible value of the same type
        kind, ints = same[a.type], PLAUSIBLE_INTS
    else:
        kind, ints = data.draw(st.sampled_from(kinds)), INTS
    if kind == "int":
        a.ClearField("ints")
        a.type, a.i = onnx.AttributeProto.INT, data.draw(st.sampled_from(ints))
    elif kind == "ints":
        a.type = onnx.AttributeProto.INTS
        length = len(a.ints) if a.ints and ints is PLAUSIBLE_INTS else data.draw(st.integers(0, 5))
        a.ints[:] = data.draw(st.lists(st.sampled_from(ints), min_size=length, max_size=length))
    elif kind == "float":
        a.type, a.f = onnx.AttributeProto.FLOAT, data.draw(st.sampled_from(FLOATS))
    elif kind == "floats":
        a.type = onnx.AttributeProto.FLOATS
        a.floats[:] = data.draw(st.lists(st.sampled_from(FLOATS), max_size=4))
    elif kind == "string":
        a.type, a.s = onnx.AttributeProto.STRING, data.draw(st.sampled_from([b"SAME_UPPER", b"VALID", b"NOTSET",
                                                                               b"\xff\xfe", b""]))
    elif kind == "tensor":
        a.type = onnx.AttributeProto.TENSOR
        a.t.CopyFrom(_f32("t", np.ones(data.draw(st.sampled_from([(), (2,), (1, 3), (3, 2)])))))
    else:
        a.type = data.draw(st.integers(0, 14))


def _mutate_attribute(model: onnx.ModelProto, data: st.DataObject) -> None:
    nodes = list(model.graph.node)
    if not nodes:
        return
    node = data.draw(st.sampled_from(nodes))
    if node.attribute and data.draw(st.booleans()):
        a = data.draw(st.sampled_from(list(node.attribute)))
        if data.draw(st.integers(0, 5)) == 0:
            node.attribute.remove(a)
            return
    else:
        a = node.attribute.add()
        a.name = data.draw(st.sampled_from(ATTRIBUTES))
    _set_attribute(a, data)


def _mutate_data(model: onnx.ModelProto, data: st.DataObject) -> None:
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        tensors.extend(a.t for a in node.attribute if a.HasField("t"))
    if not tensors:
        return
    t = data.draw(st.sampled_from(tensors))
    how = data.draw(st.sampled_from(["truncate", "extend", "typed", "special", "external", "clear", "segment"]))
    if how == "truncate":
        t.raw_data = t.raw_data[: data.draw(st.integers(0, max(0, len(t.raw_data) - 1)))]
    elif how == "extend":
        t.raw_data = t.raw_data + bytes(data.draw(st.integers(1, 16)))
    elif how == "typed":
        t.ClearField("raw_data")
        t.float_data.extend(data.draw(st.lists(st.sampled_from(FLOATS), max_size=20)))
    elif how == "special" and t.HasField("raw_data"):
        value = _array(t)
        if value is not None and value.size:
            value.reshape(-1)[data.draw(st.integers(0, value.size - 1))] = data.draw(st.sampled_from(FLOATS))
            t.raw_data = value.tobytes()
    elif how == "external":
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", data.draw(st.sampled_from(["weights.bin", "missing.bin", "../weights.bin",
                                                                   "/etc/hostname", "", "sub", "."]))),
                           ("offset", data.draw(st.sampled_from(["0", "8", "-4", "99999999999", "x"]))),
                           ("length", data.draw(st.sampled_from([None, "0", "24", "4096", "-1"])))):
            if value is not None:
                entry = t.external_data.add()
                entry.key, entry.value = key, value
    elif how == "clear":
        t.ClearField("raw_data")
    elif how == "segment":
        t.segment.begin, t.segment.end = 0, 1


def _mutate_names(model: onnx.ModelProto, data: st.DataObject) -> None:
    g = model.graph
    new = data.draw(st.sampled_from(_names(model) + ["fresh", "", "a.b", "forward", "x" * 500, "two\nlines"]))
    where = data.draw(st.sampled_from(["node-input", "node-output", "input", "output", "initializer", "node-name"]))
    if where in ("node-input", "node-output", "node-name") and g.node:
        node = data.draw(st.sampled_from(list(g.node)))
        if where == "node-name":
            node.name = new
            return
        values = node.input if where == "node-input" else node.output
        if values:
            values[data.draw(st.integers(0, len(values) - 1))] = new
        else:
            values.append(new)
    elif where == "input" and g.input:
        data.draw(st.sampled_from(list(g.input))).name = new
    elif where == "output" and g.output:
        data.draw(st.sampled_from(list(g.output))).name = new
    elif where == "initializer" and g.initializer:
        data.draw(st.sampled_from(list(g.initializer))).name = new


def _mutate_structure(model: onnx.ModelProto, data: st.DataObject) -> None:
    g = model.graph
    how = data.draw(st.sampled_from(["drop-node", "duplicate-node", "swap-nodes", "op-type", "drop-initializer",
                                     "drop-input", "drop-output", "extra-input", "extra-output", "opset",
                                     "ir-version", "domain", "drop-graph"]))
    n = len(g.node)
    if how == "drop-node" and n:
        del g.node[data.draw(st.integers(0, n - 1))]
    elif how == "duplicate-node" and n:
        g.node.add().CopyFrom(g.node[data.draw(st.integers(0, n - 1))])
    elif how == "swap-nodes" and n > 1:
        i, j = data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, n - 1))
        a, b = onnx.NodeProto(), onnx.NodeProto()
        a.CopyFrom(g.node[i])
        b.CopyFrom(g.node[j])
        g.node[i].CopyFrom(b)
        g.node[j].CopyFrom(a)
    elif how == "op-type" and n:
        node = g.node[data.draw(st.integers(0, n - 1))]
        group = next((ops for ops in SAME_ARITY if node.op_type in ops), OPS)
        node.op_type = data.draw(st.sampled_from(group if data.draw(st.booleans()) else OPS))
    elif how == "drop-initializer" and g.initializer:
        del g.initializer[data.draw(st.integers(0, len(g.initializer) - 1))]
    elif how == "drop-input" and g.input:
        del g.input[0]
    elif how == "drop-output" and g.output:
        del g.output[0]
    elif how == "extra-input":
        g.input.add().CopyFrom(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1, 3]))
    elif how == "extra-output" and g.output:
        g.output.add().CopyFrom(g.output[0])
    elif how == "opset" and model.opset_import:
        model.opset_import[0].version = data.draw(st.sampled_from([0, 1, 6, 7, 9, 11, 17, 21, 22, 23, 24, 99]))
    elif how == "ir-version":
        model.ir_version = data.draw(st.sampled_from([0, 1, 3, 7, 9, 10, 11, 99]))
    elif how == "domain" and n:
        g.node[data.draw(st.integers(0, n - 1))].domain = data.draw(st.sampled_from(["ai.onnx", "com.x", "ai.onnx.ml"]))
    elif how == "drop-graph":
        model.ClearField("graph")


def _array(t: onnx.TensorProto) -> np.ndarray | None:
    """The values of a float tensor a mutation left decodable, or None."""
    if t.data_type not in (TensorProto.FLOAT, TensorProto.DOUBLE) or t.data_location != TensorProto.DEFAULT:
        return None
    try:
        return numpy_helper.to_array(t).copy()
    except Exception:  # an earlier mutation broke it: the loader is what is tested on it
        return None


def _mutate_weights(model: onnx.ModelProto, data: st.DataObject) -> None:
    """Replace a float initializer by one of another shape (transposed, cut, doubled, ...)."""
    tensors = [t for t in model.graph.initializer if _array(t) is not None]
    if not tensors:
        return
    t = data.draw(st.sampled_from(tensors))
    a = _array(t)
    how = data.draw(st.sampled_from(["transpose", "cut", "double", "flat", "expand", "scalar", "values"]))
    if how == "transpose":
        a = a.T
    elif how == "cut" and a.ndim and a.shape[0] > 1:
        a = a[:-1]
    elif how == "double" and a.ndim:
        a = np.concatenate([a, a])
    elif how == "flat":
        a = a.reshape(-1)
    elif how == "expand":
        a = a[None]
    elif how == "scalar" and a.size:
        a = np.asarray(a.reshape(-1)[0])
    elif how == "values":
        a = np.random.default_rng(a.size).normal(0, data.draw(st.sampled_from([1e-3, 1.0, 1e3])), a.shape)
    t.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(a, dtype=np.float32), t.name))


def _to_double(model: onnx.ModelProto, data: st.DataObject) -> None:
    """The whole model in double (initializers, input and output), weights exact or not."""
    for i, t in enumerate(model.graph.initializer):
        value = _array(t)
        if value is not None:
            value = value.astype(np.float64)
            if data.draw(st.integers(0, 3)) == 0:
                value = value + 1e-12
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(value, t.name))
    for v in _value_infos(model):
        if data.draw(st.integers(0, 5)):
            v.type.tensor_type.elem_type = TensorProto.DOUBLE


STRUCTURED = [_mutate_dims, _mutate_types, _mutate_attribute, _mutate_data, _mutate_names, _mutate_structure,
              _mutate_weights, _to_double]


def _mutate_bytes(blob: bytes, data: st.DataObject) -> bytes:
    size = len(blob)
    how = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "duplicate"]))
    pos = data.draw(st.integers(0, max(0, size - 1)))
    if how == "flip" and size:
        return blob[:pos] + bytes([blob[pos] ^ (1 << data.draw(st.integers(0, 7)))]) + blob[pos + 1:]
    if how == "set" and size:
        chunk = data.draw(st.binary(min_size=1, max_size=8))
        return blob[:pos] + chunk + blob[pos + len(chunk):]
    if how == "insert":
        return blob[:pos] + data.draw(st.binary(min_size=1, max_size=16)) + blob[pos:]
    if how == "delete":
        return blob[:pos] + blob[pos + data.draw(st.integers(1, 64)):]
    if how == "truncate":
        return blob[:pos]
    return blob[:pos] + blob[pos:pos + data.draw(st.integers(1, 256))] * 2 + blob[pos:]


# ---------------------------------------------------------------------- the check
@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "weights.bin").write_bytes(np.random.default_rng(SEED).normal(0, 1, 1024).astype(np.float32).tobytes())
    (folder / "sub").mkdir()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    faulthandler.dump_traceback_later(120, exit=True)  # a hang ends the run with the stacks
    print(f"\nfuzz seed {SEED} ({2 * EXAMPLES} examples; VERIFY_FUZZ_SEED, VERIFY_FUZZ_EXAMPLES)", file=sys.stderr)
    yield folder
    faulthandler.cancel_dump_traceback_later()
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak
    tried = STATS["loaded"] + STATS["VerifyError"] + STATS["other"]
    print(f"fuzz seed {SEED}: tried {tried}, " + ", ".join(f"{k} {STATS[k]}" for k in
                                                          ("loaded", "loaded, onnxruntime refused", "VerifyError",
                                                           "other"))
          + f"; slowest {SLOWEST[0]:.2f} s; peak memory grew {growth / 2**20:.0f} MiB", file=sys.stderr)
    assert growth < PEAK_GROWTH_BYTES, f"peak memory grew by {growth} bytes"


def _check(path: Path, blob: bytes) -> str:
    """``blob`` as a model file: loads and runs, or one line naming the file; nothing else."""
    faulthandler.cancel_dump_traceback_later()
    faulthandler.dump_traceback_later(120, exit=True)
    path.write_bytes(blob)
    start = time.monotonic()
    try:
        model = load_model(path)
    except VerifyError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message, f"not one line: {message!r}"
        assert path.name in message, f"the file is not named: {message!r}"
        STATS["VerifyError"] += 1
        _timed(start)
        return "error"
    except Exception:
        STATS["other"] += 1
        raise AssertionError("load_model raised something other than a VerifyError:\n"
                             + traceback.format_exc()) from None
    STATS["loaded"] += 1
    x = np.random.default_rng(len(blob)).uniform(-1, 1, (2, model.n_inputs)).astype(np.float32)
    with torch.no_grad():
        ours = model.net(torch.from_numpy(x)).numpy().astype(np.float64)
        ours64 = model.forward64(x).numpy()
    assert ours.shape == (2, model.n_outputs)
    try:
        ref = model.evaluate(x).astype(np.float64)
    except VerifyError as exc:
        assert "\n" not in str(exc) and path.name in str(exc), str(exc)
        STATS["loaded, onnxruntime refused"] += 1
        print(f"loaded, but onnxruntime refused: {exc}", file=sys.stderr)
        _timed(start)
        return "loaded"
    assert np.array_equal(np.isfinite(ref), np.isfinite(ours)), (ref, ours)
    finite = np.isfinite(ref) & np.isfinite(ours) & np.isfinite(ours64)
    ref, ours, ours64 = (np.where(finite, a, 0.0) for a in (ref, ours, ours64))
    scale = 1.0 + float(np.abs(ref).max(initial=0))
    assert np.abs(ref - ours).max(initial=0) <= 1e-4 * scale, (ref, ours)
    assert np.abs(ref - ours64).max(initial=0) <= 1e-4 * scale, (ref, ours64)
    _timed(start)
    return "loaded"


def _timed(start: float) -> None:
    seconds = time.monotonic() - start
    SLOWEST[0] = max(SLOWEST[0], seconds)
    assert seconds < EXAMPLE_SECONDS, f"took {seconds:.1f} s"


FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@seed(SEED)
@FUZZ
@given(data=st.data())
def test_byte_mutations_load_or_give_one_line(workdir: Path, data: st.DataObject) -> None:
    blob = BASES[data.draw(st.sampled_from(sorted(BASES)), label="base")]
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        blob = _mutate_bytes(blob, data)
    assert _check(workdir / "bytes.onnx", blob) in ("error", "loaded")


@seed(SEED)
@FUZZ
@given(data=st.data())
def test_structured_mutations_load_or_give_one_line(workdir: Path, data: st.DataObject) -> None:
    model = onnx.ModelProto()
    model.ParseFromString(BASES[data.draw(st.sampled_from(sorted(BASES)), label="base")])
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        data.draw(st.sampled_from(STRUCTURED), label="mutation")(model, data)
    blob = model.SerializeToString()
    if data.draw(st.integers(0, 5), label="then bytes") == 0:
        blob = _mutate_bytes(blob, data)
    assert _check(workdir / "structured.onnx", blob) in ("error", "loaded")
