"""How much smaller a network is on a property's region: compress every instance of a benchmark folder.

Usage::

    .venv/bin/python benchmarks/compression.py ../shared/benchmarks/acasxu [--limit N] [--csv FILE]

For each line ``onnx,vnnlib,timeout`` of ``DIR/instances.csv`` and each case (input box) of
its property: extract the graph, compress it on the box with the property's rows
(:func:`verify.compress.compress`, CROWN bounds, chain shape kept) and split it into
modules.  Prints one row per case: ReLUs before and after, the ReLUs left when every
active ReLU is folded (``skips``: skip connections allowed; these are the unstable ones
after merging), unstable ReLUs, modules, the fraction of ReLUs kept (chain form and with
skips) and seconds; then, right of ``|``, the same with alpha-CROWN bounds (``a_*``: ReLUs
after, unstable, modules, fraction kept); then the medians and totals.  Each compressed
graph is checked on 256 random inputs of the box against the original (``C y - d``).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from verify.compress import case_rows, compress
from verify.graph.evaluate import evaluate_graph
from verify.graph.extract import extract_graph
from verify.model.network import load_model
from verify.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="benchmark folder with instances.csv")
    parser.add_argument("--limit", type=int, default=0, help="only the first N instances")
    parser.add_argument("--max-unstable", type=int, default=12, help="module size rule (default 12)")
    parser.add_argument("--csv", type=Path, help="also write the rows to this CSV file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    folder = args.folder
    if not (folder / "instances.csv").exists():
        print(f"no instances.csv in {folder}", file=sys.stderr)
        return 2
    with open(folder / "instances.csv") as fh:
        instances = [row for row in csv.reader(fh) if row]
    if args.limit:
        instances = instances[: args.limit]
    models: dict[str, tuple] = {}
    rows = []
    header = (f"{'idx':>4} {'onnx':10} {'vnnlib':15} {'case':>4} {'relus':>5} {'after':>5} {'skips':>5} "
              f"{'unst':>5} {'mods':>4} {'kept':>6} {'kept_s':>6} {'sec':>6} | {'a_aft':>5} {'a_uns':>5} "
              f"{'a_mod':>5} {'a_kept':>6}")
    print(header)
    start_all = time.perf_counter()
    worst = 0.0
    for index, (onnx, vnnlib, *_) in enumerate(instances):
        if onnx not in models:
            model = load_model(folder / onnx)
            models[onnx] = (model, extract_graph(model))
        model, graph = models[onnx]
        prop = load_spec(folder / vnnlib)
        for k, case in enumerate(prop.cases):
            t0 = time.perf_counter()
            C, d = case_rows(case)
            lo, hi = case.box.lower, case.box.upper
            res = compress(graph, lo, hi, C, d, max_unstable=args.max_unstable)
            seconds = time.perf_counter() - t0
            skips = compress(graph, lo, hi, C, d, keep_chain=False, max_unstable=args.max_unstable)
            tight = compress(graph, lo, hi, C, d, max_unstable=args.max_unstable, bounds="alpha")
            rng = np.random.default_rng(index)
            x = lo + rng.random((256, lo.size)) * (hi - lo)
            want = evaluate_graph(graph, x) @ C.T - d
            scale = 1.0 + float(np.abs(want).max())
            err = max(float(np.abs(want - evaluate_graph(r.graph, x)).max()) for r in (res, skips, tight)) / scale
            worst = max(worst, err)
            row = {"index": index, "onnx": Path(onnx).name, "vnnlib": Path(vnnlib).name, "case": k + 1,
                   "relus_before": res.relus_before, "relus_after": res.relus_after,
                   "relus_skips": skips.relus_after, "unstable_before": res.unstable_before,
                   "unstable_after": res.unstable_after, "modules": res.n_modules,
                   "kept": res.relus_kept, "kept_skips": skips.relus_kept,
                   "relus_alpha": tight.relus_after, "unstable_alpha": tight.unstable_after,
                   "modules_alpha": tight.n_modules, "kept_alpha": tight.relus_kept, "seconds": seconds,
                   "rel_error": err}
            rows.append(row)
            name = row["onnx"].replace("ACASXU_run2a_", "").replace("_batch_2000", "")
            print(f"{index:>4} {name:10} {row['vnnlib']:15} {k + 1:>4} {res.relus_before:>5} {res.relus_after:>5} "
                  f"{skips.relus_after:>5} {res.unstable_after:>5} {res.n_modules:>4} "
                  f"{res.relus_kept:>6.3f} {skips.relus_kept:>6.3f} {seconds:>6.3f} | {tight.relus_after:>5} "
                  f"{tight.unstable_after:>5} {tight.n_modules:>5} {tight.relus_kept:>6.3f}", flush=True)
    total = time.perf_counter() - start_all
    if not rows:
        print("no instances")
        return 1
    med = statistics.median
    print()
    secs = [r["seconds"] for r in rows]
    print(f"instances: {len(instances)}, cases: {len(rows)}, total time {total:.1f} s "
          f"(compression alone: {sum(secs):.1f} s, median {med(secs):.3f} s per case)")
    print(f"median fraction of ReLUs kept: {med(r['kept'] for r in rows):.3f} (chain form), "
          f"{med(r['kept_skips'] for r in rows):.3f} (active ReLUs folded with skip connections)")
    print(f"ReLUs: {sum(r['relus_before'] for r in rows)} before, {sum(r['relus_after'] for r in rows)} after "
          f"(chain form), {sum(r['relus_skips'] for r in rows)} with skips; unstable "
          f"{sum(r['unstable_before'] for r in rows)} before, {sum(r['unstable_after'] for r in rows)} after")
    mods = [r["modules"] for r in rows]
    print(f"modules per case: median {med(mods)}, min {min(mods)}, max {max(mods)}")
    print(f"with alpha-CROWN bounds (a_*): median fraction kept {med(r['kept_alpha'] for r in rows):.3f}, "
          f"unstable {sum(r['unstable_alpha'] for r in rows)} in all, "
          f"median modules {med(r['modules_alpha'] for r in rows)}")
    print(f"largest relative output difference on sampled inputs: {worst:.2e}")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
