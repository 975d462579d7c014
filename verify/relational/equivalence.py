"""Two-model equivalence: ``||f(x) - g(x)||_inf <= delta`` on a region.

When ``g`` is ``f`` with other weights (a retrained, pruned or quantised copy: the same
graph), the difference is bounded directly (:mod:`verify.bounds.difference`) over sub-boxes
of the region (:mod:`verify.relational.boxes`), and a pair search on ``|f - g|`` looks for
an input where they differ by more than ``delta``; the certified delta is the largest
bound over the leaf boxes.  Otherwise the property goes through a product network: the
product (:func:`verify.ir.product.difference`) computes ``f(x)_O - g(x)_O`` on one
input; the property "some ``|d_k| > delta``" is an ordinary unsafe set over its outputs,
so the product goes through the IR pipeline like any network (:func:`verify.check.check`:
bounds, branch and bound, counterexample search).  A counterexample of the product is
replayed on the two original models (onnxruntime for ONNX files) before it is reported;
one that does not replay leaves the answer unknown.  The certified delta is the largest
upper bound of ``|f - g|`` the proof used: ``delta`` minus its smallest margin.
Certificates of product proofs are not written yet (issue 19): the result says so.
"""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np
import torch

from verify.bounds.dag import DagBounder
from verify.bounds.difference import difference_bounds, same_structure
from verify.check import FALSIFIED, UNKNOWN, VERIFIED, CheckOptions, CheckResult, check
from verify.errors import SpecError
from verify.ir.module import IRModule
from verify.ir.product import difference
from verify.model.network import Model
from verify.relational.boxes import BoxTree, answer, prove_on_boxes
from verify.relational.pairs import PairCounterexample, PairSearch, judge_pair, region_float32, search_pairs
from verify.spec.property import Case, Polytope, Property
from verify.spec.templates import Equivalent


def product_model(f: Model, g: Model, outputs: list[int]) -> Model:
    """The model of ``f(x)_O - g(x)_O`` (a torch-kind model of the product IR graph)."""
    if f.n_inputs != g.n_inputs or f.n_outputs != g.n_outputs:
        raise SpecError(f"equivalent: the models differ in size: {f.name} has {f.n_inputs} inputs and "
                        f"{f.n_outputs} outputs, {g.name} {g.n_inputs} and {g.n_outputs}")
    assert f.ir is not None and g.ir is not None
    graph = difference(f.ir, g.ir, outputs)
    return Model(IRModule(graph), f.input_shape, f.n_inputs, len(outputs), "torch", ir=graph)


def difference_property(template: Equivalent, n: int) -> Property:
    """Unsafe: some ``d_k > delta`` or ``d_k < -delta`` (``n`` differences)."""
    polys = []
    for k in range(n):
        for sign in (-1, 1):  # -d_k < -delta  (d_k > delta);  d_k < -delta
            row = [Fraction(0)] * n
            row[k] = Fraction(sign)
            polys.append(Polytope((tuple(row),), (-Fraction(template.delta),), (True,)))
    return Property((Case(template.region, tuple(polys)),), template.region.n, n, name="equivalent")


def root_delta(model: Model, template: Equivalent) -> float:
    """The largest upper bound of ``|f - g|`` over the region from one CROWN bound of the product."""
    assert model.ir is not None
    n = model.n_outputs
    lo = torch.as_tensor(template.region.lower[None].astype(np.float64))
    hi = torch.as_tensor(template.region.upper[None].astype(np.float64))
    C = torch.cat([torch.eye(n), -torch.eye(n)]).double()
    lower = DagBounder(model.ir).bound(lo, hi, C, method="crown").lower.detach().numpy()[0]
    return float(max(np.max(-lower[:n]), np.max(-lower[n:])))


#: Inputs of at most this many dimensions get their region split (differential bounds).
SPLIT_MAX_DIMS = 16
#: What a box's bound must clear delta by (relative), unless it is exactly 0 (see verify.relational.derivative).
SLACK = 1e-9


