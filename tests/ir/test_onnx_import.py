"""The ONNX importer's graphs compute what onnxruntime computes, keep ONNX names, and refuse
what they cannot express with one line naming the file and the node."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from tests.ir import nets
from verify.errors import SUPPORTED_OPS_HINT, ModelError, UnsupportedOperatorError
from verify.ir.evaluate import run_flat
from verify.ir.graph import Graph
from verify.ir.onnx_import import _Importer, graph_from_onnx, onnx_to_graph
from verify.model.onnx_file import read_onnx

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"
MODELS: dict[str, Callable[[], onnx.ModelProto]] = {**nets.op_models(), **nets.NETWORKS}
BENCHMARKS = [
    ("acasxu", "ACASXU_run2a_1_1_batch_2000.onnx"),
    ("mnistfc", "mnist-net_256x2.onnx"),
    ("oval21", "cifar_base_kw.onnx"),
    ("cifar10_resnet", "resnet_2b.onnx"),
]


def _onnxruntime(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """onnxruntime's flat outputs for flat inputs ``x``, one row at a time (the batch is 1)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    rows = [session.run(None, {inp.name: row.reshape(shape)})[0].reshape(1, -1) for row in x]
    return np.concatenate(rows)


def _compare(model: onnx.ModelProto, graph: Graph, rng: np.random.Generator, n: int = 4,
             low: float = -2.0, high: float = 2.0) -> None:
    elem = model.graph.input[0].type.tensor_type.elem_type
    dtype = np.float64 if elem == TensorProto.DOUBLE else np.float32
    x = rng.uniform(low, high, (n, graph.n_inputs)).astype(dtype)
    ref = _onnxruntime(model, x)
    ours = run_flat(graph, x)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_agrees_with_onnxruntime(name: str, rng: np.random.Generator) -> None:
    model = MODELS[name]()
    graph = graph_from_onnx(model)
    assert graph.input.name == "x" and graph.source == "ONNX model"
    assert len({n.name for n in graph.nodes}) == len(graph.nodes)
    _compare(model, graph, rng)


@pytest.mark.benchmarks
@pytest.mark.parametrize(("folder", "file"), BENCHMARKS)
def test_benchmark_models_agree_with_onnxruntime(folder: str, file: str, rng: np.random.Generator) -> None:
    path = SHARED / folder / "onnx" / file
    if not path.exists():
        pytest.skip(f"benchmark model {path} is missing (it lives in ../shared, outside the repository)")
    graph, model, data = onnx_to_graph(path)
    assert data and graph.source == str(path)
    _compare(model, graph, rng, n=2, low=0.0, high=1.0)
    onnx_names = {o for node in model.graph.node for o in node.output}
    for node in graph.nodes:
        assert node.output in onnx_names
        if node.op == "relu":
            assert node.inputs[0] in onnx_names


def test_value_names_and_origins_are_the_onnx_ones() -> None:
    graph = graph_from_onnx(nets.residual_net())
    assert [n.op for n in graph.nodes] == ["conv", "relu", "conv", "conv", "add", "relu", "reshape", "linear"]
    assert [n.output for n in graph.nodes] == ["conv0", "relu0", "conv_a", "conv_b", "sum", "relu1", "flat", "y"]
    assert [n.inputs for n in graph.nodes if n.op == "relu"] == [("conv0",), ("sum",)]
    assert graph.consumers("relu0") == [graph.nodes[2], graph.nodes[3]]
    assert [n.origin for n in graph.nodes][:2] == [("Conv_0",), ("Relu_1",)]
    assert graph.output == "y" and graph.output_shape == (3,) and graph.input_shape == (1, 6, 6)
    assert graph.value("conv_a").shape == (2, 6, 6)


def test_aliases_emit_no_node() -> None:
    graph = graph_from_onnx(nets.identity_chain())
    assert [(n.op, n.inputs, n.output) for n in graph.nodes] == [("relu", ("x",), "r"), ("linear", ("r",), "y")]
    graph = graph_from_onnx(nets.dropout())
    assert [n.op for n in graph.nodes] == ["linear", "relu"] and graph.nodes[1].inputs == ("h",)


