"""The one internal property type: where the model must not go.

A :class:`Property` is a list of :class:`Case` objects.  Each case is an input box and
a disjunction of polytopes over the outputs (``C y <= d``), and describes an *unsafe*
set, as VNN-LIB does: the property holds when no input in any case's box produces an
output inside any of that case's polytopes.

Spec numbers are decimals (``0.679857769``) that float64 cannot always represent.
Every bound is therefore kept twice:

* an *outer* float64 value, used for bounding: the box is widened and ``d`` rounded
  up, so the float box contains the real box and the float unsafe set contains the
  real unsafe set (a "verified" on the outer values implies the real one);
* an *inner* float64 value, used to accept counterexamples: the box is shrunk and
  ``d`` rounded down, so a point inside the inner values is inside the real ones.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from verify.errors import SpecError, SpecMismatchError

Number = float | int | Fraction | str


def exact(value: Number) -> Fraction:
    """The exact rational value of a spec number (a decimal string, an int, a float)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, str):
        return Fraction(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"spec number {value!r} is not finite")
    return Fraction(value)


def round_down(value: Fraction) -> float:
    """Largest float64 that is <= value."""
    f = float(value)
    return f if Fraction(f) <= value else math.nextafter(f, -math.inf)


def round_up(value: Fraction) -> float:
    """Smallest float64 that is >= value."""
    f = float(value)
    return f if Fraction(f) >= value else math.nextafter(f, math.inf)


@dataclass(frozen=True, eq=False)
class Box:
    """An axis-aligned input box, in the flat input order ``X_0 .. X_{n-1}``."""

    lower_exact: tuple[Fraction, ...]
    upper_exact: tuple[Fraction, ...]
    lower: np.ndarray = field(init=False)  # outer (rounded down)
    upper: np.ndarray = field(init=False)  # outer (rounded up)
    lower_in: np.ndarray = field(init=False)  # inner (rounded up)
    upper_in: np.ndarray = field(init=False)  # inner (rounded down)

    def __post_init__(self) -> None:
        if len(self.lower_exact) != len(self.upper_exact):
            raise SpecError("box lower and upper bounds have different lengths")
        for i, (lo, hi) in enumerate(zip(self.lower_exact, self.upper_exact)):
            if lo > hi:
                raise SpecError(f"input X_{i}: lower bound {float(lo):.9g} is greater than "
                                f"upper bound {float(hi):.9g}; the region is empty")
        object.__setattr__(self, "lower", np.array([round_down(v) for v in self.lower_exact]))
        object.__setattr__(self, "upper", np.array([round_up(v) for v in self.upper_exact]))
        object.__setattr__(self, "lower_in", np.array([round_up(v) for v in self.lower_exact]))
        object.__setattr__(self, "upper_in", np.array([round_down(v) for v in self.upper_exact]))

    @classmethod
    def from_bounds(cls, lower: Iterable[Number], upper: Iterable[Number]) -> Box:
        return cls(tuple(exact(v) for v in lower), tuple(exact(v) for v in upper))

    @property
    def n(self) -> int:
        return len(self.lower_exact)

    @property
    def center(self) -> np.ndarray:
        return (self.lower + self.upper) / 2

    def contains(self, x: np.ndarray) -> bool:
        """Whether the float point ``x`` lies in the real box (exact comparison)."""
        # for a float x, x >= real lower  <=>  x >= (real lower rounded up): the check is exact
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        return bool(x.shape[0] == self.n and np.all(x >= self.lower_in) and np.all(x <= self.upper_in))

    def key(self) -> tuple:
        return (self.lower_exact, self.upper_exact)


