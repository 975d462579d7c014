"""``verify certcheck MODEL SPEC CERT``: re-check a certificate with the independent checker.

Exit codes, decided one way for every input:

* 0 (valid): every claim of the certificate holds, re-derived from the model file;
* 1 (invalid): the certificate is well-formed (JSON with every field the checker reads of
  the right type, see :mod:`verify.certcheck.schema`) but a claim does not hold: the
  model or spec changed (sha256), a split tree does not tile its box, a recomputed bound
  does not reach the claimed margin...; the message names the first failing claim;
* 2 (input error): a path that is not a regular file (missing, a directory, a FIFO, too
  long), or a certificate file that is not a well-formed certificate at all (not UTF-8,
  not JSON, nested too deep, a huge integer, NaN, a field of the wrong type); one line
  naming the file and the JSON path.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from verify.certcheck import check_certificate, load_certificate
from verify.errors import EXIT_FALSIFIED, EXIT_VERIFIED
from verify.model.onnx_file import stat_regular_file


def run(args: argparse.Namespace) -> int:
    stat_regular_file(Path(args.model), "model file")
    stat_regular_file(Path(args.spec), "spec file")
    cert = load_certificate(args.certificate)
    report = check_certificate(args.model, args.spec, cert)
    if args.json:
        print(json.dumps({"valid": report.valid, "message": report.message, "claims": report.claims_checked,
                          "seconds": round(report.seconds, 4)}))
    else:
        print(("VALID  " if report.valid else "INVALID  ") + report.message + f"  ({report.seconds:.2f} s)")
    return EXIT_VERIFIED if report.valid else EXIT_FALSIFIED
