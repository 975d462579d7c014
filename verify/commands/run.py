"""``verify run INSTANCES.csv``: check many (model, spec, timeout) instances in worker processes."""

from __future__ import annotations

import argparse
import sys
import time

from verify.batch import HEADER, format_row, read_instances, run_instances, run_on_cluster, summarise, write_csv
from verify.errors import EXIT_FALSIFIED, EXIT_UNKNOWN, EXIT_VERIFIED, InputFileError


def run(args: argparse.Namespace) -> int:
    rows = read_instances(args.instances)[: args.limit]
    if args.timeout is not None:
        for r in rows:
            r.timeout = args.timeout
    if args.certificates:
        try:
            args.certificates.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputFileError(f"cannot create the certificates folder {str(args.certificates)[:200]}: "
                                 f"{exc.strerror}") from None
    options = {"recheck": not args.no_recheck, "seed": args.seed, "compress": not args.no_compress,
               "modular": not args.no_modular, "certificates": str(args.certificates) if args.certificates else None}
    wall = time.monotonic()
    print(HEADER, flush=True)
    show = lambda i, a: print(format_row(i, a), flush=True)  # noqa: E731
    answers = run_on_cluster(rows, args.cluster, args.jobs, options, show) if args.cluster else \
        run_instances(rows, args.jobs, options, show)
    summary, pairs = summarise(rows, answers)
    if args.out is not None:
        write_csv(args.out, pairs)
    for line in summary.lines(time.monotonic() - wall, sorted(pairs, key=lambda p: -p[1].seconds)[:5]):
        print(line)
    sys.stdout.flush()
    if summary.wrong:
        return EXIT_FALSIFIED
    return EXIT_VERIFIED if summary.answered == summary.rows else EXIT_UNKNOWN
