"""No candidate leaves a falsifier unless the original model confirmed it (replay)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from verify.falsify.base import Budget
from verify.falsify.combined import CombinedFalsifier
from verify.falsify.database import WitnessStore, open_database
from verify.falsify.hypothesis_search import HypothesisSearch
from verify.falsify.pgd import PGDAttack
from verify.model.network import Model
from verify.spec import Box, make_property, output_between
from verify.spec.vnnlib import parse_vnnlib


class Liar(nn.Module):
    """Claims y0 = -5 everywhere (the real network, |x0|, never goes below 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[:, :1] * 0 - 5.0, x[:, :1]], dim=1)


ALL = [HypothesisSearch(), PGDAttack(), CombinedFalsifier(database=None)]
IDS = ["hypothesis", "pgd", "combined"]


@pytest.mark.parametrize("falsifier", ALL, ids=IDS)
def test_a_lying_torch_network_yields_no_witness(falsifier, abs_model: Model) -> None:  # noqa: ANN001
    # unsafe: y0 <= -1.  The converted network says every input is unsafe; onnxruntime says none is.
    prop = make_property(Box.from_bounds([-1], [1]), output_between(0, -1.0, None, n_outputs=2))
    abs_model.net = Liar()
    assert falsifier.search(abs_model, prop, Budget.seconds(0.7), seed=0) is None
    assert falsifier.stats.rejected > 0 and falsifier.stats.rejected == falsifier.stats.candidates


@pytest.mark.parametrize("falsifier", ALL, ids=IDS)
def test_a_strict_boundary_is_not_a_counterexample(falsifier, abs_model: Model) -> None:  # noqa: ANN001
    # unsafe: y0 < 0 (strict).  At x0 = 0, y0 = 0: margin 0, a candidate, but not a counterexample.
    prop = parse_vnnlib("""(declare-const X_0 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (>= X_0 -1))
(assert (<= X_0 1))
(assert (< Y_0 0))
""", "strict")
    assert falsifier.search(abs_model, prop, Budget.seconds(0.7), seed=0) is None
    assert falsifier.stats.candidates > 0 and falsifier.stats.rejected == falsifier.stats.candidates


def test_a_poisoned_database_entry_is_dropped(abs_model: Model, tmp_path: Path) -> None:
    prop = make_property(Box.from_bounds([-1], [1]), output_between(0, None, 0.9, n_outputs=2))
    db = open_database(tmp_path / "examples")
    store = WitnessStore(db)
    store.save(abs_model, prop, np.array([0.1], dtype=np.float32), "pgd")  # |0.1| <= 0.9: not a witness
    store.save(abs_model, prop, np.array([7.0], dtype=np.float32), "pgd")  # outside the box
    cex = CombinedFalsifier(database=db).search(abs_model, prop, Budget.seconds(5), seed=0)
    assert cex is not None and not cex.from_database and abs(float(cex.x[0])) > 0.9
    stored = [float(x[0]) for x, _ in store.load(abs_model, prop)]
    assert stored == [float(cex.x[0])]  # the bad entries are gone, the new witness is kept


def test_a_box_without_float32_points_is_not_searched(abs_model: Model) -> None:
    prop = make_property(Box.from_bounds(["0.1"], ["0.1"]), output_between(0, None, -1.0, n_outputs=2))
    for falsifier in ALL:
        assert falsifier.search(abs_model, prop, Budget.seconds(0.5)) is None
        assert falsifier.stats.candidates == 0


def test_a_corner_rounded_out_of_the_box_is_moved_back_in(abs_model: Model) -> None:
    # y0 = |x0| on [-2, 2.9], unsafe y0 >= 2.8999: the bound's corner 2.9 becomes 2.9000001
    # in float32, just outside the box; plain replay rejects it, the in-box replay keeps it
    from verify.falsify.base import replay, replay_in_box

    prop = make_property(Box.from_bounds([-2.0], [2.9]), output_between(0, None, 2.8999, n_outputs=2))
    corner = np.array([2.9])
    assert float(np.float32(2.9)) > 2.9 and replay(abs_model, prop, corner, "bab", 0) is None
    cex = replay_in_box(abs_model, prop, corner, "bab", 0)
    assert cex is not None and 2.8999 <= float(cex.x[0]) <= 2.9 and cex.y[0] >= 2.8999
