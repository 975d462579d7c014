"""The batch supervisor (verify.batch, ``verify run``): answers as a single check would, and a
stuck or dying instance costs only its own worker: the others go on, nothing hangs, and no
worker process is left behind."""

from __future__ import annotations

import multiprocessing
import shutil
import time
from pathlib import Path

import pytest

from verify import batch
from verify.cli import main
from verify.errors import InputFileError

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = {"recheck": True, "seed": 0, "compress": True, "modular": True, "certificates": None}

#: A spec whose loading freezes its whole process (as a worker stuck in native code would
#: be): no time limit inside the worker can end it, only killing the process.
STUCK_SPEC = "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\n"
DYING_SPEC = "import os\nos._exit(9)\n"


def _family(tmp_path: Path, extra: dict[str, tuple[str, float]] | None = None) -> Path:
    (tmp_path / "onnx").mkdir()
    (tmp_path / "vnnlib").mkdir()
    shutil.copy(ROOT / "examples/tiny/classifier.onnx", tmp_path / "onnx/tiny.onnx")
    lines = []
    for name in ("tiny_robust_class0.vnnlib", "tiny_robust_class0_wide.vnnlib"):
        shutil.copy(ROOT / "specs" / name, tmp_path / "vnnlib" / name)
        lines.append(f"onnx/tiny.onnx,vnnlib/{name},30")
    for name, (text, timeout) in (extra or {}).items():
        (tmp_path / "vnnlib" / name).write_text(text)
        lines.append(f"onnx/tiny.onnx,vnnlib/{name},{timeout}")
    (tmp_path / "instances.csv").write_text("\n".join(lines) + "\n")
    expected = ["index,expected", "0,unsat", "1,sat"] + [f"{2 + i},unknown" for i in range(len(extra or {}))]
    (tmp_path / "expected.csv").write_text("\n".join(expected) + "\n")
    return tmp_path / "instances.csv"


def test_answers_and_expected(tmp_path: Path) -> None:
    rows = batch.read_instances(_family(tmp_path))
    seen: list[int] = []
    answers = batch.run_instances(rows, 2, OPTIONS, lambda i, a: seen.append(i.index))
    assert answers[0].verdict == "verified" and answers[1].verdict == "falsified"
    assert sorted(seen) == [0, 1]
    summary, _ = batch.summarise(rows, answers)
    assert summary.wrong == 0 and summary.answered == 2
    assert not multiprocessing.active_children()


@pytest.mark.slow
def test_a_stuck_and_a_dying_instance_cost_only_their_own_workers(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "GRACE", 2.0)
    rows = batch.read_instances(_family(tmp_path, {"stuck.py": (STUCK_SPEC, 1), "dies.py": (DYING_SPEC, 60)}))
    rows = [rows[2], rows[3], rows[0], rows[1]]  # the bad ones first, so that the good ones follow them
    start = time.monotonic()
    answers = batch.run_instances(rows, 2, OPTIONS, lambda i, a: None)
    assert time.monotonic() - start < 120
    assert (answers[2].verdict, answers[2].method, answers[2].reason) == ("unknown", "killed", "hard timeout")
    assert answers[3].verdict == "error" and "worker died" in answers[3].reason
    assert answers[0].verdict == "verified" and answers[1].verdict == "falsified"
    assert len(answers) == 4
    assert not multiprocessing.active_children()


def test_verify_run_prints_the_table_and_exits_by_the_answers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    csv_path = _family(tmp_path)
    assert main(["run", str(csv_path), "--jobs", "1", "--out", str(tmp_path / "out.csv")]) == 0
    out = capsys.readouterr().out
    assert "verified 1, falsified 1, unknown 0, wrong 0" in out
    assert (tmp_path / "out.csv").read_text().count("\n") == 3
    # the same answers against an expected.csv that says the opposite are wrong: exit 1
    (tmp_path / "expected.csv").write_text("index,expected\n0,sat\n1,unsat\n")
    assert main(["run", str(csv_path)]) == 1
    assert "wrong 2" in capsys.readouterr().out


def test_bad_instance_files_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "instances.csv"
    bad.write_text("model.onnx,spec.vnnlib,soon\n")
    with pytest.raises(InputFileError, match=r"instances.csv:1: expected a timeout in seconds"):
        batch.read_instances(bad)
    bad.write_text("")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no instances" in err
    assert main(["run", str(tmp_path / "missing.csv")]) == 2