def test_an_output_alias_and_dead_branches() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Tanh", ["x"], ["unused"], name="dead"),
             helper.make_node("Dropout", ["r"], ["y"], name="drop")]
    graph = graph_from_onnx(nets.make_model(nodes, {}, [1, 3]))
    assert [n.op for n in graph.nodes] == ["relu"] and graph.output == "r" and set(graph.values) == {"x", "r"}
    graph = graph_from_onnx(nets.make_model([helper.make_node("Identity", ["x"], ["y"], name="id")], {}, ["N", 3]))
    assert graph.nodes == [] and graph.output == "x" and graph.input_shape == (3,)
    np.testing.assert_array_equal(run_flat(graph, np.eye(3)), np.eye(3))


def test_shape_chains_fold_to_a_constant_reshape() -> None:
    graph = graph_from_onnx(nets.dropout_cnn1d_net())
    assert [n.op for n in graph.nodes] == ["conv", "relu", "reshape", "linear"]
    assert graph.nodes[2].attrs["shape"] == [18] and graph.nodes[2].inputs == ("relu",)
    graph = graph_from_onnx(nets.shape_chain_net())
    assert [n.op for n in graph.nodes] == ["relu", "reshape"] and graph.nodes[1].attrs["shape"] == [6, 4]


def test_attributes_of_the_ir_nodes() -> None:
    (pad, conv, *_) = graph_from_onnx(nets.conv_pad_avgpool_net()).nodes
    assert pad.op == "pad" and pad.attrs["pads"] == [0] * 6
    assert conv.attrs["W"].dtype == np.float64 and conv.attrs["W"].shape == (2, 1, 3, 3)
    (bn,) = graph_from_onnx(nets.batchnorm()).nodes
    assert bn.op == "affine" and bn.attrs["scale"].shape == (3, 1, 1) and bn.attrs["shift"].shape == (3, 1, 1)
    (add,) = graph_from_onnx(nets.binary("Add", (2, 1, 1))).nodes
    assert add.op == "affine" and add.attrs["shift"].shape == (2, 3, 3) and add.attrs["scale"] is None
    (conv,) = graph_from_onnx(nets.conv(strides=[2, 2], auto_pad="SAME_UPPER", kernel=(2, 2))).nodes
    assert conv.attrs["pads"] == [0, 0, 0, 0]
    (conv,) = graph_from_onnx(nets.conv(in_shape=(1, 2, 5, 5), strides=[2, 2], auto_pad="SAME_LOWER")).nodes
    assert conv.attrs["pads"] == [1, 1, 1, 1]
    slices = graph_from_onnx(MODELS["slice_several_axes"]()).nodes
    assert [n.attrs["axis"] for n in slices] == [0, 1, 2] and slices[-1].output == "y"
    assert len({n.output for n in slices}) == 3
    (gap,) = graph_from_onnx(MODELS["global_avgpool"]()).nodes
    assert gap.op == "avg_pool" and gap.attrs["kernel"] == [4, 5]
    (sm,) = graph_from_onnx(MODELS["softmax_opset11_coerced"]()).nodes
    assert sm.attrs["axis"] == 0


def test_reads_paths_and_what_read_onnx_returns(tmp_path: Path, rng: np.random.Generator) -> None:
    path = nets.save(nets.maxpool_net(), tmp_path / "maxpool.onnx")
    by_path = graph_from_onnx(path)
    assert by_path.source == str(path)
    by_tuple = graph_from_onnx(read_onnx(path), name="mine")
    by_proto = graph_from_onnx(read_onnx(path)[0])
    assert by_tuple.source == "mine" and by_proto.source == "ONNX model"
    x = rng.normal(size=(3, by_path.n_inputs))
    np.testing.assert_array_equal(run_flat(by_path, x), run_flat(by_proto, x))
    graph, proto, data = onnx_to_graph(path)
    assert isinstance(proto, onnx.ModelProto) and data == path.read_bytes() and len(graph) == len(by_tuple)


def test_every_supported_op_has_a_converter() -> None:
    for op in SUPPORTED_OPS_HINT:
        assert hasattr(_Importer, f"_op_{op}"), op