@dataclass(frozen=True, eq=False)
class Polytope:
    """A conjunction of linear output constraints ``C y <= d`` (rows may be strict).

    ``rows`` are exact; ``C``/``d`` are the float64 values for bounding, with ``d`` rounded
    up and ``coef_err[i]`` bounding ``sum_j |C_exact[i, j] - C[i, j]|`` (zero when every
    coefficient is a float, the usual case).
    """

    coeffs: tuple[tuple[Fraction, ...], ...]
    rhs: tuple[Fraction, ...]
    strict: tuple[bool, ...]
    C: np.ndarray = field(init=False)
    d: np.ndarray = field(init=False)
    d_in: np.ndarray = field(init=False)
    coef_err: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n_rows = len(self.coeffs)
        if not (len(self.rhs) == len(self.strict) == n_rows):
            raise SpecError("polytope rows, right-hand sides and strict flags differ in number")
        width = len(self.coeffs[0]) if n_rows else 0
        C = np.zeros((n_rows, width))
        err = np.zeros(n_rows)
        for i, row in enumerate(self.coeffs):
            for j, c in enumerate(row):
                C[i, j] = float(c)
                err[i] += abs(float(Fraction(C[i, j]) - c))
            if err[i]:
                err[i] = math.nextafter(err[i] * 2, math.inf)
        object.__setattr__(self, "C", C)
        object.__setattr__(self, "d", np.array([round_up(v) for v in self.rhs]))
        object.__setattr__(self, "d_in", np.array([round_down(v) for v in self.rhs]))
        object.__setattr__(self, "coef_err", err)

    @classmethod
    def from_rows(cls, C: Sequence[Sequence[Number]], d: Sequence[Number],
                  strict: Sequence[bool] | None = None) -> Polytope:
        coeffs = tuple(tuple(exact(c) for c in row) for row in C)
        return cls(coeffs, tuple(exact(v) for v in d), tuple(strict or [False] * len(coeffs)))

    @property
    def n_rows(self) -> int:
        return len(self.coeffs)

    def contains(self, y: np.ndarray) -> bool:
        """Exact check that the float output ``y`` satisfies every row."""
        ys = [Fraction(float(v)) for v in np.asarray(y, dtype=np.float64).reshape(-1)]
        for row, rhs, strict in zip(self.coeffs, self.rhs, self.strict):
            value = sum((c * v for c, v in zip(row, ys) if c), Fraction(0))
            if value > rhs or (strict and value == rhs):
                return False
        return True

    def violation(self, y: np.ndarray) -> np.ndarray:
        """Float64 ``max_i (C y - d)_i`` per output row of ``y`` (``<= 0`` means inside)."""
        y = np.asarray(y, dtype=np.float64).reshape(-1, self.C.shape[1] if self.n_rows else y.shape[-1])
        if self.n_rows == 0:
            return np.full(y.shape[0], -np.inf)
        return (y @ self.C.T - self.d_in).max(axis=1)


@dataclass(frozen=True, eq=False)
class Case:
    """One input box with the disjunction of unsafe output polytopes that applies on it."""

    box: Box
    unsafe: tuple[Polytope, ...]


@dataclass(eq=False)
class Property:
    """An unsafe set in VNN-LIB's sense; the property *holds* when it is unreachable."""

    cases: tuple[Case, ...]
    n_inputs: int
    n_outputs: int
    name: str = "property"
    source: str | None = None
    sha256: str | None = None

    def __post_init__(self) -> None:
        if not self.cases:
            raise SpecError(f"{self.name}: the property has no input region")
        for case in self.cases:
            if case.box.n != self.n_inputs:
                raise SpecError(f"{self.name}: a box has {case.box.n} inputs, expected {self.n_inputs}")
            for poly in case.unsafe:
                if poly.n_rows and poly.C.shape[1] != self.n_outputs:
                    raise SpecError(f"{self.name}: an output constraint has {poly.C.shape[1]} "
                                    f"columns, expected {self.n_outputs}")
        if self.sha256 is None:
            self.sha256 = self.fingerprint()

    def fingerprint(self) -> str:
        """sha256 of a canonical text form of the property (exact numbers)."""
        h = hashlib.sha256()
        h.update(f"{self.n_inputs} {self.n_outputs}\n".encode())
        for case in self.cases:
            h.update(("box " + " ".join(f"{lo}:{hi}" for lo, hi in zip(case.box.lower_exact,
                                                                      case.box.upper_exact)) + "\n").encode())
            for poly in case.unsafe:
                for row, rhs, strict in zip(poly.coeffs, poly.rhs, poly.strict):
                    h.update((" ".join(map(str, row)) + f" {'<' if strict else '<='} {rhs}\n").encode())
                h.update(b"or\n")
        return h.hexdigest()

    def check_fits(self, n_inputs: int, n_outputs: int, model_name: str = "the model") -> None:
        """Raise :class:`SpecMismatchError` unless the sizes match the model's."""
        where = f" ({self.source})" if self.source else ""
        if self.n_inputs != n_inputs:
            raise SpecMismatchError(f"spec{where} declares {self.n_inputs} inputs but {model_name} "
                                    f"has {n_inputs}")
        if self.n_outputs != n_outputs:
            raise SpecMismatchError(f"spec{where} declares {self.n_outputs} outputs but {model_name} "
                                    f"has {n_outputs}")

    def is_counterexample(self, x: np.ndarray, y: np.ndarray) -> bool:
        """Exact: ``x`` lies in some case's box and ``y`` in one of that case's polytopes."""
        for case in self.cases:
            if case.box.contains(x) and any(p.contains(y) for p in case.unsafe):
                return True
        return False
