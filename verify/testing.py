"""Assertions for users' test suites: fail a test with the witness when a property is false.

::

    from verify.testing import assert_property

    def test_acas_prop_3():
        assert_property("nets/acas_1_1.onnx", "specs/prop_3.vnnlib", budget=5)

:func:`assert_property` runs the combined falsifier (hypothesis and PGD, then
shrinking) for ``budget`` seconds and raises :class:`PropertyViolation` (an
``AssertionError``, so pytest reports a failed test) with the shrunk witness, the
original model's output on it, the input as first found and the command that replays
it.  Passing means no counterexample was found in the budget, not that the property
is verified (``verify check`` proves).  The pytest plugin (:mod:`verify.pytest_plugin`)
sets the defaults from ``--verify-budget``, ``--verify-seed``, ``--verify-examples-dir``
and the ``@pytest.mark.verify(budget=..., seed=...)`` marker.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from verify.falsify.base import Budget
from verify.falsify.region import Region

#: Above this many inputs the message lists only the inputs away from the centre.
FULL_VECTOR_MAX = 32
#: Most entries listed for a large input.
ENTRIES_MAX = 64


@dataclass(frozen=True)
class Defaults:
    """What :func:`assert_property` uses for arguments left out."""

    budget: float = 5.0
    seed: int = 0
    database: Any = "default"  # "default", a directory, or None


_stack: list[Defaults] = [Defaults()]


def defaults() -> Defaults:
    """The defaults in force (set by the pytest plugin, or :class:`Defaults`)."""
    return _stack[-1]


def push_defaults(**changes: Any) -> None:
    """Override the given defaults (``budget``, ``seed``, ``database``) until :func:`pop_defaults`."""
    _stack.append(replace(_stack[-1], **changes))


def pop_defaults() -> None:
    if len(_stack) > 1:
        _stack.pop()


class PropertyViolation(AssertionError):
    """A counterexample was found; ``counterexample`` holds it (replayed on the original model)."""

    def __init__(self, message: str, counterexample: Any) -> None:
        super().__init__(message)
        self.counterexample = counterexample


_UNSET: Any = object()


def assert_property(model: Any, spec: Any, *, budget: float | None = None, seed: int | None = None,
                    database: Any = _UNSET, methods: tuple[str, ...] = ("hypothesis", "pgd"),
                    shrink: bool = True, input_shape: tuple[int, ...] | None = None) -> None:
    """Fail (raise :class:`PropertyViolation`) if a counterexample to ``spec`` is found on ``model``.

    ``model``: a :class:`~verify.model.network.Model`, an ONNX path or a ``torch.nn.Module``
    (``input_shape`` as for :func:`~verify.model.network.load_model`).  ``spec``: a
    :class:`~verify.spec.Property` or a spec file path.  ``budget`` seconds of search
    with ``seed``; ``database``: example database directory, None for none (default:
    the plugin's ``--verify-examples-dir``, else ``.verify-cache/examples``).
    """
    # here, not on top: the pytest plugin imports this module in every pytest session, and
    # these import torch and hypothesis
    from verify.falsify.combined import default_falsifier
    from verify.model.network import Model, load_model
    from verify.strategies import as_property

    d = defaults()
    budget = d.budget if budget is None else budget
    seed = d.seed if seed is None else seed
    database = d.database if database is _UNSET else database
    if not isinstance(model, Model):
        model = load_model(model, input_shape) if input_shape is not None else load_model(model)
    prop = as_property(spec)
    prop.check_fits(model.n_inputs, model.n_outputs, model.name)
    falsifier = default_falsifier(database=database, methods=methods, shrink_seconds=2.0 if shrink else 0.0)
    cex = falsifier.search(model, prop, Budget.seconds(budget), seed)
    if cex is not None:
        raise PropertyViolation(_message(model, prop, cex, seed), cex)


def _vector(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{float(v):.9g}" for v in values) + "]"


def _message(model: Any, prop: Any, cex: Any, seed: int) -> str:
    region = Region.of(prop.cases[cex.case_index])
    away = np.flatnonzero(region.away(cex.x))
    origin = "the example database" if cex.from_database else cex.method
    lines = [f"property {prop.name!r} is false on {model.name}: counterexample found by {origin} "
             f"(seed {seed}, case {cex.case_index}), replayed on the original model",
             f"  {len(away)} of {len(cex.x)} inputs away from the centre of the region"]
    if len(cex.x) <= FULL_VECTOR_MAX:
        lines.append(f"  x = {_vector(cex.x)}")
    else:
        shown = ", ".join(f"{int(i)}: {float(cex.x[i]):.9g}" for i in away[:ENTRIES_MAX])
        more = f", ... ({len(away) - ENTRIES_MAX} more)" if len(away) > ENTRIES_MAX else ""
        lines.append(f"  x = centre except {{{shown}{more}}} (full input: exc.counterexample.x)")
    lines.append(f"  y = {_vector(cex.y)}")
    if cex.raw_x is not None and len(cex.x) <= FULL_VECTOR_MAX:
        lines.append(f"  x as first found, before shrinking = {_vector(cex.raw_x)}")
    model_path = getattr(model, "path", None)
    source = getattr(prop, "source", None)
    if model_path is not None and source is not None:
        lines.append(f"  replay: verify falsify {Path(model_path)} {source} --seed {seed}")
    return "\n".join(lines)
