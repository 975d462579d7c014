"""A pool of tasks on a Ray cluster, with the guarantees a gate needs.

* **Each task's answer arrives once, whole.**  A task is a Ray task with ``max_retries``
  = :data:`RETRIES`: when the worker process (or the node) running it dies, Ray runs it
  again elsewhere, and only a finished attempt's return value is ever handed back.  A
  task that is lost more often than that comes back with an ``error`` and no value.
* **Hard timeouts per task, across the cluster.**  Every attempt tells a small tracker
  actor when it starts (on the tracker's clock); an attempt that runs more than
  :data:`GRACE` seconds past its task's timeout is cancelled with ``force=True`` (its
  worker process is killed) and comes back as ``error="hard timeout"``.  The tasks
  themselves watch their own deadlines; this is the backstop, as in :mod:`verify.batch`.
* **Clear errors.**  Ray missing, an address that cannot be reached (checked with a TCP
  connection first: ``ray.init`` on a dead address retries for minutes), or a cluster
  that does not answer are one-line :class:`ClusterError` (exit 2).

Why Ray and not our own protocol: it already schedules tasks over machines, moves the
arguments through its object store, detects dead workers and retries (issue 20).  What it
does not give is the hard timeout per attempt, hence the tracker.

Functions run on the workers by reference (module and name): verify must be installed
on every machine of the cluster, and the files tasks name (models, specs) must be at the
same paths there (docs/cluster.md).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from verify.errors import VerifyError

#: Seconds an attempt may run past its task's timeout before it is killed.
GRACE = 10.0
#: Times Ray runs a task again after its worker died (then it is reported lost).
RETRIES = 3
#: Seconds to wait for the cluster's port to accept a connection.
CONNECT_SECONDS = 5.0
#: Seconds to wait for ``ray.init`` once the port answers.
INIT_SECONDS = 60.0
#: Seconds between two looks at the tracker (attempt starts, for the hard timeouts).
POLL_SECONDS = 0.5

INSTALL_HINT = "pip install -e '.[ray]' in the verify checkout (or pip install ray)"


class ClusterError(VerifyError):
    """The cluster cannot be used: Ray is not installed, or the address cannot be reached."""


@dataclass
class Task:
    """``fn(*args)`` on the cluster; ``timeout``: seconds per attempt before a hard kill
    (:data:`GRACE` is added; None: none).  Top-level ``ray.ObjectRef`` arguments arrive as
    their values."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    timeout: float | None = None
    name: str = ""


@dataclass
class TaskOutcome:
    """What came back for task ``index``: its value, or why there is none (``error``)."""

    index: int
    value: Any = None
    error: str | None = None
    exception: BaseException | None = None  # the task's own exception, when it raised one
    seconds: float = 0.0  # the last attempt's time on the cluster (0 when it never started)
    attempts: int = 0  # attempts started (more than 1: a worker was lost and the task retried)
    node: str = ""


class _Tracker:
    """An actor: when each task's latest attempt started, and where (on its own clock)."""

    def __init__(self) -> None:
        self.starts: dict[int, tuple[int, int, str, float]] = {}

    def start(self, index: int, pid: int, node: str) -> None:
        attempts = self.starts[index][0] + 1 if index in self.starts else 1
        self.starts[index] = (attempts, pid, node, time.monotonic())

    def forget(self, index: int) -> None:
        self.starts.pop(index, None)

    def snapshot(self) -> dict[int, tuple[int, int, str, float]]:
        """``index: (attempts, pid, node, seconds since the attempt started)``."""
        now = time.monotonic()
        return {i: (a, pid, node, now - t) for i, (a, pid, node, t) in self.starts.items()}


def _attempt(tracker: Any, index: int, fn: Callable[..., Any], *args: Any) -> Any:
    """What runs on a worker: say that the attempt starts, then run the task."""
    import ray

    tracker.start.remote(index, os.getpid(), ray.get_runtime_context().get_node_id())
    return fn(*args)


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`ClusterError` that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--cluster needs Ray, which is not installed here: {INSTALL_HINT}") from None
    return ray


def check_reachable(address: str) -> None:
    """Raise :class:`ClusterError` unless ``host:port`` (or ``ray://host:port``) accepts a
    TCP connection within :data:`CONNECT_SECONDS`."""
    plain = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = plain.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"--cluster {address!r}: expected HOST:PORT (the address `ray start --head` prints), "
                           "'local' to start Ray on this machine, or 'auto'")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {reason}; start one with "
                           "`ray start --head` and pass the address it prints, or use --cluster local") from None


