"""Input-split branch and bound: closed boxes really are safe, with and without alpha-CROWN."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from verify.refine.input_split import (
    InputSplitOptions,
    _best_cut,
    _cut_candidates,
    _halves,
    bound_boxes,
    chain_eval,
    input_split_bab,
    polytope_bounds,
)


def _net(seed: int = 4) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """A random 3-16-16-1 chain whose output row is ``y0 - top`` (negative somewhere near 0)."""
    rng = np.random.default_rng(seed)
    sizes = [3, 16, 16, 1]
    Ws = [torch.as_tensor(rng.normal(0, 1 / np.sqrt(a), (b, a))) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [torch.as_tensor(rng.normal(0, 0.1, b)) for b in sizes[1:]]
    x = torch.as_tensor(rng.uniform(-1, 1, (20000, 3)))
    top = float(chain_eval(Ws, bs, x)[:, 0].max())
    bs[-1] = bs[-1] - (top + 0.05)  # unsafe: y0 - (top + 0.05) >= 0, written as -(...) <= 0
    return [*Ws[:-1], -Ws[-1]], [*bs[:-1], -bs[-1]]


def _boxes(tree, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = tree.size
    blo, bhi = np.repeat(lo[None], n, 0), np.repeat(hi[None], n, 0)
    for i in range(1, n):
        p, d, v = tree.parent[i], tree.dim[i], tree.value[i]
        blo[i], bhi[i] = blo[p], bhi[p]
        if tree.side[i] == 0:
            bhi[i, d] = v
        else:
            blo[i, d] = v
    return blo, bhi


@pytest.mark.parametrize(("alpha_iterations", "candidates"), [(0, 1), (2, 1), (0, 3), (2, 3)])
def test_every_closed_box_is_safe_on_samples(alpha_iterations: int, candidates: int) -> None:
    Ws, bs = _net()
    lo, hi = -np.ones(3), np.ones(3)
    res = input_split_bab(Ws, bs, [np.array([0])], lo, hi, time.monotonic() + 60,
                          InputSplitOptions(alpha_iterations=alpha_iterations, candidates=candidates))
    assert res.status == "verified"
    if alpha_iterations:
        assert res.alpha_tried > 0 and res.tree.alpha_closures, "alpha-CROWN should close some boxes here"
    else:
        assert not res.tree.alpha_closures
    blo, bhi = _boxes(res.tree, lo, hi)
    rng = np.random.default_rng(1)
    for node, _, margin in res.tree.closures:
        x = rng.uniform(blo[node], bhi[node], (200, 3))
        corners = np.array([[blo[node, j] if (c >> j) & 1 else bhi[node, j] for j in range(3)] for c in range(8)])
        g = chain_eval(Ws, bs, torch.as_tensor(np.vstack([x, corners])))[:, 0]
        assert float(g.min()) >= margin - 1e-9, f"node {node}: a point below the claimed margin {margin}"


def test_alpha_slopes_are_stored_for_the_polytope_rows_only_where_unstable() -> None:
    Ws, bs = _net()
    res = input_split_bab(Ws, bs, [np.array([0])], -np.ones(3), np.ones(3), time.monotonic() + 60)
    assert res.status == "verified" and res.tree.alpha_closures
    closed = {(n, p) for n, p, _ in res.tree.closures}
    for node, p, slopes in res.tree.alpha_closures:
        assert (node, p) in closed
        assert len(slopes) == len(Ws) - 1
        for (pos, vals), W in zip(slopes, Ws[:-1]):
            assert pos.dtype == np.int32 and np.all(np.diff(pos) > 0) and np.all(pos < W.shape[0])
            assert np.all((vals > 0) & (vals <= 1))


def test_a_point_from_the_mid_run_search_is_reported_as_the_search_s() -> None:
    Ws, bs = _net()
    asked: list[float] = []
    point = np.zeros(3)

    def search(limit: float) -> np.ndarray:
        asked.append(limit)
        return point

    res = input_split_bab(Ws, bs, [np.array([0])], -np.ones(3), np.ones(3), time.monotonic() + 60,
                          InputSplitOptions(search_at=0.0, search_seconds=4.0), search=search)
    assert res.status == "candidate" and res.by_search and res.candidate is point
    assert asked == [4.0]
    without = input_split_bab(Ws, bs, [np.array([0])], -np.ones(3), np.ones(3), time.monotonic() + 60)
    assert without.status == "verified" and not without.by_search


def test_candidates_start_with_the_given_dimension_and_follow_the_score() -> None:
    score = torch.tensor([[0.1, 0.5, 0.3, -1.0], [0.0, 0.2, -1.0, 0.9]])
    first = torch.tensor([3, 3])
    assert _cut_candidates(score, first, 3).tolist() == [[3, 1, 2], [3, 1, 3]]  # no second positive score
    assert _cut_candidates(score, first, 1).tolist() == [[3], [3]]


def test_the_cut_kept_has_the_least_unsafe_children() -> None:
    Ws, bs = _net()
    g = [torch.tensor([0])]
    rng = np.random.default_rng(3)
    centre = torch.as_tensor(rng.uniform(-0.8, 0.8, (6, 3)))
    lo, hi = centre - 0.2, centre + 0.2
    root, pre = bound_boxes(Ws, bs, lo, hi)
    open_p, lbp = torch.ones(6, 1, dtype=torch.bool), polytope_bounds(root.lb, g)
    cand = torch.tensor([[0, 1, 2]] * 3 + [[2, 0, 1]] * 3)
    dims, c_lo, c_hi, res, _ = _best_cut(Ws, bs, g, lo, hi, pre, open_p, lbp, cand, 1e-7)

    parent = [(l.repeat(2, 1), u.repeat(2, 1)) for l, u in pre]

    def children(d: torch.Tensor) -> torch.Tensor:
        return bound_boxes(Ws, bs, *_halves(lo, hi, d), parent)[0].lb

    def unsafety(d: torch.Tensor) -> torch.Tensor:  # per box: both children's worst bounds below 0, summed
        b = torch.maximum(polytope_bounds(children(d), g), lbp.repeat(2, 1))[:, 0]
        return torch.where(b > 1e-7, torch.zeros_like(b), b).clamp(max=0).view(2, -1).sum(dim=0)

    kept = unsafety(dims)
    for j in range(3):
        assert torch.all(kept >= unsafety(cand[:, j]) - 1e-12)
    e_lo, e_hi = _halves(lo, hi, dims)
    assert torch.equal(c_lo, e_lo) and torch.equal(c_hi, e_hi)
    assert torch.allclose(res.lb, children(dims))
    assert len(set(dims.tolist())) > 1, "these boxes should not all prefer one dimension"
