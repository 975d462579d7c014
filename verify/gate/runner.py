"""Run a gate: every property of the manifest, cached answers re-checked, the rest checked
(in this process, or in ``--jobs`` worker processes), requirements evaluated against the
answers and the baseline, and the report (the JSON schema of docs/gate.md) assembled.

The report dict is the one source every output format is rendered from
(:mod:`verify.gate.reports`), and what a later run reads back as its baseline.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from verify import __version__
from verify.cluster import RayPool, Task
from verify.errors import VerifyError
from verify.gate.baseline import compare, load_baseline
from verify.gate.cache import DEFAULT_FOLDER, GateCache, cache_key, revalidate
from verify.gate.manifest import find_manifest, load_manifest
from verify.gate.options import check_options
from verify.gate.plan import FAMILY_RATE, FamilyRun, Item, Plan, build_plan
from verify.gate.progress import GateProgress
from verify.gate.reference import reference_model
from verify.gate.reports import write_reports
from verify.gate.requirements import FAIL, PASS, UNKNOWN, exit_code, family_status, needed_rows, property_status
from verify.gate.worker import get_model, init_worker, run_task, task_property

REPORT_FORMAT = "verify-gate-report"
REPORT_VERSION = 1


@dataclass
class GateOptions:
    """What ``verify gate`` was asked to do."""

    manifest: Path | None = None
    baseline: Path | None = None
    report: Path | None = None
    junit: Path | None = None
    jobs: int = 1
    cluster: str | None = None  # a Ray address, or "local" (docs/cluster.md); None: local processes
    cache: bool = True
    cache_dir: Path | None = None
    quiet: bool = False
    stream: TextIO | None = None  # progress goes here (default stderr)
    live: bool | None = None  # live progress line (default: when the stream is a terminal)


@dataclass
class GateRun:
    """A finished gate: the report dict, the certificates by property id, the exit code."""

    report: dict[str, Any]
    certificates: dict[str, dict[str, Any]]
    plan: Plan
    exit_code: int
    pictures: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def run_gate(options: GateOptions) -> GateRun:
    """Run the gate; raises :class:`~verify.errors.VerifyError` on input errors (nothing is run then)."""
    start = time.monotonic()
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    manifest_path = Path(options.manifest) if options.manifest else find_manifest()
    manifest = load_manifest(manifest_path)
    baseline = load_baseline(options.baseline) if options.baseline else None
    cache = GateCache(Path(options.cache_dir) if options.cache_dir else manifest.root / DEFAULT_FOLDER,
                      enabled=options.cache)
    plan = build_plan(manifest, cache)
    opts = check_options(manifest.seed)
    planned = time.monotonic()

    progress = GateProgress(len(plan.items), options.stream, options.live, options.quiet)
    try:
        answers = _check_all(plan, cache, opts, options, progress, manifest_path)
    finally:
        progress.close()
    checked = time.monotonic()

    report = _report(plan, answers, opts, options, created)
    report["timings"] = {"plan": round(planned - start, 4), "checks": round(checked - planned, 4),
                         "total_before_reports": round(checked - start, 4)}
    report["seconds"] = round(checked - start, 4)
    statuses = [p["status"] for p in report["properties"]] + [f["status"] for f in report["families"]]
    if baseline is not None:
        report["baseline"] = compare(baseline, report["properties"], report["families"])
        for reg in report["baseline"]["regressions"]:
            report["failures"].append({"id": reg["id"], "status": FAIL, "message": "regression: " + reg["message"]})
            statuses.append(FAIL)
    code = exit_code(statuses)
    report["exit_code"] = code
    report["outcome"] = {0: "pass", 1: "fail", 3: "unknown"}[code]
    run = GateRun(report, {k: v for k, v in answers.certificates.items() if v is not None}, plan, code)
    if options.report is not None or options.junit is not None:
        run.files = write_reports(run, options.report, options.junit, cache.picture_folder)
    return run


def _check_all(plan: Plan, cache: GateCache, opts: dict[str, Any], options: GateOptions, progress: GateProgress,
               manifest_path: Path) -> _Answers:
    """Answers for every item: re-checked from the cache, or checked now (and stored)."""
    answers = _Answers(plan, progress)
    pending: list[tuple[Item, str]] = []
    reused: list[tuple[Item, tuple[dict[str, Any], dict[str, Any] | None]]] = []
    for item in plan.items:
        key = cache_key(item.model_sha256, item.spec_sha256, {**opts, "timeout": item.timeout})
        entry = cache.get(key)
        answer = _reuse(entry, item, plan.models[item.model].n_inputs) if entry is not None else None
        if answer is not None:
            reused.append((item, answer))
        else:
            pending.append((item, key))
    pool = RayPool(options.cluster, cpus=options.jobs if options.jobs > 1 else None) \
        if options.cluster and pending else None  # connected first: a bad address is the only line printed
    where = f" on the Ray cluster {options.cluster} ({pool.cpus} CPUs)" if pool is not None else \
        f" with {options.jobs} jobs" if options.jobs > 1 and len(pending) > 1 else ""
    progress.note(f"gate: {len(plan.items)} properties from {manifest_path}; {len(reused)} answer(s) from the cache "
                  f"(re-checked), {len(pending)} to check{where}")
    for item, (result, certificate) in reused:
        answers.record(item, result, certificate)

    def store(item: Item, key: str, answer: dict[str, Any]) -> None:
        result = answer["result"]
        result["cache"] = {"hit": False, "stored": cache.put(key, result, answer["certificate"], {
            "model_sha256": item.model_sha256, "spec_sha256": item.spec_sha256, "timeout": item.timeout})}
        answers.record(item, result, answer["certificate"])

    if pool is not None:
        with pool:
            _run_on_cluster(pool, pending, opts, store, progress)
    else:
        _run_pending(pending, opts, options.jobs, store, progress)
    return answers


def _reuse(entry: dict[str, Any], item: Item, n_inputs: int) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    return revalidate(entry, item.model_path, item.spec_path, model=lambda: _replay_model(item, n_inputs),
                      prop=lambda: task_property(_task(item, {})))


def _replay_model(item: Item, n_inputs: int) -> Any:
    """The model a cached counterexample is replayed on: onnxruntime on the file (no
    torch), or, for a model it cannot run alone, the loaded model."""
    ref = reference_model(item.model_path)
    if ref is not None and ref.n_inputs == n_inputs:
        return ref
    return get_model(item.model_path)


def _task(item: Item, opts: dict[str, Any]) -> dict[str, Any]:
    return {"id": item.id, "model_path": str(item.model_path), "spec_path": str(item.spec_path),
            "spec_sha256": item.spec_sha256, "ball": item.ball, "timeout": item.timeout, "options": opts}


def _run_pending(pending: list[tuple[Item, str]], opts: dict[str, Any], jobs: int,
                 store: Callable[[Item, str, dict[str, Any]], None], progress: GateProgress) -> None:
    if jobs <= 1 or len(pending) <= 1:
        for item, key in pending:
            progress.started(item.id)
            store(item, key, run_task(_task(item, opts)))
        return
    import multiprocessing

    # spawn: the parent has started torch and onnxruntime threads, which fork does not survive safely
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(pending)), mp_context=context,
                             initializer=init_worker) as pool:
        queue = list(reversed(pending))
        running: dict[Future, tuple[Item, str]] = {}
        try:
            while queue or running:
                while queue and len(running) < 2 * jobs:  # a short queue keeps "running" truthful
                    item, key = queue.pop()
                    running[pool.submit(run_task, _task(item, opts))] = (item, key)
                    progress.started(item.id)
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    item, key = running.pop(future)
                    store(item, key, future.result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _run_on_cluster(pool: RayPool, pending: list[tuple[Item, str]], opts: dict[str, Any],
                    store: Callable[[Item, str, dict[str, Any]], None], progress: GateProgress) -> None:
    """One Ray task per property (:mod:`verify.cluster`): answers arrive in order of
    completion; a task whose workers died more than the retries allow, or that overran its
    timeout by the grace period, is answered unknown (and not cached)."""
    tasks = [Task(run_task, (_task(item, opts),), timeout=item.timeout, name=f"verify-gate {item.id}")
             for item, _ in pending]

    def done(outcome: Any) -> None:
        item, key = pending[outcome.index]
        if outcome.error is None:
            if outcome.attempts > 1:
                progress.note(f"{item.id}: answered on attempt {outcome.attempts} (a worker was lost)")
            store(item, key, outcome.value)
            return
        if isinstance(outcome.exception, VerifyError):
            raise outcome.exception
        reason = outcome.error if outcome.error == "hard timeout" else \
            f"not answered on the cluster: {outcome.error}"
        store(item, key, {"id": item.id, "certificate": None, "result": {
            "verdict": "unknown", "seconds": round(outcome.seconds, 4), "method": "none", "margin": None,
            "counterexample": None, "reason": reason, "model": str(item.model_path),
            "spec": str(item.spec_path)}})

    pool.run(tasks, done, on_start=lambda i: progress.started(pending[i][0].id))


class _Answers:
    """Answers as they arrive: statuses, progress, family completion."""

    def __init__(self, plan: Plan, progress: GateProgress) -> None:
        self.results: dict[str, dict[str, Any]] = {}
        self.certificates: dict[str, dict[str, Any] | None] = {}
        self.progress = progress
        self.family_left = {f.id: len(f.items) for f in plan.families}
        self.families = {f.id: f for f in plan.families}

    def record(self, item: Item, result: dict[str, Any], certificate: dict[str, Any] | None) -> None:
        self.results[item.id] = result
        self.certificates[item.id] = certificate
        self.progress.finished(item, result, property_status(item.require, result["verdict"]))
        if item.family is not None:
            self.family_left[item.family] -= 1
            if self.family_left[item.family] == 0:
                fam = _family_summary(self.families[item.family], self.results)
                self.progress.family_done(item.family, _rate_text(fam))


def _rate_text(fam: dict[str, Any]) -> str:
    text = (f"{fam['verified']}/{fam['rows']} verified ({100 * fam['verified_rate']:.1f}%), "
            f"{fam['falsified']} falsified, {fam['unknown']} unknown")
    if fam["min_verified_rate"] is not None:
        text += f"; needs {fam['needed']} verified: {fam['status'].upper()}"
    return text


def _family_summary(run: FamilyRun, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    verdicts = [results[i.id]["verdict"] for i in run.items]
    rows = len(verdicts)
    counts = {v: verdicts.count(v) for v in ("verified", "falsified", "unknown")}
    entry = run.entry
    rate = entry.min_verified_rate
    row_statuses = [property_status(i.require, results[i.id]["verdict"]) for i in run.items]
    return {"id": run.id, "name": entry.name, "model": run.model, "data": str(entry.data), "eps": entry.eps,
            "clip": list(entry.clip) if entry.clip else None, "rows": rows, **counts,
            "verified_rate": counts["verified"] / rows, "falsified_rate": counts["falsified"] / rows,
            "unknown_rate": counts["unknown"] / rows,
            "require": entry.require if rate is None else FAMILY_RATE, "min_verified_rate": rate,
            "needed": needed_rows(rate, rows) if rate is not None else None,
            "status": family_status(rate, counts["verified"], counts["unknown"], rows, row_statuses),
            "seconds": round(sum(float(results[i.id].get("seconds") or 0.0) for i in run.items), 4),
            "timeout": entry.timeout, "description": entry.description}


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def certificate_slugs(ids: list[str]) -> dict[str, str]:
    """File-name stems for the certificates of ``ids`` (unique)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for i in ids:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", i.replace("[", ".row").replace("]", "").replace("@", ".at."))
        slug, n = base, 2
        while slug in used:
            slug, n = f"{base}-{n}", n + 1
        used.add(slug)
        out[i] = slug
    return out


