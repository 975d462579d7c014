"""Markdown of a gate report, short enough for a pull-request comment.

The outcome line, the named properties' table, the families as rates (certified robust
accuracy), what failed, the comparison with the baseline, and counterexamples in
collapsed ``<details>`` blocks.  Family rows are not listed one by one; only those that
break a requirement appear (at most :data:`MAX_ROWS` of them).
"""

from __future__ import annotations

from typing import Any

MAX_ROWS = 20
OUTCOME = {"pass": "PASS", "fail": "FAIL", "unknown": "UNKNOWN (only unknown answers fail)"}


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def margin_text(value: Any) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value:.4g}"


def headline(report: dict[str, Any]) -> str:
    c = report["counts"]
    cached = f" ({c['cached']} from the cache, re-checked)" if c["cached"] else ""
    return (f"{c['total']} properties: {c['verified']} verified, {c['falsified']} falsified, {c['unknown']} unknown"
            + cached)


def render_markdown(report: dict[str, Any]) -> str:
    """The Markdown text."""
    out = [f"## verify gate: {OUTCOME[report['outcome']]}", "",
           f"{headline(report)} · exit code {report['exit_code']} · {float(report['seconds']):.2f} s · "
           f"{report['tool']} · manifest `{report['manifest']}`", ""]
    named = [p for p in report["properties"] if p["family"] is None]
    if named:
        out += ["| property | model | requires | verdict | margin | time | status |",
                "|---|---|---|---|---|---|---|"]
        for p in named:
            cached = " (cached)" if (p.get("cache") or {}).get("hit") else ""
            out.append(f"| {_cell(p['id'])} | {_cell(p['model'])} | {p['require']} | **{p['verdict']}** | "
                       f"{margin_text(p['margin'])} | {float(p['seconds']):.2f} s{cached} | {p['status']} |")
        out.append("")
    if report["families"]:
        out += ["### Families (certified robust accuracy)", "",
                "| family | model | eps | rows | verified | falsified | unknown | verified rate | needs | status |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for f in report["families"]:
            needs = f"{f['needed']} ({f['min_verified_rate']:g})" if f["min_verified_rate"] is not None \
                else f"each: {f['require']}"
            out.append(f"| {_cell(f['id'])} | {_cell(f['model'])} | {f['eps']:g} | {f['rows']} | {f['verified']} | "
                       f"{f['falsified']} | {f['unknown']} | {100 * f['verified_rate']:.1f}% | {needs} | "
                       f"{f['status']} |")
        out.append("")
    if report["failures"]:
        out += ["### Failures", ""]
        for fail in report["failures"][:MAX_ROWS]:
            out.append(f"- **{fail['status']}**: {_cell(fail['message'])}")
        if len(report["failures"]) > MAX_ROWS:
            out.append(f"- ... and {len(report['failures']) - MAX_ROWS} more (see report.json)")
        out.append("")
    base = report.get("baseline")
    if base:
        out += [f"### Against the baseline (`{base['path']}`)", ""]
        if base["regressions"]:
            out += [f"- **regression**: {_cell(r['message'])}" for r in base["regressions"]]
        else:
            out.append("- no regressions")
        if base["margin_decreases"]:
            out += ["", "Shrinking margins:", "", "| property | before | now | change |", "|---|---|---|---|"]
            for m in base["margin_decreases"][:MAX_ROWS]:
                rel = f" ({100 * m['relative']:+.1f}%)" if m["relative"] is not None else ""
                out.append(f"| {_cell(m['id'])} | {m['before']:.4g} | {m['now']:.4g} | {m['change']:+.4g}{rel} |")
        for r in base["family_rate_drops"]:
            out.append(f"- family {_cell(r['id'])}: verified rate {100 * r['before']:.1f}% -> {100 * r['now']:.1f}%")
        if base["removed"]:
            out.append(f"- no longer in the manifest: {', '.join(map(_cell, base['removed'][:MAX_ROWS]))}")
        out.append("")
    cexs = [p for p in report["properties"] if p.get("counterexample") and (p["family"] is None
                                                                         or p["status"] != "pass")]
    if cexs:
        out += ["### Counterexamples", ""]
        for p in cexs[:MAX_ROWS]:
            cex = p["counterexample"]
            out += [f"<details><summary>{_cell(p['id'])}: counterexample (replayed on the original model)</summary>",
                    "", "```", "x = [" + ", ".join(f"{v:.9g}" for v in cex["x"]) + "]",
                    "y = [" + ", ".join(f"{v:.9g}" for v in cex["y"]) + "]", "```", "", "</details>", ""]
    return "\n".join(out).rstrip() + "\n"
