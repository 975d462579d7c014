"""Compare this run with a previous release's report (``--baseline``).

Properties are matched by id.  A property verified in the baseline and not verified now
is a **regression**: it fails the gate, whatever its requirement.  Properties verified in
both runs whose margin shrank are listed (they do not fail the gate), as are families
whose verified rate dropped and baseline properties that are gone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from verify.errors import InputFileError

REPORT_FORMAT = "verify-gate-report"
#: A margin counts as shrunk when it dropped by more than this share of its old value
#: (plus 1e-12): float noise between identical runs is not a change.
MARGIN_TOLERANCE = 1e-9


def load_baseline(path: str | Path) -> dict[str, Any]:
    """The JSON report in ``path`` (a ``--report`` folder or the ``report.json`` file itself)."""
    path = Path(path)
    try:
        file = path / "report.json" if path.is_dir() else path
        regular = file.is_file()
    except OSError as exc:
        raise InputFileError(f"--baseline {str(path)[:200]}: {exc.strerror}") from None
    if not regular:
        raise InputFileError(f"--baseline {path}: no report.json there; point it at the --report folder "
                             "(or its report.json) of the release to compare with")
    try:
        data = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(f"--baseline {file}: not a JSON report ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT or not isinstance(data.get("properties"),
                                                                                            list):
        raise InputFileError(f"--baseline {file}: not a verify gate report (expected \"format\": "
                             f"\"{REPORT_FORMAT}\"); use the report.json written by 'verify gate --report DIR'")
    data["_path"] = str(file)
    return data


def compare(baseline: dict[str, Any], properties: list[dict[str, Any]],
            families: list[dict[str, Any]]) -> dict[str, Any]:
    """Regressions, shrunk margins, dropped family rates and removed properties."""
    before = {p.get("id"): p for p in baseline["properties"] if isinstance(p, dict)}
    now_ids = {p["id"] for p in properties}
    regressions, margins = [], []
    for p in properties:
        old = before.get(p["id"])
        if old is None or old.get("verdict") != "verified":
            continue
        spec_changed = old.get("spec_sha256") not in (None, p.get("spec_sha256"))
        if p["verdict"] != "verified":
            regressions.append({"id": p["id"], "before": "verified", "now": p["verdict"],
                                "spec_changed": spec_changed,
                                "message": f"{p['id']} was verified in the baseline and is "
                                           f"{p['verdict']} now" + (" (its spec changed)" if spec_changed else "")})
            continue
        m0, m1 = old.get("margin"), p.get("margin")
        if isinstance(m0, (int, float)) and isinstance(m1, (int, float)) and \
                m1 < m0 - MARGIN_TOLERANCE * abs(m0) - 1e-12:
            margins.append({"id": p["id"], "before": m0, "now": m1, "change": m1 - m0,
                            "relative": (m1 - m0) / abs(m0) if m0 else None})
    margins.sort(key=lambda m: m["relative"] if m["relative"] is not None else 0.0)
    old_families = {f.get("id"): f for f in baseline.get("families", []) if isinstance(f, dict)}
    rates = []
    for f in families:
        old = old_families.get(f["id"])
        if old is not None and isinstance(old.get("verified_rate"), (int, float)) and \
                f["verified_rate"] < old["verified_rate"]:
            rates.append({"id": f["id"], "before": old["verified_rate"], "now": f["verified_rate"]})
    removed = sorted(str(i) for i in before if i not in now_ids)
    return {"path": baseline["_path"], "tool": baseline.get("tool"), "created": baseline.get("created"),
            "regressions": regressions, "margin_decreases": margins, "family_rate_drops": rates,
            "removed": removed}
