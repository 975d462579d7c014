"""Small instances for module composition: an MLP and a property ``y0 < bound`` placed just above
what a given composition can prove, so that the proof's margins are tight."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests import nets
from verify.compose import ComposeOptions, ModularResult, Policy, prove_modular
from verify.compose.compose import load_chain
from verify.graph.chain import LinearChain
from verify.spec import load_spec

HEAD = """(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const X_2 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (>= X_0 -1)) (assert (<= X_0 1))
(assert (>= X_1 -1)) (assert (<= X_1 1))
(assert (>= X_2 -1)) (assert (<= X_2 1))
"""


@dataclass
class Instance:
    model_path: Path
    spec_path: Path
    chain: LinearChain
    prop: Any
    result: ModularResult
    bound: float


def write_spec(path: Path, bound: float) -> Path:
    path.write_text(HEAD + f"(assert (>= Y_0 {bound:.6f}))\n")
    return path


def upper_bound_of_y0(chain: LinearChain, tmp: Path, options: ComposeOptions) -> float:
    """The upper bound of y0 that a composition proves on the box (from a far-away property)."""
    far = 1000.0
    prop = load_spec(write_spec(tmp / "far.vnnlib", far))
    res = prove_modular(chain, prop.cases[0], options)
    assert res.verified
    return far - res.min_margin


def make_instance(tmp: Path, sizes: list[int], seed: int, gap: float = 0.01,
                  partition: list[tuple[int, int]] | None = None, policy: Policy | None = None,
                  linear_fallback: bool = False, bound: float | None = None) -> Instance:
    """An MLP with ``sizes`` (3 inputs, 2 outputs) and ``y0 >= bound`` unsafe, ``bound`` ``gap``
    above the upper bound of y0 that the composition proves (unless given)."""
    model_path = nets.mlp(tmp / "net.onnx", sizes, seed=seed)
    chain = load_chain(model_path)

    def options() -> ComposeOptions:
        return ComposeOptions(policy=policy or Policy(), partition=partition, linear_fallback=linear_fallback)

    if bound is None:
        bound = upper_bound_of_y0(chain, tmp, options()) + gap
    spec_path = write_spec(tmp / "prop.vnnlib", bound)
    prop = load_spec(spec_path)
    result = prove_modular(chain, prop.cases[0], options())
    return Instance(model_path, spec_path, chain, prop, result, float(np.float64(f"{bound:.6f}")))
