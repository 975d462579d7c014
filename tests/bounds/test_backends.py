"""Module backends: every claim contains the module's sampled outputs; Z3 gives exact ranges; the policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.bounds.backend import SLACK, ChainModule, RowSpec
from verify.bounds.lirpa_compat import auto_lirpa
from verify.compose.policy import BACKENDS, Policy, make_backend
from verify.graph.chain import LinearChain

torch.set_num_threads(1)
auto_lirpa()  # imported before hypothesis runs: it raises the recursion limit, which hypothesis warns about


def random_chain(seed: int, sizes: list[int]) -> LinearChain:
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(0, 1 / np.sqrt(a), (b, a)).astype(np.float32).astype(np.float64) for a, b in zip(sizes, sizes[1:])]
    bs = [rng.normal(0, 0.2, b).astype(np.float32).astype(np.float64) for b in sizes[1:]]
    return LinearChain(Ws, bs)


def module_outputs(module: ChainModule, x: np.ndarray) -> np.ndarray:
    a = x
    for k, (W, b) in enumerate(zip(module.weights, module.biases)):
        a = a @ W.T + b
        if k < len(module.weights) - 1:
            a = np.maximum(a, 0.0)
    return a


def rows_for(n_out: int) -> RowSpec:
    """Two polytopes: {y0 >= 1 + y1} and {y1 <= -0.5, y0 <= 2}."""
    C = np.zeros((3, n_out))
    C[0, 0], C[0, 1] = -1.0, 1.0
    C[1, 1] = 1.0
    C[2, 0] = 1.0
    return RowSpec(C, np.array([-1.0, -0.5, 2.0]), [np.array([0]), np.array([1, 2])])


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), backend=st.sampled_from(BACKENDS), start=st.integers(0, 1),
       last=st.booleans(), width=st.floats(0.05, 1.0))
def test_claims_contain_sampled_outputs(seed: int, backend: str, start: int, last: bool, width: float) -> None:
    sizes = [3, 5, 5, 4, 2]
    chain = random_chain(seed, sizes)
    if backend == "z3" and last:
        start = 1  # keeps the exact solver's case splits small (at most 9 ReLUs of open phase)
    end = len(chain.weights) - 1 if last else start + 1
    module = ChainModule.of(chain, start, end, "M")
    rng = np.random.default_rng(seed)
    centre = rng.uniform(-1, 1, module.n_inputs)
    if start > 0:
        centre = np.abs(centre)  # a ReLU layer's output is >= 0
    lo, hi = centre - width, centre + width
    if start > 0:
        lo = np.maximum(lo, 0.0)
    rows = rows_for(module.n_outputs) if module.last else None
    claim = make_backend(backend, z3_timeout=60).bound(module, lo, hi, rows)
    assert claim.backend == backend and claim.blocks == (start, end)
    x = rng.uniform(lo, hi, (4000, module.n_inputs))
    x = np.concatenate([x, lo[None], hi[None]])
    y = module_outputs(module, x)
    if rows is None:
        assert claim.out_lower is not None and claim.out_upper is not None
        assert np.all(y >= claim.out_lower) and np.all(y <= claim.out_upper)
    else:
        assert claim.margins is not None and claim.margins.shape == (2,)
        vals = y @ rows.C.T - rows.d
        for p, g in enumerate(rows.groups):
            assert np.all(vals[:, g].max(axis=1) >= claim.margins[p])


def abs_module() -> ChainModule:
    """y = relu(x) + relu(-x) (one input, one output)."""
    chain = LinearChain([np.array([[1.0], [-1.0]]), np.array([[1.0, 1.0]])], [np.zeros(2), np.zeros(1)])
    return ChainModule.of(chain, 0, 1, "abs")


def test_z3_gives_the_exact_range_of_abs() -> None:
    module = abs_module()
    lo, hi = np.array([-2.0]), np.array([3.0])
    # as an inner module (pretend it does not end at the output): the range is exactly [0, 3]
    module.last = False
    claim = make_backend("z3").bound(module, lo, hi)
    assert claim.out_lower is not None and claim.out_upper is not None
    assert -2 * SLACK <= claim.out_lower[0] <= 0.0
    assert 3.0 <= claim.out_upper[0] <= 3.0 + 8 * SLACK
    assert claim.evidence["open_relus"] == 2
    # the evidence is the claim's negation, which any SMT solver re-solves: unsat
    solver = z3.Solver()
    solver.from_string(claim.evidence["smtlib"])
    assert solver.check() == z3.unsat
    # intervals lose the correlation: relu(x) in [0, 3], relu(-x) in [0, 2], so at most 5
    ibp = make_backend("interval").bound(module, lo, hi)
    assert ibp.out_upper is not None and ibp.out_upper[0] >= 5.0 - 1e-6


def test_z3_bounds_the_property_itself() -> None:
    """|x| on [-2, 3] against the unsafe set {y <= 0.5}: per row CROWN gives a negative margin,
    Z3's exact minimum of the row is 0, so the margin is exactly -0.5."""
    module = abs_module()
    rows = RowSpec(np.array([[1.0]]), np.array([0.5]), [np.array([0])])
    claim = make_backend("z3").bound(module, np.array([-2.0]), np.array([3.0]), rows)
    assert claim.margins is not None
    assert -0.5 - 4 * SLACK <= claim.margins[0] <= -0.5
    crown = make_backend("crown").bound(module, np.array([-2.0]), np.array([3.0]), rows)
    assert crown.margins is not None and crown.margins[0] < -0.5


