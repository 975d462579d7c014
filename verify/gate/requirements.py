"""Decide whether each requirement holds, and the gate's exit code.

A requirement's status is ``"pass"``, ``"fail"`` (a definite failure: a counterexample,
a regression, a rate that cannot be reached) or ``"unknown"`` (it fails only because
some answers are unknown; more time might make it pass).

===================  ==========  ==========  ==========
require              verified    falsified   unknown
===================  ==========  ==========  ==========
``verified``         pass        fail        unknown
``not-falsified``    pass        fail        pass
``none``             pass        pass        pass
===================  ==========  ==========  ==========

A family with ``min-verified-rate`` r over n rows passes when at least ``ceil(r n)`` rows
are verified; it is ``unknown`` when it would pass if every unknown row were verified,
and ``fail`` otherwise.  Exit code: 1 if any status is ``fail``, else 3 if any is
``unknown``, else 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from verify.errors import EXIT_FALSIFIED, EXIT_UNKNOWN, EXIT_VERIFIED

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"


def property_status(require: str, verdict: str) -> str:
    """The status of one property's requirement given its verdict."""
    if require == "verified":
        return {"verified": PASS, "falsified": FAIL}.get(verdict, UNKNOWN)
    if require == "not-falsified":
        return FAIL if verdict == "falsified" else PASS
    return PASS  # "none" and rows counted by their family's rate


def needed_rows(rate: float, rows: int) -> int:
    """Rows that must be verified for ``rate`` (tolerant of float noise: 0.7 * 10 needs 7)."""
    return math.ceil(rate * rows - 1e-9)


def family_status(rate: float | None, verified: int, unknown: int, rows: int,
                  row_statuses: Iterable[str] = ()) -> str:
    """A family's status: by its rate when it has one, else the worst of its rows'."""
    if rate is None:
        return worst(row_statuses)
    need = needed_rows(rate, rows)
    if verified >= need:
        return PASS
    return UNKNOWN if verified + unknown >= need else FAIL


def worst(statuses: Iterable[str]) -> str:
    statuses = set(statuses)
    return FAIL if FAIL in statuses else UNKNOWN if UNKNOWN in statuses else PASS


def exit_code(statuses: Iterable[str]) -> int:
    """0 when everything passes, 1 on any definite failure, 3 when only unknowns fail."""
    return {PASS: EXIT_VERIFIED, FAIL: EXIT_FALSIFIED, UNKNOWN: EXIT_UNKNOWN}[worst(statuses)]
