"""Prove a case by modules: bound each module, chain the claims, cross loose boundaries linearly.

The network (a chain) is cut at ReLU layers into modules of consecutive blocks — the
series stages of :func:`verify.modules.split_modules` on the case's box, each module a
stage, the output layer a module of its own.  Module 1 is bounded over the case's box;
module ``i+1`` over ``relu(B_i)``, the ReLU of the box module ``i`` guarantees
(assume-guarantee: what ``i`` guarantees is what ``i+1`` assumes); the last module
bounds the property rows, per unsafe polytope.  Each module's backend comes from the
:class:`~verify.compose.policy.Policy`.  That is *box composition*.

Where boxes lose too much (the last module cannot refute every polytope), linear
relaxations are passed across a boundary instead: the two modules on either side become
one module, bounded by CROWN through the former boundary (the ReLU layer is relaxed, not
boxed).  Greedily, the merge that gives the best worst margin is kept, until the case
is verified or one module is left (whole-model bounds).  The merged boundaries are
recorded in the proof (``linear``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from verify.bounds.backend import BackendFailed, ChainModule, ModuleClaim, RowSpec, sequential_crown
from verify.bounds.linear_relax import crown_bounds
from verify.certificate.modules import modules_proof
from verify.compose.policy import Policy
from verify.graph.chain import LinearChain
from verify.graph.chain_graph import chain_to_graph, graph_to_chain
from verify.graph.extract import extract_graph
from verify.model.network import load_model
from verify.modules import split_modules
from verify.refine import case_rows
from verify.refine.outcome import CaseOutcome
from verify.spec.property import Case


@dataclass
class ComposeOptions:
    """Knobs of :func:`prove_modular`."""

    policy: Policy = field(default_factory=Policy)
    max_unstable: int = 12  # the size rule of the partition (split_modules)
    linear_fallback: bool = True
    deadline: float | None = None  # time.monotonic() value
    threshold: float = 1e-7  # a claimed polytope margin must exceed this
    partition: list[tuple[int, int]] | None = None  # explicit block ranges (else split_modules')


@dataclass
class ModularResult:
    """The outcome: verified or not, the claims (block order) and the figures of each pass."""

    verified: bool
    claims: list[ModuleClaim]
    margins: np.ndarray  # claimed margin per unsafe polytope (-inf where none)
    partition: list[tuple[int, int]]
    linear: list[int]  # ReLU layers crossed by linear relaxations (merged boundaries)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def min_margin(self) -> float:
        return float(self.margins.min()) if self.margins.size else -np.inf


def load_chain(model: LinearChain | Any) -> LinearChain:
    """A chain from a chain, a loaded model, or a model file path."""
    if isinstance(model, LinearChain):
        return model
    if isinstance(model, (str, Path)):
        model = load_model(model)
    chain = graph_to_chain(extract_graph(model))
    if chain is None:
        raise ValueError("the model is not a chain of affine layers and ReLUs")
    return chain


def reference_bounds(chain: LinearChain, lower: np.ndarray, upper: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Whole-model CROWN pre-activation bounds of every ReLU layer on the box (``[n_k]`` arrays)."""
    Ws, bs = chain.torch()
    lo = torch.as_tensor(lower, dtype=torch.float64)[None]
    hi = torch.as_tensor(upper, dtype=torch.float64)[None]
    pre = crown_bounds(Ws, bs, lo, hi, last=False)
    return [(l[0].numpy(), u[0].numpy()) for l, u in pre]