def test_alpha_backends_record_their_slopes_and_improve_on_crown() -> None:
    chain = random_chain(3, [4, 12, 12, 3])
    module = ChainModule.of(chain, 0, 1, "M")
    lo, hi = -np.ones(4), np.ones(4)
    crown = make_backend("crown").bound(module, lo, hi)
    assert crown.evidence["slopes"] == "adaptive"
    for name in ("alpha-crown", "lirpa-alpha"):
        claim = make_backend(name).bound(module, lo, hi)
        assert [a.shape for a in claim.evidence["alphas"]] == [(24, 12)]
        assert claim.out_lower is not None and claim.out_upper is not None
        assert crown.out_lower is not None and crown.out_upper is not None
        gain = (crown.out_upper - crown.out_lower) - (claim.out_upper - claim.out_lower)
        assert gain.sum() > 1e-3, name
        assert np.all(gain > -1e-6), name


def test_lirpa_crown_agrees_with_the_engine() -> None:
    chain = random_chain(5, [4, 10, 10, 10, 3])
    module = ChainModule.of(chain, 1, 3, "M")
    lo, hi = np.zeros(10), np.full(10, 0.5)
    a = make_backend("crown").bound(module, lo, hi, rows_for(3))
    b = make_backend("lirpa-crown").bound(module, lo, hi, rows_for(3))
    assert a.margins is not None and b.margins is not None
    assert np.allclose(a.margins, b.margins, atol=1e-9)


def test_policy_rules_and_override() -> None:
    policy = Policy()
    assert policy.choose("M1", (2, 2), 0, 100, 10.0) == "crown"  # one affine block: exact
    assert policy.choose("M1", (0, 1), 3, 4, 10.0) == "z3"
    assert policy.choose("M1", (0, 1), 3, 100, 10.0) == "alpha-crown"  # 2^3 * 100 objectives: too costly
    assert policy.choose("M1", (0, 1), 13, 1, 10.0) == "alpha-crown"
    assert policy.choose("M1", (0, 1), 3, 4, 0.1) == "crown"  # too little time for Z3 or alpha
    assert policy.choose("M1", (0, 1), 3, 4, 0.0) == "interval"
    assert Policy(override="lirpa-crown").choose("M1", (0, 1), 0, 1, 10.0) == "lirpa-crown"
    per = Policy(override={"M2": "interval", "0-1": "z3"})
    assert per.choose("M2", (2, 3), 20, 100, 10.0) == "interval"
    assert per.choose("M1", (0, 1), 20, 100, 10.0) == "z3"
    with pytest.raises(ValueError, match="unknown backend"):
        Policy(override="simplex")
    with pytest.raises(ValueError, match="unknown backend"):
        make_backend("simplex")
