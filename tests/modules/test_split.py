"""Modules: series stages, parallel components, the size rule and the interfaces."""

from __future__ import annotations

import numpy as np
import torch

from tests import graph_nets
from tests.conftest import benchmark_dir
from verify.compress import case_rows, compress
from verify.compress.layers import INPUT, from_graph
from verify.graph.extract import extract_graph
from verify.model.network import load_model
from verify.modules import module_graph, split_modules
from verify.spec import load_spec

torch.set_num_threads(1)


def _check_partition(graph, modules) -> None:
    """Every neuron of every non-linear node is in exactly one module; interfaces point outside."""
    net = from_graph(graph)
    seen = {layer.name: np.zeros(layer.size, dtype=int) for layer in net.layers}
    for m in modules:
        for name, idx in m.nodes.items():
            seen[name][idx] += 1
        for s in m.inputs:
            assert s == INPUT or s not in m.nodes or len(m.nodes[s]) < net.layer(s).size
    for name, count in seen.items():
        assert (count == 1).all(), name


def test_parallel_subnetworks_become_separate_modules() -> None:
    graph = extract_graph(load_model(graph_nets.parallel_net(width=6)))
    modules = split_modules(graph, max_unstable=12)  # no region: every ReLU counts as unstable
    _check_partition(graph, modules)
    hidden = [m for m in modules if m.kind == "hidden"]
    # two layers of 2 x 6 neurons: each sub-network has 12 ReLUs, so each is one module
    assert len(hidden) == 2 and sorted(m.n_unstable for m in hidden) == [12, 12]
    a, b = hidden
    assert set(a.inputs[INPUT]) | set(b.inputs[INPUT]) == {0, 1, 2, 3}
    assert not set(a.inputs[INPUT]) & set(b.inputs[INPUT])
    out = modules[-1]
    assert out.kind == "output" and out.input_width == 12
    mg = module_graph(modules, 4)
    assert mg.has_edge(INPUT, a.name) and mg.has_edge(a.name, "out") and not mg.has_edge(a.name, b.name)


def test_size_rule_cuts_series_and_packs_parallel() -> None:
    graph = extract_graph(load_model(graph_nets.parallel_net(width=6)))
    modules = split_modules(graph, max_unstable=4)
    _check_partition(graph, modules)
    hidden = [m for m in modules if m.kind == "hidden"]
    assert all(m.n_unstable <= 4 for m in hidden)
    assert len({m.stage for m in hidden}) == 2  # a series cut between the two layers
    assert len(hidden) == 6  # each layer: 12 neurons without edges among them, packed 4 by 4


def test_pre_bounds_decide_what_is_unstable() -> None:
    graph = extract_graph(load_model(graph_nets.stable_net()))
    (relu,) = [n for n, d in graph.nodes(data=True) if d["op"] == "relu"]
    bounds = {relu: (np.array([1.0, -3.0, -1.0]), np.array([3.0, -1.0, 1.0]))}
    (m, out) = split_modules(graph, pre_bounds=bounds)
    assert m.n_unstable == 1 and m.n_neurons == 3 and out.kind == "output"


def test_compressed_modules_are_small_on_acasxu() -> None:
    folder = benchmark_dir("acasxu")
    model = load_model(folder / "onnx" / "ACASXU_run2a_2_1_batch_2000.onnx")
    case = load_spec(folder / "vnnlib" / "prop_3.vnnlib").cases[0]
    res = compress(extract_graph(model), case.box.lower, case.box.upper, *case_rows(case))
    _check_partition(res.graph, res.modules)
    assert all(m.n_unstable <= 12 for m in res.modules)
    assert sum(m.n_unstable for m in res.modules) == res.unstable_after
    # the modules read by the next stage are exactly what it reads
    again = split_modules(res.graph)
    assert [m.to_json() for m in again] == [m.to_json() for m in res.modules]
