"""How much module composition loses against whole-model bounds, on a benchmark family (root only).

    python benchmarks/compose.py [DIR] [--limit N] [--indices 95-105,150] [--timeout S] [--out CSV]

For every instance of ``DIR/instances.csv`` (default: ../shared/benchmarks/acasxu) and
every case of its property, on the case's whole box (no branch and bound):

* ``crown`` / ``alpha``: whole-model CROWN and alpha-CROWN (verify's engine);
* ``box``: box composition — the modules of :func:`verify.compose.partition`, each bounded
  by the policy's backend, chained by boxes;
* ``crown-mods``: composition with linear fallback, every module by CROWN (the fair
  comparison with whole-model CROWN);
* ``linear``: composition with linear fallback and the default policy (Z3 / alpha-CROWN).

Margins are the worst unsafe polytope's margin (> 0: refuted).  A verified ``linear``
composition's certificate is re-checked by the independent checker (column ``cert``).
The last lines give how many instances each verifies and the median margin loss of box
composition against whole-model CROWN.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", default=str(ROOT.parent / "shared" / "benchmarks" / "acasxu"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per instance and composition")
    parser.add_argument("--indices", default=None, help="only these instances, e.g. 95-105,150")
    parser.add_argument("--out", default=None, help="write the table as CSV")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    torch.set_num_threads(1)
    from verify.bounds.linear_relax import backward_bound, crown_bounds, optimize_alpha
    from verify.certcheck import check_certificate
    from verify.certificate.build import build_certificate
    from verify.certificate.modules import modules_proof
    from verify.check import decision_threshold
    from verify.compose import ComposeOptions, Policy, prove_modular
    from verify.compose.compose import load_chain
    from verify.model.network import load_model
    from verify.refine import case_rows
    from verify.spec import load_spec

    base = Path(args.dir)
    rows = [r for r in csv.reader((base / "instances.csv").open()) if r]
    chosen = list(range(len(rows)))
    if args.indices:
        chosen = []
        for part in args.indices.split(","):
            a, _, b = part.partition("-")
            chosen += list(range(int(a), int(b or a) + 1))
    if args.limit:
        chosen = chosen[: args.limit]
    expected: dict[int, str] = {}
    if (base / "expected.csv").exists():
        for r in csv.DictReader((base / "expected.csv").open()):
            expected[int(r["index"])] = r["expected"]
    threshold = decision_threshold(0.0)
    models: dict[str, tuple] = {}
    table = []
    header = f"{'#':>4} {'spec':<14} {'exp':<5} {'crown':>10} {'alpha':>10} {'box':>10} {'crown-mods':>10} " \
             f"{'linear':>10} {'mods':>4} {'cert':>5} {'sec':>6}"
    print(header)
    for index in chosen:
        onnx_rel, spec_rel = rows[index][0], rows[index][1]
        if onnx_rel not in models:
            model = load_model(base / onnx_rel)
            models[onnx_rel] = (model, load_chain(model))
        model, chain = models[onnx_rel]
        prop = load_spec(base / spec_rel)
        start = time.monotonic()
        worst = {k: np.inf for k in ("crown", "alpha", "box", "crown-mods", "linear")}
        proofs, n_mods, timing, used = [], 0, {}, []
        for ci, case in enumerate(prop.cases):
            C, d, groups = case_rows(case)
            Ws, bs = chain.with_spec(C, d).torch()
            lo = torch.as_tensor(case.box.lower)[None]
            hi = torch.as_tensor(case.box.upper)[None]
            t = time.monotonic()
            pre = crown_bounds(Ws, bs, lo, hi, last=False)
            lb = backward_bound(Ws, bs, lo, hi, pre).lb[0]
            worst["crown"] = min(worst["crown"], min(float(lb[g].max()) for g in groups))
            timing["crown"] = timing.get("crown", 0.0) + time.monotonic() - t
            best, _, _ = optimize_alpha(Ws, bs, lo, hi, pre, iterations=20)
            worst["alpha"] = min(worst["alpha"], min(float(best.lb[0, g].max()) for g in groups))
            t = time.monotonic()
            res = prove_modular(chain, case, ComposeOptions(deadline=time.monotonic() + args.timeout,
                                                            threshold=threshold))
            timing["linear"] = timing.get("linear", 0.0) + time.monotonic() - t
            worst["box"] = min(worst["box"], res.figures.get("box", {}).get("margin", -np.inf))
            worst["linear"] = min(worst["linear"], res.min_margin)
            n_mods = max(n_mods, len(res.claims))
            used += res.figures.get("box", {}).get("backends", []) + [c.backend for c in res.claims]
            proofs.append(modules_proof(ci, res.claims, res.linear) if res.verified else None)
            crown_only = prove_modular(chain, case, ComposeOptions(policy=Policy(override="crown"),
                                                                   deadline=time.monotonic() + args.timeout,
                                                                   threshold=threshold))
            worst["crown-mods"] = min(worst["crown-mods"], crown_only.min_margin)
        cert_ok = ""
        if all(p is not None for p in proofs):
            cert = build_certificate(model, prop, proofs, chain.hidden_sizes, chain.relu_names)
            report = check_certificate(base / onnx_rel, base / spec_rel, cert)
            cert_ok = "ok" if report.valid else "BAD"
            if not report.valid:
                print(f"  certificate rejected: {report.message}", file=sys.stderr)
        seconds = time.monotonic() - start
        row = {"index": index, "spec": Path(spec_rel).stem, "expected": expected.get(index, ""), **worst,
               "modules": n_mods, "backends": " ".join(used), "cert": cert_ok, "seconds": seconds,
               "linear_seconds": timing.get("linear", 0.0)}
        table.append(row)
        print(f"{index:>4} {row['spec']:<14} {row['expected']:<5} " +
              " ".join(f"{worst[k]:>10.4g}" for k in ("crown", "alpha", "box", "crown-mods", "linear")) +
              f" {n_mods:>4} {cert_ok:>5} {seconds:>6.2f}", flush=True)
    if args.out:
        with open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
    counts = {k: sum(r[k] > threshold for r in table) for k in ("crown", "alpha", "box", "crown-mods", "linear")}
    print("verified at the root: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" (of {len(table)})")
    both = [r for r in table if np.isfinite(r["crown"]) and np.isfinite(r["box"])]
    if both:
        loss = [r["crown"] - r["box"] for r in both]
        print(f"margin loss of box composition against whole-model CROWN: median {statistics.median(loss):.4g}, "
              f"min {min(loss):.4g}, max {max(loss):.4g}")
        loss_c = [r["crown"] - r["crown-mods"] for r in table if np.isfinite(r["crown-mods"])]
        if loss_c:
            print(f"margin loss of CROWN-module composition (linear fallback) against whole-model CROWN: median "
                  f"{statistics.median(loss_c):.4g}, min {min(loss_c):.4g}, max {max(loss_c):.4g}")
    used_all = [b for r in table for b in r["backends"].split()]
    print("module claims by backend (box pass and final composition): " +
          ", ".join(f"{b} {used_all.count(b)}" for b in sorted(set(used_all))))
    bad = sum(r["cert"] == "BAD" for r in table)
    checked = sum(r["cert"] != "" for r in table)
    print(f"certificates re-checked: {checked}, rejected: {bad}; seconds per instance (linear composition): median "
          f"{statistics.median(r['linear_seconds'] for r in table):.3g}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
