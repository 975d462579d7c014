"""``verify gate --cluster`` on a real local Ray cluster (a head and two worker nodes): a
gate with a 200-row family gives the same verdicts and reports through Ray as in one
local process, and still does when a worker process is killed in the middle of a task
(the task is retried; no answer is lost or reported twice)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from tests.conftest import ROOT
from tests.gate.conftest import HARD_SPEC, gate, write_manifest

pytestmark = pytest.mark.ray

ROWS = 200


def _project(tmp_path: Path) -> Path:
    """The tiny example with a 200-row family (labels as the model predicts them, one in ten
    shifted: those rows are falsified) and four properties that take branch and bound."""
    root = tmp_path / "project"
    (root / "examples").mkdir(parents=True)
    shutil.copytree(ROOT / "examples" / "tiny", root / "examples" / "tiny")
    shutil.copytree(ROOT / "specs", root / "specs")
    model = root / "examples" / "tiny" / "classifier.onnx"
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    points = np.random.default_rng(20).uniform(0.1, 0.9, size=(ROWS, 4)).astype(np.float32)
    name = session.get_inputs()[0].name
    labels = np.array([session.run(None, {name: p[None]})[0].argmax() for p in points])
    labels[::10] = (labels[::10] + 1) % 3
    np.save(root / "rows.npy", np.hstack([points, labels[:, None]]).astype(np.float64))
    (root / "specs" / "hard.vnnlib").write_text(HARD_SPEC)
    text = 'timeout = 20\nrequire = "none"\n[models]\ntiny = "examples/tiny/classifier.onnx"\n'
    for k in range(4):
        text += f'\n[[properties]]\nname = "hard-{k}"\nspec = "specs/hard.vnnlib"\n'
    text += '\n[[families]]\nname = "rows"\ndata = "rows.npy"\neps = 0.03\nclip = [0.0, 1.0]\n'
    write_manifest(root, text)
    return root


def _timeless(value: Any) -> Any:
    """``value`` without the times in it (every ``seconds`` key, at any depth)."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in ("seconds", "timings")}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what depends on when and how it ran (times, the cluster option)."""
    return _timeless({k: report[k] for k in ("properties", "families", "counts", "outcome", "failures",
                                             "models")})


def _on_ray(root: Path, cluster: str, report: Path, kill: str | None = None) -> tuple[dict[str, Any], str, list]:
    """``verify gate --cluster`` in a process of its own; with ``kill``, a killer thread
    SIGKILLs the first worker process it sees running a task whose name starts so, once
    it has run it for a second."""
    proc = subprocess.Popen([sys.executable, "-m", "verify.cli", "gate", "--manifest", str(root / "verify.toml"),
                             "--cluster", cluster, "--no-cache", "--report", str(report)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed: list[str] = []

    def killer() -> None:
        while proc.poll() is None and not killed:
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                if kill is not None and title.startswith(f"ray::verify-gate {kill}"):
                    # a worker's first task loads torch and verify (seconds): a second in, it is
                    # in the middle of the task, and the task has said that it started
                    time.sleep(1.0)
                    try:
                        if Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() != title:
                            continue
                    except OSError:
                        continue
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(title.strip())
                    return
            time.sleep(0.02)

    thread = threading.Thread(target=killer, daemon=True)
    if kill is not None:
        thread.start()
    out, err = proc.communicate(timeout=600)
    assert proc.returncode in (0, 1, 3), err
    return json.loads((report / "report.json").read_text()), err, killed


def test_gate_through_ray_as_locally_even_when_a_worker_dies(cluster: str, tmp_path: Path) -> None:
    root = _project(tmp_path)
    local = gate(root, cache=False, report=tmp_path / "local").report
    verdicts = [p["verdict"] for p in local["properties"]]
    assert len(verdicts) == ROWS + 4 and verdicts.count("falsified") >= ROWS // 10 and "verified" in verdicts
    assert "unknown" not in verdicts  # so that nothing depends on timing

    ray_report, err, _ = _on_ray(root, cluster, tmp_path / "ray")
    assert ray_report["options"]["cluster"] == cluster and "on the Ray cluster" in err
    assert _comparable(ray_report) == _comparable(local)

    ray_report, err, killed = _on_ray(root, cluster, tmp_path / "killed", kill="hard-")
    assert killed, "no worker process was seen running a hard-* task"
    assert "answered on attempt 2 (a worker was lost)" in err, err[-2000:]
    ids = [p["id"] for p in ray_report["properties"]]
    assert len(ids) == len(set(ids)) == ROWS + 4
    assert _comparable(ray_report) == _comparable(local)
