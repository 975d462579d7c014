"""What a running command needs, whichever layer runs it: the watchdog that keeps a
timeout, user-named output files with one-line errors, progress lines on stderr, and the
longest timeout accepted (on the command line and in manifests)."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from verify.errors import InputFileError

#: The longest timeout or budget accepted on the command line (about 11.6 days).
MAX_SECONDS = 1e6

#: Extra seconds given to a run past its --timeout before the watchdog answers for it.
WATCHDOG_GRACE = 0.05


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
        raise InputFileError(f"cannot write {path}: {exc.strerror}") from None


def write_json(path: str, data: Any) -> None:
    """Write a JSON output file (certificates: one key per line, sorted, so diffs read well)."""
    write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def save_numbered_certificate(folder: str | None, index: int, certificate: dict[str, Any] | None) -> None:
    """Write instance ``index``'s certificate as ``folder/NNNN.json`` (a batch's; when both
    are given); a failure is said on stderr, and the answer stands."""
    if certificate is None or not folder:
        return
    try:
        write_json(os.path.join(folder, f"{index:04d}.json"), certificate)
    except Exception as exc:
        print(f"instance {index}: certificate not written: {type(exc).__name__}: {exc}", file=sys.stderr)


def stderr_progress(message: str) -> None:
    """A progress sink: the line on stderr, at once."""
    print(message, file=sys.stderr, flush=True)
