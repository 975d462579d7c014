"""Re-check every certificate a benchmark run wrote, and compare the check time with the run's time.

    python benchmarks/certcheck_all.py DIR CERTS RESULTS_CSV

``DIR`` is the benchmark family folder, ``CERTS`` the folder given to ``run_family.py
--certificates`` (one ``NNNN.json`` per verified instance), ``RESULTS_CSV`` its ``--out``
file (for the verification times).  Prints one row per certificate (valid, check seconds,
verification seconds, ratio) and the totals: how many were accepted, the median check
time and the median ratio of check time to verification time.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

# one thread per process, as in run_family.py: numpy's default threads ran the checks
# 2-4 times slower on 2 cores when two of these ran side by side
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("certificates", type=Path)
    parser.add_argument("results", type=Path)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from verify.certcheck import check_certificate, load_certificate

    rows = {int(r["index"]): r for r in csv.DictReader(open(args.results))}
    certs = sorted(args.certificates.glob("*.json"))
    accepted, times, ratios = 0, [], []
    print(f"{'index':>5} {'onnx':<40} {'vnnlib':<24} {'valid':<6} {'check s':>8} {'verify s':>9} {'ratio':>6}")
    for path in certs:
        index = int(path.stem)
        row = rows[index]
        cert = load_certificate(path)
        start = time.monotonic()
        report = check_certificate(args.folder / row["onnx"], args.folder / row["vnnlib"], cert)
        seconds = time.monotonic() - start
        verify_s = float(row["seconds"])
        ratio = seconds / verify_s if verify_s > 0 else float("nan")
        accepted += report.valid
        times.append(seconds)
        ratios.append(ratio)
        print(f"{index:>5} {row['onnx']:<40.40} {row['vnnlib']:<24.24} {str(report.valid):<6} {seconds:>8.3f} "
              f"{verify_s:>9.3f} {ratio:>6.2f}" + ("" if report.valid else f"  {report.message}"), flush=True)
    verified = sum(1 for r in rows.values() if r["verdict"] == "verified")
    print(f"certificates {len(certs)} (verified instances {verified}), accepted {accepted}, "
          f"median check {statistics.median(times) if times else 0:.3f} s, "
          f"median check/verify ratio {statistics.median(ratios) if ratios else 0:.2f}, "
          f"total check {sum(times):.1f} s")
    return 0 if accepted == len(certs) == verified else 1


if __name__ == "__main__":
    sys.exit(main())
