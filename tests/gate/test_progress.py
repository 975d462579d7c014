"""verify.gate.progress: plain lines in CI, a redrawn status line on a terminal."""

from __future__ import annotations

import io
from types import SimpleNamespace

from verify.gate.progress import GateProgress, live_terminal

VERIFIED = {"verdict": "verified", "method": "IBP", "margin": 1.5, "seconds": 0.2}
FALSIFIED = {"verdict": "falsified", "method": "pgd", "margin": None, "seconds": 0.1, "cache": {"hit": True}}


def _item(i: str, family: str | None = None, require: str = "verified") -> SimpleNamespace:
    return SimpleNamespace(id=i, family=family, require=require)


def test_plain_lines() -> None:
    out = io.StringIO()
    p = GateProgress(3, out, live=False)
    p.finished(_item("a"), VERIFIED, "pass")
    p.finished(_item("f[0]", "f"), VERIFIED, "pass")  # passing family rows are not listed
    p.finished(_item("f[1]", "f"), FALSIFIED, "fail")
    p.family_done("f", "1/2 verified")
    p.close()
    lines = out.getvalue().splitlines()
    assert lines == ["[1/3] a: verified (IBP, margin 1.5, 0.20 s)",
                     "[3/3] f[1]: falsified (pgd, 0.10 s, cached)  -> requirement 'verified' FAILS",
                     "family f: 1/2 verified"]
    assert "\r" not in out.getvalue()


def test_live_line_is_redrawn() -> None:
    out = io.StringIO()
    p = GateProgress(2, out, live=True)
    p.started("a")
    assert "running: a" in out.getvalue() and out.getvalue().startswith("\r\033[K")
    p.finished(_item("a"), VERIFIED, "pass")
    p.close()
    text = out.getvalue()
    assert "[1/2] a: verified" in text and "gate [1/2] 1 verified, 0 falsified, 0 unknown" in text
    assert text.endswith("\r\033[K")


def test_quiet_and_not_a_terminal() -> None:
    out = io.StringIO()
    p = GateProgress(1, out, live=True, quiet=True)
    p.started("a")
    p.finished(_item("a"), VERIFIED, "pass")
    p.close()
    assert out.getvalue() == ""
    assert not live_terminal(io.StringIO())


def test_live_clock_ticks_while_a_check_runs() -> None:
    import time

    out = io.StringIO()
    p = GateProgress(1, out, live=True)
    p.started("slow")
    before = out.getvalue().count("running: slow")
    time.sleep(1.2)
    p.close()
    assert out.getvalue().count("running: slow") >= before + 2  # redrawn twice a second without any event
