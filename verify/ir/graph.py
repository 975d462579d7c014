"""The IR: a DAG of tensor operations over named values with static shapes.

Conventions (every layer relies on them):

* shapes never include the batch dimension; every value is a batch ``[N, *shape]`` at
  run time, and ``Graph.input`` is the only variable input;
* weights and other constants live in a node's ``attrs`` as float64 ``numpy`` arrays
  (copied exactly from the model's float32 or float64 tensors); a node's ``inputs``
  name only *variable* values, so the DAG's edges are exactly the data flow;
* ``Graph.nodes`` is in topological order and each value is produced by one node;
* the op names and their attributes are those of :data:`verify.ir.ops.OPS`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from verify.ir.ops import OPS


@dataclass(frozen=True)
class Value:
    """A named tensor of the graph; ``shape`` excludes the batch dimension."""

    name: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


@dataclass
class Node:
    """One operation: ``output = op(*inputs; **attrs)``.

    ``origin`` names the model node(s) it came from (ONNX node names, torch module
    paths), so errors and pictures can point back into the user's model.
    """

    op: str
    name: str
    inputs: tuple[str, ...]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)
    origin: tuple[str, ...] = ()


@dataclass
class Graph:
    """A network: one input value, nodes in topological order, one output value."""

    input: Value
    nodes: list[Node]
    output: str
    values: dict[str, Value]
    #: where the graph came from (a file path or a module's class name), for messages
    source: str = ""

    def __post_init__(self) -> None:
        self.values.setdefault(self.input.name, self.input)
        self.validate()

    # -- structure ---------------------------------------------------------------------
    def validate(self) -> None:
        """Check the invariants above; raises ``ValueError`` naming the first violation."""
        known = {self.input.name}
        for node in self.nodes:
            if node.op not in OPS:
                raise ValueError(f"node {node.name!r}: unknown IR op {node.op!r}")
            for name in node.inputs:
                if name not in known:
                    raise ValueError(f"node {node.name!r}: input {name!r} is not produced before it")
            if node.output in known:
                raise ValueError(f"node {node.name!r}: value {node.output!r} is produced twice")
            if node.output not in self.values:
                raise ValueError(f"node {node.name!r}: output {node.output!r} has no shape")
            known.add(node.output)
        if self.output not in known:
            raise ValueError(f"graph output {self.output!r} is not produced by any node")

    def value(self, name: str) -> Value:
        return self.values[name]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.input.shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.values[self.output].shape

    @property
    def n_inputs(self) -> int:
        return self.input.size

    @property
    def n_outputs(self) -> int:
        return self.values[self.output].size

    def producer(self, name: str) -> Node | None:
        for node in self.nodes:
            if node.output == name:
                return node
        return None

    def consumers(self, name: str) -> list[Node]:
        return [node for node in self.nodes if name in node.inputs]

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node.op] = counts.get(node.op, 0) + 1
        return counts

    def is_chain(self) -> bool:
        """True when every node reads the previous node's output (no joins, no forks)."""
        previous = self.input.name
        for node in self.nodes:
            if node.inputs != (previous,):
                return False
            previous = node.output
        return previous == self.output

    def with_nodes(self, nodes: list[Node], output: str | None = None) -> Graph:
        """A new graph over the same input with ``nodes`` (values pruned to those used)."""
        used = {self.input.name} | {n.output for n in nodes}
        values = {k: v for k, v in self.values.items() if k in used}
        return Graph(self.input, list(nodes), output or self.output, values, self.source)
