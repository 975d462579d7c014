"""Each compression pass on hand-checkable networks: what it removes, and that nothing else changes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests import graph_nets
from tests.compress.helpers import assert_same_on
from verify.compress import (
    compress,
    drop_identities,
    drop_zero_weights,
    fold_affine,
    merge_neurons,
    prune_small_weights,
    remove_stable_relus,
    slice_to_property,
)
from verify.compress.report import count_relus
from verify.graph.chain_graph import graph_to_chain
from verify.graph.evaluate import evaluate_graph
from verify.graph.extract import extract_graph
from verify.model.network import load_model

torch.set_num_threads(1)
LO, HI = np.zeros(2), np.ones(2)


def _graph(module: torch.nn.Module):
    return extract_graph(load_model(module))


def _box_points(lo: np.ndarray, hi: np.ndarray, n: int = 200, seed: int = 0) -> np.ndarray:
    return lo + np.random.default_rng(seed).random((n, lo.size)) * (hi - lo)


def test_stable_relus_dead_and_active() -> None:
    g = _graph(graph_nets.stable_net())
    out, rep = remove_stable_relus(g, LO, HI)  # keep_chain: the active neuron stays (its layer is mixed)
    assert rep.relus_removed == 1 and rep.relus_to_identity == 0
    (relu,) = [n for n, d in out.nodes(data=True) if d["op"] == "relu"]
    assert list(out.nodes[relu]["neuron_ids"]) == [0, 2] and out.nodes[relu]["source"] == relu
    assert list(out.nodes[relu]["phase"]) == [1, 0]
    assert graph_to_chain(out) is not None
    assert_same_on(g, out, _box_points(LO, HI))
    skip, rep = remove_stable_relus(g, LO, HI, keep_chain=False)
    assert rep.relus_removed == 1 and rep.relus_to_identity == 1 and count_relus(skip) == 1
    assert graph_to_chain(skip) is None  # the active neuron became a skip connection
    assert_same_on(g, skip, _box_points(LO, HI))
    assert out.graph["removed"][relu]["dead"] == [1]


def test_stable_relus_whole_layer_active_folds_away() -> None:
    g = _graph(graph_nets.stable_net())
    lo, hi = np.array([0.8, 0.0]), np.array([1.0, 0.2])  # h2 = x0 - x1 >= 0.6: active too
    out, rep = remove_stable_relus(g, lo, hi)
    assert rep.relus_removed == 1 and rep.relus_to_identity == 2
    assert count_relus(out) == 0
    assert_same_on(g, out, _box_points(lo, hi))
    W = [d["W"] for _, d in out.nodes(data=True) if d["op"] == "affine"]
    assert len(W) == 1  # one affine map: y = A x + c


def test_dead_threshold_is_respected() -> None:
    """A neuron whose upper bound is below zero by less than the safety threshold is not deleted."""
    net = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.ReLU(), torch.nn.Linear(1, 1))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.fill_(0.0)
        net[2].weight.fill_(1.0)
        net[2].bias.fill_(0.0)
    g = _graph(net)
    _, rep = remove_stable_relus(g, np.array([-1.0]), np.array([-1e-8]))
    assert rep.relus_removed == 0
    _, rep = remove_stable_relus(g, np.array([-1.0]), np.array([-1e-3]))
    assert rep.relus_removed == 1


def test_merge_duplicates_and_proportional() -> None:
    g = _graph(graph_nets.duplicate_net())
    out, rep = merge_neurons(g)
    assert rep.neurons_removed == 2 and rep.relus_removed == 2
    (relu,) = [n for n, d in out.nodes(data=True) if d["op"] == "relu"]
    assert sorted(out.nodes[relu]["neuron_ids"]) == [0, 3, 4]
    merged = sorted((a, b) for a, b, _ in out.graph["removed"][relu]["merged"])
    assert merged == [(1, 0), (2, 0)]
    x = np.random.default_rng(0).uniform(-2, 2, (300, 2))
    assert_same_on(g, out, x)


def test_drop_zero_weights_constant_and_unused() -> None:
    g = _graph(graph_nets.zero_net())
    out, rep = drop_zero_weights(g)
    assert count_relus(out) == 1 and rep.neurons_removed == 2
    (relu,) = [n for n, d in out.nodes(data=True) if d["op"] == "relu"]
    assert list(out.nodes[relu]["neuron_ids"]) == [2]
    assert out.graph["removed"][relu] == {"constant": [0], "unused": [1]}
    assert_same_on(g, out, np.random.default_rng(0).uniform(-2, 2, (300, 2)))


def test_slice_to_property_reads_only_the_rows() -> None:
    g = _graph(graph_nets.parallel_net())
    C, d = np.array([[2.0, 0.0]]), np.array([0.5])  # the property reads output 0 only
    out, rep = slice_to_property(g, C, d)
    assert out.graph["n_outputs"] == 1
    assert count_relus(out) == count_relus(g) // 2  # the second sub-network is gone
    assert rep.neurons_removed == count_relus(g) // 2 + 1
    x = np.random.default_rng(0).uniform(-1, 1, (200, 4))
    assert_same_on(g, out, x, C, d)


def test_fold_normalisation_and_batchnorm(tmp_path) -> None:
    g = extract_graph(load_model(graph_nets.conv_net(tmp_path / "c.onnx")))
    g1, r1 = drop_identities(g)
    g2, r2 = fold_affine(g1)
    assert r1.nodes_removed == 1  # the Flatten
    assert r2.nodes_removed >= 3  # Sub, Div into Conv, Conv into BatchNorm; AveragePool into the Gemm
    assert sum(1 for _, d in g2.nodes(data=True) if d["op"] == "affine") == 3
    x = np.random.default_rng(0).uniform(0, 1, (50, 36))
    assert_same_on(g, g2, x)


def test_prune_small_weights_bound_holds() -> None:
    model = graph_nets.random_mlp([4, 16, 16, 3], seed=3)
    g = _graph(model)
    lo, hi = -np.ones(4), np.ones(4)
    out, rep = prune_small_weights(g, lo, hi, tol=0.02)
    assert rep.error_bound > 0 and rep.weights_after < rep.weights_before
    x = _box_points(lo, hi, 2000)
    diff = np.abs(evaluate_graph(out, x) - evaluate_graph(g, x)).max()
    assert 0 < diff <= rep.error_bound
    result = compress(g, lo, hi, prune_tol=0.02)
    assert result.error_bound > 0
    assert np.abs(evaluate_graph(result.graph, x) - evaluate_graph(g, x)).max() <= result.error_bound


def test_compress_figures_and_report() -> None:
    g = _graph(graph_nets.stable_net())
    res = compress(g, LO, HI, np.array([[1.0, -1.0]]), np.array([0.0]))
    assert (res.relus_before, res.unstable_before, res.unstable_after) == (3, 1, 1)
    assert res.neurons_before == 5 and res.error_bound == 0.0
    assert res.edges_after == sum(int(np.count_nonzero(d["W"])) for _, d in res.graph.nodes(data=True)
                                  if d["op"] == "affine")
    js = res.to_json()
    assert js["relus_after"] == res.relus_after and [p["name"] for p in js["passes"]][:2] == ["drop identities",
                                                                                              "fold affine"]
    with pytest.raises(ValueError):
        compress(g, prune_tol=0.1)


def test_alpha_bounds_are_at_least_as_tight_as_crown() -> None:
    from verify.compress.bounds import layer_bounds
    from verify.compress.layers import from_graph

    net = from_graph(_graph(graph_nets.random_mlp([3, 20, 20, 20, 2], seed=5)))
    lo, hi = -np.ones(3), np.ones(3)
    crown, alpha = layer_bounds(net, lo, hi, "crown"), layer_bounds(net, lo, hi, "alpha")
    x = _box_points(lo, hi, 2000)
    values = net.forward(x, keep=True)
    for layer in net.layers:
        (cl, cu), (al, au) = crown[layer.name], alpha[layer.name]
        assert (al >= cl).all() and (au <= cu).all()
        z = values[layer.name + ".pre"]
        assert (z >= al - 1e-9).all() and (z <= au + 1e-9).all()  # still sound
