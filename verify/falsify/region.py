"""The float32 points of one case's input box, addressed by offsets from its centre.

Every search in this package works in *offsets*: ``t[i] = -1`` is the lower face of
input ``i``, ``0`` the centre, ``+1`` the upper face.  :meth:`Region.point` turns offsets
into float32 inputs that lie inside the real box (inner bounds, rounded inward), so a
drawn point never fails the box part of :func:`verify.falsify.base.replay`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from verify.falsify.base import float32_box
from verify.spec.property import Box, Case


@dataclass(frozen=True, eq=False)
class Region:
    """The float32 box ``[lower, upper]`` of a case and its float32 centre."""

    lower: np.ndarray
    upper: np.ndarray
    center: np.ndarray

    @classmethod
    def of(cls, case: Case | Box) -> Region:
        box = case if isinstance(case, Box) else case.box
        lo, hi = float32_box(Case(box, ()))
        mid = ((lo.astype(np.float64) + hi.astype(np.float64)) / 2).astype(np.float32)
        return cls(lo, hi, np.minimum(np.maximum(mid, lo), hi))

    @property
    def n(self) -> int:
        return int(self.lower.shape[0])

    @property
    def empty(self) -> bool:
        """True when no float32 point lies in the box (a degenerate box at a non-float32 value)."""
        return bool(np.any(self.lower > self.upper))

    def point(self, t: np.ndarray) -> np.ndarray:
        """Float32 inputs for offsets ``t`` (shape ``[..., n]``), clipped into the box."""
        t = np.clip(np.asarray(t, dtype=np.float64), -1.0, 1.0)
        c = self.center.astype(np.float64)
        down = c - self.lower.astype(np.float64)
        up = self.upper.astype(np.float64) - c
        x = c + np.where(t < 0, t * down, t * up)
        return np.minimum(np.maximum(x.astype(np.float32), self.lower), self.upper)

    def offsets(self, x: np.ndarray) -> np.ndarray:
        """The offsets of float inputs ``x`` (inverse of :meth:`point` up to rounding)."""
        x = np.asarray(x, dtype=np.float64)
        c = self.center.astype(np.float64)
        down = c - self.lower.astype(np.float64)
        up = self.upper.astype(np.float64) - c
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(x < c, (x - c) / np.where(down > 0, down, 1.0), (x - c) / np.where(up > 0, up, 1.0))
        return np.clip(t, -1.0, 1.0)

    def away(self, x: np.ndarray) -> np.ndarray:
        """Boolean mask of the inputs of ``x`` that differ from the centre."""
        return np.asarray(x, dtype=np.float32) != self.center
