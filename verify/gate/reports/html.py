"""A self-contained HTML page of a gate report (no scripts, no external files).

Sections: the outcome banner; the verdict table (``id="verdict-table"``: verdicts,
requirements, margins, times, certificates, counterexamples); families as rates with
their rows; failures; the baseline comparison; counterexamples; certificates; and the
module-graph pictures, embedded as SVG data URIs.  Everything user-supplied is escaped.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from verify.gate.reports.markdown import OUTCOME, headline, margin_text

#: Family rows listed in the page, per family (all of them in report.json).
MAX_FAMILY_ROWS = 500

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #1b1b1b;
       background: #ffffff; }
h1 { font-size: 22px; margin: 0 0 4px 0; } h2 { font-size: 18px; margin-top: 28px; }
.banner { padding: 14px 18px; border-radius: 6px; color: #ffffff; margin-bottom: 16px; }
.banner.pass { background: #2e7d32; } .banner.fail { background: #c62828; } .banner.unknown { background: #b26a00; }
table { border-collapse: collapse; margin: 8px 0 16px 0; font-size: 14px; }
th { background: #1d3557; color: #ffffff; text-align: left; padding: 7px 10px; }
td { border-bottom: 1px solid #d0d7de; padding: 6px 10px; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td + td { white-space: nowrap; }
.badge { display: inline-block; padding: 2px 9px; border-radius: 10px; color: #ffffff; font-weight: 600; }
.badge.verified { background: #2e7d32; } .badge.falsified { background: #c62828; }
.badge.unknown { background: #b26a00; }
.status-fail { color: #c62828; font-weight: 700; } .status-unknown { color: #b26a00; font-weight: 700; }
.status-pass { color: #2e7d32; font-weight: 600; }
.bar { width: 240px; height: 14px; background: #eeeeee; display: flex; border-radius: 3px; overflow: hidden; }
.bar span { display: block; height: 100%; }
.muted { color: #57606a; font-size: 13px; } code, pre { font-family: Menlo, Consolas, monospace; font-size: 13px; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; }
figure { display: inline-block; margin: 0 16px 16px 0; vertical-align: top; }
figure img { max-width: 640px; border: 1px solid #d0d7de; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _badge(verdict: str) -> str:
    return f'<span class="badge {_e(verdict)}">{_e(verdict)}</span>'


def _anchor(pid: str) -> str:
    return "p-" + "".join(c if c.isalnum() else "-" for c in pid)


def _table(headers: list[str], rows: list[list[str]], table_id: str = "") -> str:
    ident = f' id="{table_id}"' if table_id else ""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(rows_cell for rows_cell in row) + "</tr>" for row in rows)
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(text: str, num: bool = False) -> str:
    return f'<td class="num">{text}</td>' if num else f"<td>{text}</td>"


def _property_row(p: dict[str, Any]) -> list[str]:
    cert = p.get("certificate")
    cert_cell = "-" if not cert else (f'<a href="{_e(cert["file"])}">{_e(Path(cert["file"]).name)}</a>'
                                      if cert.get("file") else "in memory")
    cex_cell = f'<a href="#cex-{_anchor(p["id"])}">x, y</a>' if p.get("counterexample") else \
        f'<a href="#cex-{_anchor(p["id"])}">pair</a>' if (p.get("details") or {}).get("pair") else "-"
    cached = "re-checked" if (p.get("cache") or {}).get("hit") else "-"
    description = f'<div class="muted">{_e(p["description"])}</div>' if p.get("description") else ""
    return [_td(f'<span id="{_anchor(p["id"])}">{_e(p["id"])}</span>{description}'), _td(_e(p["model"])),
            _td(_e(p["require"])),
            _td(_badge(p["verdict"])), _td(f'<span class="status-{_e(p["status"])}">{_e(p["status"])}</span>'),
            _td(_e(margin_text(p.get("margin"))), True), _td(f"{float(p.get('seconds') or 0.0):.3f} s", True),
            _td(_e(p.get("method"))), _td(cached), _td(cert_cell), _td(cex_cell)]


_HEADERS = ["property", "model", "requires", "verdict", "status", "margin", "time", "method", "cache",
            "certificate", "counterexample"]


def _family_section(report: dict[str, Any]) -> str:
    if not report["families"]:
        return ""
    rows = []
    for f in report["families"]:
        bar = (f'<div class="bar"><span style="width:{100 * f["verified_rate"]:.2f}%;background:#2e7d32"></span>'
               f'<span style="width:{100 * f["falsified_rate"]:.2f}%;background:#c62828"></span>'
               f'<span style="width:{100 * f["unknown_rate"]:.2f}%;background:#b26a00"></span></div>')
        needs = f"{f['needed']} verified ({f['min_verified_rate']:g})" if f["min_verified_rate"] is not None \
            else f"each row: {f['require']}"
        rows.append([_td(_e(f["id"])), _td(_e(f["model"])), _td(_e(f["data"])), _td(f"{f['eps']:g}", True),
                     _td(str(f["rows"]), True), _td(str(f["verified"]), True), _td(str(f["falsified"]), True),
                     _td(str(f["unknown"]), True), _td(f"{100 * f['verified_rate']:.1f}%", True), _td(bar),
                     _td(_e(needs)), _td(f'<span class="status-{_e(f["status"])}">{_e(f["status"])}</span>')])
    out = ["<h2>Families: certified robust accuracy</h2>",
           _table(["family", "model", "data", "eps", "rows", "verified", "falsified", "unknown", "verified rate", "",
                   "needs", "status"], rows)]
    for f in report["families"]:
        members = [p for p in report["properties"] if p["family"] == f["id"]]
        shown = sorted(members, key=lambda p: p["status"] == "pass")[:MAX_FAMILY_ROWS]
        more = f" (first {len(shown)} of {len(members)}, failing rows first)" if len(members) > len(shown) else ""
        out.append(f"<details><summary>rows of {_e(f['id'])}{_e(more)}</summary>")
        out.append(_table(["row", "label", "verdict", "status", "margin", "time", "certificate", "counterexample"],
                          [[_td(str(p["row"]), True), _td(str(p["label"]), True), *_property_row(p)[3:7],
                            *_property_row(p)[9:]] for p in shown]))
        out.append("</details>")
    return "\n".join(out)


def _baseline_section(report: dict[str, Any]) -> str:
    base = report.get("baseline")
    if not base:
        return ""
    out = [f"<h2>Against the baseline</h2><p class=\"muted\">{_e(base['path'])} ({_e(base.get('tool'))}, "
           f"{_e(base.get('created'))})</p>"]
    if base["regressions"]:
        out.append("<ul>" + "".join(f'<li class="status-fail">{_e(r["message"])}</li>' for r in base["regressions"])
                   + "</ul>")
    else:
        out.append("<p>No regressions.</p>")
    if base["margin_decreases"]:
        out.append("<p>Shrinking margins:</p>")
        out.append(_table(["property", "before", "now", "change"],
                          [[_td(_e(m["id"])), _td(f"{m['before']:.6g}", True), _td(f"{m['now']:.6g}", True),
                            _td(f"{m['change']:+.4g}" + (f" ({100 * m['relative']:+.2f}%)"
                                                         if m["relative"] is not None else ""), True)]
                           for m in base["margin_decreases"]]))
    for r in base["family_rate_drops"]:
        out.append(f"<p>Family {_e(r['id'])}: verified rate {100 * r['before']:.1f}% &rarr; {100 * r['now']:.1f}%</p>")
    if base["removed"]:
        out.append(f"<p class=\"muted\">No longer in the manifest: {_e(', '.join(base['removed']))}</p>")
    return "\n".join(out)


def _pairs(report: dict[str, Any]) -> str:
    """Counterexample pairs of templated properties: both inputs and both outputs side by side."""
    found = [p for p in report["properties"] if (p.get("details") or {}).get("pair")]
    if not found:
        return ""
    out = ["<h2>Counterexample pairs</h2><p class=\"muted\">Each pair was replayed on the original model(s) "
           "(onnxruntime) and checked exactly against the template.</p>"]
    for p in found[:MAX_FAMILY_ROWS]:
        pair = p["details"]["pair"]
        rows = "".join(f"<tr><td>{_e(k)}</td><td class=\"num\">{_e(', '.join(f'{v:.9g}' for v in pair[key]))}</td></tr>"
                       for k, key in (("x", "x"), ("x'", "x_prime"), ("y", "y"), ("y'", "y_prime")))
        out.append(f'<h3 id="cex-{_anchor(p["id"])}">{_e(p["id"])}</h3>'
                   f"<p class=\"muted\">{_e(pair.get('violation'))}; found by {_e(pair.get('method'))}</p>"
                   f"<table><thead><tr><th>pair</th><th>values</th></tr></thead><tbody>{rows}</tbody></table>")
    return "\n".join(out)


def _counterexamples(report: dict[str, Any]) -> str:
    cexs = [p for p in report["properties"] if p.get("counterexample")]
    if not cexs:
        return ""
    out = ["<h2>Counterexamples</h2><p class=\"muted\">Each was replayed on the original model (onnxruntime) "
           "and checked exactly against the spec.</p>"]
    for p in cexs[:MAX_FAMILY_ROWS]:
        cex = p["counterexample"]
        xs = "".join(f"<tr><td>X_{i}</td><td class=\"num\">{v:.9g}</td></tr>" for i, v in enumerate(cex["x"]))
        ys = "".join(f"<tr><td>Y_{i}</td><td class=\"num\">{v:.9g}</td></tr>" for i, v in enumerate(cex["y"]))
        out.append(f'<h3 id="cex-{_anchor(p["id"])}">{_e(p["id"])}</h3>'
                   f"<p class=\"muted\">case {_e(cex.get('case'))}, found by {_e(cex.get('method'))}</p>"
                   '<div style="display:flex;gap:24px;align-items:flex-start">'
                   "<table><thead><tr><th>input</th><th>value</th></tr></thead>"
                   f"<tbody>{xs}</tbody></table><table><thead><tr><th>output</th><th>value</th></tr></thead>"
                   f"<tbody>{ys}</tbody></table></div>")
    return "\n".join(out)


def _certificates(report: dict[str, Any]) -> str:
    rows = []
    for p in report["properties"]:
        cert = p.get("certificate")
        if not cert or (p["family"] is not None and len(rows) >= MAX_FAMILY_ROWS):
            continue
        check = (p.get("cache") or {}).get("recheck") or (p.get("details") or {}).get("recheck") or {}
        link = f'<a href="{_e(cert["file"])}">{_e(cert["file"])}</a>' if cert.get("file") else "-"
        rows.append([_td(_e(p["id"])), _td(link), _td(_e(", ".join(cert.get("kinds") or []))),
                     _td(str(cert.get("cases")), True), _td(_e(check.get("message", "-"))),
                     _td(f"<code>{_e((cert.get('model_sha256') or '')[:16])}</code>"),
                     _td(f"<code>{_e((cert.get('spec_sha256') or '')[:16])}</code>")])
    if not rows:
        return ""
    return ("<h2>Certificates</h2><p class=\"muted\">Checked by the independent checker (verify.certcheck) "
            "against the model and spec files; cached answers are re-checked on every run.</p>"
            + _table(["property", "file", "proof", "cases", "independent check", "model sha256", "spec sha256"],
                     rows))


def _pictures(report: dict[str, Any], pictures: dict[str, dict[str, Any]]) -> str:
    if not pictures:
        return ""
    out = ["<h2>Module graphs</h2><p class=\"muted\">The model compressed on each property's region (first case) "
           "and split into modules, as <code>verify graph</code> draws it.</p>"]
    for pid, pic in pictures.items():
        if "svg" in pic:
            data = base64.b64encode(Path(pic["svg"]).read_bytes()).decode()
            out.append(f'<figure><img alt="module graph of {_e(pid)}" src="data:image/svg+xml;base64,{data}">'
                       f"<figcaption>{_e(pid)}</figcaption></figure>")
        else:
            out.append(f"<p class=\"muted\">{_e(pid)}: no picture ({_e(pic.get('error'))})</p>")
    return "\n".join(out)


def render_html(report: dict[str, Any], pictures: dict[str, dict[str, Any]] | None = None) -> str:
    """The HTML page."""
    outcome = report["outcome"]
    named = [p for p in report["properties"] if p["family"] is None]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>verify gate: {_e(OUTCOME[outcome])}</title><style>{CSS}</style></head><body>",
        f'<div class="banner {_e(outcome)}"><h1>verify gate: {_e(OUTCOME[outcome])}</h1>'
        f"<div>{_e(headline(report))} &middot; exit code {_e(report['exit_code'])} &middot; "
        f"{float(report['seconds']):.2f} s</div></div>",
        f"<p class=\"muted\">{_e(report['tool'])} &middot; manifest {_e(report['manifest'])} &middot; "
        f"{_e(report['created'])} &middot; models: "
        + ", ".join(f"{_e(m['name'])} ({_e(m['file'])}, sha256 <code>{_e(m['sha256'][:16])}</code>)"
                    for m in report["models"]) + "</p>",
        "<h2>Verdicts</h2>",
        _table(_HEADERS, [_property_row(p) for p in named], "verdict-table") if named
        else "<p>No named properties.</p>",
        _family_section(report),
    ]
    if report["failures"]:
        parts.append("<h2>Failures</h2><ul>" + "".join(
            f'<li class="status-{_e(f["status"])}">{_e(f["message"])}</li>' for f in report["failures"]) + "</ul>")
    parts += [_baseline_section(report), _counterexamples(report), _pairs(report), _certificates(report),
              _pictures(report, pictures or {}), "</body></html>"]
    return "\n".join(p for p in parts if p) + "\n"
