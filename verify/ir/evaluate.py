"""Run an IR graph on a batch: the semantics every other layer is tested against."""

from __future__ import annotations

import numpy as np
import torch

from verify.ir.graph import Graph, Node
from verify.ir.ops import run_node


def run(graph: Graph, x: torch.Tensor, *, keep: bool = False) -> torch.Tensor | dict[str, torch.Tensor]:
    """The graph's output on ``x`` (``[N, *input_shape]`` or flat ``[N, n_inputs]``).

    With ``keep``, every value's batch by name instead (the input included).
    """
    x = x.reshape(x.shape[0], *graph.input_shape)
    env: dict[str, torch.Tensor] = {graph.input.name: x}
    for node in graph.nodes:
        env[node.output] = run_node(node.op, [env[name] for name in node.inputs], node.attrs)
    return env if keep else env[graph.output]


def run_flat(graph: Graph, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Flat float64 outputs ``[N, n_outputs]`` for flat inputs ``[N, n_inputs]``."""
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64))
    with torch.no_grad():
        y = run(graph, xt)
    assert isinstance(y, torch.Tensor)
    return y.reshape(y.shape[0], -1).numpy()


def dense_matrix(ir: Graph, node: Node) -> tuple[np.ndarray, np.ndarray]:
    """Dense matrix and bias of a linear one-input op, by applying it to unit vectors in float64."""
    in_shape = ir.values[node.inputs[0]].shape
    n_in = ir.values[node.inputs[0]].size
    n_out = ir.values[node.output].size
    with torch.no_grad():
        zero = torch.zeros((1, *in_shape), dtype=torch.float64)
        b = run_node(node.op, [zero], node.attrs).reshape(-1).numpy().copy()
        W = np.empty((n_out, n_in))
        chunk = max(1, min(n_in, 4_000_000 // max(n_out, 1)))
        for start in range(0, n_in, chunk):
            stop = min(n_in, start + chunk)
            basis = torch.zeros(stop - start, n_in, dtype=torch.float64)
            basis[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
            out = run_node(node.op, [basis.reshape(-1, *in_shape)], node.attrs).reshape(stop - start, -1).numpy()
            W[:, start:stop] = (out - b).T
    return W, b
