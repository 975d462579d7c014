"""``verify check MODEL SPEC``: decide a property (verified / falsified / unknown)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from verify.cli import (
    PROCESS_START,
    VERDICT_EXIT,
    common_options,
    positive_seconds,
    progress_sink,
    run_with_watchdog,
    write_text,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="check a property on a model",
                       description="Decide whether the property holds: exit 0 verified, 1 falsified, "
                                   "3 unknown/timeout, 2 input error, 4 internal error.")
    p.add_argument("model", help="ONNX model file")
    p.add_argument("spec", help="property: .vnnlib (1.0 or 2.0) or a Python spec file")
    p.add_argument("--timeout", type=positive_seconds, default=60.0, help="seconds (default 60)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--witness", metavar="FILE", help="write a counterexample in VNN-COMP format")
    p.add_argument("--seed", type=int, default=0, help="random seed of the searches (default 0)")
    p.add_argument("--certificate", metavar="FILE", help="write the certificate of a verified answer (JSON)")
    p.add_argument("--no-falsify", action="store_true", help="do not search for counterexamples")
    p.add_argument("--no-refine", action="store_true", help="stop after the incomplete pass (no branch and bound)")
    p.add_argument("--no-compress", action="store_true",
                   help="branch and bound on the original network instead of the compressed graph")
    p.add_argument("--no-modular", action="store_true", help="skip module composition before ReLU splitting")
    p.add_argument("--no-recheck", action="store_true",
                   help="do not re-check the certificate with the independent checker before answering")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    common_options(p)


def run(args: argparse.Namespace) -> int:
    from verify.check import UNKNOWN, CheckOptions, CheckResult, check
    from verify.model.network import load_model
    from verify.spec import load_spec

    start = PROCESS_START
    model = load_model(args.model)
    prop = load_spec(args.spec)
    prop.check_fits(model.n_inputs, model.n_outputs, args.model)
    remaining = max(0.01, args.timeout - (time.monotonic() - start))
    options = CheckOptions(timeout=remaining * 0.97, falsify=not args.no_falsify, seed=args.seed,
                           refine=not args.no_refine, recheck=not args.no_recheck, compress=not args.no_compress,
                           modular=not args.no_modular,
                           progress=progress_sink(args))

    def on_timeout() -> CheckResult:
        return CheckResult(UNKNOWN, time.monotonic() - start, "none", None, reason="timeout",
                           model=str(args.model), spec=str(args.spec))

    result = run_with_watchdog(lambda: check(model, prop, options), remaining, on_timeout)
    result.seconds = time.monotonic() - start
    if result.counterexample is not None and args.witness:
        write_text(args.witness, result.counterexample.witness() + "\n")
    if args.certificate:
        if result.certificate is not None:
            from verify.certificate import write_certificate

            write_certificate(args.certificate, result.certificate)
            result.details["certificate_file"] = args.certificate
        elif result.verdict == "verified":
            result.details["certificate_file"] = None
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        from verify.report import format_check

        print(format_check(result))
    sys.stdout.flush()
    code = VERDICT_EXIT[result.verdict]
    if result.reason == "timeout" and result.verdict == UNKNOWN:
        sys.stderr.flush()
        os._exit(code)  # do not wait for an abandoned computation thread
    return code
