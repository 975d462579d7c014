"""``verify --version`` and ``verify check --help``: every example in the help works as it says."""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import verify
from verify.cli import main

ROOT = Path(__file__).resolve().parents[2]
VERIFY = [sys.executable, "-m", "verify.cli"]


def run(*args: str, cwd: Path = ROOT, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "VERIFY_EXAMPLES_DIR": "off"}
    return subprocess.run([*VERIFY, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def test_version_alone_prints_it_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout == "verify 0.1.0\n" and proc.stderr == "", proc
    assert verify.__version__ == "0.1.0"
    assert 'version = "0.1.0"' in (ROOT / "pyproject.toml").read_text()
    assert main(["--version"]) == 0 and capsys.readouterr().out == "verify 0.1.0\n"


def check_help() -> str:
    proc = run("check", "--help")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def help_examples(text: str) -> list[tuple[str, int]]:
    """The example command lines of the help, each with the exit code the comment above it states."""
    lines = text.split("\n")
    found = []
    for i, line in enumerate(lines):
        if line.strip().startswith("verify check "):
            stated = re.search(r"#\s*exit (\d)", lines[i - 1])
            assert stated, f"no 'exit N' stated above {line.strip()!r}"
            found.append((line.strip(), int(stated.group(1))))
    return found


def test_check_help_has_examples_exit_codes_and_spec_forms() -> None:
    text = check_help()
    examples = help_examples(text)
    assert 3 <= len(examples) <= 5
    commands = " ".join(command for command, _ in examples)
    for needle in ("specs/ ", "'specs/*.vnnlib'", "--json", "--certificate cert.json", "--timeout",
                   "specs/tiny_robust_class0_wide.vnnlib"):
        assert needle in commands, needle
    assert "exit codes:" in text and all(f"\n  {code}  " in text for code in range(5))
    assert "*.vnnlib and *.py" in text and "each with its own --timeout" in text
    assert "seconds per spec" in " ".join(text.split())


@pytest.mark.parametrize("index", range(5))
def test_every_help_example_works_and_exits_as_stated(index: int, tmp_path: Path) -> None:
    examples = help_examples(check_help())
    if index >= len(examples):
        pytest.skip("fewer examples")
    command, expected = examples[index]
    # a copy of the repository root's layout, so that the files the examples write stay out of the tree
    for name in ("examples", "specs"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    words = shlex.split(command)
    assert words[:2] == ["verify", "check"]
    proc = run(*words[1:], cwd=tmp_path)
    assert proc.returncode == expected, f"{command}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    if "--json" in words:
        out = json.loads(proc.stdout)
        specs = list(itertools.takewhile(lambda w: not w.startswith("-"), words[3:]))
        assert ("results" in out) == (len(specs) > 1 or specs[0].endswith("/") or "*" in specs[0])
    else:
        assert proc.stdout.startswith(("VERIFIED", "FALSIFIED"))
    if "--certificate" in words:
        cert = tmp_path / words[words.index("--certificate") + 1]
        assert json.loads(cert.read_text())["format"] == "verify-certificate"
