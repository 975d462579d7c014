"""Run every instance as its own ``verify check`` process, timed from process start, as users
and the VNN-COMP scoring time a verifier.

    python benchmarks/whole_process.py INSTANCES [--limit N] [--indices I,J] [--timeout S]
                                       [--verify CMD] [--compare CMD] [--out CSV]

``INSTANCES`` is a family folder (or its ``instances.csv``), as for ``run_family.py``.
Per instance it prints verdict, expected and whole-process seconds; then the totals
``verified V, falsified F, unknown U, wrong W, total T s`` and the median. With
``--compare CMD`` (another verify, e.g. ``PYTHONPATH=/tmp/old .venv/bin/python -m
verify.cli``) each instance is run by both, one after the other, and both columns and
the ratio are printed: a side-by-side comparison on this noisy machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from verify.batch import Instance, is_wrong, read_instances

VERDICTS = {0: "verified", 1: "falsified", 3: "unknown"}
DEFAULT_VERIFY = f"{Path(sys.executable).parent / 'verify'}"


def run_one(command: str, instance: Instance, timeout: float) -> tuple[str, float]:
    """(verdict, whole-process seconds) of one ``verify check`` process."""
    prefix = shlex.split(command)
    env = dict(os.environ)
    while prefix and "=" in prefix[0] and not prefix[0].startswith(("/", ".")):
        key, _, value = prefix.pop(0).partition("=")
        env[key] = value
    argv = [*prefix, "check", str(instance.model_path), str(instance.spec_path), "--timeout", f"{timeout:g}",
            "--quiet"]
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout + 30,
                              stdin=subprocess.DEVNULL)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        code = -1
    seconds = time.monotonic() - start
    return VERDICTS.get(code, "error" if code != -1 else "unknown"), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instances", type=Path)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--indices", help="comma-separated instance indices")
    parser.add_argument("--timeout", type=float, help="seconds per instance (default: the instance's own)")
    parser.add_argument("--verify", default=DEFAULT_VERIFY, help="the verify command (default: this venv's)")
    parser.add_argument("--compare", help="a second verify command, run on each instance right after the first")
    parser.add_argument("--out", type=Path, help="CSV of the results")
    args = parser.parse_args(argv)
    rows = read_instances(args.instances)
    if args.indices:
        wanted = [int(v) for v in args.indices.split(",") if v.strip()]
        rows = [r for i in wanted for r in rows if r.index == i]
    if args.limit is not None:
        rows = rows[:args.limit]
    commands = [args.verify] + ([args.compare] if args.compare else [])
    names = ["this"] + (["compare"] if args.compare else [])
    header = f"{'index':>5} {'onnx':<34} {'vnnlib':<22} {'expected':<8}"
    for name in names:
        header += f" {name + ' verdict':<17} {'s':>7}"
    print(header + ("   ratio" if args.compare else ""), flush=True)
    table: list[dict] = []
    for r in rows:
        timeout = args.timeout if args.timeout is not None else r.timeout
        line = f"{r.index:>5} {r.model:<34.34} {r.spec:<22.22} {r.expected:<8}"
        entry = {"index": r.index, "onnx": r.model, "vnnlib": r.spec, "expected": r.expected}
        for name, command in zip(names, commands):
            verdict, seconds = run_one(command, r, timeout)
            flag = "!" if is_wrong(verdict, r.expected) else " "
            line += f" {verdict + flag:<17} {seconds:>7.2f}"
            entry[f"{name}_verdict"], entry[f"{name}_seconds"] = verdict, round(seconds, 3)
        if args.compare:
            line += f"   {entry['this_seconds'] / max(entry['compare_seconds'], 1e-9):.2f}"
        print(line, flush=True)
        table.append(entry)
    if args.out:
        with open(args.out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
    worst = 0
    for name in names:
        verdicts = [e[f"{name}_verdict"] for e in table]
        seconds = [e[f"{name}_seconds"] for e in table]
        wrong = sum(is_wrong(e[f"{name}_verdict"], e["expected"]) for e in table)
        worst = max(worst, wrong)
        print(f"{name}: verified {verdicts.count('verified')}, falsified {verdicts.count('falsified')}, "
              f"unknown {len(verdicts) - verdicts.count('verified') - verdicts.count('falsified')}, wrong {wrong}, "
              f"total {sum(seconds):.1f} s, median {statistics.median(seconds):.2f} s")
    if args.compare:
        faster = sum(e["this_seconds"] < e["compare_seconds"] for e in table)
        ratios = [e["this_seconds"] / max(e["compare_seconds"], 1e-9) for e in table]
        print(f"this faster on {faster} of {len(table)}; median ratio this/compare {statistics.median(ratios):.2f}")
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(main())
