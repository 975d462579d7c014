"""The ``verify`` command line.

Exit codes (also in README): 0 verified, 1 falsified, 2 usage or input error,
3 unknown or timeout, 4 internal error.  User errors print one line, never a traceback
(``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from verify import __version__, errors
from verify.commands.parsers import COMMANDS, build_parser, common_options, positive_int, positive_seconds  # noqa: F401
from verify.errors import EXIT_FALSIFIED, EXIT_INPUT_ERROR, EXIT_INTERNAL, EXIT_UNKNOWN, EXIT_VERIFIED
from verify.runtime import MAX_SECONDS, WATCHDOG_GRACE, run_with_watchdog, stderr_progress, write_text  # noqa: F401


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


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # numpy on extreme bounds: noise to a user
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    if args.version:
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
    """The module of one sub-command (imported only for the command that runs: the command
    modules import torch and the rest of what they run at their top)."""
    return importlib.import_module(f"verify.commands.{name}")


def progress_sink(args: argparse.Namespace) -> Callable[[str], None] | None:
    if getattr(args, "quiet", False):
        return None
    return stderr_progress


def entry_point() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
