"""The ``verify`` command line.

Exit codes (also in README): 0 verified, 1 falsified, 2 usage or input error,
3 unknown or timeout, 4 internal error.  User errors print one line, never a traceback
(``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import traceback
from typing import Any, Callable, Sequence

from verify import errors
from verify.errors import EXIT_FALSIFIED, EXIT_INPUT_ERROR, EXIT_INTERNAL, EXIT_UNKNOWN, EXIT_VERIFIED

VERDICT_EXIT = {"verified": EXIT_VERIFIED, "falsified": EXIT_FALSIFIED, "unknown": EXIT_UNKNOWN}

#: Extra seconds given to a run past its --timeout before the watchdog answers for it.
WATCHDOG_GRACE = 0.05


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit code 2."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(EXIT_INPUT_ERROR, f"verify: error: {message} (see '{self.prog} --help')\n")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="verify", description="Behavioural guarantees for neural networks.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("check", help="check a property on a model",
                       description="Decide whether the property holds: exit 0 verified, 1 falsified, "
                                   "3 unknown/timeout, 2 input error, 4 internal error.")
    p.add_argument("model", help="ONNX model file")
    p.add_argument("spec", help="property: .vnnlib (1.0 or 2.0) or a Python spec file")
    p.add_argument("--timeout", type=_positive, default=60.0, help="seconds (default 60)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--witness", metavar="FILE", help="write a counterexample in VNN-COMP format")
    p.add_argument("--seed", type=int, default=0, help="random seed of the searches (default 0)")
    p.add_argument("--no-falsify", action="store_true", help="do not search for counterexamples")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    if args.version:
        from verify import __version__

        print(f"verify {__version__}")
        return 0
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_INPUT_ERROR
    handler: Callable[[argparse.Namespace], int] = {"check": _cmd_check}[args.command]
    try:
        return handler(args)
    except errors.VerifyError as exc:
        if debug:
            traceback.print_exc()
        print(f"verify: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("verify: interrupted", file=sys.stderr)
        return EXIT_UNKNOWN
    except Exception as exc:  # a bug in verify
        traceback.print_exc()
        print(f"verify: internal error: {type(exc).__name__}: {exc} (please report this)", file=sys.stderr)
        return EXIT_INTERNAL


def _progress_sink(args: argparse.Namespace) -> Callable[[str], None] | None:
    if getattr(args, "quiet", False):
        return None
    from verify.check import stderr_progress

    return stderr_progress


def run_with_watchdog(work: Callable[[], Any], timeout: float, on_timeout: Callable[[], Any]) -> Any:
    """Run ``work`` in a thread; if it overruns ``timeout``, return ``on_timeout()`` instead.

    The work is cooperative (it watches its own deadline); the watchdog is the backstop
    that keeps ``--timeout`` honoured when one bound computation runs long.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout + WATCHDOG_GRACE)
    if thread.is_alive():
        box["value"] = on_timeout()
        box["abandoned"] = True
    if "error" in box:
        raise box["error"]
    return box["value"]


def _cmd_check(args: argparse.Namespace) -> int:
    from verify.check import UNKNOWN, CheckOptions, CheckResult, check
    from verify.model.network import load_model
    from verify.spec import load_spec

    start = time.monotonic()
    model = load_model(args.model)
    prop = load_spec(args.spec)
    prop.check_fits(model.n_inputs, model.n_outputs, args.model)
    remaining = max(0.01, args.timeout - (time.monotonic() - start))
    options = CheckOptions(timeout=remaining * 0.97, falsify=not args.no_falsify, seed=args.seed,
                           progress=_progress_sink(args))

    def on_timeout() -> CheckResult:
        return CheckResult(UNKNOWN, time.monotonic() - start, "none", None, reason="timeout",
                           model=str(args.model), spec=str(args.spec))

    result = run_with_watchdog(lambda: check(model, prop, options), remaining, on_timeout)
    result.seconds = time.monotonic() - start
    if result.counterexample is not None and args.witness:
        _write_text(args.witness, result.counterexample.witness() + "\n")
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        from verify.report import format_check

        print(format_check(result))
    sys.stdout.flush()
    code = VERDICT_EXIT[result.verdict]
    if result.reason == "timeout" and result.verdict == UNKNOWN:
        os._exit(code)  # do not wait for an abandoned computation thread
    return code


def _write_text(path: str, text: str) -> None:
    try:
        with open(path, "w") as fh:
            fh.write(text)
    except OSError as exc:
        raise errors.InputFileError(f"cannot write {path}: {exc.strerror}") from None


def entry_point() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
