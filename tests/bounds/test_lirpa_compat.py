"""The auto_LiRPA shim: 0.3 imports and bounds soundly on this stack (torch 2.13, numpy 2)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.bounds.lirpa import LirpaBounder
from verify.bounds.lirpa_compat import auto_lirpa


def test_auto_lirpa_imports_and_builds_a_bounded_module() -> None:
    al = auto_lirpa()
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    module = al.BoundedModule(net, torch.zeros(1, 3), verbose=False)
    assert type(module).__name__ == "BoundedModule"
    assert auto_lirpa() is al  # patched once


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 1000), st.sampled_from(["IBP", "CROWN", "alpha-CROWN"]))
def test_sampled_inputs_land_inside_auto_lirpa_bounds(seed: int, method: str) -> None:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(),
                              torch.nn.Linear(16, 3)).double()
    rng = np.random.default_rng(seed)
    lo = rng.uniform(-1, 1, (1, 4))
    hi = lo + rng.uniform(0, 0.5, (1, 4))
    C = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]])
    res = LirpaBounder(net, 4, alpha_iterations=5).bound(lo, hi, C, method)
    x = torch.tensor(lo + rng.uniform(0, 1, (500, 4)) * (hi - lo))
    with torch.no_grad():
        y = net(x).numpy() @ C.T
    assert np.all(y >= res.lower - 1e-9)
