"""Relational properties on the ACAS Xu networks (issue 19).

    python benchmarks/relational.py [ACASXU_DIR] [--nets 1_1,2_3] [--timeout S] [--out CSV]

1. Monotonicity: for each network, each of the 5 outputs and each of the 5 inputs, both
   directions (``monotone(region, feature=j, output=o, increasing=...)``) on the region
   of property 1.  One row per (network, output, feature, direction): verdict and seconds;
   then per network the counts.  Both directions falsified means the output is not
   monotone in that input there; one verified means it is (in that direction).
2. Equivalence of network 1_1 with its own weights rounded to float16: the sampled
   largest difference (a lower bound on the true one), the region's CROWN bound of the
   product, and a geometric bisection between them with ``equivalent(region, other,
   delta)``, from the CROWN bound down: the smallest certified delta (the largest
   difference bound of a verified run) and the largest falsified delta (with a replayed input).

Each check runs in this process (verify imported once), one after another.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from verify.check import CheckOptions
from verify.model.network import load_model
from verify.relational import check_template
from verify.relational.equivalence import product_model, root_delta
from verify.spec import equivalent, load_spec, monotone

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "acasxu"


def _region(folder: Path):  # noqa: ANN202
    prop = load_spec(folder / "vnnlib" / "prop_1.vnnlib")
    return prop.cases[0].box


def monotonicity(folder: Path, nets: list[str], timeout: float, rows: list[dict]) -> None:
    region = _region(folder)
    print(f"{'net':5} {'out':>3} {'in':>3} {'direction':10} {'verdict':10} {'seconds':>8}")
    for net in nets:
        model = load_model(folder / "onnx" / f"ACASXU_run2a_{net}_batch_2000.onnx")
        counts: dict[str, int] = {}
        total = 0.0
        for o in range(5):
            for j in range(5):
                for up in (True, False):
                    t = time.perf_counter()
                    r = check_template(model, monotone(region, feature=j, output=o, increasing=up),
                                       CheckOptions(timeout=timeout))
                    dt = time.perf_counter() - t
                    total += dt
                    counts[r.verdict] = counts.get(r.verdict, 0) + 1
                    direction = "increasing" if up else "decreasing"
                    rows.append({"part": "monotone", "net": net, "output": o, "feature": j, "direction": direction,
                                 "verdict": r.verdict, "seconds": round(dt, 3)})
                    print(f"{net:5} {o:3d} {j:3d} {direction:10} {r.verdict:10} {dt:8.2f}", flush=True)
        print(f"net {net}: verified {counts.get('verified', 0)}, falsified {counts.get('falsified', 0)}, "
              f"unknown {counts.get('unknown', 0)}, total {total:.1f} s", flush=True)


def _float16_copy(source: Path, target: Path) -> Path:
    model = onnx.load(str(source))
    for t in model.graph.initializer:
        a = numpy_helper.to_array(t)
        if a.dtype == np.float32:
            t.CopyFrom(numpy_helper.from_array(a.astype(np.float16).astype(np.float32), t.name))
    onnx.save(model, str(target))
    return target


def equivalence(folder: Path, timeout: float, rows: list[dict], steps: int = 6) -> None:
    region = _region(folder)
    source = folder / "onnx" / "ACASXU_run2a_1_1_batch_2000.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        other = _float16_copy(source, Path(tmp) / "1_1_float16.onnx")
        f, g = load_model(source), load_model(other)
        xs = np.random.default_rng(0).uniform(region.lower, region.upper, (20000, 5)).astype(np.float32)
        sampled = float(np.abs(f.evaluate(xs).astype(np.float64) - g.evaluate(xs).astype(np.float64)).max())
        tmpl = equivalent(region, str(other), delta=1.0)
        crown = root_delta(product_model(f, g, list(range(5))), tmpl)
        print(f"\n1_1 vs float16 weights: sampled max |f - g| {sampled:.6g}, CROWN bound on the region {crown:.6g}")
        lo, hi = sampled, crown
        best_verified, best_falsified = None, None
        for _ in range(steps):
            delta = hi if best_verified is None and _ == 0 else float(np.sqrt(lo * hi))  # geometric bisection
            t = time.perf_counter()
            r = check_template(f, equivalent(region, str(other), delta=delta), CheckOptions(timeout=timeout))
            dt = time.perf_counter() - t
            cert = r.details.get("certified_delta")
            rows.append({"part": "equivalent", "net": "1_1", "delta": delta, "verdict": r.verdict,
                         "seconds": round(dt, 3), "certified_delta": cert})
            print(f"  delta {delta:.6g}: {r.verdict:9} {dt:7.2f} s" + (f"  certified {cert:.6g}" if cert else ""),
                  flush=True)
            if r.verdict == "verified":
                best_verified = min(best_verified or np.inf, cert if cert is not None else delta)
                hi = min(delta, best_verified)
            elif r.verdict == "falsified":
                best_falsified = max(best_falsified or 0.0, delta)
                lo = delta
            else:
                lo = delta  # unknown: no claim either way; the answer is between this delta and hi
        print(f"  smallest certified delta {best_verified}, largest falsified delta {best_falsified}, "
              f"sampled {sampled:.6g}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=DEFAULT)
    parser.add_argument("--nets", default="1_1", help="comma-separated networks (default 1_1)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per check")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--skip-monotone", action="store_true")
    args = parser.parse_args(argv)
    if not (args.folder / "instances.csv").is_file():
        print(f"no ACAS Xu family at {args.folder}", file=sys.stderr)
        return 2
    rows: list[dict] = []
    if not args.skip_monotone:
        monotonicity(args.folder, args.nets.split(","), args.timeout, rows)
    equivalence(args.folder, args.timeout, rows)
    if args.out:
        keys = sorted({k for r in rows for k in r})
        with open(args.out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
