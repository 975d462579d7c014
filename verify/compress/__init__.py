"""Sound compression of the graph on an input region (each pass exact or with a proven error bound).

:func:`compress` runs the passes in order and returns the compressed graph with what
each pass removed:

1. ``drop identities`` and ``fold affine`` (:mod:`verify.compress.fold`), then the layered
   normal form (:mod:`verify.compress.layers`), which folds sums and every other chain
   of affine operations;
2. ``stable ReLUs`` (:mod:`verify.compress.stable_relus`): with bounds on the box, dead
   ReLUs are deleted and active ones replaced by the identity;
3. ``slice to property`` (:mod:`verify.compress.slice`): with property rows ``C, d`` the
   output becomes ``C y - d`` and what no longer reaches it is deleted;
4. ``drop zero weights`` and ``merge neurons`` (:mod:`verify.compress.prune`,
   :mod:`verify.compress.merge`), repeated while they remove something;
5. on request (``prune_tol > 0``), ``prune small weights``: lossy, with a proven bound on
   the output error, reported as :attr:`CompressionResult.error_bound` (a check must
   subtract it from its margin);
6. the modules (:mod:`verify.compress.modules`).

Each pass is also usable alone on a graph (``remove_stable_relus``, ``slice_to_property``,
``drop_zero_weights``, ``merge_neurons``, ``prune_small_weights``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from verify.compress.bounds import annotate, layer_bounds
from verify.compress.fold import drop_identities, fold_affine
from verify.compress.layers import NONLINEAR, LayerNet, from_graph
from verify.compress.merge import merge_neurons, merge_neurons_net
from verify.compress.modules import Module, split_net
from verify.compress.prune import drop_zero_weights, drop_zero_weights_net, prune_small_weights, prune_small_weights_net
from verify.compress.report import PassReport, count_relus, count_weights
from verify.compress.slice import slice_to_property, slice_to_property_net
from verify.compress.stable_relus import count_unstable, remove_stable_relus, remove_stable_relus_net, set_phases
from verify.graph.extract import extract_graph

__all__ = [
    "CompressionResult", "PassReport", "case_rows", "compress", "compress_model", "count_neurons", "drop_identities",
    "drop_zero_weights",
    "fold_affine", "merge_neurons", "prune_small_weights", "remove_stable_relus", "slice_to_property",
]


def count_neurons(graph: nx.DiGraph) -> int:
    """Neurons of a graph: outputs of its non-linear nodes plus the network outputs."""
    hidden = sum(int(d["size"]) for _, d in graph.nodes(data=True) if d["op"] in NONLINEAR)
    return hidden + int(graph.nodes[graph.graph["output"]]["size"])


@dataclass
class CompressionResult:
    """The compressed graph, what each pass removed, and the before/after figures."""

    graph: nx.DiGraph
    reports: list[PassReport]
    error_bound: float
    relus_before: int
    relus_after: int
    unstable_before: int | None  # None without a region
    unstable_after: int | None
    neurons_before: int
    neurons_after: int
    edges_before: int  # non-zero weights
    edges_after: int
    modules: list[Module] = field(default_factory=list)
    seconds: float = 0.0
    net: LayerNet | None = field(default=None, repr=False)  # the layered form of ``graph``

    @property
    def n_modules(self) -> int:
        return len(self.modules)

    @property
    def relus_kept(self) -> float:
        """Fraction of the ReLUs kept (1.0 for a network without ReLUs)."""
        return self.relus_after / self.relus_before if self.relus_before else 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "relus_before": self.relus_before, "relus_after": self.relus_after,
            "unstable_before": self.unstable_before, "unstable_after": self.unstable_after,
            "neurons_before": self.neurons_before, "neurons_after": self.neurons_after,
            "edges_before": self.edges_before, "edges_after": self.edges_after,
            "relus_kept": round(self.relus_kept, 6), "error_bound": self.error_bound,
            "n_modules": self.n_modules, "seconds": round(self.seconds, 4),
            "passes": [r.to_json() for r in self.reports],
            "modules": [m.to_json() for m in self.modules],
        }


def compress(graph: nx.DiGraph, lower: np.ndarray | None = None, upper: np.ndarray | None = None,
             C: np.ndarray | None = None, d: np.ndarray | None = None, *, keep_chain: bool = True,
             merge: bool = True, prune_tol: float = 0.0, max_unstable: int = 12,
             bounds: str = "crown") -> CompressionResult:
    """Compress ``graph`` on the input box ``[lower, upper]`` (float64, outward rounded) and,
    with ``C, d``, slice it to the property rows (the output becomes ``C y - d``).

    Without a box only the structural passes run.  ``keep_chain`` keeps a chain a chain
    (see :mod:`verify.compress.stable_relus`); ``prune_tol > 0`` enables the lossy pruning
    pass; ``max_unstable`` is the module size rule; ``bounds`` is ``"crown"`` (default),
    ``"alpha"`` (alpha-CROWN on the hidden layers of chains: tighter, about 20 times slower)
    or ``"ibp"``.
    """
    start = time.perf_counter()
    region = lower is not None and upper is not None
    if region:
        lower = np.asarray(lower, dtype=np.float64).reshape(-1)
        upper = np.asarray(upper, dtype=np.float64).reshape(-1)
    reports: list[PassReport] = []
    g, rep = drop_identities(graph)
    reports.append(rep)
    g, rep = fold_affine(g)
    reports.append(rep)
    net = from_graph(g)
    w_graph, w_net = count_weights(g), net.n_weights()
    reports.append(PassReport("layered form", weights_before=w_graph, weights_after=w_net,
                              detail="sums and remaining affine chains folded; "
                                     f"{len(net.hidden)} non-linear layer(s)"))
    unstable_before = None
    if region:
        assert lower is not None and upper is not None
        net = annotate(net, lower, upper, bounds)
        set_phases(net, lower, upper)
        unstable_before = count_unstable(net)
        net, rep = remove_stable_relus_net(net, lower, upper, keep_chain, annotated=True)
        reports.append(rep)
    if C is not None and d is not None and np.atleast_2d(C).shape[0] > 0:
        net, rep = slice_to_property_net(net, C, d)
        reports.append(rep)
    net = _cleanup(net, reports, merge)
    error = 0.0
    if prune_tol > 0:
        if not region:
            raise ValueError("prune_tol needs an input region (lower, upper)")
        assert lower is not None and upper is not None
        net = _with_output_bounds(net, lower, upper, "ibp" if bounds == "ibp" else "crown")
        net, rep = prune_small_weights_net(net, lower, upper, prune_tol)
        reports.append(rep)
        error += rep.error_bound
        net = _cleanup(net, reports, merge)
    unstable_after = None
    if region:
        assert lower is not None and upper is not None
        net = _with_output_bounds(net, lower, upper, "ibp" if bounds == "ibp" else "crown")
        set_phases(net, lower, upper)
        unstable_after = count_unstable(net)
    modules = split_net(net, max_unstable)
    out_graph = net.to_graph()
    out_graph.graph["error_bound"] = error
    return CompressionResult(
        graph=out_graph, reports=reports, error_bound=error,
        relus_before=count_relus(graph), relus_after=net.n_relus(),
        unstable_before=unstable_before, unstable_after=unstable_after,
        neurons_before=count_neurons(graph), neurons_after=net.n_neurons(),
        edges_before=count_weights(graph), edges_after=net.n_weights(),
        modules=modules, seconds=time.perf_counter() - start, net=net)


def case_rows(case: Any) -> tuple[np.ndarray, np.ndarray]:
    """The property rows ``C, d`` of a :class:`~verify.spec.property.Case`: every unsafe polytope's rows, stacked."""
    polys = [p for p in case.unsafe if p.n_rows]
    if not polys:
        return np.zeros((0, 0)), np.zeros(0)
    return np.vstack([p.C for p in polys]), np.concatenate([p.d for p in polys])


