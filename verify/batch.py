"""Many instances (model, spec, timeout) in worker processes under a supervisor.

Used by ``verify run INSTANCES.csv`` and ``benchmarks/run_family.py``. Each worker is a
spawned process that imports verify once and checks one instance at a time
(:mod:`verify.batch_worker`). The supervisor talks to each worker over a pipe of its own
(no queue shared between workers), so that a worker can be killed without harm to the
others: when an instance overruns its timeout by more than :data:`GRACE` seconds, only
the worker that holds it is killed and replaced, and the instance counts as unknown
("hard timeout"); a worker that dies is replaced, and its instance counts as an error.
At the end every worker is told to stop on its own pipe, and killed if it does not.

Why not :class:`concurrent.futures.ProcessPoolExecutor`: it cannot kill one task's
process; a stuck task breaks the whole pool.

This module imports no torch: the supervisor only reads CSV files and moves messages.
"""

from __future__ import annotations

import csv
import multiprocessing as mp
import os
import stat
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from verify.cluster import RayPool, Task, TaskOutcome
from verify.errors import InputFileError
from verify.runtime import save_numbered_certificate

#: Seconds an instance may run past its timeout before its worker is killed.
GRACE = 10.0
#: Seconds a new worker may take to import verify and take its first task before it is killed.
START_WAIT = 300.0
#: Seconds a stopping worker may take (writing its last certificate) before it is killed.
STOP_WAIT = 900.0
VERDICTS = ("verified", "falsified", "unknown", "error")


@dataclass
class Instance:
    """One row of an instances file."""

    index: int
    model: str  # as written in the file (relative to the file's folder)
    spec: str
    timeout: float
    expected: str = ""  # "sat", "unsat" or "" (VNN-LIB describes the unsafe set: unsat = holds)
    folder: Path = field(default_factory=Path)

    @property
    def model_path(self) -> Path:
        return self.folder / self.model

    @property
    def spec_path(self) -> Path:
        return self.folder / self.spec


@dataclass
class Answer:
    verdict: str
    method: str
    reason: str
    seconds: float


def read_instances(path: Path, default_timeout: float = 60.0) -> list[Instance]:
    """``instances.csv`` (``onnx,vnnlib[,timeout]`` per line, paths relative to its folder, no
    header) and, when present beside it, ``expected.csv`` (columns ``index`` and ``expected``)."""
    path = Path(path)
    try:
        if stat.S_ISDIR(os.stat(path).st_mode):
            path = path / "instances.csv"
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise InputFileError(f"instances file is not a regular file: {str(path)[:200]}")
    except OSError as exc:
        raise InputFileError(f"cannot read instances file {str(path)[:200]}: {exc.strerror}") from None
    folder = path.parent
    rows: list[Instance] = []
    try:
        with open(path, newline="") as fh:
            for number, line in enumerate(csv.reader(fh), 1):
                if not line or not "".join(line).strip():
                    continue
                if len(line) < 2:
                    raise InputFileError(f"{path}:{number}: expected 'onnx,vnnlib[,timeout]', got {','.join(line)!r}")
                timeout = default_timeout
                if len(line) > 2 and line[2].strip():
                    try:
                        timeout = float(line[2])
                    except ValueError:
                        raise InputFileError(f"{path}:{number}: expected a timeout in seconds, "
                                             f"got {line[2].strip()!r}") from None
                    if not 0 < timeout < float("inf"):
                        raise InputFileError(f"{path}:{number}: the timeout must be a positive number, got {timeout}")
                rows.append(Instance(len(rows), line[0].strip(), line[1].strip(), timeout, "", folder))
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputFileError(f"{path}: not a CSV text file ({exc})") from None
    if not rows:
        raise InputFileError(f"{path}: no instances (expected lines 'onnx,vnnlib[,timeout]')")
    expected = folder / "expected.csv"
    if expected.is_file():
        # matched by (onnx, vnnlib) where expected.csv names them (so that a subset file beside
        # it, like acasxu/subset34.csv, finds its answers), else by line index
        by_pair = {(r.model, r.spec): r for r in rows}
        with open(expected, newline="") as fh:
            for row in csv.DictReader(fh):
                answer = (row.get("expected") or "").strip()
                if row.get("onnx") and row.get("vnnlib"):
                    if (row["onnx"].strip(), row["vnnlib"].strip()) in by_pair:
                        by_pair[row["onnx"].strip(), row["vnnlib"].strip()].expected = answer
                    continue
                try:
                    i = int(row["index"])
                except (KeyError, TypeError, ValueError):
                    continue
                if 0 <= i < len(rows):
                    rows[i].expected = answer
    return rows


