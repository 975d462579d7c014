"""Counterexamples of relational properties: pairs of inputs (or one input and two models),
found by a gradient search on the IR and replayed on the original model(s).

A pair must violate the property on the original model(s) and, on the same float32
inputs, in float64 arithmetic too (the violation is not float32 rounding).

The search runs projected Adam steps on a joint variable ``z`` in a box (a template
says how ``z`` gives the two inputs and what "violated" means), from random starts and
the region's centre; every few steps the most violating candidates are rounded to
float32 and replayed on the original model(s) (onnxruntime for ONNX files): a pair is
reported only when the replayed outputs violate the property exactly (compared as
rationals) and both inputs lie in the region.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from verify.falsify.base import float32_box
from verify.model.network import Model
from verify.spec.property import Box, Case


@dataclass
class PairCounterexample:
    """Two inputs and the original model(s)' outputs on them that violate a relational property."""

    x: np.ndarray  # float32, flat
    x_prime: np.ndarray
    y: np.ndarray  # outputs of the original model on x
    y_prime: np.ndarray  # on x_prime (for two models: the second model on x)
    method: str
    violation: str  # the inequality the pair breaks, with its numbers
    raw: tuple[np.ndarray, np.ndarray] | None = None  # the pair as found, before shrinking

    def to_json(self) -> dict[str, Any]:
        out = {"x": [float(v) for v in self.x], "x_prime": [float(v) for v in self.x_prime],
               "y": [float(v) for v in self.y], "y_prime": [float(v) for v in self.y_prime],
               "method": self.method, "violation": self.violation}
        if self.raw is not None:
            out["raw_x"], out["raw_x_prime"] = [float(v) for v in self.raw[0]], [float(v) for v in self.raw[1]]
        return out

    def lines(self) -> list[str]:
        def fmt(v: np.ndarray) -> str:
            return "[" + ", ".join(f"{float(a):.9g}" for a in v) + "]"

        return [f"x  = {fmt(self.x)}", f"x' = {fmt(self.x_prime)}", f"y  = {fmt(self.y)}",
                f"y' = {fmt(self.y_prime)}", f"violation: {self.violation}"]


#: ``violated(x, x', y, y')`` on float32 inputs and the original outputs: the violation's text, or None.
Judge = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], str | None]


@dataclass
class PairSearch:
    """What a template gives the search: the joint box of ``z``, how ``z`` gives ``(x, x')``
    (torch, differentiable), the violation to maximise (``> 0`` looks violating) and the exact judge."""

    lower: np.ndarray
    upper: np.ndarray
    pair: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    objective: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    judge: Judge


def region_float32(region: Box) -> tuple[np.ndarray, np.ndarray]:
    """The float32 box of points inside the real region (rounded inward)."""
    return float32_box(Case(region, ()))


def in_region(region: Box, x: np.ndarray) -> bool:
    return region.contains(np.asarray(x, dtype=np.float32).astype(np.float64))


def exact(v: float) -> Fraction:
    return Fraction(float(v))


def search_pairs(search: PairSearch, nets: tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor],
                 torch.Tensor]], models: tuple[Model, Model], region: Box, deadline: float, seed: int = 0,
                 starts: int = 64, steps: int = 60) -> PairCounterexample | None:
    """Projected Adam on ``search.objective`` from ``starts`` points until ``deadline``; the first pair
    the judge confirms on the original models (``models[0]`` on ``x``, ``models[1]`` on ``x'``; ``nets``:
    their float64 forwards, in that order)."""
    gen = torch.Generator().manual_seed(seed)
    lo = torch.as_tensor(search.lower, dtype=torch.float64)
    hi = torch.as_tensor(search.upper, dtype=torch.float64)
    width = (hi - lo).clamp(min=0)
    rounds = 0
    while time.monotonic() < deadline:
        z = lo + torch.rand(starts, lo.numel(), generator=gen, dtype=torch.float64) * width
        if rounds == 0:
            z[0] = (lo + hi) / 2
        z.requires_grad_(True)
        opt = torch.optim.Adam([z], lr=float(width.max().clamp(min=1e-6)) * 0.05)
        for step in range(steps):
            x, xp = search.pair(z)
            score = search.objective(x, xp, nets[0](x), nets[1](xp))
            if step % 15 == 14 or step == steps - 1:
                found = _confirm(search, z.detach(), score.detach(), models, region, step)
                if found is not None:
                    return found
                if time.monotonic() >= deadline:
                    return None
            opt.zero_grad()
            (-score.sum()).backward()
            opt.step()
            with torch.no_grad():
                z.copy_(torch.maximum(torch.minimum(z, hi), lo))
        rounds += 1
    return None