class RayPool:
    """Tasks on the Ray cluster at ``address`` (``local``: a Ray instance started here with
    ``cpus`` CPUs, stopped by :meth:`close`; ``auto``: the cluster this machine belongs to);
    an attempt is killed ``grace`` seconds after its task's timeout."""

    def __init__(self, address: str, cpus: int | None = None, grace: float = GRACE) -> None:
        self.grace = grace
        if address not in ("local", "auto"):
            check_reachable(address)
        self.ray = ray = import_ray()
        self.address = address
        kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False,
                                  "include_dashboard": False}
        if address == "local":
            kwargs["num_cpus"] = cpus or os.cpu_count() or 1
        else:
            kwargs["address"] = address
            del kwargs["include_dashboard"]  # the cluster's own setting
        _init_with_deadline(ray, kwargs, address)
        self.tracker = ray.remote(num_cpus=0)(_Tracker).remote()
        self.remote = ray.remote(_attempt)

    @property
    def cpus(self) -> int:
        """CPUs of the cluster (how many tasks run at once)."""
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def put(self, value: Any) -> Any:
        """Store ``value`` once in the object store (pass the reference as a task argument)."""
        return self.ray.put(value)

    def run(self, tasks: list[Task], on_outcome: Callable[[TaskOutcome], Any],
            on_start: Callable[[int], None] | None = None, capacity: int | None = None,
            stop: Callable[[], bool] | None = None) -> None:
        """Run every task, at most ``capacity`` (default: the cluster's CPUs) submitted at a
        time, and call ``on_outcome`` once per task as each ends (in order of completion).
        ``on_start(i)`` is called when task ``i`` is submitted.  When ``stop()`` turns true
        (checked after each outcome) the tasks not yet ended are cancelled and not reported."""
        queue = deque(enumerate(tasks))

        def more(room: int) -> list[tuple[int, Task]] | None:
            if not queue:
                return None
            return [queue.popleft() for _ in range(min(room, len(queue)))]

        self.stream(more, on_outcome, on_start, capacity, stop)

    def stream(self, more: Callable[[int], list[tuple[int, Task]] | None],
               on_outcome: Callable[[TaskOutcome], Any], on_start: Callable[[int], None] | None = None,
               capacity: int | None = None, stop: Callable[[], bool] | None = None) -> None:
        """:meth:`run` over tasks made while others run: ``more(room)`` returns up to ``room``
        new ``(index, task)`` pairs (indices unique), ``[]`` when there is nothing to add
        now, or None once nothing more will come; it is asked whenever there is room, after
        each outcome.  Returns when ``more`` said None and every task has ended."""
        ray = self.ray
        capacity = capacity or self.cpus
        running: dict[Any, tuple[int, Task]] = {}
        finished = False
        starts: dict[int, tuple[int, int, str, float]] = {}
        looked = 0.0
        try:
            while True:
                if not finished and len(running) < capacity:
                    new = more(capacity - len(running))
                    finished = new is None
                    for index, task in new or []:
                        ref = self.remote.options(name=task.name or "verify-task", max_retries=RETRIES,
                                                  retry_exceptions=False, num_cpus=1).remote(
                            self.tracker, index, task.fn, *task.args)
                        running[ref] = (index, task)
                        if on_start is not None:
                            on_start(index)
                if not running:
                    if finished:
                        return
                    raise RuntimeError("RayPool.stream: more() gave nothing while no task runs")
                done, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS)
                if done or time.monotonic() - looked > POLL_SECONDS:
                    starts = ray.get(self.tracker.snapshot.remote())
                    looked = time.monotonic()
                for ref in done:
                    index, task = running.pop(ref)
                    self.tracker.forget.remote(index)
                    on_outcome(self._collect(ref, index, starts.get(index)))
                    if stop is not None and stop():
                        return
                for ref, (index, task) in list(running.items()):
                    rec = starts.get(index)
                    if task.timeout is not None and rec is not None and rec[3] > task.timeout + self.grace:
                        ray.cancel(ref, force=True)
                        del running[ref]
                        self.tracker.forget.remote(index)
                        on_outcome(TaskOutcome(index, error="hard timeout", seconds=rec[3], attempts=rec[0],
                                               node=rec[2]))
                        if stop is not None and stop():
                            return
        finally:
            for ref in running:
                ray.cancel(ref, force=True)

    def _collect(self, ref: Any, index: int, rec: tuple[int, int, str, float] | None) -> TaskOutcome:
        ray = self.ray
        attempts, node, seconds = (rec[0], rec[2], rec[3]) if rec is not None else (1, "", 0.0)
        try:
            return TaskOutcome(index, ray.get(ref), seconds=seconds, attempts=attempts, node=node)
        except ray.exceptions.RayTaskError as exc:  # the task raised: hand its exception to the caller
            cause = getattr(exc, "cause", None)
            return TaskOutcome(index, error=f"task failed: {type(cause).__name__}: {cause}", exception=cause,
                               seconds=seconds, attempts=attempts, node=node)
        except ray.exceptions.RayError as exc:  # the worker or node died more than RETRIES times
            return TaskOutcome(index, error=f"worker lost ({attempts} attempt(s)): {type(exc).__name__}",
                               seconds=seconds, attempts=attempts, node=node)

    def close(self) -> None:
        """Disconnect (and stop the Ray instance when this pool started it)."""
        self.ray.shutdown()

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _init_with_deadline(ray: Any, kwargs: dict[str, Any], address: str) -> None:
    """``ray.init(**kwargs)`` in the calling thread, or a :class:`ClusterError` when it fails
    or (in the main thread, where an alarm can interrupt it) does not return within
    :data:`INIT_SECONDS`: a port that answers but is not a Ray head.

    Not in a helper thread: Ray's processes die with the thread that started them (the
    parent-death signal is per thread), and a driver connected from a helper thread loses
    its actors."""
    where = "a local Ray instance" if address == "local" else f"the Ray cluster at {address}"
    alarm = threading.current_thread() is threading.main_thread() and address != "local"

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, expired) if alarm else None
    if alarm:
        signal.setitimer(signal.ITIMER_REAL, INIT_SECONDS)
    try:
        ray.init(**kwargs)
    except TimeoutError:
        raise ClusterError(f"{where} did not answer within {INIT_SECONDS:.0f} s; is it a Ray head "
                           "(`ray status --address ADDRESS`)?") from None
    except Exception as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        hint = "" if address == "local" or os.environ.get("RAY_AUTH_MODE") else \
            " (a cluster with token authentication, the default of `ray start`, needs RAY_AUTH_MODE=token here " \
            "and its token in RAY_AUTH_TOKEN or ~/.ray/auth_token: `ray get-auth-token` on the head prints it)"
        raise ClusterError(f"cannot connect to {where}: {first[:300]}{hint}") from None
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