def is_wrong(verdict: str, expected: str) -> bool:
    """A verified answer where a counterexample exists, or a falsified one where the property holds."""
    return (verdict == "verified" and expected == "sat") or (verdict == "falsified" and expected == "unsat")


def _check_on_worker(model_path: str, spec_path: str, timeout: float, options: dict[str, Any]) -> Any:
    """A Ray task (``--cluster``): :func:`verify.batch_worker.check_instance` on a worker."""
    import importlib  # deliberately here: the supervisor process must not import torch

    return importlib.import_module("verify.batch_worker").check_instance(model_path, spec_path, timeout, options)


def run_on_cluster(instances: list[Instance], address: str, jobs: int, options: dict[str, Any],
                   on_answer: Callable[[Instance, Answer], None]) -> dict[int, Answer]:
    """:func:`run_instances` with one Ray task per instance (:mod:`verify.cluster`): a task
    whose worker dies is retried; one that overruns its timeout by more than the grace
    period is killed and counts as unknown (``hard timeout``), as here.  Certificates come
    back with the answers and are written by this process."""
    answers: dict[int, Answer] = {}
    worker_options = {k: v for k, v in options.items() if k != "certificates"}
    with RayPool(address, cpus=jobs if jobs > 1 else None) as pool:
        tasks = [Task(_check_on_worker, (str(i.model_path), str(i.spec_path), i.timeout, worker_options),
                      timeout=i.timeout, name=f"verify-run {i.index}") for i in instances]

        def done(outcome: TaskOutcome) -> None:
            instance = instances[outcome.index]
            if outcome.error is None:
                verdict, method, reason, seconds, certificate = outcome.value
                answer = Answer(verdict, method, reason, seconds)
                save_numbered_certificate(options.get("certificates"), instance.index, certificate)
            elif outcome.error == "hard timeout":
                answer = Answer("unknown", "killed", "hard timeout", outcome.seconds)
            else:
                answer = Answer("error", "none", outcome.error, outcome.seconds)
            if instance.index in answers:
                raise RuntimeError(f"instance {instance.index} answered twice")
            answers[instance.index] = answer
            on_answer(instance, answer)

        pool.run(tasks, done)
    return answers


def _serve(conn: Connection, options: dict[str, Any]) -> None:
    """Worker entry point: the heavy imports happen in the worker, not in the supervisor."""
    import importlib  # deliberately here: the supervisor process must not import torch

    importlib.import_module("verify.batch_worker").serve(conn, options)


class _Worker:
    def __init__(self, context: Any, options: dict[str, Any]) -> None:
        self.conn, child = context.Pipe(duplex=True)
        self.process = context.Process(target=_serve, args=(child, options), daemon=True)
        self.process.start()
        child.close()
        self.task: Instance | None = None
        self.given = 0.0  # when the task was sent
        self.started: float | None = None  # when the worker said it started it (its timeout runs from then)
        self.ready = True  # may take a task (false while it writes a certificate)

    def give(self, instance: Instance) -> None:
        self.task, self.given, self.started, self.ready = instance, time.monotonic(), None, False
        self.conn.send(("check", instance.index, str(instance.model_path), str(instance.spec_path),
                        instance.timeout))

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5.0)
        self.conn.close()


