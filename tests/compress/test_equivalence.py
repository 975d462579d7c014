"""Exactness of compression: compressed and original agree on the region (sampled with hypothesis,
and proved with Z3 on small nets), and a deliberately wrong pass is caught by the same checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import graph_nets
from tests.compress.helpers import assert_same_on, z3_differs
from tests.conftest import benchmark_dir
from verify.compress import case_rows, compress
from verify.compress.layers import LayerNet, from_graph
from verify.compress.stable_relus import delete
from verify.graph.chain_graph import graph_to_chain
from verify.graph.evaluate import evaluate_graph
from verify.graph.extract import extract_graph
from verify.model.network import load_model
from verify.spec import load_spec

torch.set_num_threads(1)
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _box(draw, n: int) -> tuple[np.ndarray, np.ndarray]:
    centre = np.array(draw(st.lists(st.floats(-1, 1), min_size=n, max_size=n)))
    radius = np.array(draw(st.lists(st.floats(0.0, 0.6), min_size=n, max_size=n)))
    return centre - radius, centre + radius


def _points(draw, lo: np.ndarray, hi: np.ndarray, n: int = 64) -> np.ndarray:
    seed = draw(st.integers(0, 2**31 - 1))
    x = lo + np.random.default_rng(seed).random((n, lo.size)) * (hi - lo)
    corners = np.where(np.random.default_rng(seed + 1).random((8, lo.size)) < 0.5, lo, hi)
    return np.concatenate([x, corners])


@st.composite
def mlp_case(draw):
    sizes = [draw(st.integers(2, 5))] + [draw(st.integers(2, 12)) for _ in range(draw(st.integers(1, 3)))] \
        + [draw(st.integers(1, 4))]
    model = load_model(graph_nets.random_mlp(sizes, draw(st.integers(0, 10_000))))
    lo, hi = _box(draw, sizes[0])
    m = draw(st.integers(1, 3))
    C = np.array(draw(st.lists(st.lists(st.floats(-2, 2), min_size=sizes[-1], max_size=sizes[-1]),
                               min_size=m, max_size=m)))
    d = np.array(draw(st.lists(st.floats(-1, 1), min_size=m, max_size=m)))
    return extract_graph(model), lo, hi, C, d, _points(draw, lo, hi)


@FAST
@given(mlp_case(), st.booleans(), st.sampled_from(["crown", "alpha", "ibp"]))
def test_compressed_equals_original_on_the_region(case, keep_chain: bool, bounds: str) -> None:
    graph, lo, hi, C, d, x = case
    res = compress(graph, lo, hi, C, d, keep_chain=keep_chain, bounds=bounds)
    assert_same_on(graph, res.graph, x, C, d)
    assert res.error_bound == 0.0
    if keep_chain:
        chain = graph_to_chain(res.graph)
        assert chain is not None
        got = evaluate_graph(res.graph, x)
        np.testing.assert_allclose(chain.forward(x), got, rtol=1e-9, atol=1e-9 * (1 + np.abs(got).max()))


@FAST
@given(mlp_case())
def test_relu_nodes_trace_back_to_the_original_neurons(case) -> None:
    """Every surviving ReLU output equals the original ReLU output at its ``neuron_ids`` (source node)."""
    graph, lo, hi, C, d, x = case
    res = compress(graph, lo, hi, C, d, merge=False)
    before = evaluate_graph(graph, x, keep=True)
    after = evaluate_graph(res.graph, x, keep=True)
    for node, data in res.graph.nodes(data=True):
        if data["op"] == "relu":
            want = before[data["source"]][:, data["neuron_ids"]]
            np.testing.assert_allclose(after[node], want, rtol=1e-9, atol=1e-9 * (1 + np.abs(want).max()))


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["conv", "residual", "sigmoid"]))
def test_other_graphs_equal_on_the_region(tmp_path_factory, seed: int, kind: str) -> None:
    path = Path(tmp_path_factory.mktemp("n")) / "n.onnx"
    if kind == "conv":
        graph_nets.conv_net(path, seed)
    else:
        graph_nets.residual_net(path, seed, "Sigmoid" if kind == "sigmoid" else "Relu")
    model = load_model(path)
    graph = extract_graph(model)
    rng = np.random.default_rng(seed)
    centre = rng.uniform(0, 1, model.n_inputs)
    lo, hi = centre - 0.1, centre + 0.1
    C, d = rng.normal(size=(2, model.n_outputs)), rng.normal(size=2)
    res = compress(graph, lo, hi, C, d, keep_chain=bool(seed % 2))
    x = lo + rng.random((100, lo.size)) * (hi - lo)
    assert_same_on(graph, res.graph, x, C, d)


def _small_case(seed: int):
    model = load_model(graph_nets.random_mlp([3, 6, 6, 2], seed))
    graph = extract_graph(model)
    lo, hi = np.array([-0.5, 0.0, 0.2]), np.array([0.3, 0.4, 0.9])
    C, d = np.array([[1.0, -1.0]]), np.array([0.25])
    return graph, lo, hi, C, d


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("keep_chain", [True, False])
def test_z3_proves_compressed_equal_on_the_box(seed: int, keep_chain: bool) -> None:
    graph, lo, hi, C, d = _small_case(seed)
    res = compress(graph, lo, hi, C, d, keep_chain=keep_chain)
    assert res.relus_after < res.relus_before  # something was compressed
    assert not z3_differs(graph, res.graph, lo, hi, C, d)


def _wrong_drop_unstable(net: LayerNet) -> LayerNet:
    """A deliberately wrong pass: delete the first unstable ReLU as if it were dead."""
    out = net.copy()
    for layer in out.hidden:
        if layer.phase is not None and (layer.phase == 0).any():
            rows = np.zeros(layer.size, dtype=bool)
            rows[int(np.flatnonzero(layer.phase == 0)[0])] = True
            delete(out, layer, rows)
            return out
    raise AssertionError("no unstable ReLU to drop")


@pytest.mark.parametrize("seed", [0, 1])
def test_wrong_pass_is_caught(seed: int) -> None:
    graph, lo, hi, C, d = _small_case(seed)
    res = compress(graph, lo, hi, C, d)
    wrong = _wrong_drop_unstable(from_graph(res.graph)).to_graph()
    assert z3_differs(graph, wrong, lo, hi, C, d)  # Z3 finds an input where they differ
    x = lo + np.random.default_rng(0).random((2000, lo.size)) * (hi - lo)
    with pytest.raises(AssertionError, match="outputs differ"):
        assert_same_on(graph, wrong, x, C, d)


def test_acasxu_instances_equal_on_their_regions() -> None:
    folder = benchmark_dir("acasxu")
    for onnx, vnnlib in [("ACASXU_run2a_1_1_batch_2000.onnx", "prop_1.vnnlib"),
                         ("ACASXU_run2a_3_3_batch_2000.onnx", "prop_9.vnnlib"),
                         ("ACASXU_run2a_2_1_batch_2000.onnx", "prop_3.vnnlib")]:
        model = load_model(folder / "onnx" / onnx)
        graph = extract_graph(model)
        case = load_spec(folder / "vnnlib" / vnnlib).cases[0]
        C, d = case_rows(case)
        res = compress(graph, case.box.lower, case.box.upper, C, d)
        assert res.relus_after < res.relus_before
        x = case.box.lower + np.random.default_rng(0).random((500, 5)) * (case.box.upper - case.box.lower)
        assert_same_on(graph, res.graph, x, C, d)
        # the original model itself (onnxruntime, float32) agrees too, within float32 rounding
        y = model.evaluate(x.astype(np.float32)).astype(np.float64) @ C.T - d
        assert np.abs(evaluate_graph(res.graph, x) - y).max() <= 1e-4 * (1 + np.abs(y).max())
