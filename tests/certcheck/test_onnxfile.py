"""verify.certcheck.onnxfile, the checker's own ONNX reader, reads what the ``onnx`` package reads.

Compared field by field with ``onnx.load`` + ``numpy_helper.to_array`` +
``helper.get_attribute_value``: on the bundled model, on the benchmark models when
../shared/benchmarks is there, and on small files that use every encoding the reader
accepts (raw and typed tensor data, packed and unpacked repeated fields, every numeric
data type, symbolic dimensions, attributes of every kind it decodes).  Malformed or
unsupported files raise :class:`OnnxReadError`, and the checker turns that into a
rejected certificate, never a crash.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from tests import nets
from verify.certcheck.network import UnsupportedModel, read_network
from verify.certcheck.onnxfile import OnnxReadError, read_graph

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "benchmarks"


def _reference(model: onnx.ModelProto) -> dict:
    """What the onnx package reads, in the reader's terms."""
    g = model.graph

    def value(a: AttributeProto) -> object:
        v = helper.get_attribute_value(a)
        if a.type == AttributeProto.TENSOR:
            return numpy_helper.to_array(v)
        if a.type in (AttributeProto.FLOAT, AttributeProto.INT, AttributeProto.STRING, AttributeProto.FLOATS,
                      AttributeProto.INTS, AttributeProto.STRINGS, AttributeProto.UNDEFINED):
            return v
        return None

    return {
        "initializer": {t.name: numpy_helper.to_array(t) for t in g.initializer},
        "node": [(n.op_type, n.name, list(n.input), list(n.output), {a.name: value(a) for a in n.attribute})
                 for n in g.node],
        "input": [(i.name, [d.dim_value for d in i.type.tensor_type.shape.dim]) for i in g.input],
        "output": [(o.name, [d.dim_value for d in o.type.tensor_type.shape.dim]) for o in g.output],
    }


def _ours(data: bytes) -> dict:
    g = read_graph(data)
    return {"initializer": g.initializer,
            "node": [(n.op_type, n.name, n.input, n.output, n.attributes) for n in g.node],
            "input": [(i.name, i.dims) for i in g.input], "output": [(o.name, o.dims) for o in g.output]}


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (np.isnan(a) and np.isnan(b))
    return type(a) is type(b) and a == b


def assert_reads_like_onnx(data: bytes) -> None:
    ours, ref = _ours(data), _reference(onnx.load_from_string(data))
    for key in ref:
        assert _same(ours[key], ref[key]), key


def _models_at_hand() -> list[Path]:
    found = [ROOT / "examples" / "tiny" / "classifier.onnx"]
    if SHARED.is_dir():
        found += sorted(SHARED.glob("*/onnx/*.onnx"))
    return found


@pytest.mark.parametrize("path", _models_at_hand(), ids=lambda p: p.name)
def test_reads_the_models_at_hand_like_onnx(path: Path) -> None:
    assert_reads_like_onnx(path.read_bytes())


