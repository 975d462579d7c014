"""Benchmark the falsifiers (hypothesis alone, PGD alone, combined) on the sat instances of ACAS Xu and MNIST-FC.

Usage::

    .venv/bin/python benchmarks/falsify.py                      # both families, all three methods, 10 s each
    .venv/bin/python benchmarks/falsify.py --families acasxu --methods combined --limit 5

Instances: every ``expected=sat`` row of ``acasxu/expected.csv``; the ``expected=sat``
rows of ``mnistfc/expected.csv`` with ``own_attack=found`` (``--mnist-all-sat`` adds the
others).  Each method gets ``--budget`` seconds per instance, no example database (so
no run profits from an earlier one), one torch thread.  Every reported witness is
checked again here, independently of verify's own replay: a fresh onnxruntime session
on the ONNX file, and the property's exact check.  Prints one line per instance and
method (found, seconds to the first counterexample, seconds in all including shrinking)
and totals per family and method: found, invalid witnesses, median time to first.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from verify.falsify.base import Budget, Counterexample
from verify.falsify.combined import METHODS, CombinedFalsifier
from verify.model.network import load_model
from verify.spec import Property, load_spec

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT.parent / "shared" / "benchmarks"
ALL_METHODS = ("hypothesis", "pgd", "combined")


@dataclass
class Outcome:
    family: str
    index: str
    instance: str
    method: str
    found: bool
    valid: bool
    first: float | None  # seconds to the first counterexample
    total: float  # seconds until the search returned (shrinking included)
    away: int | None  # inputs away from the centre in the reported witness


def independent_check(onnx_path: Path, prop: Property, cex: Counterexample) -> bool:
    """Run the witness through a fresh onnxruntime session and check it exactly against the spec."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    shape = [1 if not isinstance(d, int) else d for d in inp.shape]
    x = np.asarray(cex.x, dtype=np.float32)
    y = session.run(None, {inp.name: x.reshape(shape)})[0].reshape(-1)
    return bool(np.array_equal(y.astype(np.float32), cex.y)) and prop.is_counterexample(x, y)


def instances(shared: Path, family: str, mnist_all_sat: bool) -> list[dict[str, str]]:
    with open(shared / family / "expected.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["expected"] == "sat"]
    if family == "mnistfc" and not mnist_all_sat:
        rows = [r for r in rows if r["own_attack"] == "found"]
    return rows


def run_one(family: str, row: dict[str, str], folder: Path, method: str, budget: float, seed: int) -> Outcome:
    model = load_model(folder / row["onnx"])
    prop = load_spec(folder / row["vnnlib"])
    methods = METHODS if method == "combined" else (method,)
    falsifier = CombinedFalsifier(methods=methods, database=None)
    net = Path(row["onnx"]).stem.replace("ACASXU_run2a_", "").replace("_batch_2000", "")
    name = f"{net}/{Path(row['vnnlib']).stem}"
    start = time.monotonic()
    cex = falsifier.search(model, prop, Budget(start + budget), seed)
    total = time.monotonic() - start
    if cex is None:
        return Outcome(family, row["index"], name, method, False, True, None, total, None)
    from verify.falsify.region import Region

    first = None if cex.found_at is None else cex.found_at - start
    away = int(Region.of(prop.cases[cex.case_index]).away(cex.x).sum())
    valid = independent_check(folder / row["onnx"], prop, cex)
    return Outcome(family, row["index"], name, method, True, valid, first, total, away)


def summarise(outcomes: list[Outcome], families: list[str], methods: list[str]) -> None:
    print()
    print(f"{'family':8} {'method':10} {'found':>9} {'invalid':>7} {'median s':>9} {'mean s':>7} {'max s':>7}")
    for family in families:
        for method in methods:
            rows = [o for o in outcomes if o.family == family and o.method == method]
            if not rows:
                continue
            found = [o for o in rows if o.found]
            times = [o.first for o in found if o.first is not None]
            invalid = sum(1 for o in found if not o.valid)
            med = f"{statistics.median(times):9.3f}" if times else f"{'-':>9}"
            mean = f"{statistics.fmean(times):7.3f}" if times else f"{'-':>7}"
            worst = f"{max(times):7.3f}" if times else f"{'-':>7}"
            print(f"{family:8} {method:10} {len(found):>4}/{len(rows):<4} {invalid:>7} {med} {mean} {worst}")
    missed = [o for o in outcomes if not o.found]
    if missed:
        print("not found: " + ", ".join(f"{o.family}#{o.index} {o.instance} ({o.method})" for o in missed))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="benchmarks folder (../shared/benchmarks)")
    parser.add_argument("--families", default="acasxu,mnistfc", help="comma-separated (default acasxu,mnistfc)")
    parser.add_argument("--methods", default=",".join(ALL_METHODS), help="comma-separated: hypothesis,pgd,combined")
    parser.add_argument("--budget", type=float, default=10.0, help="seconds per instance and method (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="first N instances of each family")
    parser.add_argument("--mnist-all-sat", action="store_true", help="also the mnistfc sat rows own_attack missed")
    parser.add_argument("--csv", type=Path, help="also write every outcome to this CSV file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    families = [f for f in args.families.split(",") if f]
    methods = [m for m in args.methods.split(",") if m]
    bad = [m for m in methods if m not in ALL_METHODS]
    if bad:
        parser.error(f"unknown methods {bad}; choose from {ALL_METHODS}")
    outcomes: list[Outcome] = []
    print(f"{'family':8} {'index':>5} {'instance':22} {'method':10} {'found':5} {'first s':>8} {'total s':>8} "
          f"{'away':>4}")
    for family in families:
        folder = args.shared / family
        if not (folder / "expected.csv").exists():
            print(f"skipping {family}: {folder} is missing", file=sys.stderr)
            continue
        rows = instances(args.shared, family, args.mnist_all_sat)[: args.limit]
        for row in rows:
            for method in methods:
                o = run_one(family, row, folder, method, args.budget, args.seed)
                outcomes.append(o)
                first = f"{o.first:8.3f}" if o.first is not None else f"{'-':>8}"
                flag = "yes" if o.found and o.valid else ("INVALID" if o.found else "no")
                away = "" if o.away is None else str(o.away)
                print(f"{family:8} {o.index:>5} {o.instance:22} {method:10} {flag:5} {first} {o.total:8.3f} {away:>4}",
                      flush=True)
    summarise(outcomes, families, methods)
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["family", "index", "instance", "method", "found", "valid", "first_s", "total_s", "away"])
            for o in outcomes:
                writer.writerow([o.family, o.index, o.instance, o.method, o.found, o.valid,
                                 "" if o.first is None else f"{o.first:.4f}", f"{o.total:.4f}",
                                 "" if o.away is None else o.away])
    return 1 if any(o.found and not o.valid for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
