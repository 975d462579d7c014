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
    pair = result.details.get("pair_lines")
    if pair:
        lines.append("  counterexample pair (replayed on the original model(s)):")
        lines.extend("    " + line for line in pair)
    if result.counterexample is not None:
        lines.append("  counterexample (replayed on the original model):")
        lines.append("  " + result.counterexample.witness().replace("\n", "\n  "))
    return "\n".join(lines)


def format_error(spec: str, model: str, message: str) -> str:
    """The report of a spec of a batch that could not be checked (its one-line error)."""
    return f"ERROR  {spec} on {model}\n  {message}"


def format_summary(rows: list[dict[str, Any]], seconds: float) -> str:
    """The table of a batch: one row per spec (spec, verdict, method, margin, seconds), then the totals.

    ``rows`` are the batch's JSON objects (``verdict`` ``"error"`` with ``error`` for a
    spec that could not be checked); an error's message, or the reason of an unknown,
    ends its row.
    """
    header = ("spec", "verdict", "method", "margin", "seconds")
    table, notes = [], []
    for row in rows:
        if row["verdict"] == "error":
            table.append((row["spec"], "ERROR", "-", "-", "-"))
            notes.append(row["error"])
        else:
            table.append((row["spec"], row["verdict"].upper(), row["method"], _margin(row["margin"]),
                          f"{row['seconds']:.2f}"))
            notes.append(row.get("reason", "") if row["verdict"] == "unknown" else "")
    widths = [max(len(r[k]) for r in [header, *table]) for k in range(len(header))]

    def line(cells: tuple[str, ...], note: str = "") -> str:
        left = "  ".join(c.ljust(w) for c, w in zip(cells[:3], widths[:3], strict=True))
        right = "  ".join(c.rjust(w) for c, w in zip(cells[3:], widths[3:], strict=True))
        return f"{left}  {right}" + (f"  {note}" if note else "")

    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("verified", "falsified", "unknown", "error")}
    totals = (f"verified {counts['verified']}, falsified {counts['falsified']}, unknown {counts['unknown']}, "
              f"errors {counts['error']}, total {seconds:.2f} s")
    return "\n".join([line(header), *(line(r, n) for r, n in zip(table, notes, strict=True)), totals])
