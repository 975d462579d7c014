"""verify.bounds.adam.Adam gives exactly what torch.optim.Adam gives (it replaces it only to
avoid torch's slow first import)."""

from __future__ import annotations

import pytest
import torch

from verify.bounds.adam import Adam


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_steps_are_bit_identical_to_torch(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(4, 5, generator=gen, dtype=dtype), torch.randn(3, generator=gen, dtype=dtype),
             torch.randn(2, 2, generator=gen, dtype=dtype)]
    ours = [t.clone().requires_grad_(True) for t in start]
    theirs = [t.clone().requires_grad_(True) for t in start]
    opt_ours = Adam([{"params": ours[:2], "lr": 0.1}, {"params": ours[2:], "lr": 0.3}])
    opt_theirs = torch.optim.Adam([{"params": theirs[:2], "lr": 0.1}, {"params": theirs[2:], "lr": 0.3}])
    for step in range(30):
        for params, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            # a non-quadratic loss; the last tensor gets no gradient every third step
            loss = (params[0].sin() * params[0]).sum() + params[1].pow(4).sum()
            if step % 3:
                loss = loss + (params[2] @ params[2]).exp().sum()
            loss.backward()
            opt.step()
        for a, b in zip(ours, theirs):
            assert torch.equal(a, b), step


def test_plain_parameter_list_uses_the_given_rate() -> None:
    x = torch.zeros(3, requires_grad=True)
    opt = Adam([x], lr=0.5)
    (x - 1).pow(2).sum().backward()
    opt.step()
    # the first Adam step moves each coordinate by lr (times the gradient's sign), up to eps
    assert torch.allclose(x.detach(), torch.full((3,), 0.5), atol=1e-6)
