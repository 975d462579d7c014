"""Run an IR graph on a batch: the semantics every other layer is tested against."""

from __future__ import annotations

import numpy as np
import torch

from verify.ir.graph import Graph
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
