"""Run ``verify check`` on every instance of a benchmark family and compare with the expected answers.

    python benchmarks/run_family.py DIR [--timeout S] [--limit N] [--jobs J] [--out CSV]

``DIR/instances.csv`` lists ``onnx,vnnlib,timeout`` (paths relative to DIR, no header);
``DIR/expected.csv`` (optional) has an ``expected`` column: ``sat``, ``unsat`` or ``unknown``
(VNN-LIB describes the unsafe set: ``unsat`` means the property holds).  A *wrong*
answer is ``verified`` where ``sat`` is expected or ``falsified`` where ``unsat`` is.

Instances run in ``J`` worker processes that import verify once (the time per instance
is the wall time of loading the model and spec and checking, without interpreter
start-up), under the supervisor of :mod:`verify.batch`: a worker that overruns an
instance's timeout by more than its grace period is killed and replaced (only that one);
the instance counts as unknown.  Each worker uses one torch thread.  The last line is
``verified V, falsified F, unknown U, wrong W, total T s``.  ``verify run DIR/instances.csv``
does the same from the command line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from verify.batch import HEADER, format_row, read_instances, run_instances, run_on_cluster, summarise, write_csv
from verify.errors import VerifyError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--timeout", type=float, help="seconds per instance (default: the instance's own)")
    parser.add_argument("--limit", type=int, help="only the first N instances (after --start)")
    parser.add_argument("--start", type=int, default=0, help="skip the first K instances")
    parser.add_argument("--indices", help="comma-separated instance indices to run")
    parser.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="run the instances as tasks on the Ray cluster at ADDRESS (HOST:PORT, or 'local')")
    parser.add_argument("--out", type=Path, help="CSV file for the results")
    parser.add_argument("--certificates", type=Path, help="folder for the certificates of verified instances")
    parser.add_argument("--no-recheck", action="store_true", help="do not re-check certificates inside check")
    parser.add_argument("--no-compress", action="store_true", help="branch and bound on the uncompressed network")
    parser.add_argument("--no-modular", action="store_true", help="no module composition before ReLU splitting")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        rows = read_instances(args.folder)
    except VerifyError as exc:
        print(f"run_family: {exc}", file=sys.stderr)
        return 2

    if args.indices:
        wanted = {int(v) for v in args.indices.split(",") if v.strip()}
        rows = [r for r in rows if r.index in wanted]
    rows = rows[args.start:]
    if args.limit is not None:
        rows = rows[:args.limit]
    if args.timeout is not None:
        for r in rows:
            r.timeout = args.timeout
    if args.certificates:
        args.certificates.mkdir(parents=True, exist_ok=True)
    options = {"recheck": not args.no_recheck, "seed": args.seed, "compress": not args.no_compress,
               "modular": not args.no_modular,
               "certificates": str(args.certificates) if args.certificates else None}
    wall = time.monotonic()
    print(HEADER, flush=True)
    show = lambda i, a: print(format_row(i, a), flush=True)  # noqa: E731
    try:
        answers = run_on_cluster(rows, args.cluster, args.jobs, options, show) if args.cluster else \
            run_instances(rows, args.jobs, options, show)
    except VerifyError as exc:  # a cluster that cannot be used
        print(f"run_family: {exc}", file=sys.stderr)
        return 2
    summary, pairs = summarise(rows, answers)
    if args.out is not None:
        write_csv(args.out, pairs)
    slowest = sorted(pairs, key=lambda p: -p[1].seconds)[:10]
    for line in summary.lines(time.monotonic() - wall, slowest):
        print(line)
    return 1 if summary.wrong else 0


if __name__ == "__main__":
    sys.exit(main())
