"""``verify check MODEL SPEC [SPEC ...]``: decide properties (verified / falsified / unknown).

One spec file gives the single report (and exit code) of that spec.  Several specs, a
directory of specs or a glob pattern give a batch: the model is loaded once, each spec
is checked in turn in this process, and a summary table (or one JSON object) follows.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verify import errors
from verify.certificate import write_certificate
from verify.check import UNKNOWN, CheckOptions, CheckResult, check
from verify.cli import PROCESS_START, VERDICT_EXIT, progress_sink
from verify.cluster import RayPool
from verify.model import network
from verify.relational import check_template
from verify.report import format_check, format_error, format_summary
from verify.runtime import run_with_watchdog, write_text
from verify.spec import Template, load_spec

#: Spec files taken from a directory named as SPEC (files directly in it, sorted by name).
SPEC_SUFFIXES = (".vnnlib", ".py")

#: Seconds of --timeout kept for answering and exiting after the watchdog fires (under load its
#: wake-up waits for the interpreter lock, measured up to about 0.4 s late).
EXIT_RESERVE = 0.3


def run(args: argparse.Namespace) -> int:
    if args.cluster:
        # opened here, in the main thread: a local Ray instance dies with the thread that
        # started it, and the check runs in a watchdog thread
        with RayPool(args.cluster) as args.pool:
            return _run(args)
    args.pool = None
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    specs, batch = expand_specs(args.spec)
    if not batch:
        args.spec = specs[0]
        return _run_one(args)
    for flag, value in (("--witness", args.witness), ("--certificate", args.certificate)):
        if value:
            raise errors.VerifyError(f"{flag} takes exactly one spec file, got {len(specs)} specs; "
                                     "run verify check once per spec to write one file each")
    return _run_batch(args, specs)


def expand_specs(arguments: list[str]) -> tuple[list[str], bool]:
    """The spec files the SPEC arguments name, and whether this is a batch.

    A directory gives its ``*.vnnlib`` and ``*.py`` files (directly in it, sorted by
    name); an argument that is not an existing path but contains ``*``, ``?`` or ``[``
    is a glob pattern (sorted matches; matched directories are expanded as above).  Any
    other argument is kept as given (a missing file is reported when it is loaded).  It
    is a batch when there are several arguments, or any is a directory or a pattern.
    """
    specs: list[str] = []
    batch = len(arguments) > 1
    for arg in arguments:
        if os.path.isdir(arg):
            batch = True
            found = _spec_files_in(arg)
            if not found:
                raise errors.InputFileError(f"no spec files ({', '.join('*' + s for s in SPEC_SUFFIXES)}) "
                                            f"in directory {arg}")
            specs.extend(found)
        elif not os.path.exists(arg) and any(c in arg for c in "*?["):
            batch = True
            found = []
            for match in sorted(glob.glob(arg, recursive=True)):
                found.extend(_spec_files_in(match) if os.path.isdir(match) else [match])
            if not found:
                raise errors.InputFileError(f"no spec files match the pattern {arg!r}")
            specs.extend(found)
        else:
            specs.append(arg)
    unique: dict[str, str] = {}  # a spec named twice (a directory and one of its files) is checked once
    for spec in specs:
        unique.setdefault(os.path.normpath(spec), spec)
    return list(unique.values()), batch


def _spec_files_in(folder: str) -> list[str]:
    return sorted(str(Path(folder) / name) for name in os.listdir(folder)
                  if not name.startswith(".") and name.endswith(SPEC_SUFFIXES) and (Path(folder) / name).is_file())


def _options(args: argparse.Namespace, timeout: float, progress: Callable[[str], None] | None) -> Any:
    return CheckOptions(timeout=timeout, falsify=not args.no_falsify, seed=args.seed,
                        refine=not args.no_refine, recheck=not args.no_recheck, compress=not args.no_compress,
                        modular=not args.no_modular, progress=progress, cluster=getattr(args, "pool", None))


def _run_one(args: argparse.Namespace) -> int:
    """One spec file: its report and exit code."""
    start = PROCESS_START

    def left() -> float:
        return max(0.01, args.timeout - (time.monotonic() - start))

    def work() -> CheckResult:  # loading counts against --timeout too
        model = network.load_model(args.model)
        prop = load_spec(args.spec, n_inputs=model.n_inputs, n_outputs=model.n_outputs, model_name=str(args.model),
                         timeout=left(), templates=True)
        prop.check_fits(model.n_inputs, model.n_outputs, args.model)
        options = _options(args, left() * 0.97, progress_sink(args))
        if isinstance(prop, Template):
            return check_template(model, prop, options, args.spec)
        return check(model, prop, options)

    def on_timeout() -> CheckResult:
        return CheckResult(UNKNOWN, time.monotonic() - start, "none", None, reason="timeout",
                           model=str(args.model), spec=str(args.spec))

    result = run_with_watchdog(work, max(0.01, left() - EXIT_RESERVE), on_timeout)
    result.seconds = time.monotonic() - start
    if result.counterexample is not None and args.witness:
        write_text(args.witness, result.counterexample.witness() + "\n")
    if args.certificate:
        if result.certificate is not None:
            write_certificate(args.certificate, result.certificate)
            result.details["certificate_file"] = args.certificate
        elif result.verdict == "verified":
            result.details["certificate_file"] = None
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(format_check(result))
    sys.stdout.flush()
    code = VERDICT_EXIT[result.verdict]
    if result.reason == "timeout" and result.verdict == UNKNOWN:
        sys.stderr.flush()
        os._exit(code)  # do not wait for an abandoned computation thread
    return code


@dataclass
class _Batch:
    """What a batch has seen so far: the rows, and the computation threads it abandoned."""

    rows: list[dict[str, Any]]
    abandoned: set[threading.Thread]
    internal_error: bool = False


def _run_batch(args: argparse.Namespace, specs: list[str]) -> int:
    """Several specs: one model load, each spec in turn, then the summary."""
    model = network.load_model(args.model)
    batch = _Batch([], set())
    base_sink = progress_sink(args)
    for i, spec in enumerate(specs):
        # the first spec's clock started with the process (model loading included, as for
        # a single spec); every later spec's starts when it does
        start = PROCESS_START if i == 0 else time.monotonic()
        if base_sink is not None:
            base_sink(f"[{i + 1}/{len(specs)}] {spec}")
        result, error = _check_spec(args, model, spec, start, base_sink, batch)
        if error is not None:
            row = {"spec": spec, "verdict": "error", "error": error, "model": str(args.model)}
            text = format_error(spec, str(args.model), error)
        else:
            row = {**result.to_json(), "spec": spec}
            text = format_check(result)
        batch.rows.append(row)
        if not args.json:
            print(text, flush=True)
    total = time.monotonic() - PROCESS_START
    summary = summary_counts(batch.rows, total)
    if args.json:
        print(json.dumps({"model": str(args.model), "results": batch.rows, "summary": summary}))
    else:
        print()
        print(format_summary(batch.rows, total))
    code = batch_exit_code(batch.rows, batch.internal_error)
    sys.stdout.flush()
    if any(t.is_alive() for t in batch.abandoned):
        sys.stderr.flush()
        os._exit(code)  # do not wait for a computation thread abandoned at its timeout
    return code


def _check_spec(args: argparse.Namespace, model: Any, spec: str, start: float,
                base_sink: Callable[[str], None] | None, batch: _Batch) -> tuple[Any, str | None]:
    """Check one spec of a batch: (result, None), or (None, the one-line error)."""
    live = [True]  # the progress of a computation abandoned at its timeout is not shown

    def sink(message: str) -> None:
        if live[0] and base_sink is not None:
            base_sink(message)

    before = set(threading.enumerate())

    def on_timeout() -> CheckResult:
        live[0] = False
        batch.abandoned.update(t for t in threading.enumerate() if t not in before)
        return CheckResult(UNKNOWN, time.monotonic() - start, "none", None, reason="timeout",
                           model=str(args.model), spec=spec)

    def left() -> float:
        return max(0.01, args.timeout - (time.monotonic() - start))

    def work() -> Any:  # reading the spec counts against its --timeout too
        prop = load_spec(spec, n_inputs=model.n_inputs, n_outputs=model.n_outputs, model_name=str(args.model),
                         timeout=left(), templates=True)
        prop.check_fits(model.n_inputs, model.n_outputs, args.model)
        options = _options(args, left() * 0.97, sink if base_sink is not None else None)
        if isinstance(prop, Template):
            return check_template(model, prop, options, spec)
        return check(model, prop, options)

    try:
        result = run_with_watchdog(work, max(0.01, left() - EXIT_RESERVE), on_timeout)
    except errors.VerifyError as exc:
        if getattr(args, "debug", False):
            traceback.print_exc()
        return None, str(exc)
    except Exception as exc:  # a bug in verify: shown, counted, and the batch goes on
        traceback.print_exc()
        batch.internal_error = True
        return None, f"internal error: {type(exc).__name__}: {exc} (please report this)"
    result.seconds = time.monotonic() - start
    return result, None


def summary_counts(rows: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """Counts per verdict of a batch's rows (``errors`` for the specs that could not be checked)."""
    counts = {"verified": 0, "falsified": 0, "unknown": 0, "errors": 0}
    for row in rows:
        counts["errors" if row["verdict"] == "error" else row["verdict"]] += 1
    return {**counts, "specs": len(rows), "seconds": round(seconds, 4)}


def batch_exit_code(rows: list[dict[str, Any]], internal_error: bool = False) -> int:
    """4 for a bug, else 2 for any input error, 1 for any falsified, 3 for any unknown, else 0."""
    verdicts = {row["verdict"] for row in rows}
    if internal_error:
        return errors.EXIT_INTERNAL
    if "error" in verdicts:
        return errors.EXIT_INPUT_ERROR
    for verdict in ("falsified", "unknown"):
        if verdict in verdicts:
            return VERDICT_EXIT[verdict]
    return errors.EXIT_VERIFIED
