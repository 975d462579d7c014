"""Check a property on a model: bound it, hunt for counterexamples, decide, certify.

The pipeline, one deadline for all of it.  Chains of dense affine layers and ReLUs (ACAS
Xu, MNIST-FC: :data:`CHAIN_OPS`) take the tuned chain engine; every other network (convolutions,
pooling, residual joins, sigmoid/tanh/leaky ReLU) goes through :func:`_check_dag` on the IR.

1. the incomplete pass on the whole model (IBP, CROWN; alpha-CROWN on chains when no
   refinement can follow), case by case: :class:`~verify.bounds.chain_bounder.ChainBounder`
   on chains, :class:`~verify.bounds.dag.DagBounder` on the IR otherwise;
2. where it leaves cases open, a quick counterexample search (the combined falsifier, at
   most 2 s); for low-dimensional chains a first try of input splitting (at most 1 s per
   case) goes before it and settles most of them;
3. per open case, branch and bound: on chains, for high-dimensional inputs module
   composition first (:mod:`verify.compose`), then input or ReLU splitting on the graph
   compressed on the case's box; on the IR, input splitting for low-dimensional inputs and
   neuron splitting otherwise (:mod:`verify.refine.dag_split`); counterexample probes along
   the way;
4. a verified answer gets a certificate, and (by default) the independent checker
   re-derives it from the model file before the answer is given;
5. a falsified answer is a counterexample replayed on the original model.

Decision rule (README, "What a verdict means"): a float64 lower bound counts only when
it clears :func:`~verify.numerics.decision_threshold` (1e-7 plus 1e-9 of the magnitudes involved); the
certificate checker then re-derives the bound with rigorous rounding-error bounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from verify.bounds.chain_bounder import ChainBounder
from verify.bounds.dag import DagBounder
from verify.certcheck import check_certificate
from verify.certificate.build import build_certificate, dag_proof
from verify.falsify.base import Budget, Counterexample, replay_in_box
from verify.graph.chain import LinearChain, chain_from_ir
from verify.model.network import Model
from verify.numerics import ABSOLUTE_SAFETY, RELATIVE_SAFETY, decision_threshold  # noqa: F401  (re-exported)
from verify.refine import INPUT_SPLIT_MAX_DIMS, case_rows, prove_case, set_threads
from verify.refine.dag_split import DagTree, prove_case_dag
from verify.refine.distributed import distributed_input_split, make_problem
from verify.refine.input_split import InputSplitOptions
from verify.runtime import stderr_progress  # noqa: F401  (re-exported)
from verify.spec.property import Case, Property

VERIFIED, FALSIFIED, UNKNOWN = "verified", "falsified", "unknown"

#: Seconds per case of the first, short try of input splitting (low-dimensional inputs),
#: before the quick counterexample search: on ACAS Xu that search took about 1.6 s where
#: there was nothing to find, and the split settled most instances in less.
SPLIT_FIRST_SECONDS = 1.0

@dataclass
class CheckOptions:
    """Knobs of :func:`check`; the defaults are what the CLI uses."""

    timeout: float = 60.0
    methods: tuple[str, ...] = ("IBP", "CROWN", "alpha-CROWN")
    falsify: bool = True
    refine: bool = True  # branch and bound after the incomplete pass
    compress: bool = True  # branch and bound on the graph compressed on each case's box
    modular: bool = True  # try module composition before ReLU splitting
    recheck: bool = True  # re-check the certificate with verify.certcheck before answering
    seed: int = 0
    alpha_iterations: int = 20
    progress: Callable[[str], None] | None = None
    #: a :class:`verify.cluster.RayPool`: input-split branch and bound runs on its cluster
    cluster: Any = None


@dataclass
class CheckResult:
    """The answer, with what supports it."""

    verdict: str
    seconds: float
    method: str
    margin: float | None
    counterexample: Counterexample | None = None
    reason: str = ""
    model: str = ""
    spec: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    certificate: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "seconds": round(self.seconds, 4),
            "method": self.method,
            "margin": None if self.margin is None or not np.isfinite(self.margin) else float(self.margin),
            "counterexample": None if self.counterexample is None else self.counterexample.to_json(),
            "reason": self.reason,
            "model": self.model,
            "spec": self.spec,
            **self.details,
        }


class Progress:
    """Prints progress lines on stderr once a run has lasted ``after`` seconds."""

    def __init__(self, sink: Callable[[str], None] | None, after: float = 2.0) -> None:
        self.sink = sink
        self.after = after
        self.start = time.monotonic()
        self.pending: list[str] = []

    def __call__(self, message: str) -> None:
        if self.sink is None:
            return
        elapsed = time.monotonic() - self.start
        line = f"[{elapsed:6.1f}s] {message}"
        if elapsed < self.after:
            self.pending = [line]
            return
        for p in self.pending:
            self.sink(p)
        self.pending = []
        self.sink(line)


def polytope_margins(lower: np.ndarray, case: Case) -> np.ndarray:
    """Per unsafe polytope: ``max_i (lb_i - d_i)``; > 0 means unreachable.

    Rows whose coefficients are not floats (``coef_err > 0``) are never trusted.
    """
    out = np.empty(len(case.unsafe))
    row = 0
    for j, poly in enumerate(case.unsafe):
        k = poly.n_rows
        if k == 0:
            out[j] = -np.inf
            continue
        margins = lower[row:row + k] - poly.d
        margins = np.where(poly.coef_err > 0, -np.inf, margins)
        out[j] = np.max(margins)
        row += k
    return out


def stacked_spec(case: Case, n_outputs: int) -> np.ndarray:
    rows = [p.C for p in case.unsafe if p.n_rows]
    return np.concatenate(rows, axis=0) if rows else np.zeros((0, n_outputs))


class _Pipeline:
    """One run of :func:`check` (state shared by its steps)."""

    def __init__(self, model: Model, prop: Property, options: CheckOptions) -> None:
        self.model = model
        self.prop = prop
        self.options = options
        self.start = time.monotonic()
        self.budget = Budget(self.start + options.timeout)
        self.progress = Progress(options.progress)
        self.details: dict[str, Any] = {}

    def result(self, verdict: str, method: str, margin: float | None, cex: Counterexample | None = None,
               reason: str = "", certificate: dict[str, Any] | None = None) -> CheckResult:
        return CheckResult(verdict, time.monotonic() - self.start, method, margin, cex, reason,
                           model=str(self.model.path or self.model.name), spec=str(self.prop.source or self.prop.name),
                           details=self.details, certificate=certificate)

    def falsify(self, seconds: float | None, prop: Property | None = None,
                quick: bool = False) -> Counterexample | None:
        from verify.falsify.combined import SLICED, default_falsifier  # here: it imports hypothesis

        deadline = self.budget.deadline if seconds is None else min(self.budget.deadline, time.monotonic() + seconds)
        # no bound-corner search here: branch and bound replays the corners of its own bounds
        # (and ReLU splitting descends from its root's)
        falsifier = default_falsifier(methods=SLICED, max_slices=2, shrink_seconds=1.0) if quick else \
            default_falsifier(methods=SLICED, shrink_seconds=1.0)
        return falsifier.search(self.model, prop or self.prop, Budget(deadline), self.options.seed)

    def probes(self, ci: int, deadline: float) -> tuple[Callable[[np.ndarray], bool],
                                                        Callable[[float], np.ndarray | None]]:
        """For branch and bound on case ``ci``: whether a point replays as a counterexample on
        the original model, and a counterexample search (hypothesis, PGD) of at most ``limit``
        seconds and a tenth of the time left before ``deadline``."""
        prop = self.prop

        def is_unsafe(x: np.ndarray) -> bool:
            return _replay(self, x, ci) is not None

        def search(limit: float) -> np.ndarray | None:
            if not self.options.falsify:
                return None
            self.progress("counterexample search (hypothesis, PGD)")
            sub = Property((prop.cases[ci],), prop.n_inputs, prop.n_outputs, prop.name)
            cex = self.falsify(max(0.5, min(limit, 0.1 * (deadline - time.monotonic()))), sub)
            return None if cex is None else cex.x

        return is_unsafe, search

    def distributor(self, ci: int) -> Callable[..., Any] | None:
        """Input splitting of case ``ci`` on the cluster of ``options.cluster`` (ONNX models:
        the workers replay candidates on the model file), or None (in this process)."""
        pool = self.options.cluster
        if pool is None or self.model.kind != "onnx" or self.model.path is None:
            return None

        def distribute(Ws: list[Any], bs: list[Any], groups: list[np.ndarray], lo: np.ndarray, hi: np.ndarray,
                       deadline: float, options: InputSplitOptions, is_unsafe: Callable[[np.ndarray], bool],
                       progress: Callable[[str], None]) -> Any:
            problem = make_problem(Ws, bs, groups, str(self.model.path), self.prop, ci, options)
            return distributed_input_split(Ws, bs, groups, lo, hi, deadline, options, pool, problem, is_unsafe,
                                           progress)

        return distribute

    def incomplete(self, chain: Any, refine_follows: bool) -> tuple[list[int], float, str]:
        """The incomplete pass: bounds of the whole model per case, from the cheapest method
        on (IBP, CROWN, then alpha-CROWN unless branch and bound follows); returns the open
        cases, the worst margin and the last method used.

        Runs on chains of dense layers and ReLUs (``chain``, the form the chain branch and
        bound works on), with :class:`verify.bounds.chain_bounder.ChainBounder`; every
        other network goes through :func:`_check_dag` and the IR engine.  auto_LiRPA is
        no longer on this path: its CROWN needed 0.34-0.38 s of import and set-up before
        the first bound (issue 22), and the IR engine covers the networks it served
        (sigmoid, tanh, max pooling, residual sums) with the relaxations the certificate
        checker re-derives, which auto_LiRPA's bounds could not be certified against.
        """
        bounder = ChainBounder(chain, self.options.alpha_iterations)
        methods = [m for m in self.options.methods if not (refine_follows and m == "alpha-CROWN")]
        worst, method_used, open_cases = np.inf, "none", []
        for ci, case in enumerate(self.prop.cases):
            C = stacked_spec(case, self.model.n_outputs)
            margins = np.full(len(case.unsafe), -np.inf)
            scale = 0.0
            for method in methods:
                if self.budget.expired():
                    break
                res = bounder.bound(case.box.lower[None], case.box.upper[None], C, method)
                scale = max(scale, _scale(res, case))
                margins = np.maximum(margins, polytope_margins(res.lower[0], case))
                method_used = method
                self.progress(f"case {ci + 1}/{len(self.prop.cases)}: {method} margin {margins.min():.6g}")
                if np.all(margins > decision_threshold(scale)):
                    break
            margin = float(margins.min()) if margins.size else np.inf
            worst = min(worst, margin)
            if not margin > decision_threshold(scale):
                open_cases.append(ci)
        return open_cases, worst, method_used


def check(model: Model, prop: Property, options: CheckOptions | None = None) -> CheckResult:
    """Decide whether ``prop`` holds on ``model``: verified, falsified or unknown."""
    options = options or CheckOptions()
    prop.check_fits(model.n_inputs, model.n_outputs, model.name)
    previous_threads = set_threads(1)
    try:
        return _check(_Pipeline(model, prop, options))
    finally:
        set_threads(previous_threads)


def _check(run: _Pipeline) -> CheckResult:
    options, model = run.options, run.model
    chain_form = _chain(model)
    if chain_form is None:
        return _check_dag(run)
    chain = chain_form if options.refine else None
    open_cases, worst, method = run.incomplete(chain_form, chain is not None)
    run.details["incomplete"] = {"method": method, "margin": None if not np.isfinite(worst) else worst,
                                 "open_cases": len(open_cases)}
    if chain is None:
        if not open_cases:
            run.details["certificate"] = "not available without refinement (--no-refine)"
            return run.result(VERIFIED, method, worst)
        return _falsify_rest(run, open_cases, method, worst)
    if open_cases and options.falsify and chain.n_inputs <= INPUT_SPLIT_MAX_DIMS:
        # input splitting settles most low-dimensional cases in well under a second, and
        # finds counterexamples of its own: it goes first, briefly
        settled = _refine(run, chain, open_cases, method, worst, first_try=SPLIT_FIRST_SECONDS)
        if settled is not None:
            return settled
        run.details.pop("compression", None)
    if open_cases and options.falsify:
        run.progress("quick counterexample search")
        cex = run.falsify(2.0, quick=True)
        if cex is not None:
            return run.result(FALSIFIED, cex.method, None, cex)
    result = _refine(run, chain, open_cases, method, worst)
    assert result is not None
    return result


def _check_dag(run: _Pipeline) -> CheckResult:
    """The pipeline on the IR (every network that is not a chain of dense layers and ReLUs):
    the incomplete pass with :class:`DagBounder`, a quick counterexample search, branch and
    bound (:mod:`verify.refine.dag_split`: input splitting for low-dimensional inputs,
    neuron splitting otherwise), a ``dag`` certificate re-checked by the independent checker."""
    options, model, prop = run.options, run.model, run.prop
    graph = model.ir
    bounder = DagBounder(graph)
    open_cases: list[int] = []
    worst, method_used = np.inf, "none"
    trees: dict[int, DagTree] = {}
    scales: dict[int, float] = {}
    for ci, case in enumerate(prop.cases):
        C, d, groups = case_rows(case)
        lo = torch.as_tensor(case.box.lower[None].astype(np.float64))
        hi = torch.as_tensor(case.box.upper[None].astype(np.float64))
        margins = np.full(len(groups), -np.inf)
        scale = float(np.abs(np.concatenate([case.box.lower, case.box.upper])).max(initial=0.0))
        for method in ("ibp", "crown"):
            if run.budget.expired() or not C.shape[0]:
                break
            res = bounder.bound(lo, hi, torch.as_tensor(C), torch.as_tensor(d), method=method)
            lower = res.lower.detach().numpy()[0]
            scale = max(scale, _dag_scale(res))
            margins = np.maximum(margins, [np.max(lower[g]) if len(g) else -np.inf for g in groups])
            method_used = "IBP" if method == "ibp" else "CROWN"
            run.progress(f"case {ci + 1}/{len(prop.cases)}: {method_used} margin {margins.min():.6g}")
            if np.all(margins > decision_threshold(scale)):
                break
        scales[ci] = scale
        margin = float(margins.min()) if margins.size else np.inf
        worst = min(worst, margin)
        if margin > decision_threshold(scale) and C.shape[0]:
            tree = DagTree()
            tree.closures = [(0, p, float(m)) for p, m in enumerate(margins)]
            trees[ci] = tree
        else:
            open_cases.append(ci)
    run.details["incomplete"] = {"method": method_used, "margin": None if not np.isfinite(worst) else worst,
                                 "open_cases": len(open_cases)}
    if not open_cases:
        return _certify_dag(run, trees, worst, method_used)
    if not options.refine:
        return _falsify_rest(run, open_cases, method_used, worst)
    if options.falsify:
        run.progress("quick counterexample search")
        cex = run.falsify(2.0, quick=True)
        if cex is not None:
            return run.result(FALSIFIED, cex.method, None, cex)
    outcomes = []
    for k, ci in enumerate(open_cases):
        case = prop.cases[ci]
        deadline = time.monotonic() + run.budget.left() / max(1, len(open_cases) - k)

        is_unsafe, search = run.probes(ci, deadline)

        outcome = prove_case_dag(graph, case, ci, deadline, decision_threshold(scales[ci]),
                                 input_split=graph.n_inputs <= INPUT_SPLIT_MAX_DIMS, bounder=bounder,
                                 is_unsafe=is_unsafe, search=search, progress=run.progress)
        outcomes.append(outcome)
        if outcome.status == "candidate":
            cex = _replay(run, outcome.candidate, ci)
            if cex is not None:
                run.details["refinement"] = _stats(outcomes)
                return run.result(FALSIFIED, f"{outcome.method}+replay", None, cex)
        if outcome.status != "verified":
            run.details["refinement"] = _stats(outcomes)
            return _falsify_rest(run, open_cases[k:], outcome.method, outcome.min_lb)
        trees[ci] = outcome.tree
        worst = min(worst, outcome.min_lb) if k == 0 else worst
    run.details["refinement"] = _stats(outcomes)
    method = "+".join(sorted({o.method for o in outcomes}))
    return _certify_dag(run, trees, min(o.min_lb for o in outcomes), method)


def _certify_dag(run: _Pipeline, trees: dict[int, DagTree], margin: float, method: str) -> CheckResult:
    proofs = [dag_proof(ci, trees[ci]) for ci in range(len(run.prop.cases))]
    cert = build_certificate(run.model, run.prop, proofs, [], [])
    return _recheck(run, cert, margin, method)


def _dag_scale(res: Any) -> float:
    values = [float(torch.nan_to_num(res.lower, posinf=0.0, neginf=0.0).abs().max())]
    for lo, hi in (res.intermediate or {}).values():
        for t in (lo, hi):
            t = torch.nan_to_num(t, posinf=0.0, neginf=0.0)
            values.append(float(t.abs().max()) if t.numel() else 0.0)
    return max(values)


def _refine(run: _Pipeline, chain: Any, open_cases: list[int], method: str, worst: float,
            first_try: float | None = None) -> CheckResult | None:
    """Branch and bound on every case (all of them, so that the certificate covers all).

    With ``first_try``, a first try of at most that many seconds per case and no mid-run
    counterexample search: it returns a verified or falsified result, or None (nothing
    reported) when a case is left open.
    """
    options, prop = run.options, run.prop
    outcomes = []
    margins = []
    for ci, case in enumerate(prop.cases):
        deadline = time.monotonic() + run.budget.left() / max(1, len(prop.cases) - ci)
        if first_try is not None:
            deadline = min(deadline, time.monotonic() + first_try)

        is_unsafe, search = run.probes(ci, deadline)

        threshold = decision_threshold(_case_scale(chain, case))
        outcome = _modular(run, chain, case, ci, deadline, threshold)
        if outcome is None:
            # a case the incomplete pass closed needs no compression: its proof is the root's bound
            work, folded = _compressed(run, chain, case, ci) if options.compress and ci in open_cases \
                else (chain, False)
            outcome = prove_case(work, case, ci, deadline, threshold, run.progress, is_unsafe, folded=folded,
                                 original=chain, search=search if first_try is None else None,
                                 distribute=run.distributor(ci) if first_try is None else None)
        outcomes.append(outcome)
        margins.append(outcome.min_lb)
        if outcome.status == "candidate":
            cex = _replay(run, outcome.candidate, ci)
            if cex is not None:
                run.details["refinement"] = _stats(outcomes)
                return run.result(FALSIFIED, f"{outcome.method}+replay", None, cex)
        if outcome.status == "open":
            break
    if all(o.status == "verified" for o in outcomes) and len(outcomes) == len(prop.cases):
        run.details["refinement"] = _stats(outcomes)
        return _certify(run, chain, outcomes, min(margins), method if not open_cases else None)
    if first_try is not None:
        return None
    run.details["refinement"] = _stats(outcomes)
    worst = min(margins) if margins else worst
    return _falsify_rest(run, list(range(len(outcomes) - 1, len(prop.cases))), outcomes[-1].method, worst)


def _falsify_rest(run: _Pipeline, open_cases: list[int], method: str, worst: float) -> CheckResult:
    prop = run.prop
    if run.options.falsify and not run.budget.expired():
        run.progress("counterexample search (hypothesis, PGD)")
        sub = Property(tuple(prop.cases[i] for i in open_cases), prop.n_inputs, prop.n_outputs, prop.name)
        cex = run.falsify(None, sub)
        if cex is not None:
            cex.case_index = open_cases[cex.case_index]
            return run.result(FALSIFIED, cex.method, None, cex)
    reason = "timeout" if run.budget.expired() else "bounds too loose (no counterexample found)"
    return run.result(UNKNOWN, method, worst, reason=reason)


def _certify(run: _Pipeline, chain: Any, outcomes: list[Any], margin: float,
             incomplete_method: str | None) -> CheckResult:
    cert = build_certificate(run.model, run.prop, [o.proof for o in outcomes], chain.hidden_sizes,
                             chain.relu_names)
    method = incomplete_method or "+".join(sorted({o.method for o in outcomes}))
    return _recheck(run, cert, margin, method)


def _recheck(run: _Pipeline, cert: dict[str, Any], margin: float, method: str) -> CheckResult:
    """Re-check ``cert`` with the independent checker (ONNX models) before answering verified."""
    if run.options.recheck and run.model.kind == "onnx" and run.model.path is not None:
        run.progress("re-checking the certificate")
        source = run.prop.source
        spec = source if source and Path(source).is_file() and run.prop.sha256 != run.prop.fingerprint() \
            else run.prop
        report = check_certificate(run.model.path, spec, cert, deadline=run.budget.deadline)
        run.details["recheck"] = {"valid": report.valid, "complete": report.complete,
                                  "seconds": round(report.seconds, 4), "message": report.message}
        if not report.complete:
            # the decision rule (float64 bounds clearing the safety threshold) stands; the
            # certificate can be re-checked later with `verify certcheck`
            run.details["recheck"]["message"] = "not finished before the timeout: run verify certcheck"
        elif not report.valid:
            return run.result(UNKNOWN, method, margin, reason=f"certificate rejected: {report.message}")
    return run.result(VERIFIED, method, margin, certificate=cert)


def _modular(run: _Pipeline, chain: Any, case: Case, ci: int, deadline: float, threshold: float) -> Any:
    """Module composition (assume-guarantee, with exact Z3 modules where small) before ReLU
    splitting; skipped for low-dimensional inputs, where input splitting's first bound
    already covers what it proves (benchmarks/compose.py measures both)."""
    if not run.options.modular or chain.n_inputs <= INPUT_SPLIT_MAX_DIMS:
        return None
    from verify.compose import modular_proof  # here: composition and compression import networkx (start-up)

    run.progress("module composition")
    limit = time.monotonic() + 0.1 * max(0.0, deadline - time.monotonic())
    return modular_proof(chain, case, ci, min(deadline, limit), threshold)


def _compressed(run: _Pipeline, chain: Any, case: Case, ci: int) -> tuple[Any, bool]:
    """The chain compressed on the case's box and sliced to its rows (or the chain itself when
    compression does not give a chain); records the figures in the result details."""
    from verify.compress import compress  # here: networkx, 0.15-0.22 s of start-up, for branch and bound only
    from verify.graph.chain_graph import chain_to_graph, graph_to_chain

    C, d, _ = case_rows(case)
    if not C.shape[0]:
        return chain, False
    graph = chain_to_graph(chain)
    result = compress(graph, case.box.lower, case.box.upper, C, d,
                      merge=chain.n_inputs <= INPUT_SPLIT_MAX_DIMS)  # ReLU-split proofs name single neurons
    figures = run.details.setdefault("compression", [])
    figures.append({"case": ci, **{k: v for k, v in result.to_json().items() if k not in ("passes", "modules")}})
    compressed = graph_to_chain(result.graph)
    if compressed is None or compressed.n_outputs != C.shape[0] or result.error_bound > 0:
        return chain, False
    return compressed, True


def _replay(run: _Pipeline, x: np.ndarray | None, case_index: int) -> Counterexample | None:
    if x is None:
        return None
    return replay_in_box(run.model, run.prop, x, "bab", case_index)


def _chain(model: Model) -> LinearChain | None:
    """The model as a chain of dense affine layers and ReLUs, or None when it is not one
    (convolutions, pooling, joins and other activations go to the IR engine)."""
    return None if model.ir is None else chain_from_ir(model.ir)


def _case_scale(chain: Any, case: Case) -> float:
    """A magnitude for the safety margin: the interval bound of the chain's values on the box."""
    lo, hi = case.box.lower, case.box.upper
    scale = float(np.abs(np.concatenate([lo, hi])).max(initial=0.0))
    for k, (W, b) in enumerate(zip(chain.weights, chain.biases)):
        c, r = (lo + hi) / 2, (hi - lo) / 2
        mid, rad = W @ c + b, np.abs(W) @ r
        lo, hi = mid - rad, mid + rad
        scale = max(scale, float(np.abs(np.concatenate([lo, hi])).max(initial=0.0)))
        if k < len(chain.weights) - 1:
            lo, hi = np.maximum(lo, 0), np.maximum(hi, 0)
    return scale


def _stats(outcomes: list[Any]) -> dict[str, Any]:
    total: dict[str, Any] = {"cases": len(outcomes)}
    for o in outcomes:
        for key, value in o.stats.items():
            if isinstance(value, (int, float)):
                total[key] = total.get(key, 0) + value
    return total


def _scale(res: Any, case: Case) -> float:
    """Magnitude of the numbers a bound was computed from (for the float64 safety margin)."""
    values = [np.abs(res.lower).max(initial=0.0)]
    for lo, hi in res.relu_bounds.values():
        values.append(np.abs(lo).max(initial=0.0))
        values.append(np.abs(hi).max(initial=0.0))
    values.append(np.abs(case.box.lower).max(initial=0.0))
    values.append(np.abs(case.box.upper).max(initial=0.0))
    return float(max(values))
