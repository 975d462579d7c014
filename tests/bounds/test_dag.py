"""The DAG bound engine (verify/bounds/dag.py) on small IR graphs built here: sound, and as tight as promised."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.bounds import dag
from verify.bounds.dag import DagBounder
from verify.bounds.lirpa_compat import SAFE_BOUND_OPTS, auto_lirpa
from verify.bounds.relax import sigmoid_tanh
from verify.ir import Graph, Node, Value
from verify.ir.evaluate import run
from verify.ir.ops import run_node

TOL = 1e-9

try:  # loaded before hypothesis runs (auto_LiRPA raises the recursion limit, which hypothesis warns about)
    LIRPA, LIRPA_ERROR = auto_lirpa(), ""
except Exception as error:  # any failure to load: the comparison is skipped
    LIRPA, LIRPA_ERROR = None, f"{type(error).__name__}: {error}"


class _Builder:
    """Nodes appended one by one; each output's shape comes from running the op on zeros."""

    def __init__(self, shape: tuple[int, ...], seed: int) -> None:
        self.values = {"x": Value("x", shape)}
        self.nodes: list[Node] = []
        self.rng = np.random.default_rng(seed)

    def add(self, op: str, *inputs: str, **attrs) -> str:
        xs = [torch.zeros((1, *self.values[i].shape), dtype=torch.float64) for i in inputs]
        name = f"v{len(self.nodes)}"
        self.values[name] = Value(name, tuple(run_node(op, xs, attrs).shape[1:]))
        self.nodes.append(Node(op, f"n{len(self.nodes)}", tuple(inputs), name, attrs))
        return name

    def linear(self, x: str, out: int) -> str:
        n = self.values[x].shape[-1]
        return self.add("linear", x, W=self.rng.normal(size=(out, n)) / math.sqrt(n), b=self.rng.normal(size=out) * 0.3)

    def conv(self, x: str, out: int, k: int = 3, stride: int = 1, pad: int = 1) -> str:
        c = self.values[x].shape[0]
        W = self.rng.normal(size=(out, c, k, k)) / math.sqrt(c * k * k)
        return self.add("conv", x, W=W, b=self.rng.normal(size=out) * 0.3, strides=[stride, stride],
                        pads=[pad] * 4, dilations=[1, 1], groups=1)

    def flat(self, x: str) -> str:
        return self.add("reshape", x, shape=[self.values[x].size])

    def graph(self, out: str) -> Graph:
        return Graph(self.values["x"], self.nodes, out, self.values)


def mlp(seed: int, act: str = "relu") -> Graph:
    b = _Builder((3,), seed)
    attrs = {"alpha": 0.1} if act == "leaky_relu" else {}
    h = b.add(act, b.linear("x", 8), **attrs)
    h = b.add(act, b.linear(h, 8), **attrs)
    return b.graph(b.linear(h, 3))


def conv_net(seed: int) -> Graph:
    b = _Builder((2, 6, 6), seed)
    x = b.add("pad", "x", pads=[0, 1, 0, 0, 0, 1], value=0.5)  # (C, H, W) begins, then ends
    h = b.add("relu", b.conv(x, 3))
    h = b.add("affine", h, scale=b.rng.normal(size=(3, 1, 1)), shift=b.rng.normal(size=(3, 1, 1)))
    h = b.add("relu", b.conv(h, 4, stride=2))
    h = b.add("avg_pool", h, kernel=[2, 2], strides=[2, 2], pads=[1, 1, 0, 0], count_include_pad=False)
    h = b.add("relu", b.linear(b.flat(h), 6))
    return b.graph(b.linear(h, 3))


def max_pool_net(seed: int) -> Graph:
    b = _Builder((2, 6, 5), seed)
    z = b.conv("x", 3)
    h = b.add("max_pool", z, kernel=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], dilations=[1, 1])  # on pre-activations
    h = b.add("relu", h)
    h = b.add("max_pool", h, kernel=[2, 2], strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1])
    h = b.add("relu", b.linear(b.flat(h), 6))
    return b.graph(b.linear(h, 3))


def residual_net(seed: int) -> Graph:
    b = _Builder((4,), seed)
    h = b.add("relu", b.linear("x", 6))
    branch = b.linear(b.add("relu", b.linear(h, 6)), 6)
    j = b.add("relu", b.add("add", branch, h))  # h is read twice: a join
    branch = b.linear(b.add("relu", b.linear(j, 5)), 6)
    j = b.add("relu", b.add("add", j, branch))
    return b.graph(b.linear(j, 3))


def concat_net(seed: int) -> Graph:
    b = _Builder((4,), seed)
    h = b.add("relu", b.linear("x", 6))
    even = b.add("slice", h, axis=0, start=0, stop=6, step=2)
    odd = b.add("slice", h, axis=0, start=1, stop=6, step=2)
    c = b.add("concat", h, b.add("sub", even, odd), "x", axis=0)
    c = b.add("reshape", b.add("transpose", b.add("reshape", c, shape=[13, 1]), perm=[1, 0]), shape=[13])
    h = b.add("tanh", b.linear(c, 5))
    return b.graph(b.linear(b.add("concat", h, odd, axis=0), 3))


def softmax_net(seed: int) -> Graph:
    b = _Builder((3,), seed)
    h = b.add("relu", b.linear("x", 8))
    return b.graph(b.add("softmax", b.linear(h, 4), axis=0))


def linear_net(seed: int) -> Graph:
    """Every linear op and no non-linear one: CROWN is then exact."""
    b = _Builder((2, 4, 4), seed)
    y = b.conv("x", 3)
    y = b.add("conv_transpose", y, W=b.rng.normal(size=(3, 2, 2, 2)), b=b.rng.normal(size=2), strides=[2, 2],
              pads=[1, 1, 1, 1], dilations=[1, 1], groups=1, output_padding=[0, 0])
    y = b.add("avg_pool", b.add("pad", y, pads=[0, 1, 1, 0, 0, 1], value=-0.3), kernel=[2, 2], strides=[2, 2],
              pads=[0, 0, 0, 0], count_include_pad=True)
    y = b.add("affine", y, scale=b.rng.normal(size=b.values[y].shape), shift=None)
    f = b.flat(y)
    g = b.add("transpose", b.add("reshape", "x", shape=[2, 16]), perm=[1, 0])
    s = b.add("slice", b.flat(g), axis=0, start=3, stop=3 + b.values[f].size, step=1)
    z = b.add("concat", b.add("sub", f, s), b.add("add", f, f), axis=0)
    return b.graph(b.linear(z, 4))


