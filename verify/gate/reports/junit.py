"""JUnit XML of a gate report: one test case per property, so CI systems show the gate natively.

Test suites: ``properties`` (the named properties) and one per family (its rows, plus a
``<family> rate`` test case when the family has a ``min-verified-rate``).  A property
whose requirement fails, or that regressed against the baseline, is a ``<failure>`` whose
``type`` is its verdict (``falsified``, ``unknown``) or ``regression``; passing
properties carry their verdict, method and margin in ``<system-out>`` and
``<properties>``.  Built with :mod:`xml.etree.ElementTree`, so it is always well formed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _case(suite: ET.Element, classname: str, name: str, seconds: float) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.4f}")


def render_junit(report: dict[str, Any]) -> str:
    """The JUnit XML text."""
    regressions = {r["id"]: r for r in (report.get("baseline") or {}).get("regressions", [])}
    groups: dict[str, list[dict[str, Any]]] = {"properties": []}
    for fam in report["families"]:
        groups[fam["id"]] = []
    for p in report["properties"]:
        groups[p["family"] or "properties"].append(p)
    families = {f["id"]: f for f in report["families"]}
    root = ET.Element("testsuites", name="verify gate", time=f"{float(report.get('seconds') or 0):.4f}")
    total = failed = 0
    for group, props in groups.items():
        if not props and group == "properties":
            continue
        suite = ET.SubElement(root, "testsuite", name=group if group == "properties" else f"family {group}",
                              timestamp=str(report.get("created", "")))
        meta = ET.SubElement(suite, "properties")
        ET.SubElement(meta, "property", name="tool", value=str(report.get("tool")))
        ET.SubElement(meta, "property", name="manifest", value=str(report.get("manifest")))
        n = n_failed = 0
        seconds = 0.0
        for p in props:
            n += 1
            seconds += float(p.get("seconds") or 0.0)
            case = _case(suite, f"verify.gate.{p['model']}" + (f".{p['family']}" if p["family"] else ""),
                         p["id"], float(p.get("seconds") or 0.0))
            props_el = ET.SubElement(case, "properties")
            for key in ("verdict", "require", "method", "margin", "spec", "status"):
                ET.SubElement(props_el, "property", name=key, value=_fmt(p.get(key)))
            failure = _failure(p, regressions.get(p["id"]))
            if failure is not None:
                n_failed += 1
                kind, message, body = failure
                ET.SubElement(case, "failure", type=kind, message=message).text = body
            out = ET.SubElement(case, "system-out")
            out.text = _summary(p)
        if group in families and families[group]["min_verified_rate"] is not None:
            fam = families[group]
            n += 1
            case = _case(suite, f"verify.gate.{fam['model']}.{fam['id']}", f"{fam['id']} rate", 0.0)
            text = (f"{fam['verified']}/{fam['rows']} verified ({100 * fam['verified_rate']:.1f}%), "
                    f"{fam['falsified']} falsified, {fam['unknown']} unknown; needs {fam['needed']} "
                    f"(min-verified-rate {fam['min_verified_rate']:g})")
            if fam["status"] != "pass":
                n_failed += 1
                ET.SubElement(case, "failure", type="rate" if fam["status"] == "fail" else "unknown",
                              message=text).text = text
            ET.SubElement(case, "system-out").text = text
        suite.set("tests", str(n))
        suite.set("failures", str(n_failed))
        suite.set("errors", "0")
        suite.set("skipped", "0")
        suite.set("time", f"{seconds:.4f}")
        total += n
        failed += n_failed
    root.set("tests", str(total))
    root.set("failures", str(failed))
    root.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _failure(p: dict[str, Any], regression: dict[str, Any] | None) -> tuple[str, str, str] | None:
    if regression is not None:
        return "regression", "regression: " + regression["message"], _summary(p)
    if p["status"] == "pass":
        return None
    message = f"{p['verdict']}" + (f" ({p['reason']})" if p.get("reason") else "") + f"; requires {p['require']}"
    return p["verdict"], message, _summary(p)


def _summary(p: dict[str, Any]) -> str:
    lines = [f"verdict: {p['verdict']}", f"requirement: {p['require']} -> {p['status']}",
             f"method: {p.get('method')}", f"margin: {_fmt(p.get('margin'))}",
             f"seconds: {float(p.get('seconds') or 0.0):.4f}", f"spec: {p['spec']}"]
    if p.get("reason"):
        lines.append(f"reason: {p['reason']}")
    if (p.get("cache") or {}).get("hit"):
        lines.append("from the cache (re-checked)")
    pair = (p.get("details") or {}).get("pair")
    if pair:
        lines.append("counterexample pair (replayed on the original model(s)):")
        for key, label in (("x", "x "), ("x_prime", "x'"), ("y", "y "), ("y_prime", "y'")):
            lines.append(f"  {label} = [" + ", ".join(f"{v:.9g}" for v in pair[key]) + "]")
        lines.append(f"  {pair['violation']}")
    cex = p.get("counterexample")
    if cex:
        lines.append("counterexample (replayed on the original model):")
        lines.append("  x = [" + ", ".join(f"{v:.9g}" for v in cex["x"]) + "]")
        lines.append("  y = [" + ", ".join(f"{v:.9g}" for v in cex["y"]) + "]")
    cert = p.get("certificate")
    if cert:
        lines.append(f"certificate: {cert.get('file') or 'not written (no --report)'}")
    return "\n".join(lines)
