"""``verify run INSTANCES.csv``: check many (model, spec, timeout) instances in worker processes."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from verify.batch import HEADER, format_row, read_instances, run_instances, summarise, write_csv
from verify.cli import common_options, positive_int, positive_seconds
from verify.errors import EXIT_FALSIFIED, EXIT_UNKNOWN, EXIT_VERIFIED, InputFileError

EPILOG = """\
INSTANCES.csv has one instance per line, `onnx,vnnlib[,timeout]`, paths relative to the
file's folder (the VNN-COMP layout); an `expected.csv` beside it (columns index,expected:
sat/unsat) marks wrong answers. Each worker process imports verify once; an instance that
overruns its timeout by more than 10 s has its worker killed and replaced (only that one).

exit codes: 0 every instance answered (verified or falsified) and none wrong,
            1 an answer contradicts expected.csv, 3 some instance unknown or failed,
            2 input error.

examples:
  verify run ../shared/benchmarks/acasxu/instances.csv --jobs 2 --out acasxu.csv
  verify run ../shared/benchmarks/acasxu/subset34.csv --jobs 2 --limit 4
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="check the instances of a CSV file (batch mode, like benchmarks/run_family.py)",
                       description="Check every instance of INSTANCES.csv and print one row per instance "
                                   "(verdict, expected, seconds) and the totals.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("instances", type=Path, help="instances.csv (or the folder that holds it)")
    p.add_argument("--jobs", type=positive_int, default=1, help="worker processes (default 1)")
    p.add_argument("--limit", type=positive_int, metavar="N", help="only the first N instances")
    p.add_argument("--timeout", type=positive_seconds, help="seconds per instance (default: each instance's own)")
    p.add_argument("--out", type=Path, metavar="CSV", help="write the table as CSV")
    p.add_argument("--certificates", type=Path, metavar="DIR", help="write the certificates of verified instances")
    p.add_argument("--seed", type=int, default=0, help="random seed of the searches (default 0)")
    p.add_argument("--no-recheck", action="store_true", help="do not re-check certificates before answering")
    p.add_argument("--no-compress", action="store_true", help="branch and bound on the uncompressed network")
    p.add_argument("--no-modular", action="store_true", help="skip module composition before ReLU splitting")
    common_options(p)


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
    answers = run_instances(rows, args.jobs, options, lambda i, a: print(format_row(i, a), flush=True))
    summary, pairs = summarise(rows, answers)
    if args.out is not None:
        write_csv(args.out, pairs)
    for line in summary.lines(time.monotonic() - wall, sorted(pairs, key=lambda p: -p[1].seconds)[:5]):
        print(line)
    sys.stdout.flush()
    if summary.wrong:
        return EXIT_FALSIFIED
    return EXIT_VERIFIED if summary.answered == summary.rows else EXIT_UNKNOWN
