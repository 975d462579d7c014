"""Run one gate check, in the gate's process or in a worker process (``--jobs``).

A task is a small picklable dict (paths, hashes, the family row's ball); the answer is a
picklable dict too (the result's JSON plus the certificate).  Each process loads each
model once (:func:`get_model`) and runs torch on one thread, so that ``--jobs J`` uses J
cores and no more.  Importing this module does not import torch (a fully cached gate
never does): that waits until a property is checked or a model loaded.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verify.gate.family import ball_property
from verify.gate.options import NOT_IN_KEY
from verify.runtime import run_with_watchdog
from verify.spec import Template, load_spec

if TYPE_CHECKING:
    from verify.model.network import Model

_MODELS: dict[str, Model] = {}


def init_worker() -> None:
    """Initializer of worker processes: one torch thread each."""
    import torch

    torch.set_num_threads(1)


def get_model(path: str | Path) -> Model:
    """The model at ``path``, loaded once per process."""
    from verify.model.network import load_model  # here, not on top: only checking a property needs torch

    key = str(Path(path).resolve())
    if key not in _MODELS:
        _MODELS[key] = load_model(path)
    return _MODELS[key]


def task_property(task: dict[str, Any]) -> Any:
    """The property of a task: a family row built with the spec builders, or the spec file."""
    if task["ball"] is not None:
        b = task["ball"]
        prop = ball_property(b["center"], b["eps"], None if b["clip"] is None else tuple(b["clip"]), b["label"],
                             b["n_outputs"], task["id"])
        prop.source = str(task["spec_path"])  # the equivalent VNN-LIB file the certificate names
        prop.sha256 = task["spec_sha256"]
        return prop
    return load_spec(task["spec_path"], templates=True)


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Check one property; returns ``{"id", "result": CheckResult JSON, "certificate"}``."""
    from verify.check import UNKNOWN, CheckOptions, CheckResult, check  # here, not on top: it imports torch
    from verify.relational import check_template

    start = time.monotonic()
    _check_option_names(task["options"], CheckOptions)
    model = get_model(task["model_path"])
    prop = task_property(task)
    prop.check_fits(model.n_inputs, model.n_outputs, str(task["model_path"]))
    timeout = float(task["timeout"])
    options = CheckOptions(timeout=timeout * 0.97, **task["options"])

    def on_timeout() -> CheckResult:
        return CheckResult(UNKNOWN, time.monotonic() - start, "none", None, reason="timeout",
                           model=str(task["model_path"]), spec=str(task["spec_path"]))

    if isinstance(prop, Template):  # a templated property (docs/relational.md)
        result = run_with_watchdog(lambda: check_template(model, prop, options, task["spec_path"]), timeout,
                                   on_timeout)
    else:
        result = run_with_watchdog(lambda: check(model, prop, options), timeout, on_timeout)
    result.seconds = time.monotonic() - start
    return {"id": task["id"], "result": result.to_json(), "certificate": result.certificate}


def _check_option_names(options: dict[str, Any], options_class: Any) -> None:
    """The gate's options (the cache key's) must name every CheckOptions field but the
    timeout and the callback, or the key would not describe what is run."""
    fields = [f.name for f in dataclasses.fields(options_class) if f.name not in NOT_IN_KEY]
    if list(options) != fields:
        raise RuntimeError(f"verify.gate.options.CHECK_DEFAULTS names {list(options)}, CheckOptions has {fields}: "
                           "update CHECK_DEFAULTS")