NETS: dict[str, Callable[[int], Graph]] = {
    "relu_mlp": mlp,
    "leaky_mlp": lambda s: mlp(s, "leaky_relu"),
    "sigmoid_mlp": lambda s: mlp(s, "sigmoid"),
    "tanh_mlp": lambda s: mlp(s, "tanh"),
    "conv_pad_avgpool": conv_net,
    "max_pool": max_pool_net,
    "residual": residual_net,
    "concat_slice": concat_net,
    "softmax_last": softmax_net,
}


def _box(g: Graph, rng: np.random.Generator, B: int, width: float) -> tuple[torch.Tensor, torch.Tensor]:
    lo = torch.tensor(rng.uniform(-1, 1, size=(B, g.n_inputs)))
    return lo, lo + torch.tensor(rng.uniform(0, width, size=(B, g.n_inputs)))


def _samples(lo: torch.Tensor, hi: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """``[B, n, n_in]`` points of each box: random ones and corners."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.rand(lo.shape[0], n, lo.shape[1], generator=gen, dtype=torch.float64)
    t[:, : n // 4] = t[:, : n // 4].round()
    return lo[:, None] + t * (hi - lo)[:, None]


def _values(g: Graph, xs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every value on the samples, as ``[B, n, size]``."""
    B, n = xs.shape[:2]
    with torch.no_grad():
        env = run(g, xs.reshape(B * n, -1), keep=True)
    return {k: v.reshape(B, n, -1) for k, v in env.items()}


def _inside(v: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> bool:
    B = v.shape[0]
    return bool((v >= lo.reshape(B, 1, -1) - TOL).all() and (v <= hi.reshape(B, 1, -1) + TOL).all())


@pytest.mark.parametrize("net", list(NETS))
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), B=st.integers(1, 3), width=st.sampled_from([0.05, 0.5, 2.0]))
def test_sampled_inputs_land_inside_ibp_and_crown_bounds(net: str, seed: int, B: int, width: float) -> None:
    g = NETS[net](seed)
    rng = np.random.default_rng(seed)
    lo, hi = _box(g, rng, B, width)
    C = torch.tensor(rng.normal(size=(3, g.n_outputs)))
    d = torch.tensor(rng.normal(size=3))
    db = DagBounder(g)
    crown = db.bound(lo, hi, C, d, with_upper=True)
    ibp = db.bound(lo, hi, C, d, method="ibp", with_upper=True)
    boxes = db.ibp(lo, hi)
    vals = _values(g, _samples(lo, hi, 300, seed))
    spec = vals[g.output] @ C.T - d
    assert _inside(spec, crown.lower, crown.upper) and _inside(spec, ibp.lower, ibp.upper)
    for name, (a, b) in boxes.items():
        assert _inside(vals[name], a, b), name
    assert set(crown.intermediate) == {n.inputs[0] for n in g.nodes if n.op in ("relu", "leaky_relu", "sigmoid",
                                                                                   "tanh", "max_pool", "softmax")}
    for name, (a, b) in crown.intermediate.items():
        assert _inside(vals[name], a, b), name
        ia, ib = boxes[name]
        assert torch.all(a >= ia - TOL) and torch.all(b <= ib + TOL), name  # IBP intersected with CROWN
        assert torch.all(a <= b)
    assert not crown.empty.any()
    # the final linear bound: its minimum over the box is the lower bound, attained at x_min inside the box
    torch.testing.assert_close((crown.coef * crown.x_min).sum(-1) + crown.const, crown.lower)
    assert torch.all(crown.x_min >= lo[:, None] - TOL) and torch.all(crown.x_min <= hi[:, None] + TOL)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_crown_is_exact_on_a_network_of_every_linear_op(seed: int) -> None:
    g = linear_net(seed)
    rng = np.random.default_rng(seed)
    lo, hi = _box(g, rng, 2, 1.0)
    C = torch.tensor(rng.normal(size=(2, g.n_outputs)))
    r = DagBounder(g).bound(lo, hi, C, with_upper=True)
    # dense Jacobian by running the graph on basis vectors (independent of the engine's transposes)
    with torch.no_grad():
        eye = torch.eye(g.n_inputs, dtype=torch.float64)
        zero = run(g, torch.zeros(1, g.n_inputs, dtype=torch.float64)).reshape(1, -1)
        J = run(g, eye).reshape(g.n_inputs, -1) - zero
    M = C @ J.T  # [R, n_in]
    c0 = (zero @ C.T).squeeze(0)
    exact_lo = c0 + (M.clamp(min=0) @ lo.T).T + (M.clamp(max=0) @ hi.T).T
    exact_hi = c0 + (M.clamp(min=0) @ hi.T).T + (M.clamp(max=0) @ lo.T).T
    torch.testing.assert_close(r.lower, exact_lo, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(r.upper, exact_hi, atol=1e-9, rtol=1e-9)


def test_ibp_method_is_the_interval_of_the_spec() -> None:
    g = mlp(3)
    lo, hi = _box(g, np.random.default_rng(3), 2, 0.5)
    C = torch.tensor([[1.0, -1.0, 0.0], [0.0, 2.0, 1.0]], dtype=torch.float64)
    db = DagBounder(g)
    r = db.bound(lo, hi, C, torch.tensor([0.5, -1.0]), method="ibp")
    a, b = db.ibp(lo, hi)[g.output]
    expected = a @ C.clamp(min=0).T + b @ C.clamp(max=0).T - torch.tensor([0.5, -1.0], dtype=torch.float64)
    torch.testing.assert_close(r.lower, expected)
    assert r.x_min is None


def test_batched_specifications_and_chunked_rows_agree() -> None:
    g = conv_net(5)
    rng = np.random.default_rng(5)
    lo, hi = _box(g, rng, 3, 0.4)
    C = torch.tensor(rng.normal(size=(3, 4, g.n_outputs)))
    d = torch.tensor(rng.normal(size=(3, 4)))
    whole = DagBounder(g).bound(lo, hi, C, d)
    chunked = DagBounder(g, chunk_elements=3000).bound(lo, hi, C, d)
    torch.testing.assert_close(whole.lower, chunked.lower, atol=1e-10, rtol=1e-10)
    for name, (a, b) in whole.intermediate.items():
        torch.testing.assert_close(a, chunked.intermediate[name][0], atol=1e-10, rtol=1e-10)
        torch.testing.assert_close(b, chunked.intermediate[name][1], atol=1e-10, rtol=1e-10)
    one = DagBounder(g).bound(lo[1:2], hi[1:2], C[1], d[1])  # domains are independent
    torch.testing.assert_close(one.lower[0], whole.lower[1], atol=1e-10, rtol=1e-10)


def _unstable_neuron(db: DagBounder, lo: torch.Tensor, hi: torch.Tensor) -> tuple[str, int, float, float]:
    r = db.bound(lo, hi, torch.eye(db.graph.n_outputs))
    for name, (a, b) in r.intermediate.items():
        a, b = a.reshape(-1), b.reshape(-1)
        idx = torch.nonzero((a < -0.05) & (b > 0.05))
        if len(idx):
            i = int(idx[0])
            return name, i, float(a[i]), float(b[i])
    raise AssertionError("no unstable neuron")


@pytest.mark.parametrize("net", ["relu_mlp", "residual", "max_pool"])
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), side=st.sampled_from(["above", "below", "inside"]))
def test_clamped_domain_bounds_hold_for_inputs_in_the_clamp(net: str, seed: int, side: str) -> None:
    g = NETS[net](seed)
    rng = np.random.default_rng(seed)
    lo, hi = _box(g, rng, 1, 2.0)
    db = DagBounder(g)
    try:
        name, i, a, b = _unstable_neuron(db, lo, hi)
    except AssertionError:
        return
    cut = a + (b - a) * rng.uniform(0.2, 0.8)
    shape = (1, *g.values[name].shape)
    clo, chi = torch.full(shape, -math.inf), torch.full(shape, math.inf)
    if side == "above":
        clo.view(-1)[i] = cut
    elif side == "below":
        chi.view(-1)[i] = cut
    else:
        clo.view(-1)[i], chi.view(-1)[i] = a + (cut - a) / 2, cut
    C = torch.tensor(rng.normal(size=(2, g.n_outputs)))
    r = db.bound(lo, hi, C, clamps={name: (clo, chi)}, with_upper=True)
    assert not r.empty.any()
    ilo, ihi = r.intermediate[name]
    assert torch.all(ilo >= clo - TOL) and torch.all(ihi <= chi + TOL)
    vals = _values(g, _samples(lo, hi, 4000, seed))
    keep = (vals[name][0, :, i] >= clo.view(-1)[i]) & (vals[name][0, :, i] <= chi.view(-1)[i])
    assert keep.any()
    kept = {k: v[:, keep] for k, v in vals.items()}
    assert _inside(kept[g.output] @ C.T, r.lower, r.upper)
    for k, (p, q) in r.intermediate.items():
        assert _inside(kept[k], p, q), k