# ------------------------------------------------------------------ refusals
def _einsum() -> onnx.ModelProto:
    node = helper.make_node("Einsum", ["x", "W"], ["y"], name="my_einsum", equation="bi,ij->bj")
    return nets.make_model([node], {"W": np.ones((4, 3))}, [1, 4])


def _softmax_not_last() -> onnx.ModelProto:
    nodes = [helper.make_node("Softmax", ["x"], ["s"], name="sm", axis=1),
             helper.make_node("Relu", ["s"], ["y"], name="relu")]
    return nets.make_model(nodes, {}, [1, 4])


def _dropout_mask_used() -> onnx.ModelProto:
    nodes = [helper.make_node("Dropout", ["x"], ["d", "mask"], name="drop"),
             helper.make_node("Cast", ["mask"], ["m"], name="cast", to=TensorProto.FLOAT),
             helper.make_node("Add", ["d", "m"], ["y"], name="add")]
    return nets.make_model(nodes, {}, [1, 4])


def _mul_two_variables() -> onnx.ModelProto:
    nodes = [helper.make_node("Relu", ["x"], ["b"], name="relu"),
             helper.make_node("Mul", ["x", "b"], ["y"], name="join")]
    return nets.make_model(nodes, {}, [1, 2, 3])


def _add_different_shapes() -> onnx.ModelProto:
    nodes = [helper.make_node("Slice", ["x", "s", "e", "a"], ["b"], name="cut"),
             helper.make_node("Add", ["x", "b"], ["y"], name="join")]
    return nets.make_model(nodes, {"s": np.array([0]), "e": np.array([1]), "a": np.array([2])}, [1, 2, 3])


def _cast_to_int() -> onnx.ModelProto:
    nodes = [helper.make_node("Cast", ["x"], ["i"], name="to_int", to=TensorProto.INT64),
             helper.make_node("Cast", ["i"], ["y"], name="back", to=TensorProto.FLOAT)]
    return nets.make_model(nodes, {}, [1, 3])


def _gemm_trans_a() -> onnx.ModelProto:
    node = helper.make_node("Gemm", ["x", "W"], ["y"], name="gemm", transA=1)
    return nets.make_model([node], {"W": np.ones((1, 3))}, [1, 4])