def check_equivalent(f: Model, g: Model, template: Equivalent, options: CheckOptions
                     ) -> tuple[CheckResult, BoxTree | None]:
    """Decide ``template`` for the models ``f`` and ``g`` (see the module docstring); with the split tree of a
    verified differential proof (its certificate), else None."""
    outputs = template.outputs(f.n_outputs)
    if f.n_inputs != g.n_inputs or f.n_outputs != g.n_outputs:
        raise SpecError(f"equivalent: the models differ in size: {f.name} has {f.n_inputs} inputs and "
                        f"{f.n_outputs} outputs, {g.name} {g.n_inputs} and {g.n_outputs}")
    assert f.ir is not None and g.ir is not None
    if same_structure(f.ir, g.ir) is None:
        return _differential(f, g, template, options, outputs)
    prod = product_model(f, g, outputs)
    prop = difference_property(template, len(outputs))
    inner = CheckOptions(timeout=options.timeout, methods=options.methods, falsify=options.falsify,
                         refine=options.refine, compress=options.compress, modular=options.modular, recheck=False,
                         seed=options.seed, alpha_iterations=options.alpha_iterations, progress=options.progress)
    result = check(prod, prop, inner)
    result.details["root_certified_delta"] = root_delta(prod, template)
    result.certificate = None
    result.details["certificate"] = "not written for two-model properties yet (issue 19)"
    if result.verdict == VERIFIED and result.margin is not None:
        result.details["certified_delta"] = template.delta - result.margin
    if result.verdict == FALSIFIED and result.counterexample is not None:
        pair = _replayed(f, g, template, outputs, result.counterexample.x)
        result.counterexample = None
        if pair is None:
            result.verdict, result.reason = UNKNOWN, "the product's counterexample does not replay on the two models"
        else:
            result.details["pair"] = pair.to_json()
            result.details["pair_lines"] = pair.lines()
    return result, None


def _replayed(f: Model, g: Model, template: Equivalent, outputs: list[int], x: np.ndarray
              ) -> PairCounterexample | None:
    judge = _judge(template, outputs)
    x32 = np.asarray(x, dtype=np.float32).reshape(-1)
    pair = judge_pair(judge, (f, g), template.region, x32, x32, "product counterexample")
    return pair


def _judge(template: Equivalent, outputs: list[int]):  # noqa: ANN202
    delta = Fraction(template.delta)

    def judge(x: np.ndarray, xp: np.ndarray, y: np.ndarray, yp: np.ndarray) -> str | None:
        for o in outputs:
            gap = abs(Fraction(float(y[o])) - Fraction(float(yp[o])))
            if gap > delta:
                return f"|f(x)_{o} - g(x)_{o}| = {float(gap):.9g} > delta {template.delta:.9g}"
        return None

    return judge


def _differential(f: Model, g: Model, template: Equivalent, options: CheckOptions, outputs: list[int]
                  ) -> tuple[CheckResult, BoxTree | None]:
    start = time.monotonic()
    deadline = start + options.timeout
    assert f.ir is not None and g.ir is not None
    bounder = DagBounder(g.ir)
    picked = np.asarray(outputs)

    def bound(lo: torch.Tensor, hi: torch.Tensor) -> list[float]:
        dl, du = (t.numpy() for t in difference_bounds(f.ir, g.ir, lo, hi, bounder))
        return [float(max(du[k, picked].max(), -dl[k, picked].min())) for k in range(lo.shape[0])]

    lo32, hi32 = region_float32(template.region)
    judge = _judge(template, outputs)
    search = PairSearch(lo32.astype(np.float64), hi32.astype(np.float64), lambda z: (z, z),
                        lambda x, xp, y, yp: (y[:, outputs] - yp[:, outputs]).abs().max(dim=1).values - template.delta,
                        judge)
    nets = (f.net64(), g.net64())

    def find(until: float) -> PairCounterexample | None:
        return search_pairs(search, nets, (f, g), template.region, until, options.seed)

    biggest = max(v.size for v in f.ir.values.values())
    cap = int(max(1, min(256, 2e7 // max(1, biggest))))
    split = list(range(f.n_inputs)) if f.n_inputs <= SPLIT_MAX_DIMS else []
    slack = SLACK * (1 + template.delta)
    out = prove_on_boxes(template.region.lower, template.region.upper, bound,
                         lambda v: v == 0.0 or v <= template.delta - slack,
                         lambda v: v - template.delta, split, cap, deadline,
                         find if options.falsify else None, options.progress, "difference bounds")
    certified = max(out.values) if out.values else float("nan")
    details: dict[str, object] = {"refinement": out.stats, "certified_delta": certified}
    margin: float | None = template.delta - certified
    verdict, method, reason = answer(out, "difference-bounds", deadline,
                                     "bounds too loose (no input found where they differ)", details)
    if verdict == FALSIFIED:
        margin = None
    return CheckResult(verdict, time.monotonic() - start, method, margin, None, reason,
                       model=str(f.path or f.name), details=details), out.tree if out.status == "verified" else None
