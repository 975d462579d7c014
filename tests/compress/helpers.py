"""Equivalence checks shared by the compression tests: sampled inputs, and an exact Z3 proof."""

from __future__ import annotations

from fractions import Fraction

import networkx as nx
import numpy as np

from verify.graph.evaluate import evaluate_graph


def outputs(graph: nx.DiGraph, x: np.ndarray, C: np.ndarray | None = None, d: np.ndarray | None = None) -> np.ndarray:
    y = evaluate_graph(graph, x)
    return y if C is None else y @ np.asarray(C).T - np.asarray(d)


def assert_same_on(original: nx.DiGraph, compressed: nx.DiGraph, x: np.ndarray, C: np.ndarray | None = None,
                   d: np.ndarray | None = None, rtol: float = 1e-5, slack: float = 0.0) -> None:
    """Compressed and original outputs (``C y - d`` when given) agree within ``rtol`` relative (plus ``slack``)."""
    want = outputs(original, x, C, d)
    got = evaluate_graph(compressed, x)
    assert got.shape == want.shape
    scale = 1.0 + np.abs(want).max()
    diff = np.abs(got - want).max()
    assert diff <= rtol * scale + slack, f"outputs differ by {diff:.3g} (scale {scale:.3g})"


def z3_differs(original: nx.DiGraph, compressed: nx.DiGraph, lower: np.ndarray, upper: np.ndarray,
               C: np.ndarray | None = None, d: np.ndarray | None = None,
               eps: Fraction = Fraction(1, 10**9)) -> bool:
    """Exact: is there an input in the box where some output differs by more than ``eps``?

    Both graphs are encoded with their float weights as exact rationals and ReLU as an
    If-term; returns False when Z3 proves the outputs equal within ``eps`` on the box.
    """
    import z3

    xs = [z3.Real(f"x{i}") for i in range(len(lower))]
    solver = z3.Solver()
    for x, lo, hi in zip(xs, lower, upper):
        solver.add(x >= Fraction(float(lo)), x <= Fraction(float(hi)))
    y0 = _encode(original, xs)
    if C is not None:
        y0 = [sum((Fraction(float(c)) * v for c, v in zip(row, y0) if c), z3.RealVal(0)) - Fraction(float(di))
              for row, di in zip(np.asarray(C), np.asarray(d))]
    y1 = _encode(compressed, xs)
    assert len(y0) == len(y1)
    solver.add(z3.Or([z3.Or(a - b > eps, b - a > eps) for a, b in zip(y0, y1)]))
    result = solver.check()
    assert result in (z3.sat, z3.unsat), result
    return result == z3.sat


def _encode(graph: nx.DiGraph, xs: list) -> list:
    import z3

    values: dict[str, list] = {}
    for node in nx.topological_sort(graph):
        data = graph.nodes[node]
        ins = [values[s] for s, _, _ in sorted(graph.in_edges(node, data="port"), key=lambda e: e[2])]
        op = data["op"]
        if op == "input":
            values[node] = list(xs)
        elif op == "identity":
            values[node] = ins[0]
        elif op == "affine":
            W, b = np.asarray(data["W"]), np.asarray(data["b"])
            if W.ndim == 1:
                values[node] = [Fraction(float(w)) * v + Fraction(float(c)) for w, v, c in zip(W, ins[0], b)]
            else:
                values[node] = [sum((Fraction(float(w)) * v for w, v in zip(row, ins[0]) if w), z3.RealVal(0))
                                + Fraction(float(c)) for row, c in zip(W, b)]
        elif op == "relu":
            values[node] = [z3.If(v > 0, v, 0) for v in ins[0]]
        elif op == "sum":
            values[node] = [sum(Fraction(float(s)) * vals[i] for s, vals in zip(data["signs"], ins))
                            for i in range(len(ins[0]))]
        else:
            raise ValueError(f"no exact encoding for {op}")
    return values[graph.graph["output"]]