def partition(chain: LinearChain, lower: np.ndarray, upper: np.ndarray, max_unstable: int = 12,
              pre: list[tuple[np.ndarray, np.ndarray]] | None = None) -> list[tuple[int, int]]:
    """Block ranges of the modules: :func:`verify.modules.split_modules`' series stages (unstable
    ReLUs from whole-model CROWN on the box), then the output layer alone."""
    K = len(chain.weights)
    if K == 1:
        return [(0, 0)]
    pre = pre if pre is not None else reference_bounds(chain, lower, upper)
    index = {name: k for k, name in enumerate(chain.relu_names)}
    modules = split_modules(chain_to_graph(chain), {name: pre[k] for name, k in index.items()}, max_unstable)
    stages: dict[int, list[int]] = {}
    for m in modules:
        if m.kind != "output":
            stages.setdefault(m.stage, []).extend(index[n] for n in m.nodes)
    cuts = [(min(ks), max(ks)) for _, ks in sorted(stages.items())] + [(K - 1, K - 1)]
    if any(b[0] != a[1] + 1 for a, b in zip(cuts[:-1], cuts[1:])) or cuts[0][0] != 0:
        return [(k, k) for k in range(K)]
    return cuts


class _Composer:
    """Bounds modules (cached by blocks and input box) and chains them for one case."""

    def __init__(self, chain: LinearChain, rows: RowSpec, lower: np.ndarray, upper: np.ndarray, policy: Policy,
                 deadline: float | None) -> None:
        self.chain = chain
        self.rows = rows
        self.lower = np.asarray(lower, dtype=np.float64)
        self.upper = np.asarray(upper, dtype=np.float64)
        self.policy = policy
        self.deadline = deadline
        self.cache: dict[tuple[int, int, bytes, bytes], ModuleClaim] = {}
        self.failed: set[tuple[int, int, str]] = set()  # (blocks, backend) that gave up once: not retried
        self.bounded = 0

    def left(self) -> float:
        return np.inf if self.deadline is None else self.deadline - time.monotonic()

    def claim(self, name: str, s: int, e: int, lo: np.ndarray, hi: np.ndarray) -> ModuleClaim:
        key = (s, e, lo.tobytes(), hi.tobytes())
        if key in self.cache:
            return dataclasses.replace(self.cache[key], name=name)
        module = ChainModule.of(self.chain, s, e, name)
        rows = self.rows if module.last else None
        n_open = 0
        if module.n_internal and not isinstance(self.policy.override, str):
            pre = sequential_crown(module, lo, hi)
            n_open = int(sum(((l < 0) & (u > 0)).sum().item() for l, u in pre))
        objectives = rows.n_polytopes if rows is not None else 2 * module.n_outputs
        choice = self.policy.choose(name, (s, e), n_open, objectives, self.left())
        while (s, e, choice) in self.failed and self.policy.fallback(choice):
            choice = self.policy.fallback(choice)
        while True:
            backend = self.policy.backend(choice)
            if choice == "z3":
                backend.timeout = max(0.1, min(self.policy.z3_timeout, self.left()))  # type: ignore[attr-defined]
            try:
                claim = backend.bound(module, lo, hi, rows)
                break
            except BackendFailed:
                self.failed.add((s, e, choice))
                choice = self.policy.fallback(choice)
                if not choice:
                    raise
        self.bounded += 1
        self.cache[key] = claim
        return claim

    def run(self, cuts: list[tuple[int, int]]) -> tuple[list[ModuleClaim], np.ndarray] | None:
        """The claims of a partition, chained by boxes; None when time ran out."""
        claims: list[ModuleClaim] = []
        lo, hi = self.lower, self.upper
        for i, (s, e) in enumerate(cuts):
            if self.left() <= 0:
                return None
            c = self.claim(f"M{i + 1}", s, e, lo, hi)
            claims.append(c)
            if c.margins is None:
                assert c.out_lower is not None and c.out_upper is not None
                lo, hi = np.maximum(c.out_lower, 0.0), np.maximum(c.out_upper, 0.0)
        margins = claims[-1].margins
        assert margins is not None
        return claims, margins