_RESULT_KEYS = ("verdict", "method", "margin", "seconds", "reason", "counterexample", "cache")


def _report(plan: Plan, answers: _Answers, opts: dict[str, Any], options: GateOptions,
            created: str) -> dict[str, Any]:
    root = plan.manifest.root
    slugs = certificate_slugs([i.id for i in plan.items])
    properties = []
    for item in plan.items:
        result = answers.results[item.id]
        cert = answers.certificates.get(item.id)
        status = property_status(item.require, result["verdict"])
        details = {k: v for k, v in result.items() if k not in _RESULT_KEYS + ("model", "spec")}
        properties.append({
            "id": item.id, "name": item.name, "kind": "family-row" if item.family else "property",
            "family": item.family, "row": item.row, "label": item.label, "model": item.model,
            "spec": _relative(item.spec_path, root), "spec_sha256": item.spec_sha256,
            "description": item.description, "require": item.require, "timeout": item.timeout,
            "status": status, **{k: result.get(k) for k in _RESULT_KEYS},
            "certificate": None if cert is None else _certificate_summary(cert, slugs[item.id], options.report,
                                                                             item.family is not None),
            "details": details,
        })
    families = [_family_summary(f, answers.results) for f in plan.families]
    for f in families:
        f["data"] = _relative(Path(f["data"]), root)
    failures = []
    for p in properties:
        if p["status"] != PASS:
            failures.append({"id": p["id"], "status": p["status"],
                             "message": f"{p['id']}: {p['verdict']}" + (f" ({p['reason']})" if p["reason"] else "")
                                        + f"; requires {p['require']}"})
    for f in families:
        if f["status"] != PASS and f["min_verified_rate"] is not None:
            failures.append({"id": f["id"], "status": f["status"],
                             "message": f"family {f['id']}: {f['verified']}/{f['rows']} verified, needs "
                                        f"{f['needed']} (min-verified-rate {f['min_verified_rate']:g})"
                                        + (f"; {f['unknown']} unknown" if f["status"] == UNKNOWN else "")})
    verdicts = [p["verdict"] for p in properties]
    return {
        "format": REPORT_FORMAT, "version": REPORT_VERSION, "tool": f"verify {__version__}",
        "created": created, "manifest": str(plan.manifest.path),
        "outcome": None, "exit_code": None, "seconds": None,
        "counts": {"total": len(properties), "verified": verdicts.count("verified"),
                   "falsified": verdicts.count("falsified"), "unknown": verdicts.count("unknown"),
                   "cached": sum(1 for p in properties if (p["cache"] or {}).get("hit")),
                   "requirements_failed": len(failures)},
        "options": {"jobs": options.jobs, "cluster": options.cluster, "cache": options.cache,
                    "seed": plan.manifest.seed,
                    "check": {k: list(v) if isinstance(v, tuple) else v for k, v in opts.items()}},
        "models": [{"name": m.name, "file": _relative(m.path, root), "sha256": m.sha256, "n_inputs": m.n_inputs,
                    "n_outputs": m.n_outputs} for m in plan.models.values()],
        "properties": properties, "families": families, "failures": failures, "baseline": None,
    }


def _certificate_summary(cert: dict[str, Any], slug: str, report_dir: Path | None,
                         generated_spec: bool) -> dict[str, Any]:
    cases = cert.get("cases") or []
    written = report_dir is not None
    return {"file": f"certificates/{slug}.json" if written else None,
            "spec_file": f"certificates/{slug}.vnnlib" if written and generated_spec else None,
            "producer": cert.get("producer"), "cases": len(cases),
            "kinds": sorted({str(c.get("kind")) for c in cases if isinstance(c, dict)}),
            "model_sha256": (cert.get("model") or {}).get("sha256"),
            "spec_sha256": (cert.get("spec") or {}).get("sha256")}
