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
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402  (after OMP_NUM_THREADS: one thread per worker)

from verify.certificate import write_certificate  # noqa: E402
from verify.check import CheckOptions, check  # noqa: E402
from verify.errors import VerifyError  # noqa: E402
from verify.model.network import load_model  # noqa: E402
from verify.spec import load_spec  # noqa: E402


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
        start = time.monotonic()
        result = None
        try:
            model = load_model(model_path)
            prop = load_spec(spec_path)
            prop.check_fits(model.n_inputs, model.n_outputs, model_path)
            left = max(0.01, timeout - (time.monotonic() - start))
            result = check(model, prop, CheckOptions(timeout=left, recheck=options["recheck"], seed=options["seed"],
                                                     compress=options["compress"], modular=options["modular"]))
            verdict, method, reason = result.verdict, result.method, result.reason
        except VerifyError as exc:
            verdict, method, reason = "error", "none", str(exc)
        except Exception as exc:  # a bug: report it as this instance's error and keep going
            verdict, method, reason = "error", "none", f"internal error: {type(exc).__name__}: {exc}"
        conn.send(("done", index, verdict, method, reason, time.monotonic() - start))
        if result is not None and result.certificate is not None and options.get("certificates"):
            try:
                write_certificate(Path(options["certificates"]) / f"{index:04d}.json", result.certificate)
            except Exception as exc:  # the answer stands; say that its certificate is missing
                print(f"instance {index}: certificate not written: {type(exc).__name__}: {exc}", file=sys.stderr)
        conn.send(("ready",))
