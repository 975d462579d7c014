"""``verify certcheck MODEL SPEC CERT``: re-check a certificate with the independent checker.

Exit 0 when every claim holds, 1 when one does not (the message names the first failing
claim), 2 on input errors (missing or malformed files).
"""

from __future__ import annotations

import argparse
import json

from verify.cli import common_options
from verify.errors import EXIT_FALSIFIED, EXIT_VERIFIED


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("certcheck", help="re-check a certificate against the model and spec",
                       description="Re-derive every claim of a certificate from the model file (rigorous float64, "
                                   "no auto_LiRPA): exit 0 valid, 1 invalid, 2 input error.")
    p.add_argument("model", help="ONNX model file the certificate is about")
    p.add_argument("spec", help="the property (.vnnlib or Python spec)")
    p.add_argument("certificate", help="certificate JSON written by verify check --certificate")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    common_options(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from verify.certcheck import check_certificate, load_certificate
    from verify.errors import InputFileError

    for path in (args.model, args.spec):
        if not Path(path).is_file():
            raise InputFileError(f"file not found: {path}")
    cert = load_certificate(args.certificate)
    report = check_certificate(args.model, args.spec, cert)
    if args.json:
        print(json.dumps({"valid": report.valid, "message": report.message, "claims": report.claims_checked,
                          "seconds": round(report.seconds, 4)}))
    else:
        print(("VALID  " if report.valid else "INVALID  ") + report.message + f"  ({report.seconds:.2f} s)")
    return EXIT_VERIFIED if report.valid else EXIT_FALSIFIED
