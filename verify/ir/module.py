"""An IR graph as a ``torch.nn.Module`` (flat inputs and outputs): what gradient attacks run."""

from __future__ import annotations

import torch
from torch import nn

from verify.ir.evaluate import run
from verify.ir.graph import Graph


class IRModule(nn.Module):
    """Runs ``graph`` on flat batches ``[N, n_inputs]`` and returns ``[N, n_outputs]``.

    The constants stay float64 numpy arrays in the graph; each call converts them to the
    input's dtype, so ``.double()`` is a no-op and the same module serves float32 and float64.
    """

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph
        self.input_shape = graph.input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = run(self.graph, x.reshape(x.shape[0], *self.graph.input_shape))
        assert isinstance(y, torch.Tensor)
        return y.reshape(y.shape[0], -1)

    def extra_repr(self) -> str:
        counts = ", ".join(f"{op} {n}" for op, n in sorted(self.graph.op_counts().items()))
        return f"{self.graph.source or 'graph'}: {counts}"
