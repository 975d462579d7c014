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
import numbers
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from verify.errors import SpecError, SpecMismatchError

Number = float | int | Fraction | str

#: The longest spec number accepted, in characters: every float64 written out exactly in
#: decimal (at most 767 significant digits, 1,076 characters) fits.
MAX_LITERAL_CHARS = 1200
#: Nonzero spec numbers below ``10**-MIN_DECIMAL_EXPONENT`` in magnitude are refused
#: (float64's smallest positive value is about 4.9e-324).
MIN_DECIMAL_EXPONENT = 1100
#: The largest numerator or denominator, in bits, of an exact value computed from spec
#: numbers (products of literals): about 3,600 decimal digits.
MAX_EXACT_BITS = 12_000
#: The largest float64, exactly: spec values (after exact arithmetic) must not exceed it
#: in magnitude, so that rounding them outward gives finite float64 values.
FLOAT64_MAX = Fraction(sys.float_info.max)
_ZERO = Fraction(0)

_DECIMAL = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?", re.ASCII)


def literal_problem(text: str) -> str | None:
    """Why the decimal literal ``text`` is not an acceptable spec number, or None.

    Runs in time linear in the length of ``text`` and never builds the exact value, so
    that ``1e999999999`` or a 5,000-digit literal cost nothing: accepted literals are
    decimals (``-0.5``, ``3``, ``.25``, ``1e-3``) of at most :data:`MAX_LITERAL_CHARS`
    characters whose value is within float64's range (magnitude at most
    1.7976931348623157e308, and zero or at least ``10**-MIN_DECIMAL_EXPONENT``).
    """
    if len(text) > MAX_LITERAL_CHARS:
        return f"has {len(text)} characters, more than the {MAX_LITERAL_CHARS} a spec number may have"
    match = _DECIMAL.fullmatch(text)
    if match is None or not (match.group(2) or match.group(3)):
        return "is not a decimal number"
    _sign, whole, frac, exponent = match.groups()
    frac = frac or ""
    digits = (whole + frac).lstrip("0")
    if not digits:
        return None  # zero, whatever its exponent
    # the leading nonzero digit stands for 10**lead
    lead = int(exponent or 0) + len(whole.lstrip("0")) - 1 if whole.lstrip("0") else \
        int(exponent or 0) - (len(frac) - len(frac.lstrip("0"))) - 1
    if lead > 308 or (lead == 308 and abs(Fraction(text)) > FLOAT64_MAX):
        return ("is out of range: the magnitude of a spec number must not exceed the largest float64, "
                "1.7976931348623157e308")
    if lead < -MIN_DECIMAL_EXPONENT:
        return (f"is out of range: a nonzero spec number must be at least 1e-{MIN_DECIMAL_EXPONENT} in "
                "magnitude (float64's smallest positive value is 4.9e-324)")
    return None


def literal_value(text: str) -> Fraction:
    """The exact value of a literal that :func:`literal_problem` accepts (zero without its
    exponent: ``Fraction("0e999999999")`` would compute ``10**999999999``)."""
    match = _DECIMAL.fullmatch(text)
    if match is not None and not ((match.group(2) or "") + (match.group(3) or "")).strip("0"):
        return Fraction(0)
    return Fraction(text)


