"""A small Python API for writing properties without VNN-LIB.

A property is an input *region* and an output *requirement* (what must hold).  The
requirement is turned into the unsafe set the rest of verify works with::

    from verify.spec import linf_ball, argmax_is, make_property
    prop = make_property(linf_ball(x0, eps=0.05, clip=(0, 1)), argmax_is(3, n_outputs=10))

Regions: :func:`box`, :func:`linf_ball`.  Requirements: :func:`argmax_is`,
:func:`output_between`, :func:`linear_holds`; ``&`` combines requirements (all must hold).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from verify.errors import SpecError
from verify.spec.property import Box, Case, Number, Polytope, Property, exact


def box(lower: Sequence[Number], upper: Sequence[Number]) -> Box:
    """The input box ``lower <= x <= upper`` (flat input order)."""
    lower, upper = list(np.ravel(np.asarray(lower, dtype=object))), list(np.ravel(np.asarray(upper, dtype=object)))
    if len(lower) != len(upper):
        raise SpecError(f"box: lower has {len(lower)} values but upper has {len(upper)}")
    return Box.from_bounds(lower, upper)


def linf_ball(center: Sequence[float], eps: float, clip: tuple[float, float] | None = None) -> Box:
    """All inputs within L-infinity distance ``eps`` of ``center``, optionally clipped to ``clip``."""
    if eps < 0:
        raise SpecError(f"linf_ball: eps must be >= 0, got {eps}")
    c = [exact(float(v)) for v in np.ravel(np.asarray(center, dtype=np.float64))]
    e = exact(eps)
    lo = [v - e for v in c]
    hi = [v + e for v in c]
    if clip is not None:
        a, b = exact(clip[0]), exact(clip[1])
        lo = [max(v, a) for v in lo]
        hi = [min(v, b) for v in hi]
    return Box(tuple(lo), tuple(hi))


@dataclass(frozen=True)
class Requirement:
    """What must hold of the outputs, stored as the unsafe disjunction it excludes."""

    unsafe: tuple[Polytope, ...]
    n_outputs: int
    description: str

    def __and__(self, other: Requirement) -> Requirement:
        if other.n_outputs != self.n_outputs:
            raise SpecError("cannot combine requirements over different numbers of outputs")
        return Requirement(self.unsafe + other.unsafe, self.n_outputs,
                           f"{self.description} and {other.description}")


def _row(n: int, entries: dict[int, Fraction]) -> tuple[Fraction, ...]:
    row = [Fraction(0)] * n
    for i, v in entries.items():
        if not 0 <= i < n:
            raise SpecError(f"output index {i} out of range for {n} outputs")
        row[i] += v
    return tuple(row)


def argmax_is(k: int, n_outputs: int) -> Requirement:
    """Output ``k`` is strictly larger than every other output (unsafe: some ``y_j >= y_k``)."""
    if not 0 <= k < n_outputs:
        raise SpecError(f"argmax_is: class {k} out of range for {n_outputs} outputs")
    polys = tuple(Polytope((_row(n_outputs, {k: Fraction(1), j: Fraction(-1)}),), (Fraction(0),), (False,))
                  for j in range(n_outputs) if j != k)
    return Requirement(polys, n_outputs, f"argmax is {k}")


def output_between(i: int, low: Number | None, high: Number | None, n_outputs: int) -> Requirement:
    """``low <= y_i <= high`` (either side may be None)."""
    polys = []
    if low is not None:
        polys.append(Polytope((_row(n_outputs, {i: Fraction(1)}),), (exact(low),), (True,)))  # y_i < low
    if high is not None:
        polys.append(Polytope((_row(n_outputs, {i: Fraction(-1)}),), (-exact(high),), (True,)))  # y_i > high
    if not polys:
        raise SpecError("output_between: give low, high or both")
    return Requirement(tuple(polys), n_outputs, f"{low} <= y_{i} <= {high}")


def linear_holds(C: Sequence[Sequence[Number]], d: Sequence[Number]) -> Requirement:
    """Every row of ``C y <= d`` holds (unsafe: some row is violated)."""
    rows = [[exact(v) for v in row] for row in C]
    if len(rows) != len(d):
        raise SpecError(f"linear_holds: C has {len(rows)} rows but d has {len(d)} values")
    n = len(rows[0]) if rows else 0
    polys = tuple(Polytope((tuple(-v for v in row),), (-exact(b),), (True,)) for row, b in zip(rows, d))
    return Requirement(polys, n, "C y <= d")


def make_property(region: Box | Sequence[Box], requirement: Requirement, name: str = "property") -> Property:
    """A property: for every input in ``region`` (one box or several), ``requirement`` holds."""
    boxes = [region] if isinstance(region, Box) else list(region)
    if not boxes:
        raise SpecError("make_property: the region is empty")
    n_in = boxes[0].n
    return Property(tuple(Case(b, requirement.unsafe) for b in boxes), n_in, requirement.n_outputs, name=name)
