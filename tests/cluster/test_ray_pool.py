"""verify.cluster.RayPool on a real local cluster: every task's answer comes back once, a
task's own exception comes back as such, an overrunning attempt is killed at its
timeout plus the grace period; and the errors that need no cluster (Ray missing, an
address that cannot be reached, a malformed address) are one line, exit 2."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster import tasks
from tests.conftest import ROOT
from verify.cluster import ClusterError, RayPool, Task
from verify.errors import EXIT_INPUT_ERROR


@pytest.mark.ray
def test_outcomes_once_each_in_order_of_completion(cluster: str) -> None:
    with RayPool(cluster, grace=1.0) as pool:
        assert pool.cpus == 2
        jobs = [Task(tasks.square, (i,), timeout=30) for i in range(6)]
        jobs += [Task(tasks.fail, ("no such thing",), timeout=30), Task(tasks.sleep, (60.0,), timeout=0.5),
                 Task(tasks.sleep, (0.2,), timeout=30)]
        outcomes = []
        started = []
        start = time.monotonic()
        pool.run(jobs, outcomes.append, on_start=started.append)
        seconds = time.monotonic() - start
    by_index = {o.index: o for o in outcomes}
    assert sorted(by_index) == list(range(len(jobs))) and len(outcomes) == len(jobs)
    assert sorted(started) == list(range(len(jobs)))
    assert [by_index[i].value[1] for i in range(6)] == [i * i for i in range(6)]
    assert all(by_index[i].error is None for i in range(6))
    assert by_index[6].value is None and isinstance(by_index[6].exception, ValueError)
    assert "no such thing" in by_index[6].error
    assert by_index[7].error == "hard timeout" and by_index[7].value is None
    assert 1.5 <= by_index[7].seconds < 10, by_index[7].seconds  # timeout 0.5 + grace 1.0 (+ one poll)
    assert by_index[8].value == "woke"
    assert outcomes[-1].index == 7  # it ended last, though submitted before task 8
    assert seconds < 30


@pytest.mark.ray
def test_stream_takes_tasks_made_while_others_run(cluster: str) -> None:
    made: list[int] = []
    seen: list[int] = []

    def more(room: int) -> list[tuple[int, Task]] | None:
        if len(made) >= 5:
            return None if len(seen) == len(made) else []
        if len(made) > len(seen):  # one at a time: the next is made once the last came back
            return []
        made.append(len(made))
        return [(made[-1], Task(tasks.square, (made[-1],)))]

    with RayPool(cluster) as pool:
        pool.stream(more, lambda o: seen.append(o.value[1]))
    assert seen == [i * i for i in range(5)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", [["gate", "--no-cache"], ["run", "../shared/benchmarks/acasxu/subset34.csv"]])
def test_unreachable_cluster_is_one_line_exit_2(command: list[str]) -> None:
    pytest.importorskip("ray")
    if command[0] == "run" and not (ROOT.parent / "shared" / "benchmarks" / "acasxu").is_dir():
        pytest.skip("../shared/benchmarks/acasxu is missing")
    address = f"127.0.0.1:{_free_port()}"
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "verify.cli", *command, "--cluster", address], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_INPUT_ERROR, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"cannot reach the Ray cluster at {address}" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and time.monotonic() - start < 60


@pytest.mark.parametrize("address", ["nonsense", "host:notaport", ":80", "10.0.0.1:99999"])
def test_malformed_address(address: str) -> None:
    pytest.importorskip("ray")
    with pytest.raises(ClusterError, match="expected HOST:PORT"):
        RayPool(address)


def test_missing_ray_says_how_to_install() -> None:
    code = ("import sys; sys.modules['ray'] = None\n"
            "from verify.cli import main\n"
            "sys.exit(main(['gate', '--no-cache', '--cluster', 'local']))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_INPUT_ERROR, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "needs Ray" in lines[0] and "pip install -e '.[ray]'" in lines[0], proc.stderr


@pytest.mark.ray
def test_verify_run_on_the_cluster_as_locally(cluster: str, tmp_path: Path) -> None:
    """``verify run --cluster``: the same answers as local worker processes, and the
    certificates written by the driver."""
    (tmp_path / "instances.csv").write_text("".join(
        f"{ROOT}/examples/tiny/classifier.onnx,{ROOT}/specs/{spec},20\n"
        for spec in ("tiny_robust_class0.vnnlib", "tiny_robust_class0_wide.vnnlib", "tiny_robust_class1.v2.vnnlib")))
    tables = {}
    for name, extra in (("local", ["--jobs", "2"]), ("ray", ["--cluster", cluster])):
        proc = subprocess.run([sys.executable, "-m", "verify.cli", "run", str(tmp_path / "instances.csv"), *extra,
                               "--certificates", str(tmp_path / name)], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        rows = [line.split() for line in proc.stdout.splitlines()[1:4]]
        tables[name] = sorted((r[0], r[3]) for r in rows)
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["0000.json", "0002.json"]
    assert tables["ray"] == tables["local"] == [("0", "verified"), ("1", "falsified"), ("2", "verified")]
