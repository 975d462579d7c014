"""``verify gate``: run a manifest of properties and decide whether the model may ship."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from verify.cli import common_options, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gate", help="check every property of a manifest (release gate for CI)",
                       description="Run every property of the manifest (verify.toml, or [tool.verify] in "
                                   "pyproject.toml) and exit 0 only if every requirement holds: 1 when a property "
                                   "is falsified, a requirement fails or a property regressed against --baseline, "
                                   "3 when the only failures are unknown answers, 2 on input errors.")
    p.add_argument("--manifest", metavar="FILE", type=Path,
                   help="verify.toml or pyproject.toml (default: ./verify.toml, else ./pyproject.toml)")
    p.add_argument("--baseline", metavar="DIR", type=Path,
                   help="the --report folder (or report.json) of the last release: a property verified there "
                        "and not now fails the gate")
    p.add_argument("--report", metavar="DIR", type=Path,
                   help="write report.json, junit.xml, report.md, report.html and the certificates into DIR")
    p.add_argument("--junit", metavar="FILE", type=Path, help="write JUnit XML to FILE")
    p.add_argument("--jobs", metavar="J", type=positive_int, default=1,
                   help="check J properties at a time in worker processes (default 1)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor store cached answers")
    p.add_argument("--cache-dir", metavar="DIR", type=Path,
                   help="cache folder (default: .verify-cache/gate/ next to the manifest)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    common_options(p)


def run(args: argparse.Namespace) -> int:
    from verify.gate import GateOptions, run_gate
    from verify.gate.reports.text import format_summary

    start = time.monotonic()
    run_ = run_gate(GateOptions(manifest=args.manifest, baseline=args.baseline, report=args.report,
                                junit=args.junit, jobs=args.jobs, cache=not args.no_cache, cache_dir=args.cache_dir,
                                quiet=args.quiet))
    print(format_summary(run_.report, run_.files, time.monotonic() - start))
    sys.stdout.flush()
    return run_.exit_code
