"""The model as a networkx graph over flat vectors (:mod:`verify.graph.extract`,
:mod:`verify.graph.evaluate`), and the chain form of dense ReLU networks
(:mod:`verify.graph.chain`, which imports no networkx).

``from verify.graph import extract_graph, evaluate_graph, INPUT`` works as before; the
names load on first use, so that importing the chain form does not load networkx.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"INPUT": "verify.graph.extract", "extract_graph": "verify.graph.extract",
         "evaluate_graph": "verify.graph.evaluate"}

__all__ = ["INPUT", "evaluate_graph", "extract_graph"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'verify.graph' has no attribute {name!r}")
