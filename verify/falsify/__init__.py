"""Counterexample search: hypothesis strategies, gradient attacks, bound corners, shrinking, replay.

Entry point: :func:`default_falsifier` (a :class:`~verify.falsify.combined.CombinedFalsifier`).
Everything a falsifier returns has been replayed on the original model
(:func:`~verify.falsify.base.replay`).  Names are imported lazily so that importing
:mod:`verify.falsify.base` stays cheap.
"""

from __future__ import annotations

from typing import Any

#: The searches of the combined falsifier (:class:`~verify.falsify.combined.CombinedFalsifier`),
#: in the order of its seeds; here, where ``verify falsify --methods`` reads them without numpy or torch.
METHODS = ("hypothesis", "pgd", "corners")

_EXPORTS = {
    "Budget": "verify.falsify.base",
    "Counterexample": "verify.falsify.base",
    "Falsifier": "verify.falsify.base",
    "BoundCornerSearch": "verify.falsify.corners",
    "replay": "verify.falsify.base",
    "CombinedFalsifier": "verify.falsify.combined",
    "default_falsifier": "verify.falsify.combined",
    "HypothesisSearch": "verify.falsify.hypothesis_search",
    "PGDAttack": "verify.falsify.pgd",
}

__all__ = ["METHODS", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'verify.falsify' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
