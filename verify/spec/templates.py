"""Property templates: the properties teams ask about that are not one box and output
constraints (issue 19).  Each is written in a spec file exactly like the builders'::

    from verify.spec import box, monotone
    PROPERTY = monotone(box([0, 0, 0], [1, 1, 1]), feature=0, output=0)

``region`` is what :func:`~verify.spec.box` or :func:`~verify.spec.linf_ball` returns; a
feature or an output is a flat index.  What each template means exactly:

* :func:`monotone`: for all x, x' in the region that differ only in ``feature``,
  ``x'_feature >= x_feature`` implies ``y'_output >= y_output`` (``<=`` when not
  ``increasing``);
* :func:`fair`: for all x, x' in the region that differ only in the features listed in
  ``sensitive``, ``|y_output - y'_output| <= tolerance``;
* :func:`lipschitz`: ``|y_o(x) - y_o(x')| <= L * ||x - x'||_inf`` for all x, x' in the
  region and every output ``o`` (only ``output`` when given);
* :func:`output_range`: ``lower <= y_output <= upper`` on the whole region (a plain
  property, checked as one);
* :func:`equivalent`: ``||f(x) - g(x)||_inf <= delta`` for every x in the region, where
  ``f`` is the model checked and ``g`` the model file ``other`` (relative to the spec
  file, or absolute); only output ``output`` when given.

The first three speak of two copies of one network, the last of two networks;
:mod:`verify.relational` decides them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from verify.errors import SpecError
from verify.spec.builders import make_property, output_between
from verify.spec.property import Box, Property


def _index(value: object, what: str, template: str) -> int:
    if type(value) is not int or value < 0:
        raise SpecError(f"{template}: {what} must be a non-negative int (a flat index), got {value!r}")
    return value


def _number(value: object, what: str, template: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise SpecError(f"{template}: {what} must be a finite number, got {value!r}")
    if float(value) < 0 or (positive and float(value) == 0):
        raise SpecError(f"{template}: {what} must be {'positive' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _region(value: object, template: str) -> Box:
    if not isinstance(value, Box):
        raise SpecError(f"{template}: the region must be a box(...) or linf_ball(...), got {type(value).__name__}")
    return value


@dataclass(frozen=True, eq=False)
class Template:
    """A templated property over ``region`` (see the module docstring)."""

    region: Box
    KIND: ClassVar[str] = ""

    @property
    def n_inputs(self) -> int:
        return self.region.n

    def params(self) -> dict[str, Any]:
        """The template's parameters as JSON values (the region as its float bounds)."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        return {"template": self.KIND, **self.params(),
                "region": {"lower": [float(v) for v in self.region.lower],
                           "upper": [float(v) for v in self.region.upper]}}

    def check_fits(self, n_inputs: int, n_outputs: int, model_name: str = "the model") -> None:
        """Raise :class:`SpecError` unless the region and indices fit the model's sizes."""
        if self.region.n != n_inputs:
            raise SpecError(f"{self.KIND}: the region has {self.region.n} inputs but {model_name} has {n_inputs}")
        for what, i, n in self._indices(n_outputs):
            if not 0 <= i < n:
                raise SpecError(f"{self.KIND}: {what} {i} is out of range for {model_name} ({n} {what}s)")

    def _indices(self, n_outputs: int) -> list[tuple[str, int, int]]:
        return []


@dataclass(frozen=True, eq=False)
class Monotone(Template):
    feature: int = 0
    output: int = 0
    increasing: bool = True
    KIND: ClassVar[str] = "monotone"

    def params(self) -> dict[str, Any]:
        return {"feature": self.feature, "output": self.output, "increasing": self.increasing}

    def _indices(self, n_outputs: int) -> list[tuple[str, int, int]]:
        return [("input", self.feature, self.region.n), ("output", self.output, n_outputs)]


@dataclass(frozen=True, eq=False)
class Fair(Template):
    sensitive: tuple[int, ...] = ()
    output: int = 0
    tolerance: float = 0.0
    KIND: ClassVar[str] = "fair"

    def params(self) -> dict[str, Any]:
        return {"sensitive": list(self.sensitive), "output": self.output, "tolerance": self.tolerance}

    def _indices(self, n_outputs: int) -> list[tuple[str, int, int]]:
        return [("input", s, self.region.n) for s in self.sensitive] + [("output", self.output, n_outputs)]