def compress_model(model: Any, prop: Any = None, case: int = 0, **options: Any) -> CompressionResult:
    """Extract the graph of a loaded :class:`~verify.model.network.Model` and compress it on
    case ``case`` of the property ``prop`` (its box and rows); without ``prop``, structurally."""
    graph = extract_graph(model)
    if prop is None:
        return compress(graph, **options)
    if not 0 <= case < len(prop.cases):
        raise ValueError(f"the property has {len(prop.cases)} case(s); case {case} does not exist")
    c = prop.cases[case]
    C, d = case_rows(c)
    return compress(graph, c.box.lower, c.box.upper, C if C.shape[0] else None, d if C.shape[0] else None,
                    **options)


def _cleanup(net: LayerNet, reports: list[PassReport], merge: bool) -> LayerNet:
    """Zero weights, then merging, repeated while something changes (each report kept once, summed)."""
    net, zero = drop_zero_weights_net(net)
    merged: PassReport | None = None
    while merge:
        net, rep = merge_neurons_net(net)
        merged = rep if merged is None else _sum_reports(merged, rep)
        if not rep.neurons_removed:
            break
        net, more = drop_zero_weights_net(net)
        zero = _sum_reports(zero, more)
    reports.append(zero)
    if merged is not None:
        reports.append(merged)
    return net


def _sum_reports(a: PassReport, b: PassReport) -> PassReport:
    return PassReport(a.name, nodes_removed=a.nodes_removed + b.nodes_removed,
                      neurons_removed=a.neurons_removed + b.neurons_removed,
                      relus_removed=a.relus_removed + b.relus_removed,
                      relus_to_identity=a.relus_to_identity + b.relus_to_identity,
                      weights_before=a.weights_before, weights_after=b.weights_after,
                      error_bound=a.error_bound + b.error_bound,
                      detail=a.detail if not b.neurons_removed else f"{a.detail}; then {b.detail}")


def _with_output_bounds(net: LayerNet, lower: np.ndarray, upper: np.ndarray, method: str) -> LayerNet:
    """Bounds of every layer recomputed on the current net, intersected with the stored ones (both sound)."""
    fresh = layer_bounds(net, lower, upper, method)
    out = net.copy()
    for layer in out.layers:
        lo, hi = fresh[layer.name]
        if layer.lower is not None and layer.upper is not None and layer.lower.shape == lo.shape:
            lo, hi = np.maximum(lo, layer.lower), np.minimum(hi, layer.upper)
        layer.lower, layer.upper = lo, hi
    return out