def test_an_empty_clamp_is_reported_and_proves_everything() -> None:
    g = mlp(11)
    lo, hi = _box(g, np.random.default_rng(11), 3, 0.5)
    db = DagBounder(g)
    name = db.relaxed[0]
    _, b = db.bound(lo, hi, torch.eye(3)).intermediate[name]
    shape = (3, *g.values[name].shape)
    clo, chi = torch.full(shape, -math.inf), torch.full(shape, math.inf)
    clo[0, 2] = b[0, 2] + 1.0  # above the neuron's upper bound: no input of domain 0 reaches it
    clo[1, 0], chi[1, 0] = 1.0, 0.0  # an empty interval in domain 1
    for method in ("crown", "ibp"):
        r = db.bound(lo, hi, torch.eye(3), clamps={name: (clo, chi)}, method=method, with_upper=True)
        assert r.empty.tolist() == [True, True, False]
        assert torch.all(r.lower[:2] == math.inf) and torch.all(r.upper[:2] == -math.inf)
        alone = db.bound(lo[2:], hi[2:], torch.eye(3), method=method, with_upper=True)  # domain 2 is unaffected
        torch.testing.assert_close(r.lower[2:], alone.lower, atol=1e-10, rtol=1e-10)
        torch.testing.assert_close(r.upper[2:], alone.upper, atol=1e-10, rtol=1e-10)


def test_clamps_must_name_inputs_of_non_linear_ops() -> None:
    g = mlp(1)
    db = DagBounder(g)
    lo, hi = _box(g, np.random.default_rng(1), 1, 0.5)
    with pytest.raises(ValueError, match="clamp"):
        db.bound(lo, hi, torch.eye(3), clamps={g.output: (lo, hi)})


@pytest.mark.parametrize("net", ["relu_mlp", "leaky_mlp", "residual", "conv_pad_avgpool"])
@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_alpha_crown_is_sound_and_never_looser_than_crown(net: str, seed: int) -> None:
    g = NETS[net](seed)
    rng = np.random.default_rng(seed)
    lo, hi = _box(g, rng, 2, 1.5)
    C = torch.tensor(rng.normal(size=(3, g.n_outputs)))
    db = DagBounder(g)
    crown = db.bound(lo, hi, C, with_upper=True)
    alpha = db.bound(lo, hi, C, with_upper=True, alphas="optimize", alpha_steps=8, alpha_lr=0.2)
    assert torch.all(alpha.lower >= crown.lower - 1e-12) and torch.all(alpha.upper <= crown.upper + 1e-12)
    spec = _values(g, _samples(lo, hi, 500, seed))[g.output] @ C.T
    assert _inside(spec, alpha.lower, alpha.upper)
    torch.testing.assert_close((alpha.coef * alpha.x_min).sum(-1) + alpha.const, alpha.lower)
    # the slopes returned reproduce the bound, and are within the sound range
    again = db.bound(lo, hi, C, with_upper=True, alphas=alpha.alphas)
    torch.testing.assert_close(again.lower, alpha.lower, atol=1e-9, rtol=1e-9)
    lower_slope = 0.1 if net == "leaky_mlp" else 0.0
    for v in alpha.alphas.values():
        assert v.shape[:2] == (2, 6) and torch.all(v >= lower_slope) and torch.all(v <= 1)


def test_alpha_crown_improves_on_a_loose_instance() -> None:
    g = mlp(7)
    lo, hi = _box(g, np.random.default_rng(7), 1, 2.0)
    db = DagBounder(g)
    crown = db.bound(lo, hi, torch.eye(3))
    with torch.no_grad():  # the optimisation turns gradients back on for itself
        alpha = db.bound(lo, hi, torch.eye(3), alphas="optimize", alpha_steps=30, alpha_lr=0.3)
    assert float((alpha.lower - crown.lower).max()) > 1e-6


