"""``verify gate``: run a manifest of properties and decide whether the model may ship."""

from __future__ import annotations

import argparse
import sys
import time

from verify.gate import GateOptions, run_gate
from verify.gate.reports.text import format_summary


def run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    run_ = run_gate(GateOptions(manifest=args.manifest, baseline=args.baseline, report=args.report,
                                junit=args.junit, jobs=args.jobs, cluster=args.cluster, cache=not args.no_cache,
                                cache_dir=args.cache_dir,
                                quiet=args.quiet))
    print(format_summary(run_.report, run_.files, time.monotonic() - start))
    sys.stdout.flush()
    return run_.exit_code
