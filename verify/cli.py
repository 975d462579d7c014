"""The ``verify`` command line.

Exit codes (also in README): 0 verified, 1 falsified, 2 usage or input error,
3 unknown or timeout, 4 internal error.  User errors print one line, never a traceback
(``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from verify import errors
from verify.errors import EXIT_FALSIFIED, EXIT_INPUT_ERROR, EXIT_INTERNAL, EXIT_UNKNOWN, EXIT_VERIFIED


def _process_start() -> float:
    """When this process started, on the :func:`time.monotonic` clock: from the kernel's start
    time of the process where Linux tells it (so that interpreter start-up counts too), else now."""
    now = time.monotonic()
    try:
        with open("/proc/self/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # seconds after boot
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return now
    return now - age if 0 <= age < 60 else now


#: When this process started: the --timeout clock starts here (interpreter start-up and the
#: heavy imports, torch included, count against the timeout).
PROCESS_START = _process_start()

VERDICT_EXIT = {"verified": EXIT_VERIFIED, "falsified": EXIT_FALSIFIED, "unknown": EXIT_UNKNOWN}

#: Sub-commands, one module each in verify/commands/ (with add_parser(sub) and run(args)).
COMMANDS = ("check", "certcheck", "falsify", "graph", "gate", "run")

#: Extra seconds given to a run past its --timeout before the watchdog answers for it.
WATCHDOG_GRACE = 0.05


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit code 2."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(EXIT_INPUT_ERROR, f"verify: error: {message} (see '{self.prog} --help')\n")


#: The longest timeout or budget accepted on the command line (about 11.6 days).
MAX_SECONDS = 1e6


def positive_seconds(text: str) -> float:
    """A timeout or budget: a finite number of seconds in (0, :data:`MAX_SECONDS`]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r:.60}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text:.60}")
    if not value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, at most {MAX_SECONDS:g}, got {text:.60}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text) if len(text) <= 20 else None
    except ValueError:
        value = None
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r:.60}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    if value > 1_000_000:
        raise argparse.ArgumentTypeError(f"must be at most 1000000, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="verify", description="Behavioural guarantees for neural networks.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    for name in COMMANDS:
        _command_module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # numpy on extreme bounds: noise to a user
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
    try:
        return _command_module(args.command).run(args)
    except errors.VerifyError as exc:
        if debug:
            traceback.print_exc()
        print(f"verify: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("verify: interrupted", file=sys.stderr)
        return EXIT_UNKNOWN
    except Exception as exc:  # a bug in verify
        if debug:
            traceback.print_exc()
        report = write_crash_report(exc, argv)
        where = f"the traceback is in {report}" if report else "run again with --debug to see the traceback"
        print(f"verify: internal error: {type(exc).__name__}: {_one_line(str(exc))} (a bug in verify; {where}; "
              "please report it)", file=sys.stderr)
        return EXIT_INTERNAL


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def write_crash_report(exc: BaseException, argv: Sequence[str] | None) -> str | None:
    """Write the traceback of an internal error to a file of its own; returns its path (None if
    no file could be written). The folder is ``$VERIFY_CRASH_DIR``, else the temporary folder."""
    from verify import __version__

    folder = os.environ.get("VERIFY_CRASH_DIR") or tempfile.gettempdir()
    try:
        os.makedirs(folder, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=time.strftime("verify-crash-%Y%m%d-%H%M%S-"), suffix=".txt", dir=folder)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"verify {__version__}, Python {sys.version.split()[0]}\n")
            fh.write(f"command: verify {' '.join(sys.argv[1:] if argv is None else argv)}\n\n")
            fh.write("".join(traceback.format_exception(exc)))
        return path
    except OSError:
        return None


def _command_module(name: str) -> Any:
    import importlib

    return importlib.import_module(f"verify.commands.{name}")


def common_options(p: argparse.ArgumentParser) -> None:
    """Options every sub-command accepts."""
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks of errors")


def progress_sink(args: argparse.Namespace) -> Callable[[str], None] | None:
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
    thread.join(min(timeout + WATCHDOG_GRACE, threading.TIMEOUT_MAX))
    if thread.is_alive():
        box["value"] = on_timeout()
        box["abandoned"] = True
    if "error" in box:
        raise box["error"]
    return box["value"]


def write_text(path: str, text: str) -> None:
    """Write a user-named output file, with a one-line error when that fails."""
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
