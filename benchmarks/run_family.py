"""Run ``verify check`` on every instance of a benchmark family and compare with the expected answers.

    python benchmarks/run_family.py DIR [--timeout S] [--limit N] [--jobs J] [--out CSV]

``DIR/instances.csv`` lists ``onnx,vnnlib,timeout`` (paths relative to DIR, no header);
``DIR/expected.csv`` (optional) has an ``expected`` column: ``sat``, ``unsat`` or ``unknown``
(VNN-LIB describes the unsafe set: ``unsat`` means the property holds).  A *wrong*
answer is ``verified`` where ``sat`` is expected or ``falsified`` where ``unsat`` is.

Instances run in ``J`` worker processes that import verify once (the time per instance
is the wall time of loading the model and spec and checking, without interpreter
start-up).  A worker that overruns an instance's timeout by more than the grace period
is killed and replaced; the instance counts as unknown.  Each worker uses one torch
thread.  The last line is ``verified V, falsified F, unknown U, wrong W, total T s``.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import os
import queue
import statistics
import sys
import time
from pathlib import Path

GRACE = 10.0


def _worker(tasks: mp.Queue, results: mp.Queue, options: dict) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from verify.certificate import write_certificate
    from verify.check import CheckOptions, check
    from verify.errors import VerifyError
    from verify.model.network import load_model
    from verify.spec import load_spec

    parent = os.getppid()
    while True:
        try:
            task = tasks.get(timeout=5.0)
        except queue.Empty:
            if os.getppid() != parent:  # the runner died: do not linger
                return
            continue
        if task is None:
            return
        index, onnx_path, spec_path, timeout = task
        results.put(("start", index, time.monotonic()))
        start = time.monotonic()
        try:
            model = load_model(onnx_path)
            prop = load_spec(spec_path)
            left = max(0.01, timeout - (time.monotonic() - start))
            result = check(model, prop, CheckOptions(timeout=left, recheck=options["recheck"],
                                                     seed=options["seed"], compress=options["compress"],
                                                     modular=options["modular"]))
            verdict, method, reason = result.verdict, result.method, result.reason
        except VerifyError as exc:
            result, (verdict, method, reason) = None, ("error", "none", str(exc))
        except Exception as exc:  # a bug: report it, keep going
            result, (verdict, method, reason) = None, ("error", "none", f"{type(exc).__name__}: {exc}")
        # the answer's time is check's; writing a big certificate (GBs for the largest ReLU-split
        # trees) comes after and must not turn an answer into a hard-timeout kill
        results.put(("done", index, verdict, method, reason, time.monotonic() - start))
        if result is not None and result.certificate is not None and options["certificates"]:
            try:
                write_certificate(Path(options["certificates"]) / f"{index:04d}.json", result.certificate)
            except Exception as exc:  # the answer stands; say that its certificate is missing
                print(f"instance {index}: certificate not written: {type(exc).__name__}: {exc}", file=sys.stderr)


def read_instances(folder: Path) -> list[dict]:
    rows = []
    with open(folder / "instances.csv") as fh:
        for i, line in enumerate(csv.reader(fh)):
            if not line:
                continue
            rows.append({"index": i, "onnx": line[0].strip(), "vnnlib": line[1].strip(),
                         "timeout": float(line[2]) if len(line) > 2 and line[2].strip() else 60.0,
                         "expected": ""})
    expected = folder / "expected.csv"
    if expected.exists():
        with open(expected) as fh:
            for row in csv.DictReader(fh):
                i = int(row["index"])
                if i < len(rows):
                    rows[i]["expected"] = row.get("expected", "")
    return rows


def is_wrong(verdict: str, expected: str) -> bool:
    return (verdict == "verified" and expected == "sat") or (verdict == "falsified" and expected == "unsat")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--timeout", type=float, help="seconds per instance (default: the instance's own)")
    parser.add_argument("--limit", type=int, help="only the first N instances (after --start)")
    parser.add_argument("--start", type=int, default=0, help="skip the first K instances")
    parser.add_argument("--indices", help="comma-separated instance indices to run")
    parser.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    parser.add_argument("--out", type=Path, help="CSV file for the results")
    parser.add_argument("--certificates", type=Path, help="folder for the certificates of verified instances")
    parser.add_argument("--no-recheck", action="store_true", help="do not re-check certificates inside check")
    parser.add_argument("--no-compress", action="store_true", help="branch and bound on the uncompressed network")
    parser.add_argument("--no-modular", action="store_true", help="no module composition before ReLU splitting")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    folder = args.folder
    if not (folder / "instances.csv").exists():
        print(f"run_family: {folder}/instances.csv not found", file=sys.stderr)
        return 2
    rows = read_instances(folder)
    if args.indices:
        wanted = {int(v) for v in args.indices.split(",") if v.strip()}
        rows = [r for r in rows if r["index"] in wanted]
    rows = rows[args.start:]
    if args.limit is not None:
        rows = rows[:args.limit]
    if args.certificates:
        args.certificates.mkdir(parents=True, exist_ok=True)
    options = {"recheck": not args.no_recheck, "seed": args.seed, "compress": not args.no_compress,
               "modular": not args.no_modular,
               "certificates": str(args.certificates) if args.certificates else None}

    ctx = mp.get_context("spawn")
    tasks: mp.Queue = ctx.Queue()
    results: mp.Queue = ctx.Queue()
    by_index = {r["index"]: r for r in rows}
    for r in rows:
        timeout = args.timeout if args.timeout is not None else r["timeout"]
        r["timeout_used"] = timeout
        tasks.put((r["index"], str(folder / r["onnx"]), str(folder / r["vnnlib"]), timeout))
    workers = [ctx.Process(target=_worker, args=(tasks, results, options), daemon=True)
               for _ in range(max(1, args.jobs))]
    for w in workers:
        w.start()
    running: dict[int, float] = {}
    done: dict[int, dict] = {}
    wall = time.monotonic()
    print(f"{'index':>5} {'onnx':<40} {'vnnlib':<28} {'verdict':<9} {'expected':<8} {'seconds':>8}  method",
          flush=True)
    while len(done) < len(rows):
        try:
            msg = results.get(timeout=1.0)
        except queue.Empty:
            msg = None
        if msg is not None and msg[0] == "start":
            running[msg[1]] = msg[2]
        elif msg is not None:
            _, index, verdict, method, reason, seconds = msg
            running.pop(index, None)
            _record(done, by_index[index], verdict, method, reason, seconds)
        now = time.monotonic()
        for index, started in list(running.items()):
            if now - started > by_index[index]["timeout_used"] + GRACE:
                # a stuck instance: replace every worker (we cannot tell which one holds it)
                running.pop(index)
                _record(done, by_index[index], "unknown", "killed", "hard timeout", now - started)
                for w in workers:
                    w.kill()
                pending = [i for i in running]
                running.clear()
                for i in pending:
                    r = by_index[i]
                    tasks.put((i, str(folder / r["onnx"]), str(folder / r["vnnlib"]), r["timeout_used"]))
                workers = [ctx.Process(target=_worker, args=(tasks, results, options), daemon=True)
                           for _ in range(max(1, args.jobs))]
                for w in workers:
                    w.start()
                break
        if not any(w.is_alive() for w in workers) and len(done) < len(rows):
            break
    for _ in workers:
        tasks.put(None)
    elapsed = time.monotonic() - wall
    for w in workers:  # let the last certificates be written
        w.join(timeout=900)
    return _summary(rows, done, args.out, elapsed)


def _record(done: dict, row: dict, verdict: str, method: str, reason: str, seconds: float) -> None:
    done[row["index"]] = {"verdict": verdict, "method": method, "reason": reason, "seconds": seconds}
    flag = "  WRONG" if is_wrong(verdict, row["expected"]) else ""
    print(f"{row['index']:>5} {row['onnx']:<40.40} {row['vnnlib']:<28.28} {verdict:<9} {row['expected']:<8} "
          f"{seconds:>8.2f}  {method}{flag}" + (f"  ({reason})" if verdict == "error" else ""), flush=True)


def _summary(rows: list[dict], done: dict, out: Path | None, elapsed: float) -> int:
    counts = {"verified": 0, "falsified": 0, "unknown": 0, "error": 0}
    wrong = 0
    total = 0.0
    times = []
    for r in rows:
        res = done.get(r["index"], {"verdict": "unknown", "method": "not run", "reason": "", "seconds": 0.0})
        counts[res["verdict"] if res["verdict"] in counts else "unknown"] += 1
        wrong += is_wrong(res["verdict"], r["expected"])
        total += res["seconds"]
        if res["verdict"] in ("verified", "falsified"):
            times.append(res["seconds"])
        r.update(res)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["index", "onnx", "vnnlib", "verdict", "expected", "seconds", "method", "reason"])
            for r in rows:
                writer.writerow([r["index"], r["onnx"], r["vnnlib"], r["verdict"], r["expected"],
                                 f"{r['seconds']:.3f}", r["method"], r["reason"]])
    median = statistics.median(times) if times else 0.0
    print(f"answered {len(times)}/{len(rows)}, median {median:.2f} s (answered), errors {counts['error']}, "
          f"wall {elapsed:.1f} s")
    slowest = sorted(rows, key=lambda r: -r["seconds"])[:10]
    print("slowest: " + ", ".join(f"{r['index']}:{Path(r['onnx']).stem}/{Path(r['vnnlib']).stem} "
                                  f"{r['seconds']:.1f}s {r['verdict']}" for r in slowest))
    unknown = counts["unknown"] + counts["error"]
    print(f"verified {counts['verified']}, falsified {counts['falsified']}, unknown {unknown}, "
          f"wrong {wrong}, total {total:.1f} s")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