def _confirm(search: PairSearch, z: torch.Tensor, score: torch.Tensor, models: tuple[Model, Model], region: Box,
             step: int, best: int = 4) -> PairCounterexample | None:
    order = torch.argsort(score, descending=True)[:best]
    lo32, hi32 = region_float32(region)
    for k in order.tolist():
        if not float(score[k]) > -1e-9:
            break
        with torch.no_grad():
            x, xp = search.pair(z[k:k + 1])
        x32 = np.clip(x.numpy().reshape(-1).astype(np.float32), lo32, hi32)
        xp32 = np.clip(xp.numpy().reshape(-1).astype(np.float32), lo32, hi32)
        pair = judge_pair(search.judge, models, region, x32, xp32, f"pair search (Adam, step {step + 1})")
        if pair is not None:
            return shrink_pair(pair, search.judge, models, region, time.monotonic() + SHRINK_SECONDS)
    return None


#: Seconds a found pair is shrunk for.
SHRINK_SECONDS = 1.0
#: Fractions of a shared input's offset from the region's centre kept, tried in turn.
PULLS = (0.0, 0.25, 0.5, 0.75)


def shrink_pair(pair: PairCounterexample, judge: Judge, models: tuple[Model, Model], region: Box,
                deadline: float) -> PairCounterexample:
    """A simpler pair that still violates (replayed like every pair): the inputs the two points share
    moved towards the region's centre, one at a time (to it, then a quarter, half or three quarters of the
    way back), greedily until nothing moves or the deadline passes.  The inputs where the pair differs
    stay as found.  ``raw`` keeps the pair as found."""
    lo32, hi32 = region_float32(region)
    centre = np.clip(((lo32.astype(np.float64) + hi32) / 2).astype(np.float32), lo32, hi32)
    best = pair
    shared = [j for j in range(pair.x.size) if pair.x[j] == pair.x_prime[j]]
    improved = True
    while improved and time.monotonic() < deadline:
        improved = False
        for j in shared:
            if best.x[j] == centre[j] or time.monotonic() >= deadline:
                continue
            for keep in PULLS:
                v = np.float32(centre[j] + keep * (float(best.x[j]) - float(centre[j])))
                x, xp = best.x.copy(), best.x_prime.copy()
                x[j] = xp[j] = v
                found = judge_pair(judge, models, region, x, xp, best.method)
                if found is not None:
                    best, improved = found, True
                    break
    if best is not pair:
        best.raw = (pair.x, pair.x_prime)
    return best


def judge_pair(judge: Judge, models: tuple[Model, Model], region: Box, x32: np.ndarray, xp32: np.ndarray,
               method: str) -> PairCounterexample | None:
    """Replay a float32 pair on the original models; the counterexample when the judge says it violates
    there and also in float64 arithmetic on the same inputs (so that a pair whose violation is only the
    original's float32 rounding, e.g. of two nearly equal outputs of a monotone model, is not reported)."""
    if not (in_region(region, x32) and in_region(region, xp32)):
        return None
    y = models[0].evaluate(x32[None])[0]
    yp = models[1].evaluate(xp32[None])[0]
    text = judge(x32, xp32, y, yp)
    if text is None:
        return None
    y64 = models[0].forward64(x32.astype(np.float64)[None]).numpy()[0]
    yp64 = models[1].forward64(xp32.astype(np.float64)[None]).numpy()[0]
    if judge(x32, xp32, y64, yp64) is None:
        return None
    return PairCounterexample(x32, xp32, y, yp, method, text)