REFUSALS: dict[str, tuple[Callable[[], onnx.ModelProto], type[Exception], tuple[str, ...]]] = {
    "unsupported_op": (_einsum, UnsupportedOperatorError, ("'Einsum'", "'my_einsum'")),
    "softmax_not_last": (_softmax_not_last, ModelError, ("Softmax node 'sm'", "last")),
    "dropout_mask_used": (_dropout_mask_used, UnsupportedOperatorError, ("'Dropout'", "'drop'", "mask")),
    "mul_two_variables": (_mul_two_variables, UnsupportedOperatorError, ("'Mul'", "'join'")),
    "add_broadcast_variables": (_add_different_shapes, UnsupportedOperatorError,
                                ("'Add'", "'join'", "different shapes")),
    "cast_to_int": (_cast_to_int, UnsupportedOperatorError, ("'Cast'", "'to_int'", "int64")),
    "gemm_trans_a": (_gemm_trans_a, UnsupportedOperatorError, ("'gemm'", "transA=1")),
    "negative_pads": (lambda: nets.pad([0, 0, -1, 0, 0, 0, 0, 0]), UnsupportedOperatorError,
                      ("'Pad_0'", "negative pads")),
    "pad_batch": (lambda: nets.pad([1, 0, 0, 0, 0, 0, 0, 0]), UnsupportedOperatorError, ("'Pad_0'", "batch")),
    "pad_reflect": (lambda: nets.single("Pad", [1, 2, 3], ["p"], {"p": np.array([0, 0, 1, 0, 0, 1])},
                                        mode="reflect"), UnsupportedOperatorError, ("'Pad_0'", "reflect")),
    "transpose_batch": (lambda: nets.transpose([1, 0, 2, 3]), UnsupportedOperatorError,
                        ("'Transpose_0'", "batch axis")),
    "concat_batch": (lambda: nets.concat(0), UnsupportedOperatorError, ("'Concat_2'", "batch axis")),
    "flatten_axis0": (lambda: nets.flatten(0, (1, 2, 3)), UnsupportedOperatorError, ("'Flatten_0'", "axis=0")),
    "flatten_axis2": (lambda: nets.flatten(2, (1, 2, 3)), UnsupportedOperatorError, ("'Flatten_0'", "axis=2")),
    "reshape_batch": (lambda: nets.reshape([2, -1]), UnsupportedOperatorError, ("'Reshape_0'", "batch")),
    "slice_negative_step": (lambda: nets.slice_([3], [0], [2], [-1]), UnsupportedOperatorError,
                            ("'Slice_0'", "negative step")),
    "slice_empty": (lambda: nets.slice_([2], [2], [1]), ModelError, ("'Slice_0'", "empty")),
    "squeeze_batch": (lambda: nets.squeeze("Squeeze", [0], (1, 3)), UnsupportedOperatorError,
                      ("'Squeeze_0'", "batch")),
    "unsqueeze_batch": (lambda: nets.squeeze("Unsqueeze", [0], (1, 3)), UnsupportedOperatorError,
                        ("'Unsqueeze_0'", "batch")),
    "softmax_batch": (lambda: nets.softmax(0), UnsupportedOperatorError, ("'Softmax_0'", "batch")),
    "ceil_mode_changes_shape": (lambda: nets.pool("MaxPool", (1, 1, 5, 5), kernel_shape=[2, 2], strides=[2, 2],
                                                  ceil_mode=1), UnsupportedOperatorError,
                                ("'MaxPool_0'", "ceil_mode")),
    "constant_spans_batch": (lambda: nets.binary("Add", (2, 2, 3, 3)), UnsupportedOperatorError,
                             ("'Add_0'", "batch")),
    "division_by_variable": (lambda: nets.binary("Div", (3,), const_first=True), UnsupportedOperatorError,
                             ("'Div_0'", "division")),
    "conv3d": (lambda: nets.conv(in_shape=(1, 1, 3, 3, 3), kernel=(2, 2, 2)), UnsupportedOperatorError,
               ("'Conv_0'", "2-D")),
    "dropout_training": (lambda: nets.make_model(
        [helper.make_node("Dropout", ["x", "r", "t"], ["y"], name="drop")],
        {"r": np.array(0.5), "t": np.array(True)}, [1, 3]), UnsupportedOperatorError, ("'drop'", "training_mode")),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_are_one_line_naming_file_and_node(case: str) -> None:
    build, error, parts = REFUSALS[case]
    with pytest.raises(error) as info:
        graph_from_onnx(build(), name="model.onnx")
    message = str(info.value)
    assert "\n" not in message and message.startswith("model.onnx: "), message
    for part in parts:
        assert part in message, message


def test_unsupported_operator_error_names_op_and_node(tmp_path: Path) -> None:
    path = nets.save(_einsum(), tmp_path / "einsum.onnx")
    with pytest.raises(UnsupportedOperatorError) as info:
        graph_from_onnx(path)
    assert info.value.op_type == "Einsum" and info.value.node_name == "my_einsum"
    assert str(info.value).startswith(f"{path}: ") and "supported: Gemm" in str(info.value)


def test_an_output_that_does_not_depend_on_the_input_is_refused() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Shape", ["r"], ["s"], name="shape"),
             helper.make_node("Cast", ["s"], ["y"], name="cast", to=TensorProto.FLOAT)]
    with pytest.raises(ModelError, match="does not depend on the input"):
        graph_from_onnx(nets.make_model(nodes, {}, [1, 3]))


def test_double_weights_must_be_float32_values() -> None:
    model = nets.double_net()
    w = onnx.numpy_helper.to_array(model.graph.initializer[0]) + 1e-12
    model.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(w, model.graph.initializer[0].name))
    with pytest.raises(ModelError, match="'Gemm_0'.*'W0'.*float32"):
        graph_from_onnx(model)


def test_checks_a_model_proto_before_reading_it() -> None:
    model = nets.maxpool_net()
    model.graph.node[0].input[1] = "missing"
    with pytest.raises(ModelError, match="missing"):
        graph_from_onnx(model)