def _figures(claims: list[ModuleClaim], margins: np.ndarray, ref: list[tuple[np.ndarray, np.ndarray]],
             seconds: float) -> dict[str, Any]:
    """How the composition went: modules, backends, margins, and per boundary how much wider
    the composed box is than whole-model CROWN's bounds of the same layer (median ratio)."""
    widths = []
    for c in claims[:-1]:
        assert c.out_lower is not None and c.out_upper is not None
        rl, ru = ref[c.blocks[1]]
        ratio = (c.out_upper - c.out_lower) / np.maximum(ru - rl, 1e-12)
        widths.append(float(np.median(ratio)))
    return {"modules": len(claims), "blocks": [list(c.blocks) for c in claims],
            "backends": [c.backend for c in claims], "margin": float(margins.min()) if margins.size else -np.inf,
            "box_width_ratio": widths, "seconds": round(seconds, 4)}


def prove_modular(model: LinearChain | Any, case: Case, options: ComposeOptions | None = None) -> ModularResult:
    """Verify one case by module composition (see the module docstring)."""
    options = options or ComposeOptions()
    chain = load_chain(model)
    C, d, groups = case_rows(case)
    rows = RowSpec(C, d, groups)
    lower, upper = case.box.lower, case.box.upper
    start = time.monotonic()
    ref = reference_bounds(chain, lower, upper)
    cuts = options.partition or partition(chain, lower, upper, options.max_unstable, ref)
    composer = _Composer(chain, rows, lower, upper, options.policy, options.deadline)
    figures: dict[str, Any] = {}
    out = composer.run(cuts)
    if out is None:
        return ModularResult(False, [], np.full(len(groups), -np.inf), cuts, [], {"timeout": True})
    claims, margins = out
    figures["box"] = _figures(claims, margins, ref, time.monotonic() - start)
    first_cuts = {e for _, e in cuts[:-1]}

    def done(m: np.ndarray) -> bool:
        return bool(m.size and np.all(m > options.threshold))

    best_seen = (float(margins.min()), cuts, claims, margins)  # reported when nothing verifies
    while options.linear_fallback and not done(margins) and len(cuts) > 1:
        best: tuple[float, list[tuple[int, int]], list[ModuleClaim], np.ndarray] | None = None
        for i in range(len(cuts) - 1):
            cand = cuts[:i] + [(cuts[i][0], cuts[i + 1][1])] + cuts[i + 2:]
            res = composer.run(cand)
            if res is None:
                break
            worst = float(res[1].min())
            if best is None or worst > best[0]:
                best = (worst, cand, res[0], res[1])
        if best is None:
            break
        _, cuts, claims, margins = best
        if best[0] > best_seen[0]:
            best_seen = best
    if not done(margins):
        _, cuts, claims, margins = best_seen
    linear = sorted(first_cuts - {e for _, e in cuts[:-1]})
    if options.linear_fallback:
        figures["linear"] = _figures(claims, margins, ref, time.monotonic() - start)
        figures["linear"]["merged"] = linear
    figures["modules_bounded"] = composer.bounded
    return ModularResult(done(margins), claims, margins, cuts, linear, figures)


def modular_proof(chain: LinearChain, case: Case, case_index: int, deadline: float, threshold: float,
                  policy: Policy | None = None) -> Any:
    """For the check pipeline: a verified :class:`verify.refine.CaseOutcome` whose proof is the
    case's ``modules`` proof, or None when composition does not verify the case in time.

    ``chain`` must be the model's own chain (not compressed): module claims name its blocks.
    """
    if not case.unsafe or any(p.n_rows == 0 for p in case.unsafe) or time.monotonic() >= deadline:
        return None
    options = ComposeOptions(policy=policy or Policy(), deadline=deadline, threshold=threshold)
    try:
        result = prove_modular(chain, case, options)
    except BackendFailed:
        return None
    if not result.verified:
        return None
    stats = {"modules": len(result.claims), "modules_bounded": result.figures.get("modules_bounded", 0)}
    return CaseOutcome("verified", "modules", result.min_margin,
                       modules_proof(case_index, result.claims, result.linear), stats=stats)
