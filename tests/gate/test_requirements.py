"""verify.gate.requirements: the requirement table, family rates and the exit code."""

from __future__ import annotations

import pytest

from verify.gate.requirements import exit_code, family_status, needed_rows, property_status


@pytest.mark.parametrize("require, verdict, status", [
    ("verified", "verified", "pass"), ("verified", "falsified", "fail"), ("verified", "unknown", "unknown"),
    ("not-falsified", "verified", "pass"), ("not-falsified", "falsified", "fail"),
    ("not-falsified", "unknown", "pass"),
    ("none", "falsified", "pass"), ("none", "unknown", "pass"), ("family-rate", "falsified", "pass"),
])
def test_property_status(require: str, verdict: str, status: str) -> None:
    assert property_status(require, verdict) == status


def test_family_rate() -> None:
    assert needed_rows(0.7, 10) == 7 and needed_rows(1.0, 3) == 3 and needed_rows(0.0, 5) == 0
    assert family_status(0.7, verified=7, unknown=0, rows=10) == "pass"
    assert family_status(0.7, verified=6, unknown=1, rows=10) == "unknown"  # an unknown row could still pass it
    assert family_status(0.7, verified=6, unknown=0, rows=10) == "fail"
    assert family_status(None, 0, 0, 2, ["pass", "unknown"]) == "unknown"
    assert family_status(None, 0, 0, 2, ["fail", "unknown"]) == "fail"


def test_exit_code() -> None:
    assert exit_code([]) == 0 and exit_code(["pass", "pass"]) == 0
    assert exit_code(["pass", "unknown"]) == 3
    assert exit_code(["unknown", "fail", "pass"]) == 1
