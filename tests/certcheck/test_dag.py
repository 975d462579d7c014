"""The checker's reading of general ONNX graphs, its rigorous bounds on them, and the ``dag`` proof kind.

* reading: every single-op model and canonical network of tests/ir/nets.py evaluates, on a
  point box, to onnxruntime's output;
* soundness of the bounds: on random boxes, the interval / CROWN bounds of every value
  (intermediate and final) contain onnxruntime's values at sampled points (uniform and
  box corners), and every relaxation line and enclosure holds against 50-digit mpmath;
* the ``dag`` proof: hand-written certificates (input splits, neuron splits, an empty
  domain, a mixed tree) are accepted; a weight of each operation of a model perturbed so
  that a claim is false (checked by sampling) is rejected by the arithmetic (the
  certificate's sha256 updated); forged trees and hostile fields are rejected with a message;
* the checker's bounds are no looser than the producer's engine's (verify.bounds.dag) beyond
  the slack certificates leave (skipped where the engine cannot be imported).
"""

from __future__ import annotations

import copy
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import mpmath
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from tests.ir import nets as irnets
from verify.certcheck import check_certificate
from verify.certcheck.checker import FORMAT, VERSION
from verify.certcheck.dag_bounds import (
    DagBounder,
    SplitTerms,
    elementwise_lines,
    sigmoid_enclosure,
    softmax_bounds,
    tanh_enclosure,
)
from verify.certcheck.dag_network import DagNetwork, Elementwise, MaxPool, Softmax, read_dag
from verify.certcheck.encoding import encode_array
from verify.certcheck.network import UnsupportedModel

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-5  # onnxruntime computes in float32; the bounds are for the real-valued network