def run_instances(instances: list[Instance], jobs: int, options: dict[str, Any],
                  on_answer: Callable[[Instance, Answer], None]) -> dict[int, Answer]:
    """Check every instance with ``jobs`` workers; ``on_answer`` is called as answers arrive.

    ``options``: ``recheck``, ``seed``, ``compress``, ``modular`` (as in
    :class:`verify.check.CheckOptions`) and ``certificates`` (a folder, or None).
    """
    context = mp.get_context("spawn")  # the workers start torch threads; fork does not survive them
    todo = list(reversed(instances))
    answers: dict[int, Answer] = {}
    workers = [_Worker(context, options) for _ in range(max(1, min(jobs, len(instances))))]

    def answer(worker: _Worker, result: Answer) -> None:
        assert worker.task is not None
        instance, worker.task = worker.task, None
        answers[instance.index] = result
        on_answer(instance, result)

    try:
        while len(answers) < len(instances):
            for worker in workers:
                if worker.ready and worker.task is None and todo:
                    worker.give(todo.pop())
            busy = [w for w in workers if w.task is not None or not w.ready]
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=0.5)
            now = time.monotonic()
            for index, worker in enumerate(workers):
                if worker.conn in ready:
                    try:
                        message = worker.conn.recv()
                    except (EOFError, OSError):  # the worker is gone or going: let it finish dying
                        message = None
                        worker.process.join(5.0)
                    if message is not None and message[0] == "start" and worker.task is not None \
                            and message[1] == worker.task.index:
                        worker.started = time.monotonic()
                        continue
                    if message is not None and message[0] == "done" and worker.task is not None \
                            and message[1] == worker.task.index:
                        _, _, verdict, method, reason, seconds = message
                        answer(worker, Answer(verdict, method, reason, seconds))
                        continue
                    if message is not None and message[0] == "ready":
                        worker.ready = True
                        continue
                if not worker.process.is_alive():
                    if worker.task is not None:
                        code = worker.process.exitcode
                        answer(worker, Answer("error", "none", f"worker died (exit code {code})",
                                              now - (worker.started or worker.given)))
                    worker.kill()
                    workers[index] = _Worker(context, options)
                elif worker.task is not None and worker.started is not None \
                        and now - worker.started > worker.task.timeout + GRACE:
                    answer(worker, Answer("unknown", "killed", "hard timeout", now - worker.started))
                    worker.kill()
                    workers[index] = _Worker(context, options)
                elif worker.task is not None and worker.started is None and now - worker.given > START_WAIT:
                    answer(worker, Answer("error", "none", f"worker did not start within {START_WAIT:.0f} s", 0.0))
                    worker.kill()
                    workers[index] = _Worker(context, options)
    finally:
        _stop(workers)
    return answers


def _stop(workers: list[_Worker]) -> None:
    for worker in workers:
        try:
            worker.conn.send(None)
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + STOP_WAIT
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.kill()


HEADER = f"{'index':>5} {'onnx':<40} {'vnnlib':<28} {'verdict':<9} {'expected':<8} {'seconds':>8}  method"


def format_row(instance: Instance, answer: Answer) -> str:
    flag = "  WRONG" if is_wrong(answer.verdict, instance.expected) else ""
    return (f"{instance.index:>5} {instance.model:<40.40} {instance.spec:<28.28} {answer.verdict:<9} "
            f"{instance.expected:<8} {answer.seconds:>8.2f}  {answer.method}{flag}"
            + (f"  ({answer.reason})" if answer.verdict == "error" or answer.method == "killed" else ""))


@dataclass
class Summary:
    counts: dict[str, int]
    wrong: int
    total: float
    median: float
    answered: int
    rows: int

    def lines(self, wall: float, slowest: list[tuple[Instance, Answer]]) -> list[str]:
        unknown = self.counts["unknown"] + self.counts["error"]
        return [
            f"answered {self.answered}/{self.rows}, median {self.median:.2f} s (answered), "
            f"errors {self.counts['error']}, wall {wall:.1f} s",
            "slowest: " + ", ".join(f"{i.index}:{Path(i.model).stem}/{Path(i.spec).stem} {a.seconds:.1f}s {a.verdict}"
                                    for i, a in slowest),
            f"verified {self.counts['verified']}, falsified {self.counts['falsified']}, unknown {unknown}, "
            f"wrong {self.wrong}, total {self.total:.1f} s",
        ]


def summarise(instances: list[Instance], answers: dict[int, Answer]) -> tuple[Summary, list[tuple[Instance, Answer]]]:
    counts = dict.fromkeys(VERDICTS, 0)
    pairs = [(i, answers.get(i.index, Answer("unknown", "not run", "", 0.0))) for i in instances]
    for _, a in pairs:
        counts[a.verdict if a.verdict in counts else "unknown"] += 1
    times = [a.seconds for _, a in pairs if a.verdict in ("verified", "falsified")]
    summary = Summary(counts, sum(is_wrong(a.verdict, i.expected) for i, a in pairs),
                      sum(a.seconds for _, a in pairs), statistics.median(times) if times else 0.0,
                      len(times), len(pairs))
    return summary, pairs


def write_csv(path: Path, pairs: list[tuple[Instance, Answer]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["index", "onnx", "vnnlib", "verdict", "expected", "seconds", "method", "reason"])
            for i, a in pairs:
                writer.writerow([i.index, i.model, i.spec, a.verdict, i.expected, f"{a.seconds:.3f}", a.method,
                                 a.reason])
    except OSError as exc:
        raise InputFileError(f"cannot write {str(path)[:200]}: {exc.strerror}") from None
