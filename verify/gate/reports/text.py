"""The gate's closing summary on stdout: one line per named property and family, what
failed, regressions and shrinking margins, the outcome and where the reports are."""

from __future__ import annotations

from typing import Any

from verify.gate.reports.markdown import OUTCOME, headline, margin_text


def format_summary(report: dict[str, Any], files: list[Any], seconds: float) -> str:
    """The text summary."""
    lines = []
    named = [p for p in report["properties"] if p["family"] is None]
    if named:
        width = max(len(p["id"]) for p in named)
        for p in named:
            cached = "  cached" if (p.get("cache") or {}).get("hit") else ""
            lines.append(f"  {p['id']:<{width}}  {p['verdict']:<9}  margin {margin_text(p['margin']):>8}  "
                         f"{float(p['seconds']):6.2f} s  requires {p['require']:<13} {p['status'].upper()}{cached}")
    for f in report["families"]:
        lines.append(f"  family {f['id']}: {f['verified']}/{f['rows']} verified ({100 * f['verified_rate']:.1f}%), "
                     f"{f['falsified']} falsified, {f['unknown']} unknown  {f['status'].upper()}")
    for fail in report["failures"]:
        lines.append(f"  {fail['status'].upper()}: {fail['message']}")
    base = report.get("baseline")
    if base:
        lines.append(f"  baseline {base['path']}: {len(base['regressions'])} regression(s)")
        for m in base["margin_decreases"]:
            lines.append(f"    margin of {m['id']} shrank: {m['before']:.4g} -> {m['now']:.4g}")
        for r in base["family_rate_drops"]:
            lines.append(f"    verified rate of family {r['id']} dropped: {100 * r['before']:.1f}% -> "
                         f"{100 * r['now']:.1f}%")
    lines.append(f"gate: {OUTCOME[report['outcome']]} (exit {report['exit_code']}), {headline(report)}, "
                 f"{seconds:.2f} s")
    if files:
        lines.append("wrote " + ", ".join(str(f) for f in files if not str(f).endswith((".json", ".vnnlib"))
                                          or str(f).endswith("report.json")))
    return "\n".join(lines)
