"""Human-readable text for results (the CLI's default output)."""

from __future__ import annotations

from typing import Any


def _margin(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"


def format_check(result: Any) -> str:
    """A few lines: verdict, what decided it, and the counterexample if any."""
    head = f"{result.verdict.upper()}  {result.spec} on {result.model}"
    lines = [head, f"  method: {result.method}   margin: {_margin(result.margin)}   time: {result.seconds:.2f} s"]
    if result.reason:
        lines.append(f"  reason: {result.reason}")
    for key, value in result.details.items():
        if isinstance(value, (str, int, float)):
            lines.append(f"  {key}: {value}")
    if result.counterexample is not None:
        lines.append("  counterexample (replayed on the original model):")
        lines.append("  " + result.counterexample.witness().replace("\n", "\n  "))
    return "\n".join(lines)