def test_alpha_time_budget_stops_early() -> None:
    g = mlp(7)
    lo, hi = _box(g, np.random.default_rng(7), 1, 2.0)
    r = DagBounder(g).bound(lo, hi, torch.eye(3), alphas="optimize", alpha_steps=10**6, alpha_time=0.2)
    assert r.timings["final"] < 5


def test_an_all_stable_network_skips_crown_and_stays_sound() -> None:
    b = _Builder((2,), 0)
    z = b.add("linear", "x", W=np.array([[1.0, 1.0], [1.0, -1.0]]), b=np.array([5.0, -5.0]))
    h = b.add("relu", b.add("linear", b.add("relu", z), W=np.array([[1.0, 2.0]]), b=np.array([1.0])))
    g = b.graph(h)
    lo, hi = torch.zeros(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64)
    r = DagBounder(g).bound(lo, hi, torch.eye(1), with_upper=True)
    torch.testing.assert_close(r.lower, torch.tensor([[6.0]], dtype=torch.float64))
    torch.testing.assert_close(r.upper, torch.tensor([[8.0]], dtype=torch.float64))


def test_an_infinite_box_gives_sound_finite_or_infinite_bounds_without_nan() -> None:
    g = mlp(2, "sigmoid")
    lo = torch.tensor([[-math.inf, 0.0, -1.0]], dtype=torch.float64)
    hi = torch.tensor([[0.0, 0.5, math.inf]], dtype=torch.float64)
    r = DagBounder(g).bound(lo, hi, torch.eye(3), with_upper=True)
    assert not torch.isnan(r.lower).any() and not torch.isnan(r.upper).any()
    xs = _samples(torch.tensor([[-1e3, 0.0, -1.0]]), torch.tensor([[0.0, 0.5, 1e3]]), 500, 0)
    assert _inside(_values(g, xs)[g.output], r.lower, r.upper)


def test_unsupported_graphs_are_refused() -> None:
    b = _Builder((3,), 0)
    s = b.add("softmax", b.linear("x", 4), axis=0)
    with pytest.raises(ValueError, match="softmax"):
        DagBounder(b.graph(b.linear(s, 2)))
    b = _Builder((3,), 0)
    with pytest.raises(NotImplementedError, match="alpha"):
        DagBounder(b.graph(b.add("leaky_relu", b.linear("x", 4), alpha=2.0)))


# -- against auto_LiRPA ---------------------------------------------------------------------------
def _lirpa() -> Any:
    if LIRPA is None:
        pytest.skip(f"auto_LiRPA does not load: {LIRPA_ERROR}")
    return LIRPA


