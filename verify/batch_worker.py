"""A worker process of :mod:`verify.batch`: checks the instances its supervisor sends over its
pipe, one at a time: ``("start", index)`` when it takes one (its timeout runs from then),
``("done", index, verdict, method, reason, seconds)`` with the answer, and ``("ready",)``
once its certificate is written.

The time of an answer is that of loading the model and spec and checking; writing a big
certificate (GBs for the largest ReLU-split trees) comes after the answer, so it cannot
turn an answer into a hard-timeout kill.
"""

from __future__ import annotations

import os
import time
from multiprocessing.connection import Connection
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402  (after OMP_NUM_THREADS: one thread per worker)

from verify.check import CheckOptions, check  # noqa: E402
from verify.errors import VerifyError  # noqa: E402
from verify.model.network import load_model  # noqa: E402
from verify.runtime import save_numbered_certificate  # noqa: E402
from verify.spec import load_spec  # noqa: E402


def check_instance(model_path: str, spec_path: str, timeout: float,
                   options: dict[str, Any]) -> tuple[str, str, str, float, dict[str, Any] | None]:
    """Check one instance: ``(verdict, method, reason, seconds, certificate)``; input errors
    and bugs become this instance's ``error`` (the batch goes on)."""
    torch.set_num_threads(1)
    start = time.monotonic()
    certificate = None
    try:
        model = load_model(model_path)
        prop = load_spec(spec_path)
        prop.check_fits(model.n_inputs, model.n_outputs, model_path)
        left = max(0.01, timeout - (time.monotonic() - start))
        result = check(model, prop, CheckOptions(timeout=left, recheck=options["recheck"], seed=options["seed"],
                                                 compress=options["compress"], modular=options["modular"]))
        verdict, method, reason, certificate = result.verdict, result.method, result.reason, result.certificate
    except VerifyError as exc:
        verdict, method, reason = "error", "none", str(exc)
    except Exception as exc:  # a bug: report it as this instance's error and keep going
        verdict, method, reason = "error", "none", f"internal error: {type(exc).__name__}: {exc}"
    return verdict, method, reason, time.monotonic() - start, certificate


def serve(conn: Connection, options: dict[str, Any]) -> None:
    torch.set_num_threads(1)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the supervisor is gone
        if task is None:
            return
        _, index, model_path, spec_path, timeout = task
        conn.send(("start", index))
        verdict, method, reason, seconds, certificate = check_instance(model_path, spec_path, timeout, options)
        conn.send(("done", index, verdict, method, reason, seconds))
        save_numbered_certificate(options.get("certificates"), index, certificate)
        conn.send(("ready",))
