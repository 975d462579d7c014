"""Monotonicity, fairness and local Lipschitz bounds, decided with bounds on the derivative.

Each of these compares two copies of one network on a pair of inputs in the region.  A
product network (the two copies side by side) cannot prove them where the pair
coincides (both copies' relaxations leave a gap where the difference is exactly 0), so
they are proved with interval bounds on the Jacobian (:mod:`verify.bounds.jacobian`)
over sub-boxes of the region; the region is convex, so every segment between a pair
lies in it, and on every sub-box:

* ``monotone``: ``d y_o / d x_i >= 0`` (``<= 0`` when decreasing) proves the property for
  every pair of the region (the derivative along the segment has that sign everywhere);
* ``fair``: ``sum_{j in S} max |d y_o / d x_j| * width_j <= tolerance``, where ``width_j``
  is the region's width in the sensitive feature ``j``; sub-boxes are split only along
  the other features, so each keeps the whole sensitive range (every pair lies in one);
* ``lipschitz``: ``max_o sum_j max |d y_o / d x_j| <= L`` (the inf-norm's dual is the
  1-norm of the gradient row); the certified constant is the largest over the sub-boxes.

Sub-boxes that do not close are split in half along their relatively widest dimension
(for inputs of up to :data:`SPLIT_MAX_DIMS` dimensions; above it only the region's own
bound is used), the worst first, until the deadline.  When the region's own bound does
not close it, a pair search (:mod:`verify.relational.pairs`) runs briefly, and again with
the time left when splitting ends with boxes open.

Certificates for these proofs are not written yet (issue 19): the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from verify.bounds.dag import DagBounder
from verify.bounds.jacobian import jacobian_bounds
from verify.ir.graph import Graph
from verify.model.network import Model
from verify.relational.boxes import BoxTree, prove_on_boxes
from verify.relational.pairs import PairCounterexample, PairSearch, exact, region_float32, search_pairs
from verify.spec.templates import Fair, Lipschitz, Monotone

#: Inputs of at most this many dimensions get their region split; larger ones the region's bound only.
SPLIT_MAX_DIMS = 16
#: What a box's bound must clear its template's limit by (relative to the limit), unless it is exactly 0.
SLACK = 1e-9
#: Most elements of the tangent tensors one bounding call builds (boxes x features x largest value).
CALL_ELEMENTS = 2e7

Template = Monotone | Fair | Lipschitz


@dataclass
class DerivativeOutcome:
    status: str  # verified, falsified, open
    certified: float  # monotone: the smallest lower bound of the derivative (its sign); fair: the
    #                   largest bound of the change; lipschitz: the certified constant
    pair: PairCounterexample | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    tree: BoxTree | None = None  # the proof, when verified


class _Rule:
    """What closes a sub-box for one template, and how it is split."""

    def __init__(self, template: Template, graph: Graph) -> None:
        self.t = template
        n = graph.n_inputs
        region = template.region
        if isinstance(template, Monotone):
            self.features, self.outputs = [template.feature], [template.output]
            self.split_dims = list(range(n))
        elif isinstance(template, Fair):
            self.features, self.outputs = list(template.sensitive), [template.output]
            self.split_dims = [j for j in range(n) if j not in template.sensitive]
            self.widths = np.array([region.upper[j] - region.lower[j] for j in template.sensitive])
        else:
            self.features = list(range(n))
            self.outputs = template.outputs(graph.n_outputs)
            self.split_dims = list(range(n))

    def value(self, jl: np.ndarray, ju: np.ndarray) -> float:
        """The quantity the template bounds on one sub-box (``jl``, ``ju``: ``[n_outputs, features]``)."""
        if isinstance(self.t, Monotone):
            o = self.t.output
            return float(jl[o, 0]) if self.t.increasing else float(-ju[o, 0])
        mag = np.maximum(np.abs(jl), np.abs(ju))[self.outputs]
        if isinstance(self.t, Fair):
            return float((mag[0] * self.widths).sum() * (1 + 1e-12))
        return float(mag.sum(axis=1).max() * (1 + 1e-12))

    def closes(self, value: float) -> bool:
        """Whether the float64 value proves the box, with :data:`SLACK` to spare for the checker's
        rigorous recomputation (an exact 0, from products of exact zeros, needs none: it recomputes 0)."""
        if isinstance(self.t, Monotone):
            return value == 0.0 or value > SLACK
        if isinstance(self.t, Fair):
            return value == 0.0 or value <= self.t.tolerance - SLACK * (1 + self.t.tolerance)
        return value <= self.t.L - SLACK * (1 + self.t.L)

    def gap(self, value: float) -> float:
        """How far from closing (larger: worse), for the order of the queue."""
        if isinstance(self.t, Monotone):
            return -value
        return value - (self.t.tolerance if isinstance(self.t, Fair) else self.t.L)


def pair_search(template: Template, model: Model) -> PairSearch:
    """The joint variable, pairing, objective and judge of a template's counterexample search."""
    region = template.region
    lo32, hi32 = region_float32(region)
    lo, hi = lo32.astype(np.float64), hi32.astype(np.float64)
    n = model.n_inputs
    if isinstance(template, Monotone):
        i, o, up = template.feature, template.output, template.increasing

        def pair(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x, s = z[:, :n], z[:, n:n + 1]
            a, b = torch.minimum(x[:, i:i + 1], s), torch.maximum(x[:, i:i + 1], s)
            low = torch.cat([x[:, :i], a, x[:, i + 1:]], dim=1)
            high = torch.cat([x[:, :i], b, x[:, i + 1:]], dim=1)
            return low, high

        def objective(x: torch.Tensor, xp: torch.Tensor, y: torch.Tensor, yp: torch.Tensor) -> torch.Tensor:
            return (y[:, o] - yp[:, o]) if up else (yp[:, o] - y[:, o])

        def judge(x: np.ndarray, xp: np.ndarray, y: np.ndarray, yp: np.ndarray) -> str | None:
            rest = [j for j in range(n) if j != i]
            if not exact(xp[i]) > exact(x[i]) or not np.array_equal(x[rest], xp[rest]):
                return None
            bad = exact(yp[o]) < exact(y[o]) if up else exact(yp[o]) > exact(y[o])
            if not bad:
                return None
            rel = "<" if up else ">"
            return (f"x'_{i} = {float(xp[i]):.9g} > x_{i} = {float(x[i]):.9g} (the rest equal) but y'_{o} = "
                    f"{float(yp[o]):.9g} {rel} y_{o} = {float(y[o]):.9g}")

        return PairSearch(np.concatenate([lo, lo[i:i + 1]]), np.concatenate([hi, hi[i:i + 1]]), pair, objective,
                          judge)
    if isinstance(template, Fair):
        S, o, tol = list(template.sensitive), template.output, template.tolerance
        index = torch.as_tensor(S, dtype=torch.long)

        def pair(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = z[:, :n]
            xp = x.clone()
            xp[:, index] = z[:, n:]
            return x, xp

        def objective(x: torch.Tensor, xp: torch.Tensor, y: torch.Tensor, yp: torch.Tensor) -> torch.Tensor:
            return (y[:, o] - yp[:, o]).abs() - tol

        def judge(x: np.ndarray, xp: np.ndarray, y: np.ndarray, yp: np.ndarray) -> str | None:
            others = [j for j in range(n) if j not in S]
            if not np.array_equal(x[others], xp[others]):
                return None
            change = abs(exact(y[o]) - exact(yp[o]))
            if not change > exact(tol):
                return None
            return (f"only the sensitive features {S} differ but |y_{o} - y'_{o}| = {float(change):.9g} > "
                    f"tolerance {tol:.9g}")

        return PairSearch(np.concatenate([lo, lo[S]]), np.concatenate([hi, hi[S]]), pair, objective, judge)
    L, outs = template.L, template.outputs(model.n_outputs)

    def pair(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return z[:, :n], z[:, n:]

    def objective(x: torch.Tensor, xp: torch.Tensor, y: torch.Tensor, yp: torch.Tensor) -> torch.Tensor:
        dist = (x - xp).abs().max(dim=1).values
        return (y[:, outs] - yp[:, outs]).abs().max(dim=1).values - L * dist

    def judge(x: np.ndarray, xp: np.ndarray, y: np.ndarray, yp: np.ndarray) -> str | None:
        dist = max(abs(exact(a) - exact(b)) for a, b in zip(x, xp))
        for o in outs:
            change = abs(exact(y[o]) - exact(yp[o]))
            if change > exact(L) * dist:
                ratio = float(change / dist) if dist else float("inf")
                return (f"|y_{o}(x) - y_{o}(x')| = {float(change):.9g} > L * ||x - x'||_inf = {L:.9g} * "
                        f"{float(dist):.9g} (ratio {ratio:.9g})")
        return None

    return PairSearch(np.concatenate([lo, lo]), np.concatenate([hi, hi]), pair, objective, judge)


def prove_derivative(template: Template, model: Model, deadline: float, seed: int = 0, falsify: bool = True,
                     progress: Any = None) -> DerivativeOutcome:
    """Verify ``template`` on ``model`` (see the module docstring), or find a replayed pair."""
    graph = model.ir
    assert graph is not None
    rule = _Rule(template, graph)
    bounder = DagBounder(graph)
    eye = torch.eye(graph.n_outputs, dtype=torch.float64)
    search = pair_search(template, model) if falsify else None
    net64 = model.net64()

    def bound(lo: torch.Tensor, hi: torch.Tensor) -> list[float]:
        pre = bounder.bound(lo, hi, eye, method="crown").intermediate or {}
        jl, ju = (t.numpy() for t in jacobian_bounds(graph, lo, hi, rule.features, pre))
        return [rule.value(jl[k], ju[k]) for k in range(lo.shape[0])]

    def find(until: float) -> PairCounterexample | None:
        assert search is not None
        return search_pairs(search, (net64, net64), (model, model), template.region, until, seed)

    biggest = max(v.size for v in graph.values.values())
    cap = int(max(1, min(256, CALL_ELEMENTS // max(1, len(rule.features) * biggest))))
    split_dims = rule.split_dims if graph.n_inputs <= SPLIT_MAX_DIMS else []
    out = prove_on_boxes(template.region.lower, template.region.upper, bound, rule.closes, rule.gap, split_dims, cap,
                         deadline, find if search is not None else None, progress, "derivative bounds")
    certified = _certified(template, out.values)
    return DerivativeOutcome(out.status, certified, out.pair, out.stats, out.tree)


def _certified(template: Template, values: list[float]) -> float:
    """The bound the leaf boxes certify for the region (monotone: their smallest derivative bound; fair:
    their largest change; lipschitz: their largest constant)."""
    if not values:
        return float("nan")
    if isinstance(template, Monotone):
        return min(values)
    return max(values)
