"""hypothesis strategies that draw inputs from a property's region.

Use them in your own tests::

    from hypothesis import given
    from verify.strategies import inputs

    @given(inputs("specs/robust.vnnlib"))
    def test_model_keeps_its_class(x):
        ...

A region is a box, an L-infinity ball (a box made by :func:`verify.spec.linf_ball`) or
a disjunction of boxes (the cases of a :class:`~verify.spec.Property`).  Every drawn
input is a flat float32 array that lies inside the *real* box (bounds rounded inward).

Where the mass goes: each input coordinate is the centre, a face (lower or upper
bound) or an interior value, so corners and faces are reached often, which is where
the counterexamples of piecewise-linear networks tend to sit.  For many inputs
(more than :data:`LOW_DIM`) a whole vector is drawn at once: a few coordinates moved
away from the centre, every coordinate on a coarse grid that is half faces, or a
corner of the box.  Shrinking moves towards the first case, the centre of the box
and fewer coordinates away from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from verify.errors import SpecError
from verify.falsify.region import Region
from verify.spec import load_spec
from verify.spec.property import Box, Case, Property

#: Up to this many inputs, coordinates are drawn one by one (full float precision).
LOW_DIM = 32
#: Most coordinates the sparse high-dimensional mode moves away from the centre.
SPARSE_MAX = 16
#: Interior offsets are integers ``k`` in ``[-RESOLUTION, RESOLUTION]`` read as ``k / RESOLUTION``:
#: hypothesis's target phase hill-climbs integers by adding to them (it cannot do that with
#: floats in ``[-1, 1]``), and 2**24 steps per half-width is float32 resolution.
RESOLUTION = 2 ** 24

Spec = Property | Box | Case | Sequence[Box] | str | Path


def coordinate() -> st.SearchStrategy[float]:
    """An offset in ``[-1, 1]`` (``-1`` lower face, ``0`` centre, ``1`` upper face).

    One time in four the centre, one in four a face, otherwise an interior point of a
    grid of ``2 * RESOLUTION + 1`` offsets; it shrinks to the centre.
    """
    interior = st.integers(-RESOLUTION, RESOLUTION).map(lambda k: k / RESOLUTION)
    return st.one_of(st.just(0.0), interior, interior, st.sampled_from([-1.0, 1.0]))


def _level(byte: int) -> float:
    # 0 -> centre; odd -> below, even -> above; |offset| grows with the byte, and every
    # byte >= 127 is a face, so about half the coordinates of a random vector sit on one.
    if byte == 0:
        return 0.0
    magnitude = min(1.0, ((byte + 1) // 2) / 64.0)
    return -magnitude if byte % 2 else magnitude


_LEVELS = np.array([_level(b) for b in range(256)])


def _from_levels(data: bytes) -> np.ndarray:
    return _LEVELS[np.frombuffer(data, dtype=np.uint8)]


def _from_bits(data: bytes, n: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:n]
    return np.where(bits == 1, 1.0, -1.0)


def _from_sparse(pairs: list[tuple[int, float]], n: int) -> np.ndarray:
    t = np.zeros(n)
    for i, v in pairs:
        t[i] = v
    return t


def offsets(n: int) -> st.SearchStrategy[np.ndarray]:
    """Offset vectors of length ``n`` (float64 in ``[-1, 1]``), see the module docstring."""
    if n <= LOW_DIM:
        return st.tuples(*[coordinate() for _ in range(n)]).map(lambda t: np.array(t, dtype=np.float64))
    sparse = st.lists(st.tuples(st.integers(0, n - 1), coordinate()), max_size=min(n, SPARSE_MAX)).map(
        lambda pairs: _from_sparse(pairs, n))
    levels = st.binary(min_size=n, max_size=n).map(_from_levels)
    corners = st.binary(min_size=(n + 7) // 8, max_size=(n + 7) // 8).map(lambda b: _from_bits(b, n))
    return st.one_of(sparse, levels, corners)


def region_points(prop: Property) -> st.SearchStrategy[tuple[int, np.ndarray]]:
    """``(case index, float32 input)`` pairs over the cases of ``prop`` whose box holds a float32 point."""
    regions = [(i, Region.of(case)) for i, case in enumerate(prop.cases)]
    regions = [(i, r) for i, r in regions if not r.empty]
    if not regions:
        raise SpecError(f"{prop.name}: no float32 input lies in the property's region")
    t_strategy = offsets(prop.n_inputs)

    def in_case(k: int) -> st.SearchStrategy[tuple[int, np.ndarray]]:
        ci, region = regions[k]
        return t_strategy.map(lambda t: (ci, region.point(t)))

    if len(regions) == 1:
        return in_case(0)
    return st.integers(0, len(regions) - 1).flatmap(in_case)


def as_property(spec: Spec) -> Property:
    """A :class:`Property` for a spec file path, a property, a case, a box or a list of boxes.

    Boxes become cases with no unsafe set (only the region matters to :func:`inputs`).
    """
    if isinstance(spec, Property):
        return spec
    if isinstance(spec, (str, Path)):
        return load_spec(spec)
    if isinstance(spec, Case):
        return Property((spec,), spec.box.n, 0, name="region")
    boxes = [spec] if isinstance(spec, Box) else list(spec)
    if not boxes or not all(isinstance(b, Box) for b in boxes):
        raise SpecError("inputs(): expected a Property, a spec file, a Box or a non-empty list of Boxes")
    return Property(tuple(Case(b, ()) for b in boxes), boxes[0].n, 0, name="region")


def inputs(spec: Spec, *, shape: Sequence[int] | None = None) -> st.SearchStrategy[np.ndarray]:
    """Float32 inputs from the region of ``spec`` (see :func:`as_property` for what it accepts).

    Inputs are flat (``X_0 .. X_{n-1}``) unless ``shape`` is given, then reshaped to it.
    """
    prop = as_property(spec)
    strategy = region_points(prop).map(lambda pair: pair[1])
    if shape is not None:
        target = tuple(int(d) for d in shape)
        if int(np.prod(target)) != prop.n_inputs:
            raise SpecError(f"inputs(): shape {target} does not hold {prop.n_inputs} inputs")
        return strategy.map(lambda x: x.reshape(target))
    return strategy