def _every_encoding() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(3, 4)).astype(np.float32), "raw_f32"),
             helper.make_tensor("typed_f32", TensorProto.FLOAT, [2, 2], [1.5, -2.25, 3e-39, float("inf")]),
             helper.make_tensor("typed_f64", TensorProto.DOUBLE, [3], [0.1, -1e300, 5e-324]),
             helper.make_tensor("typed_i64", TensorProto.INT64, [4], [0, -1, 2 ** 62, -(2 ** 63)]),
             helper.make_tensor("typed_i32", TensorProto.INT32, [3], [-7, 0, 2 ** 31 - 1]),
             helper.make_tensor("typed_i8", TensorProto.INT8, [2], [-128, 127]),
             helper.make_tensor("typed_u8", TensorProto.UINT8, [2], [0, 255]),
             helper.make_tensor("typed_i16", TensorProto.INT16, [2], [-32768, 32767]),
             helper.make_tensor("typed_u16", TensorProto.UINT16, [2], [0, 65535]),
             helper.make_tensor("typed_f16", TensorProto.FLOAT16, [3], np.array([1.5, -0.0, 65504], np.float16)),
             helper.make_tensor("typed_bool", TensorProto.BOOL, [2], [True, False]),
             helper.make_tensor("typed_u32", TensorProto.UINT32, [2], [0, 2 ** 32 - 1]),
             helper.make_tensor("typed_u64", TensorProto.UINT64, [2], [0, 2 ** 64 - 1]),
             helper.make_tensor("scalar", TensorProto.FLOAT, [], [4.0]),
             helper.make_tensor("empty", TensorProto.FLOAT, [0, 3], []),
             numpy_helper.from_array(np.arange(6, dtype=np.int64).reshape(2, 3), "raw_i64"),
             numpy_helper.from_array(np.array([1.0, 2.0], np.float16), "raw_f16"),
             numpy_helper.from_array(np.array([1e-310, -3.0]), "raw_f64")]
    const = helper.make_tensor("c", TensorProto.FLOAT, [2], [7.0, -7.0])
    nodes = [helper.make_node("Gemm", ["x", "raw_f32"], ["h"], name="fc", alpha=0.5, beta=2.0, transB=1),
             helper.make_node("Conv", ["h", "w"], ["k"], name="conv", strides=[2, 1], pads=[-1, 0, 3, 2 ** 40],
                              auto_pad="NOTSET", kernel_shape=[3, 3]),
             helper.make_node("Constant", [], ["cst"], name="", value=const),
             helper.make_node("Foo", ["k"], ["y"], domain="custom", floats=[0.1, -2.5], strings=[b"a", b"\xff"],
                              i=-5)]
    graph = helper.make_graph(nodes, "every", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4]),
                                               helper.make_tensor_value_info("raw_f32", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    return helper.make_model(graph)


def test_reads_every_encoding_like_onnx() -> None:
    data = _every_encoding().SerializeToString()
    assert_reads_like_onnx(data)
    graph = read_graph(data)
    assert graph.input[0].dims == [0, 3, 4] and graph.node[1].attributes["pads"] == [-1, 0, 3, 2 ** 40]
    assert graph.initializer["typed_i64"].dtype == np.int64 and graph.initializer["typed_i64"][3] == -(2 ** 63)


def test_unpacked_repeated_fields() -> None:
    """Writers may emit repeated numbers unpacked (one tag each); protobuf parsers accept both."""
    t = TensorProto()
    t.name, t.data_type = "w", TensorProto.FLOAT
    head = t.SerializeToString()
    dims = b"\x08\x02"  # dims = 2, unpacked varint
    floats = b"".join(b"\x25" + struct.pack("<f", v) for v in (0.5, -0.25))
    tensor = head + dims + floats
    assert list(TensorProto.FromString(tensor).float_data) == [0.5, -0.25]
    graph = onnx.GraphProto.FromString(b"\x2a" + bytes([len(tensor)]) + tensor)
    model = helper.make_model(graph)
    assert_reads_like_onnx(model.SerializeToString())
    assert read_graph(model.SerializeToString()).initializer["w"].tolist() == [0.5, -0.25]


def test_checker_network_of_nets_is_unchanged(tmp_path: Path) -> None:
    """read_network on files built by tests/nets.py: the layers the checker sees."""
    net = read_network(nets.mlp(tmp_path / "m.onnx", [3, 5, 2], seed=1))
    ref = onnx.load(str(tmp_path / "m.onnx"))
    w = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in ref.graph.initializer}
    assert net.n_inputs == 3 and net.layer_sizes == [5, 2]
    assert np.array_equal(net.blocks[0][0].W, w["w0"]) and np.array_equal(net.blocks[1][0].b, w["b1"])


@pytest.mark.parametrize("data", [b"", b"\x0a", b"\x3a\x05abc", b"\xff" * 11, b"\x3b\x00", b"not onnx at all"])
def test_malformed_files_are_refused(data: bytes) -> None:
    with pytest.raises(OnnxReadError):
        read_graph(data)
    with pytest.raises(UnsupportedModel):
        read_network(data)


def test_unsupported_tensors_are_refused() -> None:
    bf16 = helper.make_tensor("w", TensorProto.BFLOAT16, [1], [1.0])
    external = numpy_helper.from_array(np.ones(2, np.float32), "e")
    external.data_location = TensorProto.EXTERNAL
    external.ClearField("raw_data")
    for t in (bf16, external):
        model = helper.make_model(helper.make_graph([], "g", [], [], [t]))
        with pytest.raises(OnnxReadError):
            read_graph(model.SerializeToString())
    twice = helper.make_model(helper.make_graph([], "g", [], [])).SerializeToString()
    graph_field = twice[twice.index(b"\x3a"):]
    with pytest.raises(OnnxReadError, match="occurs 2 times"):
        read_graph(twice + graph_field)  # protobuf would merge the two graphs: refused instead


def test_the_checker_does_not_import_onnx() -> None:
    code = ("import sys\nfrom verify.certcheck import check_certificate\nfrom verify.certcheck.network import "
            f"read_network\nread_network({str(ROOT / 'examples/tiny/classifier.onnx')!r})\n"
            "print(sorted(m for m in ('onnx', 'torch', 'ml_dtypes') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
