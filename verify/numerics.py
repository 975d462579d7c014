"""The decision rule's numbers: how far above zero a float64 bound must be before it counts.

README, "What a verdict means": a float64 lower bound counts only when it clears
:func:`decision_threshold` (1e-7 plus 1e-9 of the magnitudes involved); the certificate
checker then re-derives the bound with rigorous rounding-error bounds.  The check, the
compression passes (which ReLUs are stable) and the module split use the same rule.
"""

from __future__ import annotations

#: Relative margin demanded on top of a float64 bound (see README: 1e-9 of the magnitudes
#: involved covers float64 rounding in these computations with a wide safety factor).
RELATIVE_SAFETY = 1e-9
#: Absolute floor of the margin: never trust a bound closer to the boundary than this.
ABSOLUTE_SAFETY = 1e-7


def decision_threshold(scale: float) -> float:
    """How far above zero a float64 lower bound must be before we believe it."""
    return ABSOLUTE_SAFETY + RELATIVE_SAFETY * max(scale, 0.0)