def value_problem(value: Fraction) -> str | None:
    """Why an exact value computed from spec numbers cannot be used, or None."""
    top, bottom = value.numerator.bit_length(), value.denominator.bit_length()
    if top > MAX_EXACT_BITS or bottom > MAX_EXACT_BITS:
        return f"needs more than {MAX_EXACT_BITS} bits to write exactly (too many digits or products)"
    if top - bottom >= 1023 and abs(value) > FLOAT64_MAX:  # else |value| < 2**1023
        return "is out of range: its magnitude exceeds the largest float64, 1.7976931348623157e308"
    return None


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def exact(value: Number) -> Fraction:
    """The exact rational value of a spec number (a decimal string, an int, a float)."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, Fraction):
        result = value
    elif isinstance(value, str):
        problem = literal_problem(value.strip())
        if problem is not None:
            raise SpecError(f"spec number {_short(value)} {problem}")
        result = literal_value(value.strip())
    elif isinstance(value, int):
        result = Fraction(value)
    elif isinstance(value, numbers.Rational):
        result = Fraction(int(value.numerator), int(value.denominator))
    elif isinstance(value, (float, np.floating, numbers.Real)):
        f = float(value)
        if not math.isfinite(f):
            raise SpecError(f"spec number {value!r} is not finite")
        result = Fraction(f)
    else:
        raise SpecError(f"expected a spec number (an int, a float, a Fraction or a decimal string), "
                        f"found {type(value).__name__}")
    problem = value_problem(result)
    if problem is not None:
        raise SpecError(f"spec number {problem}")
    return result


def round_down(value: Fraction) -> float:
    """Largest float64 that is <= value (``value`` within float64's range)."""
    f = float(value)
    return f if Fraction(f) <= value else math.nextafter(f, -math.inf)


def round_up(value: Fraction) -> float:
    """Smallest float64 that is >= value (``value`` within float64's range)."""
    f = float(value)
    return f if Fraction(f) >= value else math.nextafter(f, math.inf)


def _checked(values: object, what: str) -> tuple[Fraction, ...]:
    """The values as exact Fractions within float64's range, or a SpecError naming ``what``."""
    if not isinstance(values, (tuple, list)):
        raise SpecError(f"{what}: expected a tuple of numbers, found {type(values).__name__}")
    out = []
    for v in values:
        if type(v) is not Fraction:
            v = exact(v)
        elif v:
            problem = value_problem(v)
            if problem is not None:
                raise SpecError(f"{what}: a value {problem}")
        out.append(v)
    return tuple(out)


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
        object.__setattr__(self, "lower_exact", _checked(self.lower_exact, "box lower bounds"))
        object.__setattr__(self, "upper_exact", _checked(self.upper_exact, "box upper bounds"))
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
        if not isinstance(self.coeffs, (tuple, list)):
            raise SpecError(f"polytope coefficients: expected a tuple of rows, found {type(self.coeffs).__name__}")
        n_rows = len(self.coeffs)
        rhs = _checked(self.rhs, "polytope right-hand sides")
        if not isinstance(self.strict, (tuple, list)) or not all(isinstance(b, (bool, np.bool_)) for b in self.strict):
            raise SpecError("polytope strict flags: expected a tuple of booleans")
        if not (len(rhs) == len(self.strict) == n_rows):
            raise SpecError("polytope rows, right-hand sides and strict flags differ in number")
        width = len(self.coeffs[0]) if n_rows else 0
        C = np.zeros((n_rows, width))
        err = np.zeros(n_rows)
        rows = []
        for i, row in enumerate(self.coeffs):
            if not isinstance(row, tuple) or any(type(c) is not Fraction for c in row):
                row = _checked(row, "polytope coefficients")
            if len(row) != width:
                raise SpecError(f"polytope coefficients: row {i} has {len(row)} entries, row 0 has {width}")
            for j, c in enumerate(row):
                if c is _ZERO or not c:
                    continue
                problem = value_problem(c)
                if problem is not None:
                    raise SpecError(f"polytope coefficients: a value {problem}")
                C[i, j] = float(c)
                num, den = c.numerator, c.denominator
                if den & (den - 1) or abs(num).bit_length() > 53:  # not obviously a float64
                    err[i] += abs(float(Fraction(C[i, j]) - c))
            if err[i]:
                err[i] = math.nextafter(err[i] * 2, math.inf)
            rows.append(row)
        object.__setattr__(self, "coeffs", tuple(rows))
        object.__setattr__(self, "rhs", rhs)
        object.__setattr__(self, "strict", tuple(bool(b) for b in self.strict))
        object.__setattr__(self, "C", C)
        object.__setattr__(self, "d", np.array([round_up(v) for v in rhs]))
        object.__setattr__(self, "d_in", np.array([round_down(v) for v in rhs]))
        object.__setattr__(self, "coef_err", err)

    @classmethod
    def everything(cls, n_outputs: int) -> Polytope:
        """All outputs: the one row ``0 y <= 0`` (an empty conjunction, as a row the bounding
        code can handle: its lower bound is 0, never above ``d``, so it is never verified)."""
        return cls((tuple([Fraction(0)] * n_outputs),), (Fraction(0),), (False,))

    @classmethod
    def nothing(cls, n_outputs: int) -> Polytope:
        """No output: the one row ``0 y <= -1`` (an empty disjunction of polytopes)."""
        return cls((tuple([Fraction(0)] * n_outputs),), (Fraction(-1),), (False,))

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


def _normal_case(case: Case, n_outputs: int) -> Case:
    """The case with every polytope given at least one row and at least one polytope.

    A polytope without rows (a constant-true constraint, e.g. ``(assert (<= 0 1))``)
    contains every output: it becomes :meth:`Polytope.everything`, so any input of the
    box is a counterexample.  A case without polytopes (every disjunct constant false)
    reaches no output: it gets :meth:`Polytope.nothing`, which every bound refutes.
    The rest of verify thus never sees an empty constraint matrix.
    """
    if case.unsafe and all(p.n_rows for p in case.unsafe):
        return case
    polys = tuple(p if p.n_rows else Polytope.everything(n_outputs) for p in case.unsafe)
    return Case(case.box, polys or (Polytope.nothing(n_outputs),))


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
        cases = []
        for case in self.cases:
            if case.box.n != self.n_inputs:
                raise SpecError(f"{self.name}: a box has {case.box.n} inputs, expected {self.n_inputs}")
            for poly in case.unsafe:
                if poly.n_rows and poly.C.shape[1] != self.n_outputs:
                    raise SpecError(f"{self.name}: an output constraint has {poly.C.shape[1]} "
                                    f"columns, expected {self.n_outputs}")
            cases.append(_normal_case(case, self.n_outputs))
        self.cases = tuple(cases)
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
