"""Product networks: two IR graphs on one input (issue 19's two-model properties).

:func:`difference` builds ``x -> f(x)_O - g(x)_O`` for a set ``O`` of flat output indices:
both graphs read the same input value, ``g``'s values and nodes are renamed with a prefix
so that the two halves stay separate (parallel branches of one DAG, which compression
and modules see as two components joined at the end), and a ``sub`` node joins them.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from verify.ir.graph import Graph, Node, Value

#: Prefix of the second graph's names in a product.
OTHER = "other/"


def _flat(graph: Graph, nodes: list[Node], values: dict[str, Value], name: str, prefix: str,
          outputs: list[int]) -> str:
    """Append nodes making ``name`` flat and keeping ``outputs`` only; the value that results."""
    size = values[name].size
    if values[name].shape != (size,):
        flat = f"{prefix}flat"
        values[flat] = Value(flat, (size,))
        nodes.append(Node("reshape", f"{prefix}flatten", (name,), flat, {"shape": (size,)}))
        name = flat
    if outputs != list(range(size)):
        W = np.zeros((len(outputs), size))
        W[np.arange(len(outputs)), outputs] = 1.0
        picked = f"{prefix}picked"
        values[picked] = Value(picked, (len(outputs),))
        nodes.append(Node("linear", f"{prefix}pick", (name,), picked, {"W": W, "b": None}))
        name = picked
    return name


def difference(f: Graph, g: Graph, outputs: list[int] | None = None) -> Graph:
    """The graph of ``f(x)_O - g(x)_O`` (``O``: ``outputs``, default all); ``f`` and ``g`` need the same
    input shape and output size."""
    if f.input_shape != g.input_shape:
        raise ValueError(f"the two models' inputs differ: {f.input_shape} and {g.input_shape}")
    if f.n_outputs != g.n_outputs:
        raise ValueError(f"the two models' outputs differ in size: {f.n_outputs} and {g.n_outputs}")
    picked = list(range(f.n_outputs)) if outputs is None else list(outputs)

    def renamed(name: str) -> str:
        return name if name == g.input.name else OTHER + name

    values = dict(f.values)
    nodes = list(f.nodes)
    for name, value in g.values.items():
        if name != g.input.name:
            values[renamed(name)] = Value(renamed(name), value.shape)
    for node in g.nodes:
        nodes.append(replace(node, name=OTHER + node.name, inputs=tuple(renamed(v) for v in node.inputs),
                             output=renamed(node.output)))
    if g.input.name != f.input.name:  # g reads f's input value
        nodes = [replace(n, inputs=tuple(f.input.name if v == g.input.name else v for v in n.inputs))
                 for n in nodes]
    a = _flat(f, nodes, values, f.output, "product/f_", picked)
    b = _flat(g, nodes, values, renamed(g.output), "product/g_", picked)
    out = "product/difference"
    values[out] = Value(out, (len(picked),))
    nodes.append(Node("sub", "product/sub", (a, b), out))
    return Graph(f.input, nodes, out, values, source=f"{f.source or 'f'} - {g.source or 'g'}")
