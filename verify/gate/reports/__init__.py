"""Write a finished gate's report in every format: ``report.json`` (the documented schema),
``junit.xml``, ``report.md`` and ``report.html`` into ``--report DIR`` (with the certificates
under ``certificates/``), and JUnit XML to ``--junit FILE``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from verify.errors import InputFileError
from verify.gate.pictures import module_picture
from verify.gate.reports.html import render_html
from verify.gate.reports.junit import render_junit
from verify.gate.reports.markdown import render_markdown
from verify.runtime import write_text


def write_reports(run: Any, report_dir: Path | None, junit_file: Path | None, picture_folder: Path) -> list[Path]:
    """Write the requested outputs; returns the paths written."""
    written: list[Path] = []
    if report_dir is not None:
        out = Path(report_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "certificates").mkdir(exist_ok=True)
            by_id = {i.id: i for i in run.plan.items}
            for prop in run.report["properties"]:
                cert = run.certificates.get(prop["id"])
                summary = prop["certificate"]
                if cert is None or summary is None:
                    continue
                (out / summary["file"]).write_text(json.dumps(cert, indent=1, sort_keys=True) + "\n")
                written.append(out / summary["file"])
                if summary.get("spec_file"):
                    shutil.copyfile(by_id[prop["id"]].spec_path, out / summary["spec_file"])
                    written.append(out / summary["spec_file"])
            run.pictures = _pictures(run, picture_folder)
            for name, text in (("report.json", json.dumps(run.report, indent=1) + "\n"),
                               ("junit.xml", render_junit(run.report)),
                               ("report.md", render_markdown(run.report)),
                               ("report.html", render_html(run.report, run.pictures))):
                (out / name).write_text(text)
                written.append(out / name)
        except OSError as exc:
            raise InputFileError(f"cannot write the report into {out}: {exc.strerror or exc}") from None
    if junit_file is not None:
        write_text(str(junit_file), render_junit(run.report))
        written.append(Path(junit_file))
    return written


def _pictures(run: Any, folder: Path) -> dict[str, dict[str, Any]]:
    """Module pictures of the named properties (drawn once, then taken from the cache)."""
    return {item.id: module_picture(item, folder) for item in run.plan.items if item.family is None}