# -- models ---------------------------------------------------------------------------------
def _kitchen_sink() -> onnx.ModelProto:
    """Most operators in one graph: normalisation, pad, grouped conv, batch norm, a residual
    join, leaky relu, max and average pools, tanh, concat, flatten, gemm, sigmoid, matmul."""
    rng = np.random.default_rng(21)

    def w(*shape: int) -> np.ndarray:
        return rng.normal(0, 1 / np.sqrt(np.prod(shape[1:])), shape)

    inits = {"mean": rng.normal(0, 0.1, (1, 2, 1, 1)), "std": rng.uniform(0.5, 1.5, (1, 2, 1, 1)),
             "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "W1": w(4, 1, 3, 3), "b1": rng.normal(0, .2, 4),
             "bn_s": rng.uniform(0.5, 1.5, 4), "bn_b": rng.normal(0, .2, 4), "bn_m": rng.normal(0, .2, 4),
             "bn_v": rng.uniform(0.5, 2, 4), "W2": w(4, 4, 3, 3), "b2": rng.normal(0, .2, 4),
             "scale": rng.uniform(0.5, 2, (1, 4, 1, 1)), "Wf": w(6, 72), "bf": rng.normal(0, .2, 6),
             "Wm": w(6, 3), "bm": rng.normal(0, .2, 3)}
    nodes = [helper.make_node("Sub", ["x", "mean"], ["a0"], name="Sub_0"),
             helper.make_node("Div", ["a0", "std"], ["a1"], name="Div_1"),
             helper.make_node("Pad", ["a1", "pads"], ["a2"], name="Pad_2", mode="constant"),
             helper.make_node("Conv", ["a2", "W1", "b1"], ["c1"], name="Conv_3", group=2),
             helper.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], name="BN_4"),
             helper.make_node("Relu", ["bn"], ["r1"], name="Relu_5"),
             helper.make_node("Conv", ["r1", "W2", "b2"], ["c2"], name="Conv_6", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c2", "r1"], ["s1"], name="Add_7"),
             helper.make_node("LeakyRelu", ["s1"], ["lr"], name="LeakyRelu_8", alpha=0.2),
             helper.make_node("MaxPool", ["lr"], ["mp"], name="MaxPool_9", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("AveragePool", ["r1"], ["ap"], name="AveragePool_10", kernel_shape=[3, 3],
                              strides=[2, 2], pads=[1, 1, 0, 0]),
             helper.make_node("Mul", ["ap", "scale"], ["sc"], name="Mul_11"),
             helper.make_node("Tanh", ["sc"], ["th"], name="Tanh_12"),
             helper.make_node("Concat", ["mp", "th"], ["cat"], name="Concat_13", axis=1),
             helper.make_node("Flatten", ["cat"], ["f"], name="Flatten_14"),
             helper.make_node("Gemm", ["f", "Wf", "bf"], ["g1"], name="Gemm_15", transB=1),
             helper.make_node("Sigmoid", ["g1"], ["sg"], name="Sigmoid_16"),
             helper.make_node("MatMul", ["sg", "Wm"], ["mm"], name="MatMul_17"),
             helper.make_node("Add", ["mm", "bm"], ["y"], name="Add_18")]
    return irnets.make_model(nodes, inits, [1, 2, 6, 6])


def _extra_models() -> dict[str, Any]:
    """Operator variants beyond tests/ir/nets.py's (index operations the checker builds by itself)."""
    big = 2**62
    ints = lambda *v: np.array(v, np.int64)  # noqa: E731

    def one(op: str, ins: list[str], inits: dict, shape: list[int], opset: int = 13, **attrs: Any) -> Any:
        return lambda: irnets.make_model([helper.make_node(op, ["x", *ins], ["y"], name=op, **attrs)], inits, shape,
                                         opset=opset)

    def branch_add() -> onnx.ModelProto:  # a variable added to a broadcast variable branch
        nodes = [helper.make_node("Slice", ["x", "s", "e", "a"], ["row"], name="Slice_0"),
                 helper.make_node("Tanh", ["row"], ["t"], name="Tanh_1"),
                 helper.make_node("Sub", ["x", "t"], ["d"], name="Sub_2"),
                 helper.make_node("Neg", ["d"], ["n"], name="Neg_3"),
                 helper.make_node("Concat", ["n", "c"], ["y"], name="Concat_4", axis=2)]
        inits = {"s": ints(0), "e": ints(1), "a": ints(2), "c": np.full((1, 2, 1, 3), 0.5)}
        return irnets.make_model(nodes, inits, [1, 2, 3, 3])

    return {
        "x_slice_negative_steps": one("Slice", ["s", "e", "a", "st"], {"s": ints(-1, 2), "e": ints(-big, -big),
                                      "a": ints(3, 2), "st": ints(-2, -1)}, [1, 2, 3, 5]),
        "x_pad_negative": one("Pad", ["p"], {"p": ints(0, 0, -1, 1, 0, 0, 1, -2)}, [1, 2, 3, 4]),
        "x_pad_reflect": one("Pad", ["p"], {"p": ints(0, 0, 1, 2, 0, 0, 2, 1)}, [1, 2, 4, 4], mode="reflect"),
        "x_pad_edge": one("Pad", ["p"], {"p": ints(0, 1, 1, 0, 0, 0, 0, 2)}, [1, 2, 3, 3], mode="edge"),
        "x_gather_variable": one("Gather", ["i"], {"i": ints(0, 2, -1, 0).reshape(2, 2)}, [1, 2, 3, 4], axis=3),
        "x_maxpool_ceil": one("MaxPool", [], {}, [1, 2, 5, 5], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        "x_maxpool_overlap": one("MaxPool", [], {}, [1, 1, 5, 5], kernel_shape=[3, 3], strides=[1, 1],
                                 pads=[1, 1, 1, 1]),
        "x_transpose_default": one("Transpose", [], {}, [1, 2, 3, 4]),
        "x_flatten_axis0": one("Flatten", [], {}, [1, 2, 3], axis=0),
        "x_squeeze_all": one("Squeeze", [], {}, [1, 3, 1, 2]),
        "x_softmax_coerced_axis2": one("Softmax", [], {}, [1, 2, 2, 3], opset=11, axis=2),
        "x_broadcast_branches": branch_add,
    }


MODELS: dict[str, Any] = {**irnets.op_models(), **irnets.NETWORKS, "kitchen_sink": _kitchen_sink, **_extra_models()}
NETWORKS = [*irnets.NETWORKS, "kitchen_sink", "concat_channels", "softmax_axis1", "softmax_opset11_coerced",
            "maxpool_pads_stride", "conv_transpose2d_groups_dilation", "avgpool_pads_exclude", "batchnorm_4d",
            "pad_input", "matmul_const_left", "gemm_transB0_alpha_beta", "div_const", "x_maxpool_overlap",
            "x_broadcast_branches", "x_pad_reflect", "x_softmax_coerced_axis2"]


def _with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """The model with the given tensors as extra outputs (for onnxruntime)."""
    m = onnx.ModelProto.FromString(model.SerializeToString())
    have = {o.name for o in m.graph.output} | {i.name for i in m.graph.input}
    elem = m.graph.input[0].type.tensor_type.elem_type
    for name in names:
        if name not in have:
            m.graph.output.append(helper.make_tensor_value_info(name, elem, None))
    return m


class _Runner:
    """onnxruntime on a model, returning every tensor the checker names."""

    def __init__(self, model: onnx.ModelProto, net: DagNetwork) -> None:
        self.names = [o.name for o in model.graph.output] + [n for n in net.names if n not in
                                                             {o.name for o in model.graph.output}]
        self.net = net
        m = _with_outputs(model, self.names)
        self.sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        inp = self.sess.get_inputs()[0]
        self.input = inp.name
        self.dtype = np.float64 if "double" in inp.type else np.float32
        self.shape = [d if isinstance(d, int) else 1 for d in inp.shape]
        outs = [o.name for o in self.sess.get_outputs()]
        self.keep = [(k, n) for k, n in enumerate(outs) if n in net.names]

    def __call__(self, x: np.ndarray) -> dict[int, np.ndarray]:
        res = self.sess.run(None, {self.input: np.asarray(x, self.dtype).reshape(self.shape)})
        return {self.net.names[n]: res[k].reshape(-1).astype(np.float64) for k, n in self.keep}


def _read(model: onnx.ModelProto) -> DagNetwork:
    return read_dag(model.SerializeToString())


# -- reading ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(MODELS))
def test_point_boxes_evaluate_like_onnxruntime(name: str) -> None:
    model = MODELS[name]()
    net = _read(model)
    run = _Runner(model, net)
    bounder = DagBounder(net)
    rng = np.random.default_rng(0)
    for _ in range(2):
        x = rng.normal(size=net.n_inputs).astype(run.dtype).astype(np.float64)
        st = bounder.bounds(x[None], x[None])
        for vid, v in run(x).items():
            lo, hi = st.lo[vid][0], st.hi[vid][0]
            assert np.all(hi - lo <= 1e-9 * (1 + np.abs(v))), (name, vid)
            assert np.all(np.abs((lo + hi) / 2 - v) <= TOL * (1 + np.abs(v))), (name, vid)


@pytest.mark.parametrize("name", NETWORKS)
def test_bounds_contain_sampled_values(name: str) -> None:
    """Interval and CROWN bounds of every value contain onnxruntime's values on the box."""
    model = MODELS[name]()
    net = _read(model)
    run = _Runner(model, net)
    bounder = DagBounder(net)
    rng = np.random.default_rng(1)
    c = rng.normal(size=net.n_inputs)
    r = 0.4
    st = bounder.bounds((c - r)[None], (c + r)[None])
    n = net.n_outputs
    lb = bounder.lower(st, np.vstack([np.eye(n), -np.eye(n)]))[0]
    lo, hi = st.lo[net.output][0], st.hi[net.output][0]
    assert np.all(lb[:n] >= lo - 1e-9 * (1 + np.abs(lo))) and np.all(-lb[n:] <= hi + 1e-9 * (1 + np.abs(hi)))
    points = [c + rng.uniform(-r, r, c.shape) for _ in range(60)] + [c + r * rng.choice([-1.0, 1.0], c.shape)
                                                                     for _ in range(60)]
    for x in points:
        for vid, v in run(x).items():
            tol = TOL * (1 + np.abs(v))
            assert np.all(st.lo[vid][0] <= v + tol) and np.all(v <= st.hi[vid][0] + tol), (name, vid)
            if vid == net.output:
                assert np.all(lb[:n] <= v + tol) and np.all(v <= -lb[n:] + tol), name


def test_crown_is_tighter_than_intervals_on_a_deep_net() -> None:
    """On the kitchen sink the final CROWN bounds beat the interval bounds (the back-substitution works)."""
    net = _read(_kitchen_sink())
    bounder = DagBounder(net)
    c = np.random.default_rng(2).normal(size=net.n_inputs)
    st = bounder.bounds((c - 0.2)[None], (c + 0.2)[None])
    n = net.n_outputs
    lb = bounder.lower(st, np.vstack([np.eye(n), -np.eye(n)]))[0]
    width_crown = -lb[n:] - lb[:n]
    width_ibp = st.hi[net.output][0] - st.lo[net.output][0]
    assert np.all(width_crown <= width_ibp) and np.any(width_crown < 0.9 * width_ibp)


def _unsupported(nodes: list[Any], inits: dict[str, np.ndarray], shape: list[int], **kw: Any) -> str:
    model = irnets.make_model(nodes, inits, shape, **kw)
    with pytest.raises(UnsupportedModel) as info:
        _read(model)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unsupported_models_are_refused_with_one_line() -> None:
    w = np.ones((3, 3), np.float32)
    assert "two variables" in _unsupported([helper.make_node("Mul", ["x", "x"], ["y"], name="m")], {}, [1, 3])
    assert "after Softmax" in _unsupported([helper.make_node("Softmax", ["x"], ["s"], name="s"),
                                            helper.make_node("Relu", ["s"], ["y"], name="r")], {}, [1, 3])
    assert "alpha" in _unsupported([helper.make_node("LeakyRelu", ["x"], ["y"], name="l", alpha=2.0)], {}, [1, 3])
    assert "outside the checker's subset" in _unsupported([helper.make_node("Exp", ["x"], ["y"], name="e")], {},
                                                          [1, 3])
    assert "two variables" in _unsupported([helper.make_node("MatMul", ["x", "x"], ["y"], name="mm")], {}, [3, 3])
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
             helper.make_node("Relu", ["h"], ["y"], name="r")]
    model = irnets.make_model(nodes, {"W": w}, [1, 3])
    model.graph.node[1].domain = "custom.domain"
    with pytest.raises(UnsupportedModel, match="domain"):
        read_dag(model.SerializeToString())
    with pytest.raises(UnsupportedModel, match="not a readable ONNX file"):
        read_dag(b"\xff" * 20)


# -- relaxations and enclosures against 50-digit arithmetic ------------------------------------
def _mp_f(fn: str, z: float, alpha: float) -> Any:
    v = mpmath.mpf(z)
    if fn == "sigmoid":
        return 1 / (1 + mpmath.exp(-v))
    if fn == "tanh":
        return mpmath.tanh(v)
    return v if v >= 0 else mpmath.mpf(alpha) * v


@pytest.mark.parametrize("fn", ["sigmoid", "tanh", "relu", "leaky_relu"])
def test_relaxation_lines_hold_exactly(fn: str) -> None:
    mpmath.mp.dps = 50
    rng = np.random.default_rng(3)
    n = 400
    c = rng.normal(0, 3, n) * rng.choice([1e-3, 1.0, 10.0], n)
    w = np.abs(rng.normal(0, 2, n)) * rng.choice([1e-12, 1e-9, 1e-6, 1.0, 10.0], n)
    l, u = c - w, c + w
    l[:6], u[:6] = [-1e-10, 0.0, -3.0, -50.0, 0.0, -2.0], [1e-10, 5.0, 0.0, 60.0, 1e-300, 0.5]
    # an end within rounding of the inflection point (the lines of the neighbouring case, checked)
    l[6:16] = [-1e-15, -1e-12, -3e-10, -8e-10, -1e-300, -4.0, -0.3, -7.0, -1e-3, -2.0]
    u[6:16] = [0.3, 2.0, 7.0, 1e-3, 4.0, 1e-15, 1e-12, 3e-10, 8e-10, 1e-300]
    alpha = float(np.float32(0.1)) if fn == "leaky_relu" else 0.0
    op = Elementwise(inputs=(0,), output=1, name="", fn=fn, alpha=alpha)
    a_l, b_l, a_u, b_u = (a[0] for a in elementwise_lines(op, l[None], u[None]))
    for i in range(n):
        for z in np.r_[l[i], u[i], (l[i] + u[i]) / 2, rng.uniform(l[i], u[i], 3), np.clip(0.0, l[i], u[i])]:
            f = _mp_f(fn, float(z), alpha)
            zz = mpmath.mpf(float(z))
            assert mpmath.mpf(float(a_l[i])) * zz + mpmath.mpf(float(b_l[i])) <= f, (fn, l[i], u[i], z)
            assert mpmath.mpf(float(a_u[i])) * zz + mpmath.mpf(float(b_u[i])) >= f, (fn, l[i], u[i], z)
    if fn in ("sigmoid", "tanh"):  # the relaxation is close to the exact rules: tight on narrow intervals
        narrow = (u - l) < 1e-6
        gap = (a_u - a_l) * u + (b_u - b_l)
        assert np.all(gap[narrow] < 1e-6)


def test_max_pool_relaxation_holds_with_near_ties() -> None:
    """Windows whose bounds tie within rounding: ``y >= x_sel`` and ``y <= x_sel + delta`` (or the
    constant upper bound) hold at sampled points, and an exact tie gives delta 0."""
    win = np.array([[0, 1, 2], [1, 2, 3], [3, 4, -1]])
    op = MaxPool(inputs=(0,), output=1, name="mp", win=win, multiplicity=2)
    net = DagNetwork((5,), [5, 3], [op], 1, {"x": 0}, [True, False], {1: 0}, {"x": 0})
    rng = np.random.default_rng(8)
    for _ in range(200):
        l = rng.normal(size=5)
        u = l + np.abs(rng.normal(size=5)) * rng.choice([0.0, 1e-12, 1.0], 5)
        i, j = rng.choice(5, 2, replace=False)
        l[i] = u[j] - rng.choice([0.0, 1e-13, -1e-13, 0.5])  # a (near) tie between windows' entries
        u = np.maximum(u, l)
        st = DagBounder(net).bounds(l[None], u[None])
        sel, relaxed, ucap, delta = (a[0] for a in st.lines[0])
        for x in rng.uniform(l, u, (30, 5)):
            y = np.array([max(x[k] for k in w if k >= 0) for w in win])
            assert np.all(y >= x[sel])
            assert np.all(np.where(relaxed, y <= ucap, y <= x[sel] + delta))
        exact = ~relaxed
        assert np.all(delta[exact] <= 1e-9 * (1 + np.abs(u).max()))


def test_enclosures_of_sigmoid_tanh_and_softmax() -> None:
    mpmath.mp.dps = 50
    rng = np.random.default_rng(4)
    xs = np.r_[rng.normal(0, 5, 300), [0.0, -0.0, 1e-300, -1e-300, 40.0, -40.0, 800.0, -800.0, 1e-9, -1e-9]]
    for enclose, f, df in ((sigmoid_enclosure, lambda z: 1 / (1 + mpmath.exp(-z)),
                            lambda z: mpmath.exp(-z) / (1 + mpmath.exp(-z)) ** 2),
                           (tanh_enclosure, mpmath.tanh, lambda z: 1 - mpmath.tanh(z) ** 2)):
        lo, hi, dlo, dhi = enclose(xs)
        assert np.all(hi - lo < 1e-14) and np.all(dhi - dlo < 1e-14)
        for i, x in enumerate(xs):
            z = mpmath.mpf(float(x))
            assert lo[i] <= f(z) <= hi[i] and dlo[i] <= df(z) <= dhi[i], x
    groups = np.arange(12).reshape(3, 4)
    op = Softmax(inputs=(0,), output=1, name="", groups=groups)
    l = rng.normal(0, 3, (5, 12))
    u = l + np.abs(rng.normal(0, 1, (5, 12))) * rng.choice([0.0, 1e-6, 1.0, 30.0], (5, 12))
    lo, hi = softmax_bounds(op, l, u)
    for n in range(5):
        for _ in range(20):
            z = rng.uniform(l[n], u[n])
            for g in groups:
                e = [mpmath.exp(mpmath.mpf(float(v))) for v in z[g]]
                for j, i in enumerate(g):
                    assert lo[n, i] <= e[j] / sum(e) <= hi[n, i]


# -- certificates -------------------------------------------------------------------------------
def _write_model(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def _vnnlib(path: Path, lo: np.ndarray, hi: np.ndarray, n_out: int, unsafe: list[tuple[int, float]]) -> Path:
    """Box ``[lo, hi]``; unsafe: the disjunction of ``Y_k >= t`` over ``unsafe``."""
    lines = [f"(declare-const X_{i} Real)" for i in range(lo.size)] + \
        [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    lines += [f"(assert (>= X_{i} {float(lo[i])!r}))\n(assert (<= X_{i} {float(hi[i])!r}))" for i in range(lo.size)]
    if len(unsafe) == 1:
        lines.append(f"(assert (>= Y_{unsafe[0][0]} {float(unsafe[0][1])!r}))")
    else:
        lines.append("(assert (or " + " ".join(f"(and (>= Y_{k} {float(t)!r}))" for k, t in unsafe) + "))")
    path.write_text("\n".join(lines) + "\n")
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cert(model: Path, spec: Path, neurons: list[str], tree: dict[str, list], closures: list[tuple]) -> dict:
    """A ``dag`` certificate; ``tree`` has columns parent, what, index, value, side (node 0 included)."""
    dtypes = {"parent": "<i4", "what": "<i4", "index": "<i8", "value": "<f8", "side": "|i1"}
    body = {"neurons": neurons,
            "tree": {k: encode_array(np.asarray(tree[k]), dtypes[k]) for k in dtypes},
            "closures": {"node": encode_array(np.array([c[0] for c in closures]), "<i4"),
                         "polytope": encode_array(np.array([c[1] for c in closures]), "<i2"),
                         "margin": encode_array(np.array([c[2] for c in closures], dtype=np.float64))}}
    return {"format": FORMAT, "version": VERSION, "model": {"sha256": _sha(model)}, "spec": {"sha256": _sha(spec)},
            "verdict": "verified", "cases": [{"case": 0, "kind": "dag", "dag": body}]}


ROOT_TREE = {"parent": [-1], "what": [-1], "index": [0], "value": [0.0], "side": [0]}


def _split_tree(d: int, v: float) -> dict[str, list]:
    return {"parent": [-1, 0, 0], "what": [-1, -1, -1], "index": [0, d, d], "value": [0.0, v, v],
            "side": [0, 0, 1]}


class Instance:
    """A model, a box, its input split in two along input 0, and the property ``y_0 >= t``
    unreachable with ``t`` above the checker's bound on both halves."""

    def __init__(self, tmp: Path, model: onnx.ModelProto, radius: float = 0.3, seed: int = 5) -> None:
        self.model = model
        self.net = _read(model)
        self.bounder = DagBounder(self.net)
        rng = np.random.default_rng(seed)
        n = self.net.n_inputs
        self.lo = np.round(rng.normal(size=n), 3) - radius
        self.hi = self.lo + 2 * radius
        self.mid = float((self.lo[0] + self.hi[0]) / 2)
        self.halves = [(self.lo.copy(), self.hi.copy()), (self.lo.copy(), self.hi.copy())]
        self.halves[0][1][0] = self.mid
        self.halves[1][0][0] = self.mid
        ub = [self._upper(lo, hi) for lo, hi in self.halves]
        self.t = float(max(ub) + 0.01 * (1 + abs(max(ub))))
        self.margins = [self.t - b for b in ub]  # the checker's margins on the halves
        self.model_path = _write_model(model, tmp / "model.onnx")
        self.spec_path = _vnnlib(tmp / "prop.vnnlib", self.lo, self.hi, self.net.n_outputs, [(0, self.t)])
        self.run = _Runner(model, self.net)

    def _upper(self, lo: np.ndarray, hi: np.ndarray, clamps: dict | None = None) -> float:
        st = self.bounder.bounds(lo[None], hi[None], clamps)
        row = np.zeros((1, self.net.n_outputs))
        row[0, 0] = -1.0
        return float(-self.bounder.lower(st, row)[0, 0])

    def cert(self, shrink: float = 0.999) -> dict:
        closures = [(1, 0, self.margins[0] * shrink), (2, 0, self.margins[1] * shrink)]
        return _cert(self.model_path, self.spec_path, [], _split_tree(0, self.mid), closures)

    def sample_max(self, run: _Runner, lo: np.ndarray, hi: np.ndarray, k: int = 60) -> float:
        rng = np.random.default_rng(6)
        pts = [rng.uniform(lo, hi) for _ in range(k)] + [np.where(rng.random(lo.size) < 0.5, lo, hi)
                                                         for _ in range(k)]
        return max(float(run(x)[self.net.output][0]) for x in pts)


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Instance:
    return Instance(tmp_path_factory.mktemp("sink"), _kitchen_sink(), radius=0.05)


def _valid(inst: Instance, cert: dict, model: Path | None = None) -> Any:
    return check_certificate(model or inst.model_path, inst.spec_path, cert)


def test_an_input_split_certificate_is_accepted(sink: Instance) -> None:
    report = _valid(sink, sink.cert())
    assert report.valid and report.claims_checked == 2, report.message
    # the property is true (sampling), and claiming more than its sampled gap is refused
    worst = max(sink.sample_max(sink.run, lo, hi) for lo, hi in sink.halves)
    assert worst < sink.t
    forged = _cert(sink.model_path, sink.spec_path, [], _split_tree(0, sink.mid),
                   [(1, 0, sink.t - worst + 1e-3), (2, 0, sink.t - worst + 1e-3)])
    report = _valid(sink, forged)
    assert not report.valid and "claims margin" in report.message


@pytest.mark.parametrize("name", ["residual_net", "maxpool_net", "conv_pad_avgpool_net", "tanh_net", "sigmoid_net",
                                  "leaky_relu_net", "dropout_cnn1d_net", "softmax_net"])
def test_certificates_on_the_canonical_networks(name: str, tmp_path: Path) -> None:
    inst = Instance(tmp_path, MODELS[name](), radius=0.2)
    report = _valid(inst, inst.cert())
    assert report.valid, report.message
    too_much = inst.cert(shrink=1.0)
    margins = np.array([inst.t - inst.sample_max(inst.run, lo, hi) for lo, hi in inst.halves]) + 1e-6
    too_much["cases"][0]["dag"]["closures"]["margin"] = encode_array(margins)
    assert not _valid(inst, too_much).valid


def _unstable_neuron(inst: Instance, name: str) -> tuple[int, int, float, float]:
    st = inst.bounder.bounds(inst.lo[None], inst.hi[None])
    vid = inst.net.neurons[name]
    l, u = st.lo[vid][0], st.hi[vid][0]
    k = int(np.argmax(np.minimum(-l, u)))
    assert l[k] < 0 < u[k]
    return vid, k, float(l[k]), float(u[k])


def test_a_neuron_split_certificate_is_accepted(sink: Instance) -> None:
    vid, k, l, u = _unstable_neuron(sink, "bn")
    m = sink.net.sizes[vid]
    margins = []
    for side in (0, 1):
        lo_c, hi_c = np.full((1, m), -np.inf), np.full((1, m), np.inf)
        (hi_c if side == 0 else lo_c)[0, k] = 0.0
        margins.append(sink.t - sink._upper(sink.lo, sink.hi, {vid: (lo_c, hi_c)}))
    assert min(margins) > 0
    tree = {"parent": [-1, 0, 0], "what": [-1, 0, 0], "index": [0, k, k], "value": [0.0, 0.0, 0.0],
            "side": [0, 0, 1]}
    cert = _cert(sink.model_path, sink.spec_path, ["bn"], tree, [(1, 0, margins[0] * 0.999),
                                                                 (2, 0, margins[1] * 0.999)])
    report = _valid(sink, cert)
    assert report.valid, report.message
    # the same tree on a tensor that is not the input of a non-linear operation
    for bad in ("c2", "f", "y", "nonexistent"):
        forged = copy.deepcopy(cert)
        forged["cases"][0]["dag"]["neurons"] = [bad]
        report = _valid(sink, forged)
        assert not report.valid and "not the input of a non-linear" in report.message, bad
    # claiming each side's margin on the other side fails on one of them
    swapped = _cert(sink.model_path, sink.spec_path, ["bn"], tree, [(1, 0, margins[1] * 1.001 + 1e-3),
                                                                    (2, 0, margins[0] * 1.001 + 1e-3)])
    assert not _valid(sink, swapped).valid


def test_an_empty_domain_closes_anything(sink: Instance) -> None:
    """A neuron split beyond the neuron's bound leaves one side empty: any claim on it holds."""
    vid, k, l, u = _unstable_neuron(sink, "s1")
    v = u + 1.0
    tree = {"parent": [-1, 0, 0], "what": [-1, 0, 0], "index": [0, k, k], "value": [0.0, v, v], "side": [0, 0, 1]}
    root_margin = sink.t - sink._upper(sink.lo, sink.hi)
    cert = _cert(sink.model_path, sink.spec_path, ["s1"], tree, [(1, 0, 0.999 * root_margin), (2, 0, 1e6)])
    assert root_margin > 0
    report = _valid(sink, cert)
    assert report.valid, report.message
    # splitting inside the bounds does not empty the side: the huge claim fails
    inside = copy.deepcopy(tree)
    inside["value"] = [0.0, (l + u) / 2, (l + u) / 2]
    cert = _cert(sink.model_path, sink.spec_path, ["s1"], inside, [(1, 0, 0.5 * root_margin), (2, 0, 1e6)])
    report = _valid(sink, cert)
    assert not report.valid and "node 2" in report.message


def _mutations(w: np.ndarray) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    scale = float(np.abs(w).mean()) + 0.1
    out = []
    for m in (0.3, 1.0, 3.0, 10.0):
        for sign in rng.choice([-1.0, 1.0], (4, *w.shape)):
            out.append(w + m * scale * sign)
        out += [w * (1 + m), w * -m]
    return out


# the initializers of the kitchen sink (one or more per operation) and whether to perturb them multiplicatively
SINK_WEIGHTS = ["mean", "std", "W1", "b1", "bn_s", "bn_b", "bn_m", "bn_v", "W2", "b2", "scale", "Wf", "bf", "Wm",
                "bm"]


@pytest.mark.parametrize("weight", SINK_WEIGHTS)
def test_a_perturbed_weight_is_rejected_by_the_arithmetic(sink: Instance, weight: str, tmp_path: Path) -> None:
    """A weight perturbed so that one closure's claim is false (found by sampling) is refused,
    with the model's new sha256 in the certificate: the recomputed bound rejects it."""
    base = sink.model
    init = next(t for t in base.graph.initializer if t.name == weight)
    w = numpy_helper.to_array(init).astype(np.float64)
    for cand in _mutations(w):
        if weight in ("std", "bn_v"):
            cand = np.abs(cand) + 0.05  # stays a valid division / variance
        model = onnx.ModelProto.FromString(base.SerializeToString())
        t = next(t for t in model.graph.initializer if t.name == weight)
        t.CopyFrom(numpy_helper.from_array(cand.astype(np.float32), weight))
        run = _Runner(model, sink.net)
        claims = [sink.t - 0.999 * m for m in sink.margins]  # each half claims y_0 <= t - margin
        if any(sink.sample_max(run, lo, hi, 30) > c for (lo, hi), c in zip(sink.halves, claims)):
            break
    else:
        pytest.fail(f"no perturbation of {weight} falsifies a claim")
    path = _write_model(model, tmp_path / "mutated.onnx")
    cert = sink.cert()
    report = check_certificate(path, sink.spec_path, cert)
    assert not report.valid and "sha256" in report.message
    cert["model"]["sha256"] = _sha(path)
    report = check_certificate(path, sink.spec_path, cert)
    assert not report.valid and "closure of node" in report.message, report.message


@pytest.mark.parametrize("forgery, says", [
    (lambda t: t.__setitem__("side", [0, 0, 0]), "two halves"),
    (lambda t: t.__setitem__("value", [0.0, 0.1, 0.2]), "two halves"),
    (lambda t: t.__setitem__("index", [0, 0, 1]), "two halves"),
    (lambda t: t.__setitem__("what", [-1, -1, 0]), "malformed"),
    (lambda t: t.__setitem__("parent", [-1, 0, 2]), "malformed"),
    (lambda t: t.__setitem__("parent", [0, 0, 0]), "malformed split tree"),
    (lambda t: t.__setitem__("side", [0, 0, 2]), "malformed"),
    (lambda t: t.__setitem__("index", [0, 10**9, 10**9]), "malformed"),
    (lambda t: t.__setitem__("value", [0.0, 99.0, 99.0]), "outside the node's box"),
])
def test_forged_trees_are_rejected(sink: Instance, forgery: Any, says: str) -> None:
    tree = _split_tree(0, sink.mid)
    forgery(tree)
    forged = _cert(sink.model_path, sink.spec_path, [], tree, [(1, 0, 1e-3), (2, 0, 1e-3)])
    report = _valid(sink, forged)
    assert not report.valid and says in report.message, report.message


def test_coverage_and_closures(sink: Instance, tmp_path: Path) -> None:
    tree = _split_tree(0, sink.mid)
    half = [(1, 0, 1e-3)]  # node 2 is not closed
    report = _valid(sink, _cert(sink.model_path, sink.spec_path, [], tree, half))
    assert not report.valid and "leaf 2 is not closed" in report.message
    one_child = {k: v[:2] for k, v in tree.items()}
    report = _valid(sink, _cert(sink.model_path, sink.spec_path, [], one_child, [(1, 0, 1e-3)]))
    assert not report.valid and "two halves" in report.message
    for bad in ([(1, 0, 0.0), (2, 0, 1e-3)], [(1, 1, 1e-3), (2, 0, 1e-3)], [(3, 0, 1e-3), (2, 0, 1e-3)]):
        report = _valid(sink, _cert(sink.model_path, sink.spec_path, [], tree, bad))
        assert not report.valid and "malformed closures" in report.message
    # the root's bound alone does not refute the property (the split is needed)
    root = _cert(sink.model_path, sink.spec_path, [], ROOT_TREE, [(0, 0, min(sink.margins) * 0.999)])
    assert sink.t - sink._upper(sink.lo, sink.hi) < min(sink.margins) * 0.999
    assert not _valid(sink, root).valid
    # two unsafe polytopes: each leaf needs a closure for both
    spec = _vnnlib(tmp_path / "two.vnnlib", sink.lo, sink.hi, sink.net.n_outputs, [(0, sink.t), (0, sink.t + 1)])
    closures = [(1, 0, sink.margins[0] * 0.9), (2, 0, sink.margins[1] * 0.9), (0, 1, 0.5)]
    cert = _cert(sink.model_path, spec, [], tree, closures)
    report = check_certificate(sink.model_path, spec, cert)
    assert report.valid, report.message
    cert = _cert(sink.model_path, spec, [], tree, closures[:2])
    report = check_certificate(sink.model_path, spec, cert)
    assert not report.valid and "unsafe polytope 1" in report.message


@pytest.mark.parametrize("edit, says", [
    (lambda b: b.__setitem__("neurons", "bn"), "neurons: expected a list"),
    (lambda b: b.__setitem__("neurons", [3]), "neurons[0]: expected a string"),
    (lambda b: b["tree"].pop("what"), "tree: missing key 'what'"),
    (lambda b: b["tree"].__setitem__("value", encode_array(np.array([0.0, np.nan, np.nan]))), "finite"),
    (lambda b: b["tree"].__setitem__("index", encode_array(np.zeros(3), "<f8")), "integer array"),
    (lambda b: b["closures"].__setitem__("margin", encode_array(np.zeros((1, 2)))), "1-dimensional"),
    (lambda b: b.pop("closures"), "missing key 'closures'"),
])
def test_hostile_fields_are_malformed_certificates(sink: Instance, edit: Any, says: str) -> None:
    cert = sink.cert()
    edit(cert["cases"][0]["dag"])
    report = _valid(sink, cert)
    assert not report.valid and "malformed certificate" in report.message and says in report.message, \
        report.message


def test_a_model_outside_the_subset_is_rejected(sink: Instance, tmp_path: Path) -> None:
    model = onnx.ModelProto.FromString(sink.model.SerializeToString())
    model.graph.node[-1].op_type = "Mul"  # y = mm * bm: still linear, but give it a variable operand
    model.graph.node[-1].input[1] = "mm"
    path = _write_model(model, tmp_path / "bad.onnx")
    cert = sink.cert()
    cert["model"]["sha256"] = _sha(path)
    report = check_certificate(path, sink.spec_path, cert)
    assert not report.valid and "cannot read it as a graph" in report.message and "two variables" in report.message


def test_the_dag_reader_does_not_import_onnx(sink: Instance) -> None:
    code = ("import sys\nfrom verify.certcheck.dag_network import read_dag\n"
            f"read_dag({str(sink.model_path)!r})\n"
            "print(sorted(m for m in ('onnx', 'torch', 'ml_dtypes', 'onnxruntime') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"



def test_bounds_agree_with_the_producers_engine() -> None:
    """The checker's rigorous CROWN bounds reproduce the bound engine's (verify.bounds.dag, float64,
    the same rules) within the slack certificates leave, 1e-9 (1 + |m|): a certificate the engine
    writes is one the checker can confirm.  Skipped where the engine is not importable."""
    engine = pytest.importorskip("verify.bounds.dag")
    onnx_import = pytest.importorskip("verify.ir.onnx_import")
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    for name in ["residual_net", "maxpool_net", "sigmoid_net", "softmax_net", "kitchen_sink"]:
        model = MODELS[name]()
        net = _read(model)
        bounder = DagBounder(net)
        producer = engine.DagBounder(onnx_import.graph_from_onnx(model))
        n = net.n_outputs
        C = np.vstack([np.eye(n), -np.eye(n)])
        for r in (0.4,):  # on the kitchen sink, bounds within rounding of 0 before a tanh
            c = rng.normal(size=net.n_inputs)
            ours = bounder.lower(bounder.bounds((c - r)[None], (c + r)[None]), C)[0]
            theirs = producer.bound(torch.tensor((c - r)[None]), torch.tensor((c + r)[None]),
                                    torch.tensor(C)).lower[0].numpy()
            assert np.all(ours >= theirs - 1e-9 * (1 + np.abs(theirs))), (name, r, ours - theirs)


def test_a_mixed_tree_keeps_each_nodes_own_splits(sink: Instance) -> None:
    """Input split, then a neuron split under the first half: each closure is checked on its own
    box and its own path's clamps (the second half does not inherit its sibling's clamps)."""
    vid, k, _, _ = _unstable_neuron(sink, "bn")
    m = sink.net.sizes[vid]

    def margin(half: int, side: int | None) -> float:
        lo_c, hi_c = np.full((1, m), -np.inf), np.full((1, m), np.inf)
        if side is not None:
            (hi_c if side == 0 else lo_c)[0, k] = 0.0
        lo, hi = sink.halves[half]
        return sink.t - sink._upper(lo, hi, {vid: (lo_c, hi_c)})

    m3, m4, m2 = margin(0, 0), margin(0, 1), margin(1, None)
    tree = {"parent": [-1, 0, 0, 1, 1], "what": [-1, -1, -1, 0, 0], "index": [0, 0, 0, k, k],
            "value": [0.0, sink.mid, sink.mid, 0.0, 0.0], "side": [0, 0, 1, 0, 1]}
    good = [(3, 0, 0.999 * m3), (4, 0, 0.999 * m4), (2, 0, 0.999 * m2)]
    report = _valid(sink, _cert(sink.model_path, sink.spec_path, ["bn"], tree, good))
    assert report.valid and report.claims_checked == 3, report.message
    leaked = max(margin(1, 0), margin(1, 1))  # what node 2 would get with a sibling's clamp
    assert leaked > 1.001 * m2  # so the next claim holds only if clamps leaked
    report = _valid(sink, _cert(sink.model_path, sink.spec_path, ["bn"], tree, good[:2] + [(2, 0, 0.999 * leaked)]))
    assert not report.valid and "node 2" in report.message


# -- split multipliers (beta) ---------------------------------------------------------------------
def _two_layer_relu(seed: int) -> onnx.ModelProto:
    """x [1, 2] -> 4 relus -> 4 relus -> y [1, 1] (the second layer's pre-activations are ``h2``)."""
    rng = np.random.default_rng(seed)
    inits = {"W1": rng.normal(size=(2, 4)), "b1": rng.normal(0, .3, 4), "W2": rng.normal(size=(4, 4)) / 2,
             "b2": rng.normal(0, .3, 4), "W3": rng.normal(size=(4, 1))}
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["m1"], name="mm1"),
             helper.make_node("Add", ["m1", "b1"], ["h1"], name="add1"),
             helper.make_node("Relu", ["h1"], ["r1"], name="relu1"),
             helper.make_node("MatMul", ["r1", "W2"], ["m2"], name="mm2"),
             helper.make_node("Add", ["m2", "b2"], ["h2"], name="add2"),
             helper.make_node("Relu", ["h2"], ["r2"], name="relu2"),
             helper.make_node("MatMul", ["r2", "W3"], ["y"], name="mm3")]
    return irnets.make_model(nodes, inits, [1, 2])


def _beta_bound(bounder: DagBounder, lo: np.ndarray, hi: np.ndarray, path: list[tuple[int, int, float, int]],
                C: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """The checker's bound of ``C y`` on the box with the path's neuron splits (clamps) and ``betas`` ``[m, k]``."""
    clamps: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for vid, k, v, side in path:
        m = bounder.net.sizes[vid]
        cl = clamps.setdefault(vid, (np.full((1, m), -np.inf), np.full((1, m), np.inf)))
        if side == 0:
            cl[1][0, k] = min(cl[1][0, k], v)
        else:
            cl[0][0, k] = max(cl[0][0, k], v)
    st = bounder.bounds(lo[None], hi[None], clamps)
    return bounder.lower(st, C, SplitTerms.from_paths([path], betas[None]))[0]


def test_beta_bounds_hold_at_sampled_points_of_the_domain() -> None:
    """With betas >= 0 (along random directions, scaled from 0 up to past the best scale, so some bounds are
    as tight as betas make them) and paths of several neuron splits at values away from 0 (both layers, both
    sides, a neuron split twice), the bound of ``C y`` stays below ``C y`` at every sampled point satisfying
    the splits; and some betas beat zero betas (they are applied)."""
    model = _two_layer_relu(6)
    net = _read(model)
    run = _Runner(model, net)
    bounder = DagBounder(net)
    v1, v2 = net.neurons["h1"], net.neurons["h2"]
    rng = np.random.default_rng(11)
    lo, hi = -np.ones(2), np.ones(2)
    values = [run(x) for x in rng.uniform(lo, hi, (4000, 2))]
    C = np.array([[1.0], [-1.0]])
    tried = helped = 0
    for _ in range(60):
        path = []
        for _ in range(int(rng.integers(1, 4))):
            vid = v1 if rng.random() < 0.5 else v2
            k = int(rng.integers(4))
            v = float(np.quantile([val[vid][k] for val in values], rng.uniform(0.2, 0.8)))
            path.append((vid, k, v, int(rng.integers(2))))
        inside = [val for val in values if all((val[vid][k] - v) * (1 if s else -1) >= 1e-4 for vid, k, v, s in path)]
        if len(inside) < 20:
            continue
        tried += 1
        ys = np.array([val[net.output][0] for val in inside])
        sampled = (C * ys[None, :]).min(axis=1)
        direction = rng.exponential(1.0, (2, len(path)))
        zero = _beta_bound(bounder, lo, hi, path, C, np.zeros((2, len(path))))
        for scale in (0.0, 0.03, 0.1, 0.3, 1.0, 3.0):
            lb = _beta_bound(bounder, lo, hi, path, C, scale * direction)
            assert np.all(lb <= sampled + TOL * (1 + np.abs(ys).max())), (path, scale, lb, sampled)
            helped += bool(np.any(lb > zero + 1e-6))
    assert tried >= 20 and helped >= 10, (tried, helped)


class BetaInstance:
    """The two-layer relu net on ``[-1, 1]^2``, split on the most helpful ``h2`` neuron at 0, and the
    property ``y >= t`` unreachable with ``t`` between the two halves' bounds with and without betas:
    zero betas fail on at least one half, each half's best beta (a grid search with the checker's own
    bound function) closes it."""

    GRID = np.linspace(0.0, 4.0, 81)

    def __init__(self, tmp: Path) -> None:
        self.model = _two_layer_relu(6)
        self.net = _read(self.model)
        self.bounder = DagBounder(self.net)
        self.lo, self.hi = -np.ones(2), np.ones(2)
        vid = self.net.neurons["h2"]
        C = np.array([[-1.0]])  # -y >= bound: y <= -bound
        best: tuple[float, int, list, list] | None = None
        st = self.bounder.bounds(self.lo[None], self.hi[None])
        for k in range(4):
            if not st.lo[vid][0, k] < 0 < st.hi[vid][0, k]:
                continue
            zero, top, beta = [], [], []
            for side in (0, 1):
                ub = [-_beta_bound(self.bounder, self.lo, self.hi, [(vid, k, 0.0, side)], C,
                                   np.full((1, 1), b))[0] for b in self.GRID]
                zero.append(ub[0])
                top.append(min(ub))
                beta.append(float(self.GRID[int(np.argmin(ub))]))
            gap = max(zero) - max(top)
            if best is None or gap > best[0]:
                best = (gap, k, top, beta)
        assert best is not None and best[0] > 0.1, best  # zero betas are worse by a clear margin
        gap, self.k, ubs, self.betas = best
        self.t = max(ubs) + 0.1 * gap
        self.margins = [self.t - u for u in ubs]
        self.zero_margins = [self.t + _beta_bound(self.bounder, self.lo, self.hi, [(vid, self.k, 0.0, s)], C,
                                                  np.zeros((1, 1)))[0] for s in (0, 1)]
        assert min(self.zero_margins) < 0 < min(self.margins)
        self.model_path = _write_model(self.model, tmp / "model.onnx")
        self.spec_path = _vnnlib(tmp / "prop.vnnlib", self.lo, self.hi, 1, [(0, self.t)])

    def cert(self, betas: list[Any] | None = None, closures: list[tuple] | None = None) -> dict:
        tree = {"parent": [-1, 0, 0], "what": [-1, 0, 0], "index": [0, self.k, self.k], "value": [0.0, 0.0, 0.0],
                "side": [0, 0, 1]}
        closures = closures or [(1, 0, 0.999 * self.margins[0]), (2, 0, 0.999 * self.margins[1])]
        cert = _cert(self.model_path, self.spec_path, ["h2"], tree, closures)
        if betas is None:
            betas = [{"closure": j, "values": encode_array(np.array([[b]]))} for j, b in enumerate(self.betas)]
        cert["cases"][0]["dag"]["betas"] = betas
        return cert


@pytest.fixture(scope="module")
def beta_inst(tmp_path_factory: pytest.TempPathFactory) -> BetaInstance:
    return BetaInstance(tmp_path_factory.mktemp("beta"))


def _beta_report(inst: BetaInstance, cert: dict) -> Any:
    return check_certificate(inst.model_path, inst.spec_path, cert)


def test_a_certificate_that_holds_only_with_betas_is_accepted(beta_inst: BetaInstance) -> None:
    inst = beta_inst
    # the property is true (sampling), the betas' certificate is accepted, without betas it is not
    run = _Runner(inst.model, inst.net)
    xs = np.random.default_rng(12).uniform(inst.lo, inst.hi, (3000, 2))
    assert max(float(run(x)[inst.net.output][0]) for x in xs) < inst.t
    report = _beta_report(inst, inst.cert())
    assert report.valid and report.claims_checked == 2, report.message
    report = _beta_report(inst, inst.cert(betas=[]))
    assert not report.valid and "claims margin" in report.message
    # each closure is checked with its own betas: a second closure of node 2 (same polytope) with zero betas fails
    closures = [(1, 0, 0.999 * inst.margins[0]), (2, 0, 0.999 * inst.margins[1]), (2, 0, 0.999 * inst.margins[1])]
    same = inst.cert(closures=closures, betas=inst.cert()["cases"][0]["dag"]["betas"] + [
        {"closure": 2, "values": encode_array(np.array([[inst.betas[1]]]))}])
    report = _beta_report(inst, same)
    assert report.valid and report.claims_checked == 3, report.message
    side = int(np.argmin(inst.zero_margins))
    closures = [(1, 0, 0.999 * inst.margins[0]), (2, 0, 0.999 * inst.margins[1]), (1 + side, 0, 1e-6)]
    zero = inst.cert(closures=closures, betas=inst.cert()["cases"][0]["dag"]["betas"] + [
        {"closure": 2, "values": encode_array(np.zeros((1, 1)))}])
    report = _beta_report(inst, zero)
    assert not report.valid and f"node {1 + side}" in report.message


@pytest.mark.parametrize("edit, says", [
    (lambda b, v: b[1].__setitem__("values", encode_array(np.array([[-v[1] - 0.1]]))), ">= 0"),
    (lambda b, v: b[1].__setitem__("values", encode_array(np.array([[np.nan]]))), "finite"),
    (lambda b, v: b[1].__setitem__("values", encode_array(np.array([[np.inf]]))), "finite"),
    (lambda b, v: b[1].__setitem__("values", encode_array(np.array([[v[1]]]), "<f4")), "<f8"),
    (lambda b, v: b[1].__setitem__("values", encode_array(np.array([v[1]]))), "2-dimensional"),
    (lambda b, v: b[1].__setitem__("closure", 0), "a second entry for closure 0"),
    (lambda b, v: b[1].__setitem__("closure", -1), "closure's index"),
    (lambda b, v: b[1].__setitem__("closure", 1.0), "whole number"),
    (lambda b, v: b[1].pop("values"), "missing key 'values'"),
    (lambda b, v: b.__setitem__(1, [1]), "expected an object"),
])
def test_hostile_betas_are_malformed_certificates(beta_inst: BetaInstance, edit: Any, says: str) -> None:
    cert = beta_inst.cert()
    edit(cert["cases"][0]["dag"]["betas"], beta_inst.betas)
    report = _beta_report(beta_inst, cert)
    assert not report.valid and "malformed certificate" in report.message and says in report.message, \
        report.message


def test_betas_that_do_not_fit_their_closure_are_rejected(beta_inst: BetaInstance) -> None:
    inst = beta_inst
    good = inst.cert()["cases"][0]["dag"]["betas"]
    for shape in ((1, 2), (2, 1), (1, 0), (0, 1)):
        bad = copy.deepcopy(good)
        bad[1]["values"] = encode_array(np.full(shape, inst.betas[1]))
        report = _beta_report(inst, inst.cert(betas=bad))
        assert not report.valid and "wrong shape" in report.message, (shape, report.message)
    # a closure at the root (no neuron split on its path) with betas
    closures = [(1, 0, 0.999 * inst.margins[0]), (2, 0, 0.999 * inst.margins[1]), (0, 0, 1e-3)]
    report = _beta_report(inst, inst.cert(closures=closures, betas=good + [
        {"closure": 2, "values": encode_array(np.zeros((1, 0)))}]))
    assert not report.valid and "no neuron split" in report.message, report.message
    report = _beta_report(inst, inst.cert(betas=good + [{"closure": 5, "values": encode_array(np.ones((1, 1)))}]))
    assert not report.valid and "does not exist" in report.message, report.message
    # betas scaled until the claim of the half that needs them fails
    side = int(np.argmin(inst.zero_margins))
    for scale in (8.0, 50.0):
        scaled = copy.deepcopy(good)
        scaled[side]["values"] = encode_array(np.array([[inst.betas[side] * scale + 1.0]]))
        report = _beta_report(inst, inst.cert(betas=scaled))
        assert not report.valid and "with its betas" in report.message and f"node {1 + side}" in report.message, \
            report.message


def test_clamped_bounds_and_betas_agree_with_the_producers_engine() -> None:
    """With neuron splits (clamps, one neuron split twice at 0 among them: clamped to [0, 0]) the checker's
    intermediate bounds are inside the engine's (verify.bounds.dag: the same "Intermediate bounds" rules,
    CROWN rows for unstable neurons only) and its final bound with the engine's optimised betas is no
    looser, within 1e-9 (1 + |m|).  Skipped where the engine is not importable."""
    engine = pytest.importorskip("verify.bounds.dag")
    onnx_import = pytest.importorskip("verify.ir.onnx_import")
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(13)
    checked = 0
    for name, model, r in (("two_layer", _two_layer_relu(6), 1.0), ("kitchen_sink", _kitchen_sink(), 0.2),
                           ("residual_net", MODELS["residual_net"](), 0.4),
                           ("maxpool_net", MODELS["maxpool_net"](), 0.4),
                           ("leaky_relu_net", MODELS["leaky_relu_net"](), 0.4)):
        net = _read(model)
        ours = DagBounder(net)
        producer = engine.DagBounder(onnx_import.graph_from_onnx(model))
        n = net.n_outputs
        C = np.vstack([np.eye(n), -np.eye(n)])
        names = list(net.neurons)
        for trial in range(5):
            c = rng.normal(size=net.n_inputs)
            lo, hi = c - r, c + r
            st0 = ours.bounds(lo[None], hi[None])
            path: list[tuple[str, int, float, int]] = []
            for _ in range(int(rng.integers(1, 4))):
                nm = names[int(rng.integers(len(names)))]
                l, u = st0.lo[net.neurons[nm]][0], st0.hi[net.neurons[nm]][0]
                unstable = np.nonzero((l < 0) & (u > 0))[0]
                if unstable.size:
                    k = int(rng.choice(unstable))
                    v = 0.0 if trial == 0 or rng.random() < 0.5 else float(rng.uniform(l[k], u[k]))
                    path += [(nm, k, v, 0), (nm, k, v, 1)] if trial == 0 else [(nm, k, v, int(rng.integers(2)))]
            if not path:
                continue
            theirs_clamps: dict[str, Any] = {}
            ours_clamps: dict[int, tuple[np.ndarray, np.ndarray]] = {}
            for nm, k, v, side in path:
                vid = net.neurons[nm]
                cl = ours_clamps.setdefault(vid, (np.full((1, net.sizes[vid]), -np.inf),
                                                  np.full((1, net.sizes[vid]), np.inf)))
                if side == 0:
                    cl[1][0, k] = min(cl[1][0, k], v)
                else:
                    cl[0][0, k] = max(cl[0][0, k], v)
            shapes = {nm: producer.bound(torch.tensor(lo[None]), torch.tensor(hi[None]), torch.tensor(C),
                                         method="ibp").intermediate[nm][0].shape for nm in names}
            for nm in {p[0] for p in path}:
                a, b = ours_clamps[net.neurons[nm]]
                theirs_clamps[nm] = (torch.tensor(a).reshape(shapes[nm]), torch.tensor(b).reshape(shapes[nm]))
            res = producer.bound(torch.tensor(lo[None]), torch.tensor(hi[None]), torch.tensor(C),
                                 clamps=theirs_clamps, splits=[path], betas="optimize")
            st = ours.bounds(lo[None], hi[None], ours_clamps)
            if bool(res.empty[0]):
                assert st.empty[0], (name, trial, path)  # what the engine proves empty, so do we
                continue
            if st.empty[0]:
                continue
            for nm in names:
                vid = net.neurons[nm]
                tl, th = (t.reshape(-1).numpy() for t in res.intermediate[nm])
                assert np.all(st.lo[vid][0] >= tl - 1e-9 * (1 + np.abs(tl))), (name, trial, nm, path)
                assert np.all(st.hi[vid][0] <= th + 1e-9 * (1 + np.abs(th))), (name, trial, nm, path)
            betas = res.betas.numpy()
            splits = SplitTerms.from_paths([[(net.neurons[nm], k, v, s) for nm, k, v, s in path]], betas)
            lb = ours.lower(st, C, splits)[0]
            theirs = res.lower[0].numpy()
            assert np.all(lb >= theirs - 1e-9 * (1 + np.abs(theirs))), (name, trial, path, lb - theirs)
            checked += 1
    assert checked >= 15


def test_crown_rows_follow_the_intermediate_bounds_rules(sink: Instance) -> None:
    """docs/relaxations.md, "Intermediate bounds": no CROWN where the interval bounds are exact; for a value
    read only by (leaky) relus, CROWN rows for exactly the neurons unstable after the interval bounds and
    the clamp, per domain (the others keep their interval); all rows otherwise.  A batch of domains gets
    the bounds each domain gets alone."""
    net = sink.net
    bounder = DagBounder(net)
    modes = {nm: bounder.crown_rows[v] for nm, v in net.neurons.items()}
    assert modes == {"bn": "none", "s1": "unstable", "lr": "all", "sc": "all", "g1": "all"}
    res = _read(MODELS["residual_net"]())
    assert {nm: DagBounder(res).crown_rows[v] for nm, v in res.neurons.items()} == {"conv0": "none", "sum": "unstable"}
    s1 = net.neurons["s1"]
    rng = np.random.default_rng(14)
    lo = np.stack([sink.lo, *[sink.lo + rng.uniform(0, 0.05, sink.lo.shape) for _ in range(2)]])
    hi = np.stack([sink.hi, sink.hi, sink.hi - 0.04])
    st0 = bounder.bounds(lo, hi)
    l0, u0 = st0.lo[s1], st0.hi[s1]
    k = int(np.argmax(np.minimum(-l0[0], u0[0])))
    clamp = (np.full(l0.shape, -np.inf), np.full(l0.shape, np.inf))
    clamp[0][1, k] = 1e-3  # domain 1: s1[k] >= 1e-3 (0 itself is within the checker's slack of unstable)
    seen: dict[int, Any] = {}
    crown, backsub = bounder.crown, bounder._backsub

    def spy_crown(st: Any, vid: int, need: Any = None) -> Any:
        l, u = st.lo[vid], st.hi[vid]
        if vid == s1:
            l, u = np.maximum(l, clamp[0]), np.minimum(u, clamp[1])
        seen[vid] = {"ibp": (l.copy(), u.copy()), "need": None if need is None else need.copy(), "rows": []}
        return crown(st, vid, need)

    def spy_backsub(st: Any, target: int, rows: np.ndarray, splits: Any = None) -> Any:
        if target in seen:
            seen[target]["rows"].append(rows.shape[1])
        return backsub(st, target, rows, splits)

    bounder.crown, bounder._backsub = spy_crown, spy_backsub  # type: ignore[method-assign]
    st = bounder.bounds(lo, hi, {s1: clamp})
    assert set(seen) == {v for v, m in bounder.crown_rows.items() if m != "none"}
    for vid, info in seen.items():
        l, u = info["ibp"]
        if bounder.crown_rows[vid] == "all":
            assert info["need"].all()
            continue
        unstable = (l < 0) & (u > 0)
        need = info["need"]
        assert np.all(need >= unstable) and need.sum() <= unstable.sum() + 3, vid  # + neurons within 1e-9 of 0
        assert sum(info["rows"]) == 2 * need.sum(axis=1).max()
        if vid == s1:
            assert need[0, k] and not need[1, k]  # unstable in domain 0, clamped stable in domain 1
        keep = ~need
        assert np.array_equal(st.lo[vid][keep], l[keep]) and np.array_equal(st.hi[vid][keep], u[keep])
        assert np.all(st.lo[vid][need] >= l[need]) and np.any(st.lo[vid][need] > l[need])
    bounder.crown, bounder._backsub = crown, backsub  # type: ignore[method-assign]
    for j in range(3):
        one = bounder.bounds(lo[j:j + 1], hi[j:j + 1], {s1: (clamp[0][j:j + 1], clamp[1][j:j + 1])})
        for vid in net.bounded:
            for a, b in ((one.lo[vid][0], st.lo[vid][j]), (one.hi[vid][0], st.hi[vid][j])):
                assert np.allclose(a, b, rtol=1e-12, atol=1e-12), (j, vid)