@dataclass(frozen=True, eq=False)
class Lipschitz(Template):
    L: float = 1.0
    output: int | None = None
    KIND: ClassVar[str] = "lipschitz"

    def params(self) -> dict[str, Any]:
        return {"L": self.L, "output": self.output}

    def outputs(self, n_outputs: int) -> list[int]:
        return list(range(n_outputs)) if self.output is None else [self.output]

    def _indices(self, n_outputs: int) -> list[tuple[str, int, int]]:
        return [] if self.output is None else [("output", self.output, n_outputs)]


@dataclass(frozen=True, eq=False)
class OutputRange(Template):
    output: int = 0
    lower: float = 0.0
    upper: float = 0.0
    KIND: ClassVar[str] = "output_range"

    def params(self) -> dict[str, Any]:
        return {"output": self.output, "lower": self.lower, "upper": self.upper}

    def _indices(self, n_outputs: int) -> list[tuple[str, int, int]]:
        return [("output", self.output, n_outputs)]

    def to_property(self, n_outputs: int) -> Property:
        """The plain property this template is (one box, two unsafe half-spaces)."""
        return make_property(self.region, output_between(self.output, self.lower, self.upper, n_outputs),
                             name="output_range")


@dataclass(frozen=True, eq=False)
class Equivalent(Template):
    other: str = ""
    delta: float = 0.0
    output: int | None = None
    KIND: ClassVar[str] = "equivalent"

    def params(self) -> dict[str, Any]:
        return {"other": self.other, "delta": self.delta, "output": self.output}

    def outputs(self, n_outputs: int) -> list[int]:
        return list(range(n_outputs)) if self.output is None else [self.output]

    def _indices(self, n_outputs: int) -> list[tuple[str, int, int]]:
        return [] if self.output is None else [("output", self.output, n_outputs)]


def monotone(region: Box, feature: int, output: int = 0, increasing: bool = True) -> Monotone:
    """``y_output`` never decreases (``increasing=False``: never increases) when only ``feature`` increases."""
    if not isinstance(increasing, bool):
        raise SpecError(f"monotone: increasing must be True or False, got {increasing!r}")
    return Monotone(_region(region, "monotone"), _index(feature, "feature", "monotone"),
                    _index(output, "output", "monotone"), increasing)


def fair(region: Box, sensitive: int | Sequence[int], output: int | str = 0, tolerance: float = 0.0) -> Fair:
    """Changing only the ``sensitive`` features moves ``y_output`` by at most ``tolerance``."""
    if output == "argmax":
        raise SpecError("fair: output='argmax' (the same class) is not supported yet; name one output (its score)")
    feats = (sensitive,) if isinstance(sensitive, int) else tuple(sensitive)
    if not feats:
        raise SpecError("fair: sensitive must name at least one feature")
    feats = tuple(sorted({_index(s, "a sensitive feature", "fair") for s in feats}))
    return Fair(_region(region, "fair"), feats, _index(output, "output", "fair"),
                _number(tolerance, "tolerance", "fair"))


def lipschitz(region: Box, L: float, output: int | None = None) -> Lipschitz:
    """``|y_o(x) - y_o(x')| <= L * ||x - x'||_inf`` on the region (every output, or ``output``)."""
    return Lipschitz(_region(region, "lipschitz"), _number(L, "L", "lipschitz"),
                     None if output is None else _index(output, "output", "lipschitz"))


def output_range(region: Box, output: int, lower: float, upper: float) -> OutputRange:
    """``lower <= y_output <= upper`` on the whole region."""
    lo, hi = _number_any(lower, "lower"), _number_any(upper, "upper")
    if lo > hi:
        raise SpecError(f"output_range: lower {lo} is greater than upper {hi}")
    return OutputRange(_region(region, "output_range"), _index(output, "output", "output_range"), lo, hi)


def equivalent(region: Box, other: str, delta: float, output: int | str | None = None) -> Equivalent:
    """``||f(x) - g(x)||_inf <= delta`` on the region, ``g`` the model file ``other``."""
    if output == "argmax":
        raise SpecError("equivalent: output='argmax' (the same class) is not supported yet; give delta on the "
                        "outputs instead")
    if not isinstance(other, str) or not other:
        raise SpecError("equivalent: other must be the path of a model file")
    return Equivalent(_region(region, "equivalent"), other, _number(delta, "delta", "equivalent"),
                      None if output is None else _index(output, "output", "equivalent"))


def _number_any(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise SpecError(f"output_range: {what} must be a finite number, got {value!r}")
    return float(value)


TEMPLATES: dict[str, Any] = {"monotone": monotone, "fair": fair, "lipschitz": lipschitz,
                             "output_range": output_range, "equivalent": equivalent}
