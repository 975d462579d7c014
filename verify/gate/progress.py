"""Show the gate's progress on stderr: a live status line on a terminal, plain lines in CI.

Live mode (stderr is a terminal, ``TERM`` is not ``dumb`` and ``CI`` is unset) redraws one
line with the counts so far, the elapsed time (ticking twice a second) and what is running;
answer lines are printed above it as they come.  Plain mode prints one line per named property, one per
family row that breaks its requirement, and one per finished family, so that CI logs
stay readable for families of thousands of rows.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, TextIO


def live_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb" and not os.environ.get("CI")


def describe(result: dict[str, Any]) -> str:
    """``verified (IBP, margin 12.2, 0.21 s, cached)``."""
    parts = [str(result.get("method") or "-")]
    if isinstance(result.get("margin"), (int, float)):
        parts.append(f"margin {result['margin']:.4g}")
    parts.append(f"{float(result.get('seconds') or 0.0):.2f} s")
    if result.get("cache", {}).get("hit"):
        parts.append("cached")
    if result.get("reason"):
        parts.append(str(result["reason"]))
    return f"{result.get('verdict', '?')} ({', '.join(parts)})"


class GateProgress:
    """Receives ``finished`` calls from the runner and shows them."""

    def __init__(self, total: int, stream: TextIO | None = None, live: bool | None = None,
                 quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = live_terminal(self.stream) if live is None else live
        self.quiet = quiet
        self.total = total
        self.done = 0
        self.counts = {"verified": 0, "falsified": 0, "unknown": 0}
        self.running: list[str] = []
        self.start = time.monotonic()
        self._drawn = False
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self.live and not quiet:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            self._status()

    def _write(self, text: str) -> None:
        if self.quiet:
            return
        with self._lock:
            if self._drawn:
                self.stream.write("\r\033[K")
                self._drawn = False
            self.stream.write(text + "\n")
            self.stream.flush()

    def _status(self) -> None:
        if self.quiet or not self.live or self._stop.is_set():
            return
        with self._lock:
            self._draw()

    def _draw(self) -> None:
        c = self.counts
        running = f"  running: {', '.join(self.running[:3])}" + (" ..." if len(self.running) > 3 else "") \
            if self.running else ""
        line = (f"gate [{self.done}/{self.total}] {c['verified']} verified, {c['falsified']} falsified, "
                f"{c['unknown']} unknown  {time.monotonic() - self.start:5.1f}s{running}")
        width = _columns() - 1
        self.stream.write("\r\033[K" + line[:width])
        self.stream.flush()
        self._drawn = True

    def started(self, item_id: str) -> None:
        self.running.append(item_id)
        self._status()

    def finished(self, item: Any, result: dict[str, Any], status: str) -> None:
        """One property answered; ``status`` is its requirement's (pass / fail / unknown)."""
        if item.id in self.running:
            self.running.remove(item.id)
        self.done += 1
        verdict = result.get("verdict", "unknown")
        self.counts[verdict] = self.counts.get(verdict, 0) + 1
        width = len(str(self.total))
        line = f"[{self.done:>{width}}/{self.total}] {item.id}: {describe(result)}"
        if status != "pass":
            line += f"  -> requirement '{item.require}' {'FAILS' if status == 'fail' else 'NOT MET (unknown)'}"
        if item.family is None or status != "pass":
            self._write(line)
        self._status()

    def family_done(self, family_id: str, summary: str) -> None:
        self._write(f"family {family_id}: {summary}")
        self._status()

    def note(self, text: str) -> None:
        self._write(text)
        self._status()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            if self._drawn and not self.quiet:
                self.stream.write("\r\033[K")
                self.stream.flush()
                self._drawn = False


def _columns() -> int:
    import shutil

    return shutil.get_terminal_size((100, 20)).columns
