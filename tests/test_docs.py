"""What a newcomer runs works: on a fresh copy of the repository, ``make demo``, then every
``$ `` command of the README in order, then those of ``docs/``, then every Python example.

The fresh copy holds the files git tracks (and new files git does not ignore) of this
checkout, with no ``.venv`` and no ``.verify-cache``: in CI, where the checkout is a clean
clone, that is exactly a fresh clone. ``../shared`` resolves beside it as beside the
repository. ``make demo`` there creates its own ``.venv`` and installs everything.

Conventions the documents follow, so that they can be run:

* a command line starts with ``$ `` inside a code block; a trailing ``# exit N`` gives the
  exit code it must end with (0 when absent);
* when the block shows output right after the command, the first word of that output
  (``VERIFIED``, ``VALID``, ``gate:``, ...) must start a line of what the command prints;
* ``benchmarks/run_family.py`` over a whole family is run on its first instances only
  (``--limit``), and skipped with a reason when ``../shared/benchmarks`` is missing;
* ``source .venv/bin/activate`` is honoured by putting ``.venv/bin`` first on ``PATH``;
* a Python block that defines ``test_`` functions is a test file and runs under pytest,
  any other runs as a script.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
#: Instances of a benchmark family run by a documented run_family.py command.
FAMILY_LIMIT = {"acasxu": 2, "mnistfc": 1}
COMMAND_TIMEOUT = 600


@dataclass
class Command:
    document: str
    line: int
    text: str  # the shell command, without the comment
    exit_code: int
    first_word: str | None  # the first word of the output shown, if any


def commands(document: str) -> list[Command]:
    """Every ``$ `` command of a document's code blocks, in order."""
    out: list[Command] = []
    in_block = False
    lines = (ROOT / document).read_text().splitlines()
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            in_block = not in_block
            continue
        if not in_block or not line.startswith("$ "):
            continue
        text, _, comment = line[2:].partition("   #")
        match = re.search(r"exit (\d)", comment)
        following = lines[number] if number < len(lines) else "```"
        shown = None if following.startswith(("$", "```")) or not following.strip() else following.split()[0]
        out.append(Command(document, number, text.strip(), int(match.group(1)) if match else 0, shown))
    return out


def python_blocks(document: str) -> list[tuple[int, str]]:
    text = (ROOT / document).read_text()
    return [(text[: m.start()].count("\n") + 2, m.group(1)) for m in re.finditer(r"```python\n(.*?)```", text, re.S)]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of the repository with ``make demo`` run in it (which must succeed)."""
    if shutil.which("make") is None or shutil.which("git") is None:
        pytest.skip("make and git are needed to build a fresh copy")
    parent = tmp_path_factory.mktemp("newcomer")
    dest = parent / "verify"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    if SHARED.is_dir():
        (parent / "shared").symlink_to(SHARED, target_is_directory=True)
    env = _environment(dest)
    demo = subprocess.run(["make", "demo"], cwd=dest, env=env, capture_output=True, text=True, timeout=1200)
    (parent / "make-demo.log").write_text(demo.stdout + demo.stderr)
    assert demo.returncode == 0, f"make demo failed on a fresh copy:\n{demo.stdout[-3000:]}\n{demo.stderr[-3000:]}"
    assert "demo: all four answers as expected" in demo.stdout
    return dest


def _environment(dest: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join([str(dest / ".venv" / "bin"), env.get("PATH", "")])
    env.pop("VERIFY_EXAMPLES_DIR", None)
    return env


def _prepare(command: Command) -> list[str] | None:
    """The argument vector to run, or None for a command that only changes the shell."""
    argv = shlex.split(command.text)
    if argv[:1] == ["source"]:
        assert argv[1:] == [".venv/bin/activate"], f"{command.document}:{command.line}: unexpected source command"
        return None
    if any(a.endswith("run_family.py") for a in argv):
        family = Path(argv[argv.index(next(a for a in argv if a.endswith("run_family.py"))) + 1]).name
        assert family in FAMILY_LIMIT, f"{command.document}:{command.line}: no --limit known for family {family}"
        argv += ["--limit", str(FAMILY_LIMIT[family])]
    if any("../shared/" in a for a in argv) and not SHARED.is_dir():
        pytest.skip(f"{command.document}:{command.line} needs ../shared/benchmarks, which is missing")
    return argv


def _run(fresh: Path, command: Command) -> bool:
    argv = _prepare(command)
    if argv is None:
        return True  # `source .venv/bin/activate`: PATH already has .venv/bin first
    if argv[0] == "make" and argv[1:] == ["test"]:
        return True  # what CI runs: not again from inside the suite
    proc = subprocess.run(argv, cwd=fresh, env=_environment(fresh), capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
    where = f"{command.document}:{command.line}: `{command.text}`"
    output = proc.stdout + proc.stderr
    assert proc.returncode == command.exit_code, (
        f"{where} exited {proc.returncode}, the document says {command.exit_code}\n{output[-3000:]}")
    assert "Traceback" not in output, f"{where} printed a traceback\n{output[-3000:]}"
    if command.first_word is not None:
        starts = {line.split()[0] for line in output.splitlines() if line.strip()}
        assert command.first_word in starts, f"{where}: no output line starts with {command.first_word!r}\n{output}"
    return True


def test_make_demo_works_on_a_fresh_copy(fresh: Path) -> None:
    assert (fresh / ".venv" / "bin" / "verify").exists()
    assert (fresh / ".verify-cache" / "demo-cert.json").is_file()


def test_readme_has_commands_of_every_kind() -> None:
    """The README shows each command it documents (so the next test runs each)."""
    texts = [c.text for c in commands("README.md")]
    for sub in ("check", "certcheck", "falsify", "graph", "gate", "--version"):
        assert any(t.startswith(f"verify {sub}") for t in texts), f"README runs no `verify {sub}`"
    assert sum(1 for line in (ROOT / "README.md").read_text().splitlines()) <= 350


def test_readme_commands_run_in_order(fresh: Path) -> None:
    found = commands("README.md")
    assert len(found) >= 10
    for command in found:
        _run(fresh, command)


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if d != "README.md" and commands(d)])
def test_docs_commands_run(fresh: Path, document: str) -> None:
    ran = [_run(fresh, command) for command in commands(document)]
    assert ran and all(ran), f"{document}: a command was not run"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_python_examples_run(fresh: Path, document: str, tmp_path: Path) -> None:
    blocks = python_blocks(document)
    if not blocks:
        pytest.skip(f"{document} has no Python example")
    python = str(fresh / ".venv" / "bin" / "python")
    for line, code in blocks:
        is_test = re.search(r"^def test_", code, re.M) is not None
        script = fresh / f"test_doc_example_{Path(document).stem}_{line}.py"
        script.write_text(code)
        argv = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(script)] if is_test else [python,
                                                                                                       str(script)]
        proc = subprocess.run(argv, cwd=fresh, env=_environment(fresh), capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
        failed = f"{document}:{line}: the Python example failed\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        assert proc.returncode == 0, failed
        if is_test:
            assert re.search(r"\d+ passed", proc.stdout) and "failed" not in proc.stdout, proc.stdout
