"""The README's two set-up commands exist, and CI runs the test one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block, "the Set-up section has a code block"
    return [line.split("#")[0].strip() for line in block.group(1).strip().splitlines()]


def test_readme_has_exactly_two_setup_commands() -> None:
    assert setup_commands() == ["make demo", "make test"]


def test_ci_runs_the_readme_test_command() -> None:
    run = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert run[-1].strip() == "make test"


def test_make_targets_create_the_venv_and_install() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo:", "test:"):
        line = next(line for line in makefile.splitlines() if line.startswith(target))
        assert "$(STAMP)" in line, f"{target} must depend on the install stamp"
    assert "-m venv $(VENV)" in makefile and "--no-deps auto-lirpa==0.3" in makefile
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text()


# `make demo` on a fresh copy, and every command of the README: tests/test_docs.py.
