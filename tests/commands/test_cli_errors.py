"""The command line's own guarantees: numbers on it are checked (finite, in range), an internal
error is one line that names a crash report holding the traceback, and numpy's warnings
on extreme bounds are not printed."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from verify import cli
from verify.errors import EXIT_INPUT_ERROR, EXIT_INTERNAL

MODEL = "examples/tiny/classifier.onnx"
SPEC = "specs/tiny_robust_class0.vnnlib"


@pytest.mark.parametrize("argv", [
    ["check", MODEL, SPEC, "--timeout", "inf"],
    ["check", MODEL, SPEC, "--timeout", "1e308"],
    ["check", MODEL, SPEC, "--timeout", "nan"],
    ["check", MODEL, SPEC, "--timeout", "-1"],
    ["check", MODEL, SPEC, "--timeout", "9" * 5000],
    ["falsify", MODEL, SPEC, "--budget", "inf"],
    ["falsify", MODEL, SPEC, "--budget", "1e999"],
    ["gate", "--jobs", "99999999999999999999999999"],
    ["gate", "--jobs", "0"],
    ["check", MODEL, SPEC, "--seed", "x"],
    ["no-such-command"],
])
def test_bad_numbers_and_words_are_one_line_usage_errors(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == EXIT_INPUT_ERROR
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("verify: error:"), err
    assert len(err) < 400


def test_watchdog_accepts_the_longest_timeout() -> None:
    assert cli.run_with_watchdog(lambda: 7, cli.MAX_SECONDS, lambda: None) == 7


def test_internal_error_is_one_line_with_a_crash_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    module = cli._command_module("check")

    def broken(args: object) -> int:
        raise RuntimeError("an engine bug\nover two lines")

    monkeypatch.setattr(module, "run", broken)
    monkeypatch.setenv("VERIFY_CRASH_DIR", str(tmp_path / "crashes"))
    assert cli.main(["check", MODEL, SPEC]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "internal error: RuntimeError: an engine bug over two lines" in err and "please report it" in err
    reports = list((tmp_path / "crashes").glob("verify-crash-*.txt"))
    assert len(reports) == 1 and str(reports[0]) in err
    text = reports[0].read_text()
    assert "Traceback (most recent call last)" in text and "an engine bug" in text and "command: verify check" in text


def test_runtime_warnings_are_not_printed(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    module = cli._command_module("check")

    def noisy(args: object) -> int:
        warnings.warn("overflow encountered in multiply", RuntimeWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(module, "run", noisy)
    with warnings.catch_warnings():
        assert cli.main(["check", MODEL, SPEC, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_the_timeout_covers_reading_the_inputs(tmp_path: Path) -> None:
    """A spec that takes forever to read ends with the command's --timeout, loading included."""
    import os
    import subprocess
    import sys
    import time

    slow = tmp_path / "slow.py"
    slow.write_text("import time\ntime.sleep(60)\n")
    fifo = tmp_path / "spec.vnnlib"
    os.mkfifo(fifo)
    # the slow spec: stopped by --timeout 3 (exit 3), or by its own time limit, the time left (exit 2); the
    # FIFO: refused at once (a long --timeout, so that a loaded machine's imports do not end it first)
    for spec, timeout, codes in ((slow, 3, (2, 3)), (fifo, 60, (2,))):
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "verify.cli", "check", MODEL, str(spec), "--timeout",
                               str(timeout)], capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
        assert time.monotonic() - start < min(timeout, 3) + 20  # interpreter start and imports on a loaded machine
        assert proc.returncode in codes, proc.stderr
        assert "Traceback" not in proc.stderr
        if proc.returncode == 2:
            assert len(proc.stderr.strip().splitlines()) == 1 and str(spec) in proc.stderr
