"""ReLU-split branch and bound: the open-domain pool and the search from bound corners."""

from __future__ import annotations

import time

import numpy as np
import torch

from verify.refine.relu_split import DomainPool, _descend_from_corners


def _pool() -> DomainPool:
    values = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    return DomainPool([values], torch.tensor([-1.0, -3.0, -2.0]), torch.tensor([10, 11, 12]))


def test_take_removes_the_lowest_bounds_with_their_fields() -> None:
    pool = _pool()
    lb, ids, (values,) = pool.take(2)
    assert sorted(ids.tolist()) == [11, 12]
    assert sorted(lb.tolist()) == [-3.0, -2.0]
    assert {tuple(v) for v in values.tolist()} == {(2.0, 3.0), (4.0, 5.0)}
    assert pool.size == 1 and pool.worst() == -1.0


def test_add_reuses_free_slots_and_grows_when_full() -> None:
    pool = _pool()
    pool.take(2)
    pool.add([torch.tensor([[6.0, 7.0]] * 5)], torch.tensor([-5.0, -4.0, 0.5, 0.25, -0.5]),
             torch.tensor([20, 21, 22, 23, 24]))
    assert pool.size == 6 and pool.worst() == -5.0
    lb, ids, (values,) = pool.take(6)
    assert sorted(ids.tolist()) == [10, 20, 21, 22, 23, 24]
    assert lb.tolist() == sorted(lb.tolist())  # the lowest first
    assert values.shape == (6, 2) and pool.size == 0


def test_take_best_removes_the_highest_bounds() -> None:
    pool = _pool()
    lb, ids, (values,) = pool.take(1, best=True)
    assert ids.tolist() == [10] and lb.tolist() == [-1.0] and values.tolist() == [[0.0, 1.0]]
    assert pool.size == 2 and pool.worst() == -3.0
    lb, ids, _ = pool.take(2, best=True)
    assert sorted(ids.tolist()) == [11, 12] and pool.size == 0


def _tent() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """g(x) = 1.5 - relu(x0 + x1) on [0, 1]^2: g <= 0 exactly where x0 + x1 >= 1.5."""
    Ws = [torch.tensor([[1.0, 1.0]], dtype=torch.float64), torch.tensor([[-1.0]], dtype=torch.float64)]
    bs = [torch.zeros(1, dtype=torch.float64), torch.tensor([1.5], dtype=torch.float64)]
    return Ws, bs


def test_descent_from_a_corner_reaches_the_unsafe_set() -> None:
    Ws, bs = _tent()
    lo, hi = torch.zeros(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64)
    lam = torch.tensor([[1.0, 1.0]], dtype=torch.float64)  # points at the safe corner (0, 0)
    x = _descend_from_corners(Ws, bs, lo, hi, lam, [torch.tensor([0])], None, 200, time.monotonic() + 60)
    assert x is not None and np.all((x >= 0) & (x <= 1)) and x.sum() >= 1.5
    bs[1] = torch.tensor([2.5], dtype=torch.float64)  # now g >= 0.5 everywhere: nothing to find
    assert _descend_from_corners(Ws, bs, lo, hi, lam, [torch.tensor([0])], None, 200, time.monotonic() + 60) is None


def test_lowest_names_the_worst_slots_and_leaves_them_in_the_pool() -> None:
    pool = _pool()
    pool.take(1, best=True)  # a free slot must never be named
    slots = pool.lowest(5)
    assert sorted(pool.ids[slots].tolist()) == [11, 12] and pool.size == 2
    assert pool.ids[pool.lowest(1)].tolist() == [pool.ids[slots[0]].item()]
    assert float(pool.lb[pool.lowest(1)][0]) == pool.worst()
