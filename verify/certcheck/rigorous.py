"""float64 arithmetic with proven error bounds (the numerical core of the checker).

Every helper returns a float result together with, or already widened by, a bound on
its rounding error, using the standard model of IEEE-754 round-to-nearest: a dot
product of length ``n`` computed in any order is within ``gamma(n) * sum |a_i b_i|`` of
the exact value, ``gamma(n) = n u / (1 - n u)``, ``u = 2^-53``.  Bounds are doubled to
cover the rounding of the error estimate itself, and ``TINY`` absorbs underflow.
"""

from __future__ import annotations

import numpy as np

U = 2.0 ** -53
TINY = 1e-300


def gamma(n: int) -> float:
    """Relative error bound of a length-``n`` dot product (doubled for safety)."""
    n = max(int(n), 1) + 2
    return 2.0 * n * U / (1.0 - n * U)


def down(x: np.ndarray | float) -> np.ndarray:
    """The next float below ``x`` (one ulp outward)."""
    return np.nextafter(x, -np.inf)


def up(x: np.ndarray | float) -> np.ndarray:
    """The next float above ``x`` (one ulp outward)."""
    return np.nextafter(x, np.inf)


def magnitude(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """``max(|lower|, |upper|)``: the largest absolute value in an interval (exact)."""
    return np.maximum(np.abs(lower), np.abs(upper))


def affine_interval(W: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigorous enclosure of ``{W x + b : lo <= x <= hi}`` for a dense ``W`` (batch first)."""
    c = (lo + hi) / 2
    r = up(np.maximum(hi - c, c - lo))  # [c - r, c + r] contains [lo, hi]
    mid = c @ W.T + b
    absW = np.abs(W)
    rad = r @ absW.T
    err = gamma(W.shape[1] + 1) * (np.abs(c) @ absW.T + np.abs(b) + rad) + TINY
    return down(mid - rad - err), up(mid + rad + err)


def diag_interval(s: np.ndarray, s_err: np.ndarray, c: np.ndarray, c_err: np.ndarray, lo: np.ndarray,
                  hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigorous enclosure of ``{s x + c}`` with ``s`` within ``s_err`` and ``c`` within ``c_err``."""
    a, b = lo * s, hi * s
    low, high = np.minimum(a, b), np.maximum(a, b)
    mag = magnitude(lo, hi)
    err = (s_err + 2 * U * np.abs(s)) * mag + c_err + 2 * U * (np.abs(low) + np.abs(high) + np.abs(c)) + TINY
    return down(low + c - err), up(high + c + err)
