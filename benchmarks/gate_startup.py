"""Whole-process wall time of ``verify gate``: the first run (empty cache) and the second,
unchanged run (every answer from the cache, re-checked), on the bundled manifest.

    python benchmarks/gate_startup.py [--runs 5] [--tree LABEL=DIR ...] [--report]

Each run is a fresh ``python -m verify.cli gate --quiet`` process (``sys.executable``, or
``--python``), timed from start to exit.  A run pair is: a fresh ``--cache-dir``, the first
run, then the second run on the cache the first one filled (it must report its answers
as cached, and the same verdicts).  ``--tree LABEL=DIR`` measures
the verify found in DIR (put first on ``PYTHONPATH``, run from DIR, its own ``verify.toml``),
e.g. a ``git worktree`` of an older commit; the default is this checkout.  The trees
take turns run by run.  Prints one row per tree and run kind (min / median / max
seconds) and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(python: str, tree: Path, cache: Path, report: Path | None) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("CI", None)
    cmd = [python, "-m", "verify.cli", "gate", "--manifest", str(tree / "verify.toml"), "--cache-dir", str(cache),
           "--quiet"]
    if report is not None:
        cmd += ["--report", str(report)]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def _verdicts(summary: str) -> list[list[str]]:
    """The summary's property and family lines without their times and cache marks."""
    return [re.sub(r"\s+[0-9.]+ s\s", " ", line.replace("  cached", "")).split() for line in summary.splitlines()
            if line.startswith("  ")]


def measure_pair(python: str, tree: Path, report: bool) -> tuple[float, float]:
    """One (first, second) pair of whole-process wall times, on a fresh cache folder."""
    with tempfile.TemporaryDirectory(prefix="gate-startup-") as tmp:
        cache = Path(tmp) / "cache"
        out = Path(tmp) / "report" if report else None
        first, text1 = _run(python, tree, cache, out)
        second, text2 = _run(python, tree, cache, out)
    if "  cached" in text1 or "  cached" not in text2:
        raise SystemExit(f"{tree}: the second run did not take its answers from the cache:\n{text2}")
    if _verdicts(text1) != _verdicts(text2):
        raise SystemExit(f"{tree}: the runs disagree:\n{text1}\n{text2}")
    return first, second


def _row(label: str, kind: str, values: list[float]) -> str:
    return (f"{label:<12} {kind:<7} {len(values):>4} {min(values):8.3f} {statistics.median(values):8.3f} "
            f"{max(values):8.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="run pairs per tree (default 5)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter (default: this one)")
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=DIR",
                        help="measure the verify in DIR (repeatable; default: this checkout)")
    parser.add_argument("--report", action="store_true", help="also write --report DIR (reports and pictures)")
    args = parser.parse_args(argv)
    trees = [tuple(t.split("=", 1)) for t in args.tree] or [("this", str(ROOT))]
    times: dict[str, tuple[list[float], list[float]]] = {label: ([], []) for label, _ in trees}
    for _ in range(args.runs):  # the trees take turns, so that a busy spell of the machine hits them alike
        for label, folder in trees:
            first, second = measure_pair(args.python, Path(folder).resolve(), args.report)
            times[label][0].append(first)
            times[label][1].append(second)
    print(f"{'tree':<12} {'run':<7} {'n':>4} {'min s':>8} {'median s':>8} {'max s':>8}")
    for label, (first, second) in times.items():
        print(_row(label, "first", first))
        print(_row(label, "second", second))
        print(f"{label:<12} first/second: {statistics.median(first) / statistics.median(second):.1f}x (medians), "
              f"{min(first) / max(second):.1f}x (slowest second run against fastest first run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