class _TorchResidual(torch.nn.Module):
    """``residual_net`` as a torch module (same weights)."""

    def __init__(self, g: Graph) -> None:
        super().__init__()
        self.fcs = torch.nn.ModuleList()
        for node in g.nodes:
            if node.op == "linear":
                fc = torch.nn.Linear(node.attrs["W"].shape[1], node.attrs["W"].shape[0]).double()
                fc.weight.data = torch.tensor(node.attrs["W"])
                fc.bias.data = torch.tensor(node.attrs["b"])
                self.fcs.append(fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.fcs
        h = torch.relu(f[0](x))
        j = torch.relu(f[2](torch.relu(f[1](h))) + h)
        j = torch.relu(j + f[4](torch.relu(f[3](j))))
        return f[5](j)


@pytest.mark.parametrize("net", ["relu_mlp", "residual"])
def test_crown_matches_or_beats_auto_lirpa(net: str) -> None:
    lirpa = _lirpa()
    g = NETS[net](21)
    if net == "relu_mlp":
        layers = []
        for node in g.nodes:
            if node.op == "linear":
                fc = torch.nn.Linear(node.attrs["W"].shape[1], node.attrs["W"].shape[0]).double()
                fc.weight.data, fc.bias.data = torch.tensor(node.attrs["W"]), torch.tensor(node.attrs["b"])
                layers.append(fc)
            else:
                layers.append(torch.nn.ReLU())
        model: torch.nn.Module = torch.nn.Sequential(*layers)
    else:
        model = _TorchResidual(g)
    rng = np.random.default_rng(21)
    lo, hi = _box(g, rng, 3, 1.5)
    C = torch.tensor(rng.normal(size=(3, 2, g.n_outputs)))
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # auto_LiRPA 0.3 allocates with the default dtype
    try:
        module = lirpa.BoundedModule(model, torch.zeros(1, g.n_inputs), bound_opts=dict(SAFE_BOUND_OPTS), device="cpu",
                                     verbose=False)
        x = lirpa.BoundedTensor((lo + hi) / 2, lirpa.PerturbationLpNorm(norm=math.inf, x_L=lo, x_U=hi))
        lb, ub = module.compute_bounds(x=(x,), method="CROWN", C=C)
    finally:
        torch.set_default_dtype(default)
    ours = DagBounder(g).bound(lo, hi, C, with_upper=True)
    assert torch.all(ours.lower >= lb.detach() - 1e-6) and torch.all(ours.upper <= ub.detach() + 1e-6)


@pytest.mark.parametrize("net", ["relu_mlp", "residual", "max_pool", "conv_pad_avgpool"])
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_crown_rows_for_unstable_neurons_only_stay_sound(net: str, seed: int) -> None:
    g = NETS[net](seed)
    rng = np.random.default_rng(seed)
    lo, hi = _box(g, rng, 2, 1.0)
    C = torch.tensor(rng.normal(size=(3, g.n_outputs)))
    r = DagBounder(g).bound(lo, hi, C, with_upper=True)
    vals = _values(g, _samples(lo, hi, 300, seed))
    assert _inside(vals[g.output] @ C.T, r.lower, r.upper)
    for name, (a, b) in r.intermediate.items():
        assert _inside(vals[name], a, b), name


@pytest.mark.parametrize("layout", ["default", "padded", "pairs"])
def test_a_domain_gets_the_same_bounds_alone_or_in_a_batch(layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also with the CROWN rows of unstable neurons laid out per domain (padded) or as gathered pairs."""
    if layout != "default":
        monkeypatch.setattr(dag, "_PADDED_WASTE", math.inf if layout == "padded" else 0.0)
    g = residual_net(4)
    rng = np.random.default_rng(4)
    lo, hi = _box(g, rng, 4, 1.0)
    hi[0] = lo[0] + 1e-4  # a tiny box: every neuron stable there, the others are not
    C = torch.tensor(rng.normal(size=(2, g.n_outputs)))
    db = DagBounder(g)
    batch = db.bound(lo, hi, C)
    for b in range(4):
        alone = db.bound(lo[b:b + 1], hi[b:b + 1], C)
        torch.testing.assert_close(alone.lower[0], batch.lower[b], atol=1e-12, rtol=1e-12)
        for name, (p, q) in alone.intermediate.items():
            torch.testing.assert_close(p[0], batch.intermediate[name][0][b], atol=1e-12, rtol=1e-12)
            torch.testing.assert_close(q[0], batch.intermediate[name][1][b], atol=1e-12, rtol=1e-12)


# -- the intermediate-bound rule of docs/relaxations.md, step by step -------------------------------
def skip_preactivation_net(seed: int) -> Graph:
    """A pre-activation read by a relu and by an add: CROWN rows for all its neurons (not only relu reads it)."""
    b = _Builder((3,), seed)
    z = b.linear(b.add("relu", b.linear("x", 6)), 5)
    y = b.add("add", b.linear(b.add("relu", z), 5), z)
    return b.graph(b.linear(b.add("relu", y), 2))


def _cone_graph(g: Graph, value: str) -> Graph:
    """The sub-graph computing ``value`` (its output)."""
    producer = {n.output: n for n in g.nodes}
    need, stack = set(), [value]
    while stack:
        node = producer.get(stack.pop())
        if node is not None and node.name not in need:
            need.add(node.name)
            stack.extend(node.inputs)
    return g.with_nodes([n for n in g.nodes if n.name in need], output=value)


def _reference_intermediate(g: Graph, lo: torch.Tensor, hi: torch.Tensor,
                            clamps: dict[str, tuple[torch.Tensor, torch.Tensor]]
                            ) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], dict[str, int]]:
    """Steps 1-3 of docs/relaxations.md value by value: IBP of the value from the (reference) tightened bounds
    of the values before it (the sub-graph's IBP, clamped to them), intersected with the clamp, then with the
    sub-graph's final CROWN bound (every neuron, plain) where the rule asks for it, the hull where they
    cross, then the clamp again.  Also the CROWN rows the rule asks for, per value."""
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    rows: dict[str, int] = {}
    B = lo.shape[0]
    for name in DagBounder(g).relaxed:
        if name == g.input.name:
            out[name] = (lo.reshape(B, *g.input_shape), hi.reshape(B, *g.input_shape))
            continue
        sub = _cone_graph(g, name)
        n = g.values[name].size
        eye = torch.cat([torch.eye(n), -torch.eye(n)]).double()
        earlier = {k: v for k, v in out.items() if k in sub.values and k != name}
        ibp = DagBounder(sub).bound(lo, hi, eye, method="ibp", clamps=earlier).lower
        p, q = ibp[:, :n], -ibp[:, n:]
        c = clamps.get(name)
        if c is not None:
            p, q = torch.maximum(p, c[0].reshape(B, n)), torch.minimum(q, c[1].reshape(B, n))
        producer = next(node for node in g.nodes if node.output == name)
        readers = g.consumers(name)
        if len(producer.inputs) == 1 and producer.inputs[0] == g.input.name and producer.op in (
                "linear", "conv", "conv_transpose", "affine", "pad", "avg_pool", "reshape", "transpose", "slice",
                "concat"):
            mask = torch.zeros_like(p, dtype=torch.bool)
        elif all(r.op in ("relu", "leaky_relu") for r in readers):
            mask = (p < 0) & (q > 0)
        else:
            mask = torch.ones_like(p, dtype=torch.bool)
        rows[name] = 2 * int(mask.sum()) if not bool(mask.all()) else 2 * B * n
        if bool(mask.any()):
            own = {k: v for k, v in clamps.items() if k in sub.values and k != name}
            cr = DagBounder(sub).bound(lo, hi, eye, clamps=own).lower
            a, b = torch.maximum(p, cr[:, :n]), torch.minimum(q, -cr[:, n:])
            p = torch.where(mask, torch.minimum(a, b), p)  # the hull where IBP and CROWN cross
            q = torch.where(mask, torch.maximum(a, b), q)
        if c is not None:
            p, q = torch.maximum(p, c[0].reshape(B, n)), torch.minimum(q, c[1].reshape(B, n))
        shape = (B, *g.values[name].shape)
        out[name] = (p.reshape(shape), q.reshape(shape))
    return out, rows


REFERENCE_NETS = {**{k: NETS[k] for k in ("relu_mlp", "leaky_mlp", "tanh_mlp", "residual", "conv_pad_avgpool",
                                          "max_pool")}, "skip_preactivation": skip_preactivation_net}


@pytest.mark.parametrize("net", list(REFERENCE_NETS))
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000), clamped=st.booleans())
def test_intermediate_bounds_follow_the_documented_steps(net: str, seed: int, clamped: bool) -> None:
    g = REFERENCE_NETS[net](seed)
    rng = np.random.default_rng(seed)
    lo, hi = _box(g, rng, 3, 1.0)
    db = DagBounder(g)
    clamps: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    if clamped:  # a cut through an unstable neuron of each of two values, in some domains
        first = db.bound(lo, hi, torch.eye(g.n_outputs, dtype=torch.float64))
        for name in [k for k in db.relaxed if k != g.input.name][:2]:
            a, b = (t.reshape(3, -1) for t in first.intermediate[name])
            cl, cu = torch.full_like(a, -math.inf), torch.full_like(b, math.inf)
            for dom in range(2):
                i = int(torch.argmax(torch.minimum(-a[dom], b[dom])))
                cut = float(a[dom, i] + (b[dom, i] - a[dom, i]) * rng.uniform(0.3, 0.7))
                (cl if rng.random() < 0.5 else cu)[dom, i] = cut
            shape = (3, *g.values[name].shape)
            clamps[name] = (cl.reshape(shape), cu.reshape(shape))
    counted: dict[str, int] = {}
    backward = DagBounder._backward

    def spy(self: DagBounder, st_: Any, start: str, A: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if self is db and start != g.output:
            rows = A.reshape(A.shape[0] * A.shape[1], -1)  # those of unit vectors, not padding
            counted[start] = counted.get(start, 0) + int((rows != 0).any(dim=1).sum())
        return backward(self, st_, start, A, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DagBounder, "_backward", spy)
        r = db.bound(lo, hi, torch.eye(g.n_outputs, dtype=torch.float64), clamps=clamps or None)
    expected, rows = _reference_intermediate(g, lo, hi, clamps)
    assert set(expected) == set(r.intermediate)
    # An empty domain's bounds are any numbers: those the engine found empty, and those a sub-graph bound of the
    # reference found empty (inf > -inf; a clamp cutting a neuron's range to a point can end either way in rounding).
    live = ~r.empty
    for p, q in expected.values():
        live &= ~(p > q).reshape(p.shape[0], -1).any(dim=1)
    for name, (p, q) in expected.items():
        torch.testing.assert_close(r.intermediate[name][0][live], p[live], atol=1e-9, rtol=1e-9)
        torch.testing.assert_close(r.intermediate[name][1][live], q[live], atol=1e-9, rtol=1e-9)
    if bool(live.all()):  # CROWN rows only where the rule asks for them (none for stable neurons of relu-only values)
        assert {k: v for k, v in counted.items() if v} == {k: v for k, v in rows.items() if v}


# -- split multipliers (beta) -----------------------------------------------------------------------
def _random_splits(g: Graph, db: DagBounder, lo: torch.Tensor, hi: torch.Tensor, vals: dict[str, torch.Tensor],
                   rng: np.random.Generator, k: int) -> tuple[list[list[tuple[str, int, float, int]]], torch.Tensor]:
    """Up to ``k`` splits per domain on unstable neurons, each at the median of the samples still satisfying the
    splits before it (so that some samples satisfy them all); and which samples do ``[B, n]``."""
    r = db.bound(lo, hi, torch.eye(g.n_outputs, dtype=torch.float64))
    splittable = [n.inputs[0] for n in g.nodes if n.op in ("relu", "leaky_relu", "sigmoid", "tanh")]
    B, n = lo.shape[0], next(iter(vals.values())).shape[1]
    keep = torch.ones(B, n, dtype=torch.bool)
    splits: list[list[tuple[str, int, float, int]]] = []
    for b in range(B):
        path: list[tuple[str, int, float, int]] = []
        options = []
        for name in splittable:
            a, c = (t[b].reshape(-1) for t in r.intermediate[name])
            options += [(name, int(i)) for i in torch.nonzero((a < 0) & (c > 0)).flatten()]
        for j in rng.permutation(len(options))[:k]:
            name, i = options[j]
            v = vals[name][b, :, i]
            value = float(v[keep[b]].median()) if keep[b].any() else 0.0
            side = int(rng.integers(2))
            keep[b] &= (v >= value) if side == 1 else (v <= value)
            path.append((name, i, value, side))
        splits.append(path)
    return splits, keep


def _clamps_of(g: Graph, splits: list[list[tuple[str, int, float, int]]]
               ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The clamps branch and bound derives from the splits."""
    B = len(splits)
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for b, path in enumerate(splits):
        for name, i, value, side in path:
            if name not in out:
                size = g.values[name].size
                out[name] = (torch.full((B, size), -math.inf, dtype=torch.float64),
                             torch.full((B, size), math.inf, dtype=torch.float64))
            lo, hi = out[name]
            if side == 1:
                lo[b, i] = max(float(lo[b, i]), value)
            else:
                hi[b, i] = min(float(hi[b, i]), value)
    return {k: (lo.reshape(B, *g.values[k].shape), hi.reshape(B, *g.values[k].shape)) for k, (lo, hi) in out.items()}


BETA_NETS = ["relu_mlp", "leaky_mlp", "sigmoid_mlp", "residual", "conv_pad_avgpool", "max_pool"]


@pytest.mark.parametrize("net", BETA_NETS)
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 4), clamped=st.booleans(),
       scale=st.sampled_from([0.1, 1.0, 10.0]))
def test_any_non_negative_betas_give_sound_bounds_where_the_splits_hold(net: str, seed: int, k: int, clamped: bool,
                                                                       scale: float) -> None:
    g = NETS[net](seed)
    rng = np.random.default_rng(seed)
    lo, hi = _box(g, rng, 3, 1.0)
    db = DagBounder(g)
    vals = _values(g, _samples(lo, hi, 3000, seed))
    splits, keep = _random_splits(g, db, lo, hi, vals, rng, k)
    k_max = max(len(p) for p in splits)
    C = torch.tensor(rng.normal(size=(3, g.n_outputs)))
    d = torch.tensor(rng.normal(size=3))
    betas = torch.tensor(rng.exponential(scale, size=(3, 6, k_max)))
    for b, path in enumerate(splits):
        betas[b, :, len(path):] = 0.0  # padding
    clamps = _clamps_of(g, splits) if clamped else None
    r = db.bound(lo, hi, C, d, clamps=clamps, splits=splits, betas=betas, with_upper=True)
    assert torch.equal(r.betas, betas)
    spec = vals[g.output] @ C.T - d
    for b in range(3):
        if not r.empty[b]:
            kept = spec[b, keep[b]]
            assert bool((kept >= r.lower[b] - TOL).all()) and bool((kept <= r.upper[b] + TOL).all())
    live = ~r.empty
    torch.testing.assert_close(((r.coef * r.x_min).sum(-1) + r.const)[live], r.lower[live])


def _split_net(seed: int) -> Graph:
    b = _Builder((3,), seed)
    z = b.linear(b.add("relu", b.linear("x", 5)), 4)
    return b.graph(b.linear(b.add("relu", z), 2))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_the_beta_term_is_the_back_substitution_of_the_split_constraint(seed: int) -> None:
    """With betas, the bound of ``C y - d`` is CROWN's bound of ``C y - d - beta s (v - value)`` computed as one
    more output of the graph (``concat(y, v)``): the same intermediate bounds, the same pass."""
    g = _split_net(seed)
    rng = np.random.default_rng(seed)
    lo, hi = _box(g, rng, 2, 1.0)
    v = next(n.inputs[0] for n in reversed(g.nodes) if n.op == "relu")
    i, value, side, beta = int(rng.integers(4)), float(rng.normal()), int(rng.integers(2)), float(rng.exponential())
    C = torch.tensor(rng.normal(size=(2, g.n_outputs)))
    d = torch.tensor(rng.normal(size=2))
    betas = torch.full((2, 2, 1), beta, dtype=torch.float64)
    r = DagBounder(g).bound(lo, hi, C, d, splits=[[(v, i, value, side)]] * 2, betas=betas)
    cat = Node("concat", "join", (g.output, v), "joined", {"axis": 0})
    values = {**g.values, "joined": Value("joined", (g.n_outputs + 4,))}
    aug = Graph(g.input, [*g.nodes, cat], "joined", values)
    s = 1.0 if side == 1 else -1.0
    e = torch.zeros(2, 4, dtype=torch.float64)
    e[:, i] = -beta * s
    ref = DagBounder(aug).bound(lo, hi, torch.cat([C, e], dim=1), d - beta * s * value)
    torch.testing.assert_close(r.lower, ref.lower, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("net", ["relu_mlp", "residual", "conv_pad_avgpool", "sigmoid_mlp"])
@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_optimised_betas_are_sound_never_worse_and_reproducible(net: str, seed: int) -> None:
    g = NETS[net](seed)
    rng = np.random.default_rng(seed)
    lo, hi = _box(g, rng, 3, 1.5)
    db = DagBounder(g)
    vals = _values(g, _samples(lo, hi, 3000, seed))
    splits, keep = _random_splits(g, db, lo, hi, vals, rng, 3)
    clamps = _clamps_of(g, splits)
    C = torch.tensor(rng.normal(size=(2, g.n_outputs)))
    zero = db.bound(lo, hi, C, clamps=clamps)
    with torch.no_grad():  # the optimisation turns gradients back on for itself
        opt = db.bound(lo, hi, C, clamps=clamps, splits=splits, betas="optimize", beta_steps=10, beta_lr=0.1)
    assert torch.all(opt.lower >= zero.lower - 1e-12)
    k_max = max(len(p) for p in splits)
    assert opt.betas.shape == (3, 2, k_max) and torch.all(opt.betas >= 0)
    for b, path in enumerate(splits):
        assert torch.all(opt.betas[b, :, len(path):] == 0)
    spec = vals[g.output] @ C.T
    for b in range(3):
        if not opt.empty[b]:
            assert bool((spec[b, keep[b]] >= opt.lower[b] - TOL).all())
    again = db.bound(lo, hi, C, clamps=clamps, splits=splits, betas=opt.betas)
    torch.testing.assert_close(again.lower, opt.lower, atol=1e-9, rtol=1e-9)
    warm = db.bound(lo, hi, C, clamps=clamps, splits=splits, betas="optimize", beta_start=opt.betas, beta_steps=3)
    assert torch.all(warm.lower >= opt.lower - 1e-9)  # a warm start is where the optimisation begins
    # jointly with the slopes: never worse than plain CROWN, and both returned
    both = db.bound(lo, hi, C, clamps=clamps, splits=splits, betas="optimize", alphas="optimize", alpha_steps=5,
                    beta_steps=5)
    assert torch.all(both.lower >= zero.lower - 1e-12) and both.alphas is not None and both.betas.shape == (3, 2, k_max)


@pytest.mark.parametrize("net", ["residual", "conv_pad_avgpool"])
def test_optimised_betas_improve_the_bound_of_split_relu_nets(net: str) -> None:
    gains = []
    for seed in range(3):
        g = NETS[net](seed)
        rng = np.random.default_rng(seed)
        lo, hi = _box(g, rng, 4, 1.5)
        db = DagBounder(g)
        vals = _values(g, _samples(lo, hi, 500, seed))
        splits, _ = _random_splits(g, db, lo, hi, vals, rng, 3)
        clamps = _clamps_of(g, splits)
        C = torch.tensor(rng.normal(size=(2, g.n_outputs)))
        zero = db.bound(lo, hi, C, clamps=clamps)
        opt = db.bound(lo, hi, C, clamps=clamps, splits=splits, betas="optimize", beta_steps=30, beta_lr=0.1)
        live = ~zero.empty
        gains.append(float((opt.lower - zero.lower)[live].max()))
    assert max(gains) > 1e-3, gains


def test_betas_close_a_split_that_clamps_alone_cannot() -> None:
    """``y = x + relu(x)`` on ``x in [-1, 1]`` with the split ``x >= 0``: the clamp makes the relu exact, but the
    box still reaches ``x = -1`` (bound -2); ``beta = 2`` cancels ``x`` (bound 0, the true minimum)."""
    b = _Builder((1,), 0)
    z = b.add("linear", "x", W=np.array([[1.0]]), b=np.array([0.0]))
    y = b.add("add", b.add("relu", z), b.add("linear", "x", W=np.array([[1.0]]), b=np.array([0.0])))
    db = DagBounder(b.graph(y))
    lo, hi = torch.tensor([[-1.0]], dtype=torch.float64), torch.tensor([[1.0]], dtype=torch.float64)
    clamps = {z: (torch.zeros(1, 1, dtype=torch.float64), torch.full((1, 1), math.inf, dtype=torch.float64))}
    assert float(db.bound(lo, hi, torch.eye(1), clamps=clamps).lower) == -2.0
    r = db.bound(lo, hi, torch.eye(1), clamps=clamps, splits=[[(z, 0, 0.0, 1)]], betas="optimize", beta_steps=200,
                 beta_lr=0.1)
    assert float(r.lower) > -1e-4 and abs(float(r.betas[0, 0, 0]) - 2.0) < 1e-3
    fixed = db.bound(lo, hi, torch.eye(1), clamps=clamps, splits=[[(z, 0, 0.0, 1)]], betas=torch.full((1, 1, 1), 2.0))
    assert float(fixed.lower) == 0.0


def test_bad_splits_and_betas_are_refused() -> None:
    g = mlp(1)
    db = DagBounder(g)
    lo, hi = _box(g, np.random.default_rng(1), 1, 0.5)
    v = db.relaxed[0]
    with pytest.raises(ValueError, match="split"):
        db.bound(lo, hi, torch.eye(3), splits=[[(g.output, 0, 0.0, 1)]], betas="optimize")
    with pytest.raises(ValueError, match="split"):
        db.bound(lo, hi, torch.eye(3), splits=[[(v, 99, 0.0, 1)]], betas="optimize")
    with pytest.raises(ValueError, match="one list per domain"):
        db.bound(lo, hi, torch.eye(3), splits=[[], []], betas="optimize")
    with pytest.raises(ValueError, match=">= 0"):
        db.bound(lo, hi, torch.eye(3), splits=[[(v, 0, 0.0, 1)]], betas=-torch.ones(1, 3, 1))
    with pytest.raises(ValueError, match="betas must be"):
        db.bound(lo, hi, torch.eye(3), splits=[[(v, 0, 0.0, 1)]], betas=torch.ones(1, 2, 1))
    with pytest.raises(ValueError, match="crown"):
        db.bound(lo, hi, torch.eye(3), splits=[[(v, 0, 0.0, 1)]], betas="optimize", method="ibp")


# -- branching scores -----------------------------------------------------------------------------------
def test_relu_scores_are_the_babsr_intercept_scores() -> None:
    """``y = -h_0 - 3 h_1 + h_2 - h_3``, ``h = relu(x)`` on ``x_0, x_1, x_2 in [-1, 1]``, ``x_3 in [0.5, 1]``: the lower
    bound's coefficients at ``h`` are ``-1, -3, 1, -1``; the intercepts ``-l u / (u - l)`` are 0.5, 0.5, 0.5 and 0
    (stable): scores 0.5, 1.5, 0 (the lower line is used) and 0."""
    b = _Builder((4,), 0)
    z = b.add("linear", "x", W=np.eye(4), b=np.zeros(4))
    y = b.add("linear", b.add("relu", z), W=np.array([[-1.0, -3.0, 1.0, -1.0]]), b=np.zeros(1))
    db = DagBounder(b.graph(y))
    lo = torch.tensor([[-1.0, -1.0, -1.0, 0.5]], dtype=torch.float64)
    hi = torch.tensor([[1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    r = db.bound(lo, hi, torch.eye(1), scores=True)
    torch.testing.assert_close(r.scores[z], torch.tensor([[0.5, 1.5, 0.0, 0.0]], dtype=torch.float64))
    two = db.bound(lo, hi, torch.tensor([[1.0], [2.0]]), scores=torch.tensor([[1.0, 0.5]]))  # weighted rows
    torch.testing.assert_close(two.scores[z], 2 * r.scores[z])


def test_sigmoid_scores_weigh_the_gap_between_the_lines_at_the_middle() -> None:
    b = _Builder((3,), 0)
    z = b.add("linear", "x", W=np.eye(3), b=np.zeros(3))
    y = b.add("linear", b.add("sigmoid", z), W=np.array([[2.0, -1.0, 0.5]]), b=np.zeros(1))
    db = DagBounder(b.graph(y))
    lo = torch.tensor([[-2.0, 0.5, -1.0]], dtype=torch.float64)
    hi = torch.tensor([[1.0, 3.0, -1.0 + 1e-12]], dtype=torch.float64)
    r = db.bound(lo, hi, torch.eye(1), scores=True)
    a_l, b_l, a_u, b_u = sigmoid_tanh.relax_sigmoid(lo[0], hi[0])
    m = (lo[0] + hi[0]) / 2
    gap = (a_u * m + b_u) - (a_l * m + b_l)
    torch.testing.assert_close(r.scores[z][0], torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64) * gap)
    assert float(r.scores[z][0, 2]) < 1e-11  # a (nearly) point interval loses (nearly) nothing


@pytest.mark.parametrize("net", ["residual", "conv_pad_avgpool", "tanh_mlp", "max_pool"])
def test_scores_cover_the_splittable_values_and_vanish_on_stable_relus(net: str) -> None:
    g = NETS[net](2)
    lo, hi = _box(g, np.random.default_rng(2), 2, 1.0)
    db = DagBounder(g)
    r = db.bound(lo, hi, torch.eye(g.n_outputs, dtype=torch.float64), scores=True)
    splittable = {n.inputs[0] for n in g.nodes if n.op in ("relu", "leaky_relu", "sigmoid", "tanh")}
    assert set(r.scores) == splittable
    for name, s in r.scores.items():
        assert s.shape == (2, *g.values[name].shape) and torch.all(s >= 0) and torch.isfinite(s).all()
        if all(n.op == "relu" for n in g.consumers(name)):
            a, b = r.intermediate[name]
            assert torch.all(s[(a >= 0) | (b <= 0)] == 0)
    plain = db.bound(lo, hi, torch.eye(g.n_outputs, dtype=torch.float64))
    torch.testing.assert_close(plain.lower, r.lower)  # scores do not change the bound


# -- branch and bound over the engine: the betas of each closure -----------------------------------------
def test_branch_and_bound_records_each_closures_betas() -> None:
    from fractions import Fraction

    from verify.refine.dag_split import DagBab
    from verify.spec.property import Box, Case, Polytope

    g = residual_net(4)
    rng = np.random.default_rng(4)
    x0 = rng.uniform(-0.5, 0.5, g.n_inputs)
    box = Box(tuple(Fraction(float(v) - 0.4) for v in x0), tuple(Fraction(float(v) + 0.4) for v in x0))
    db = DagBounder(g)
    lo, hi = torch.tensor(box.lower[None]), torch.tensor(box.upper[None])
    c = torch.zeros(1, g.n_outputs, dtype=torch.float64)
    c[0, 0] = -1.0
    crown_max = -float(db.bound(lo, hi, c).lower[0, 0])
    top = float(_values(g, _samples(lo, hi, 2000, 0))[g.output][0, :, 0].max())
    t = top + 0.5 * (crown_max - top)  # unsafe: y_0 >= t, between the sampled maximum and CROWN's
    unsafe = Polytope(((Fraction(-1),) + (Fraction(0),) * (g.n_outputs - 1),), (Fraction(-t),), (False,))
    res = DagBab(g, db).run(Case(box, (unsafe,)), time.monotonic() + 60, 1e-9, input_split=False)
    assert res.status == "verified", res
    tree = res.tree
    assert len(tree.betas) == len(tree.closures) and tree.size > 1
    C, d = torch.tensor(unsafe.C), torch.tensor(unsafe.d)
    for (node, _, margin), beta in zip(tree.closures, tree.betas):
        path, i = [], node
        while i > 0:
            path.append(i)
            i = tree.parent[i]
        splits = [(tree.neurons[tree.what[j]], tree.index[j], tree.value[j], tree.side[j]) for j in reversed(path)]
        assert beta.shape == (1, len(splits)) and np.all(beta >= 0)
        r = db.bound(lo, hi, C, d, clamps=_clamps_of(g, [splits]) or None, splits=[splits],
                     betas=torch.tensor(beta[None]))
        assert bool(r.empty[0]) or float(r.lower[0, 0]) >= margin - 1e-9  # the closure is reproduced
