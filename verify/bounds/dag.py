"""Batched IBP, CROWN and alpha-CROWN bounds over an IR graph: the one bound engine.

The rules are those of ``docs/relaxations.md`` (the contract with the certificate checker).
Bounds are computed for ``B`` domains at once: each domain is an input box ``[lower, upper]``
(flat, ``[B, n_inputs]``) with optional *clamps* on the inputs of non-linear ops (the neuron
splits of branch and bound).

Linear ops are never transposed by hand: the transpose of a linear node is the
vector-Jacobian product of its forward (:data:`verify.ir.ops.OPS`), by autograd on the
coefficients ``[B * R, *value_shape]`` of ``R`` rows in ``B`` domains (``torch.vmap`` over
the backward of a batch-of-one forward, so a convolution's transpose is one transposed
convolution; small Jacobians are formed once and applied as matrices), and its bias is
``forward(0)``.  Coefficients of a value read by several nodes (residual joins) add up.
The final pass may add the split multipliers (beta) of the domains' neuron splits and report
branching scores from its coefficients (see :meth:`DagBounder.bound`).
Arithmetic is float64 by default but not rigorously rounded: the certificate checker redoes
it with outward rounding.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.autograd.graph

from verify.bounds.adam import Adam
from verify.bounds.relax import RELAXATIONS
from verify.bounds.relax import max_pool as max_pool_relax
from verify.ir.graph import Graph, Node
from verify.ir.ops import OPS, run_node

Tensor = torch.Tensor
Interval = tuple[Tensor, Tensor]
#: one neuron split on a domain's path: (value name, flat index, split value, side)
Split = tuple[str, int, float, int]

#: ops whose linear part has non-negative coefficients: ``|L| r = L r`` in interval propagation
_NONNEG_LINEAR = {"add", "pad", "avg_pool", "reshape", "transpose", "concat", "slice"}
#: a linear node's Jacobian is formed (and applied as a matrix) up to this many entries if at least
#: ``_DENSE_FILL`` of them are non-zero, and always up to ``_DENSE_SMALL`` entries
_DENSE_MAX, _DENSE_SMALL, _DENSE_FILL = 4_000_000, 65_536, 0.25
#: CROWN rows of unstable neurons are laid out per domain (padded) while that makes at most this many rows
#: per row needed; beyond, they are gathered into one batch of (domain, neuron) pairs
_PADDED_WASTE = 1.25
#: single-input affine ops whose interval image of a box is exact (CROWN cannot improve on it)
_EXACT_ON_BOX = {"linear", "conv", "conv_transpose", "affine"} | _NONNEG_LINEAR - {"add"}


@dataclass
class DagResult:
    """Bounds of ``C y - d`` for ``B`` domains and ``R`` rows.

    ``lower[b, r]`` holds for every input of box ``b`` whose clamped neurons lie in their clamps
    (``+inf`` where ``empty[b]``: no input does).  ``coef``/``const`` give the final linear lower
    bound ``C y - d >= coef x + const`` (``[B, R, n_inputs]``, ``[B, R]``) whose minimum over the
    box is ``lower``, attained at ``x_min``.  ``upper``/``x_max`` likewise (``with_upper=True``).
    ``intermediate``: value name -> ``(lo, hi)`` ``[B, *shape]`` for every input of a non-linear op.
    ``alphas``: value name (the input of a relu/leaky_relu) -> lower slopes ``[B, R, *shape]`` used
    by alpha-CROWN (rows of ``upper`` follow those of ``lower``: ``[B, 2R, *shape]`` then).
    ``betas``: the split multipliers used (``[B, R, k_max]``, ``[B, 2R, k_max]`` with upper bounds;
    column ``i`` is split ``i`` of the domain's path, zero where a path is shorter), when asked for.
    ``scores``: value name (the input of a relu, leaky_relu, sigmoid or tanh) -> branching score of
    each neuron ``[B, *shape]`` (see :meth:`DagBounder._record`), when asked for.
    With betas, ``coef``/``const`` bound ``C y - d - sum_i beta_i s_i (v_i - value_i)`` from below, so
    ``C y - d`` too wherever the splits hold (on the domain).
    """

    lower: Tensor
    intermediate: dict[str, Interval]
    empty: Tensor
    x_min: Tensor | None = None
    upper: Tensor | None = None
    x_max: Tensor | None = None
    coef: Tensor | None = None
    const: Tensor | None = None
    alphas: dict[str, Tensor] | None = None
    betas: Tensor | None = None
    scores: dict[str, Tensor] | None = None
    #: seconds spent: intermediate bounds, final pass (and alpha optimisation), total
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _State:
    """One propagation over ``B`` domains: working bounds of every value and the cached relaxations."""

    B: int
    lower: Tensor  # [B, n_in]
    upper: Tensor
    bounds: dict[str, Interval] = field(default_factory=dict)
    intermediate: dict[str, Interval] = field(default_factory=dict)
    empty: Tensor | None = None
    relax: dict[str, Any] = field(default_factory=dict)


def _sanitize(lo: Tensor, hi: Tensor) -> Interval:
    """NaN (from inf - inf or 0 * inf) means 'unknown': the widest interval, which is always sound."""
    return torch.nan_to_num(lo, nan=float("-inf")), torch.nan_to_num(hi, nan=float("inf"))


def _mul_safe(A: Tensor, b: Tensor) -> Tensor:
    """``A * b`` with ``0 * inf = 0`` (an infinite intercept that a zero coefficient does not use)."""
    return torch.where(A == 0, torch.zeros_like(A), A * b)


def _dot(A: Tensor, b: Tensor) -> Tensor:
    """``sum(A * b)`` over all but the first two axes (``A`` ``[B, R, ...]``, ``b`` ``[B, 1, ...]``), with
    ``0 * inf = 0`` (an infinite intercept that a zero coefficient does not use)."""
    B, R = A.shape[:2]
    b = b.reshape(B, -1, 1)
    if bool(torch.isfinite(b).all()):
        return (A.reshape(B, R, -1) @ b).squeeze(-1)
    return _mul_safe(A.reshape(B, R, -1), b.transpose(1, 2)).sum(-1)


def _grad(y: Tensor, xs: list[Tensor], v: Tensor, create: bool) -> tuple[Tensor, ...]:
    """``torch.autograd.grad(y, xs, v, retain_graph=True, create_graph=create)`` through the autograd engine's
    entry point, skipping the argument checks of ``torch.autograd.grad``: their first call with a tensor
    ``grad_outputs`` imports sympy (about 1 s per process, measured with torch 2.13).  The public call
    where a torch release lacks that entry point."""
    run = getattr(torch.autograd.graph, "_engine_run_backward", None)
    if run is None:
        return torch.autograd.grad(y, xs, v, retain_graph=True, create_graph=create)
    return run((y,), (v,), True, create, tuple(xs), False, accumulate_grad=False)


def _concretize(A: Tensor, c: Tensor, lo: Tensor, hi: Tensor, *, argmin: bool = True) -> tuple[Tensor, Tensor | None]:
    """Minimum of ``A x + c`` over the boxes (``A`` ``[B, R, n]``, boxes ``[B, n]``) and its minimiser."""
    pos = A.clamp(min=0)
    neg = A - pos
    if bool(torch.isfinite(lo).all()) and bool(torch.isfinite(hi).all()):
        value = c + (pos @ lo.unsqueeze(-1)).squeeze(-1) + (neg @ hi.unsqueeze(-1)).squeeze(-1)
    else:
        value = c + (_mul_safe(pos, lo.unsqueeze(1)) + _mul_safe(neg, hi.unsqueeze(1))).sum(-1)
    x = torch.where(A >= 0, lo.unsqueeze(1), hi.unsqueeze(1)) if argmin else None
    return torch.nan_to_num(value, nan=float("-inf")), x


class DagBounder:
    """Bounds of an IR graph's values over batches of input boxes (see the module docstring).

    ``chunk_elements`` caps ``B * rows * width`` of one backward pass (rows are processed in
    chunks beyond it; ``width`` is the largest value size on the way).  Intermediate bounds follow
    docs/relaxations.md: for a value read only by relu/leaky_relu, CROWN rows are back-substituted
    only for its neurons unstable after IBP and the clamp, per domain and per neuron (those
    (domain, neuron) pairs are gathered over the batch); the other neurons keep their interval.
    """

    def __init__(self, graph: Graph, dtype: torch.dtype = torch.float64, *, chunk_elements: float = 2e7) -> None:
        self.graph = graph
        self.dtype = dtype
        self.chunk_elements = float(chunk_elements)
        self._order = {node.name: i for i, node in enumerate(graph.nodes)}
        self._producer = {node.output: node for node in graph.nodes}
        self._check()
        nonlinear = [node for node in graph.nodes if not OPS[node.op].linear]
        relaxed = {node.inputs[0] for node in nonlinear}
        order = [graph.input.name] + [node.output for node in graph.nodes]
        #: the inputs of non-linear ops, in topological order: the values with intermediate bounds
        self.relaxed: list[str] = [name for name in order if name in relaxed]
        self._consumers = {name: [n for n in nonlinear if n.inputs[0] == name] for name in self.relaxed}
        self._cones: dict[str, list[Node]] = {}
        self._readers: dict[str, bool] = {}
        self._widths: dict[str, int] = {}
        self._f0: dict[tuple[str, str], Tensor] = {}
        self._abs: dict[tuple[str, str], Tensor] = {}
        self._abs_attrs: dict[str, dict[str, Any]] = {}
        #: per linear node (and max-pool window extraction): its forward's autograd graph on a batch of one,
        #: or its Jacobian (see :meth:`_transpose`)
        self._graphs: dict[tuple[Any, ...], tuple[str, Any]] = {}

    # -- structure -------------------------------------------------------------------------
    def _check(self) -> None:
        for node in self.graph.nodes:
            spec = OPS[node.op]
            if spec.linear:
                continue
            if node.op not in RELAXATIONS:
                raise NotImplementedError(f"node {node.name!r}: no relaxation for op {node.op!r}")
            if node.op == "leaky_relu":
                RELAXATIONS["leaky_relu"].alpha_range(node.attrs)  # raises outside [0, 1]
            if node.op == "max_pool":
                max_pool_relax.geometry(node.attrs)  # raises beyond 2-D
            if node.op == "softmax" and (node.output != self.graph.output or self.graph.consumers(node.output)):
                raise ValueError(f"node {node.name!r}: softmax is only supported as the graph's last op")

    def _cone(self, value: str) -> list[Node]:
        """The nodes ``value`` depends on, in topological order."""
        if value not in self._cones:
            seen: set[str] = set()
            stack = [value]
            nodes: list[Node] = []
            while stack:
                name = stack.pop()
                node = self._producer.get(name)
                if node is None or node.name in seen:
                    continue
                seen.add(node.name)
                nodes.append(node)
                stack.extend(node.inputs)
            nodes.sort(key=lambda n: self._order[n.name])
            self._cones[value] = nodes
            width = max([self.graph.n_inputs, self.graph.values[value].size]
                        + [self.graph.values[n.output].size for n in nodes]
                        + [self._window_size(n) for n in nodes if n.op == "max_pool"])
            self._widths[value] = width
        return self._cones[value]

    def _window_size(self, node: Node) -> int:
        shape = self.graph.values[node.inputs[0]].shape
        x = torch.zeros((1, *shape), dtype=self.dtype)
        return int(max_pool_relax.windows(x, node.attrs).numel())

    def _shape(self, name: str) -> tuple[int, ...]:
        return self.graph.values[name].shape

    # -- linear ops: forward at 0, transposes by autograd, absolute values for IBP -----------
    def _key(self, node: Node, like: Tensor) -> tuple[str, str]:
        return node.name, f"{like.dtype}/{like.device}"

    def _bias(self, node: Node, like: Tensor) -> Tensor:
        """``forward(0)`` of a linear node, flat ``[size]``."""
        key = self._key(node, like)
        if key not in self._f0:
            zeros = [torch.zeros((1, *self._shape(n)), dtype=like.dtype, device=like.device) for n in node.inputs]
            with torch.no_grad():
                self._f0[key] = run_node(node.op, zeros, node.attrs).reshape(-1)
        return self._f0[key]

    def _transpose(self, node: Node, A: Tensor, forward: Any = None,
                   shapes: list[tuple[int, ...]] | None = None) -> list[Tensor | None]:
        """``L^T A`` for the linear part ``L`` of ``forward`` (default: the node's op), ``A`` ``[BR, *out]``.

        The vector-Jacobian product of the forward at 0, by autograd: the forward's graph is built
        once on a batch of one and its backward is mapped over the ``BR`` rows with ``torch.vmap``
        (one batched kernel per op, e.g. one transposed convolution; no forward on ``BR`` rows).
        Where the Jacobian is small, or dense and not large, it is formed once (by the same
        vector-Jacobian products, on the rows of the identity) and applied as a matrix product.
        """
        key = (node.name, forward is None, str(A.dtype), str(A.device))
        if key not in self._graphs:
            self._graphs[key] = self._linearize(node, forward, shapes, A)
        mode, payload = self._graphs[key]
        rows = A.shape[0]
        if mode == "dense":
            flat = A.reshape(rows, -1)
            return [None if J is None else (flat @ J).reshape(rows, *shape) for J, shape in payload]
        return self._vjp(payload, A)

    def _linearize(self, node: Node, forward: Any, shapes: list[tuple[int, ...]] | None,
                   like: Tensor) -> tuple[str, Any]:
        """The cached form of a linear node's transpose: ``("vmap", graph)`` or ``("dense", Jacobians)``."""
        forward = forward or (lambda xs: run_node(node.op, xs, node.attrs))
        shapes = shapes or [self._shape(n) for n in node.inputs]
        with torch.enable_grad():
            xs = [torch.zeros((1, *s), dtype=like.dtype, device=like.device, requires_grad=True) for s in shapes]
            y = forward(xs)
            probe = torch.autograd.grad(y.sum(), xs, retain_graph=True, allow_unused=True)  # which inputs count
        used = [i for i, g in enumerate(probe) if g is not None]
        payload = ([xs[i] for i in used], y, used, len(shapes))
        out_size = y[0].numel()
        elements = out_size * sum(int(np.prod(s)) for s in shapes)
        if not used or elements > _DENSE_MAX:
            return "vmap", payload
        eye = torch.eye(out_size, dtype=like.dtype, device=like.device).reshape(out_size, *y.shape[1:])
        with torch.no_grad():
            grads = self._vjp(payload, eye)
        Js = [None if g is None else g.reshape(out_size, -1) for g in grads]
        nonzero = sum(int((J != 0).sum()) for J in Js if J is not None)
        if elements > _DENSE_SMALL and nonzero < _DENSE_FILL * elements:
            return "vmap", payload
        return "dense", [(J, s) for J, s in zip(Js, shapes)]

    @staticmethod
    def _vjp(payload: tuple[list[Tensor], Tensor, list[int], int], A: Tensor) -> list[Tensor | None]:
        """The backward of a batch-of-one graph mapped over the rows of ``A`` (differentiable if ``A`` is)."""
        xs, y, used, n = payload
        create = A.requires_grad

        def vjp(v: Tensor) -> tuple[Tensor, ...]:
            return _grad(y, xs, v, create)

        with torch.enable_grad():
            grads = torch.vmap(vjp)(A.reshape(A.shape[0], *y.shape)) if used else ()
        out: list[Tensor | None] = [None] * n
        for i, g in zip(used, grads):
            out[i] = g.squeeze(1)
        return out

    def _abs_linear(self, node: Node, radii: list[Tensor]) -> Tensor:
        """``|L| r``: the linear part with absolute coefficients applied to radii (``r >= 0``)."""
        a = node.attrs
        op = node.op
        if op in ("linear", "conv", "conv_transpose", "affine"):
            if node.name not in self._abs_attrs:
                if op == "affine":
                    scale = a.get("scale")
                    self._abs_attrs[node.name] = {"scale": None if scale is None else np.abs(scale), "shift": None}
                else:
                    self._abs_attrs[node.name] = {**a, "W": np.abs(a["W"]), "b": None}
            return run_node(op, radii, self._abs_attrs[node.name])
        if op == "sub":
            return radii[0] + radii[1]
        if op == "pad":
            return run_node(op, radii, {**a, "value": 0.0})
        if op in _NONNEG_LINEAR:
            return run_node(op, radii, a) - self._bias(node, radii[0]).reshape(1, *self._shape(node.output))
        return self._abs_dense(node, radii)

    def _abs_dense(self, node: Node, radii: list[Tensor]) -> Tensor:
        """Fallback for a linear op without a rule above: the dense |Jacobian| (by autograd, once)."""
        like = radii[0]
        key = self._key(node, like)
        if key not in self._abs:
            out = self.graph.values[node.output].size
            eye = torch.eye(out, dtype=like.dtype, device=like.device).reshape(out, *self._shape(node.output))
            grads = self._transpose(node, eye)
            shapes = [self._shape(n) for n in node.inputs]
            blocks = [torch.zeros(out, int(np.prod(s)), dtype=like.dtype, device=like.device) if g is None
                      else g.reshape(out, -1) for g, s in zip(grads, shapes)]
            self._abs[key] = torch.cat(blocks, dim=1).abs()
        flat = torch.cat([r.reshape(r.shape[0], -1) for r in radii], dim=1)
        return (flat @ self._abs[key].T).reshape(flat.shape[0], *self._shape(node.output))

    # -- interval bound propagation ----------------------------------------------------------
    def _ibp_node(self, node: Node, ins: list[Interval]) -> Interval:
        spec = OPS[node.op]
        if spec.linear:
            mids = [(lo + hi) / 2 for lo, hi in ins]
            rads = [(hi - lo) / 2 for lo, hi in ins]
            center = run_node(node.op, mids, node.attrs)
            radius = self._abs_linear(node, rads)
            return _sanitize(center - radius, center + radius)
        lo, hi = ins[0]
        relax = RELAXATIONS[node.op]
        if relax.kind == "elementwise":
            return _sanitize(*relax.interval(lo, hi, node.attrs))
        if relax.kind == "max_pool":
            return _sanitize(run_node(node.op, [lo], node.attrs), run_node(node.op, [hi], node.attrs))
        return relax.relax(lo, hi, int(node.attrs["axis"]) + 1)  # softmax

    def ibp(self, lower: Tensor, upper: Tensor) -> dict[str, Interval]:
        """Interval bounds ``(lo, hi)`` ``[B, *shape]`` of every value (the input included)."""
        with torch.no_grad():
            st = self._propagate(lower, upper, None, crown=False)
        return st.bounds

    # -- intermediate bounds -----------------------------------------------------------------
    def _start(self, lower: Tensor, upper: Tensor) -> _State:
        lower = torch.as_tensor(lower).to(self.dtype)
        upper = torch.as_tensor(upper).to(device=lower.device, dtype=self.dtype)
        if lower.dim() == 1:
            lower, upper = lower.unsqueeze(0), upper.unsqueeze(0)
        B = lower.shape[0]
        if lower.shape != (B, self.graph.n_inputs) or upper.shape != lower.shape:
            raise ValueError(f"input boxes must be [B, {self.graph.n_inputs}], got {tuple(lower.shape)} and "
                             f"{tuple(upper.shape)}")
        empty = (lower > upper).any(dim=1)
        lo, hi = torch.minimum(lower, upper), torch.maximum(lower, upper)
        st = _State(B, lo, hi, empty=empty)
        shape = (B, *self.graph.input_shape)
        st.bounds[self.graph.input.name] = (lo.reshape(shape), hi.reshape(shape))
        return st

    def _propagate(self, lower: Tensor, upper: Tensor, clamps: dict[str, Interval] | None, *, crown: bool) -> _State:
        st = self._start(lower, upper)
        clamps = self._check_clamps(clamps or {}, st)
        if self.graph.input.name in self._consumers:
            self._finalize(st, self.graph.input.name, clamps, crown=False)
        for node in self.graph.nodes:
            st.bounds[node.output] = self._ibp_node(node, [st.bounds[n] for n in node.inputs])
            if node.output in self._consumers:
                self._finalize(st, node.output, clamps, crown=crown)
        return st

    def _check_clamps(self, clamps: dict[str, Interval], st: _State) -> dict[str, Interval]:
        out = {}
        for name, (lo, hi) in clamps.items():
            if name not in self._consumers:
                raise ValueError(f"clamp on {name!r}: clamps apply to the inputs of non-linear ops "
                                 f"({', '.join(self.relaxed)})")
            shape = (st.B, *self._shape(name))
            lo = torch.as_tensor(lo).to(device=st.lower.device, dtype=self.dtype)
            hi = torch.as_tensor(hi).to(device=st.lower.device, dtype=self.dtype)
            out[name] = (lo.reshape(-1, *self._shape(name)).expand(shape),
                         hi.reshape(-1, *self._shape(name)).expand(shape))
        return out

    # -- intermediate bounds (docs/relaxations.md, "Intermediate bounds") ---------------------
    def _crown_mode(self, name: str) -> str:
        """Which neurons of ``name`` get CROWN rows (step 2): ``"none"`` (the graph input, or a value made by
        one single-input affine op straight from the graph input: IBP is exact there), ``"unstable"`` (a
        value read only by relu/leaky_relu: the neurons with ``l < 0 < u`` after IBP and the clamp, decided
        per domain and per neuron) or ``"all"``."""
        node = self._producer.get(name)
        if node is None:
            return "none"
        if len(node.inputs) == 1 and node.inputs[0] == self.graph.input.name and node.op in _EXACT_ON_BOX:
            return "none"
        return "unstable" if self._relu_only(name) else "all"

    def _relu_only(self, name: str) -> bool:
        """Whether ``name`` is read only by relu/leaky_relu ops (every node reading it; the graph's output
        is read by the specification)."""
        if name not in self._readers:
            readers = self.graph.consumers(name)
            self._readers[name] = bool(readers) and name != self.graph.output and \
                all(n.op in ("relu", "leaky_relu") for n in readers)
        return self._readers[name]

    def _finalize(self, st: _State, name: str, clamps: dict[str, Interval], *, crown: bool) -> None:
        """Steps 1-3 of docs/relaxations.md for one input of a non-linear op, and the emptiness rule."""
        lo, hi = st.bounds[name]  # 1. IBP, from the already tightened bounds of the inputs
        clamp = clamps.get(name)
        if clamp is not None:  # 2. the clamp ...
            lo, hi = torch.maximum(lo, clamp[0]), torch.minimum(hi, clamp[1])
        mode = self._crown_mode(name) if crown else "none"
        if mode != "none":  # ... then CROWN (crossings: the hull)
            lo, hi = self._crown_value(st, name, lo, hi, unstable_only=mode == "unstable")
        if clamp is not None:  # 3. the clamp again
            lo, hi = torch.maximum(lo, clamp[0]), torch.minimum(hi, clamp[1])
            tol = 1e-12 * (1 + torch.maximum(lo.abs(), hi.abs()))
            bad = (clamp[0] > clamp[1]) | (lo > hi + tol)
            st.empty = st.empty | bad.reshape(st.B, -1).any(dim=1)
            st.intermediate[name] = (lo, hi)
            # crossings within rounding: the hull; empty neurons: any non-crossing interval (their domain is void)
            lo, hi = torch.minimum(lo, hi), torch.maximum(lo, hi)
        else:
            st.intermediate[name] = (lo, hi)
        st.bounds[name] = (lo, hi)

    def _crown_value(self, st: _State, name: str, lo: Tensor, hi: Tensor, *, unstable_only: bool) -> Interval:
        """``[lo, hi]`` intersected with the CROWN bounds of the neurons of ``name`` (rows ``+e_i`` and
        ``-e_i``), the hull of the two ends where they cross (rounding): every neuron of every domain, or
        with ``unstable_only`` the (domain, neuron) pairs with ``lo < 0 < hi``, whose rows alone are
        gathered over the batch and back-substituted (the others keep ``lo``, ``hi``)."""
        shape, size, B = self._shape(name), self.graph.values[name].size, st.B
        self._cone(name)
        flo, fhi = lo.reshape(B, size), hi.reshape(B, size)
        if unstable_only:
            dom, idx = torch.nonzero((flo < 0) & (fhi > 0), as_tuple=True)
            if dom.numel() == 0:
                return lo, hi
            c_lo, c_hi = self._crown_pairs(st, name, dom, idx)
            a, b = torch.maximum(flo[dom, idx], c_lo), torch.minimum(fhi[dom, idx], c_hi)
            flo, fhi = flo.clone(), fhi.clone()
            flo[dom, idx], fhi[dom, idx] = torch.minimum(a, b), torch.maximum(a, b)
            return flo.reshape(B, *shape), fhi.reshape(B, *shape)
        c_lo, c_hi = self._crown_all(st, name)
        a, b = torch.maximum(flo, c_lo), torch.minimum(fhi, c_hi)
        return torch.minimum(a, b).reshape(B, *shape), torch.maximum(a, b).reshape(B, *shape)

    def _crown_all(self, st: _State, name: str) -> Interval:
        """CROWN lower and upper bounds of every neuron of ``name`` in every domain, ``[B, size]`` each."""
        shape, size = self._shape(name), self.graph.values[name].size
        device = st.lower.device
        chunk = max(1, int(self.chunk_elements // (st.B * self._widths[name])))
        out = []
        for start in range(0, 2 * size, chunk):
            k = torch.arange(start, min(start + chunk, 2 * size), device=device)
            A = torch.zeros((len(k), size), dtype=self.dtype, device=device)
            A[torch.arange(len(k), device=device), k % size] = torch.where(k < size, 1.0, -1.0).to(self.dtype)
            A = A.reshape(1, len(k), *shape).expand(st.B, len(k), *shape)
            coef, const = self._backward(st, name, A)
            out.append(_concretize(coef, const, st.lower, st.upper, argmin=False)[0])
        lower = torch.cat(out, dim=1)
        return _sanitize(lower[:, :size], -lower[:, size:])

    def _crown_pairs(self, st: _State, name: str, dom: Tensor, idx: Tensor) -> Interval:
        """CROWN lower and upper bounds of neuron ``idx[p]`` of ``name`` in domain ``dom[p]``, ``[P]`` each
        (``dom`` ascending): two rows per pair.  Where the domains have about as many pairs each, the rows
        are laid out per domain (padded to the largest count); otherwise they form one batch of pairs, each
        back-substituted with the relaxations of its domain (gathered node by node)."""
        counts = torch.bincount(dom, minlength=st.B)
        most = int(counts.max())
        if st.B * most <= _PADDED_WASTE * dom.numel():
            return self._crown_padded(st, name, dom, idx, counts, most)
        shape, size = self._shape(name), self.graph.values[name].size
        device = st.lower.device
        chunk = max(1, int(self.chunk_elements // (2 * self._widths[name])))
        lows, highs = [], []
        for start in range(0, dom.numel(), chunk):
            d, i = dom[start:start + chunk], idx[start:start + chunk]
            n = d.numel()
            rows = torch.arange(n, device=device)
            A = torch.zeros((n, 2, size), dtype=self.dtype, device=device)
            A[rows, 0, i] = 1.0
            A[rows, 1, i] = -1.0
            coef, const = self._backward(st, name, A.reshape(n, 2, *shape), dom=d)
            value = _concretize(coef, const, st.lower[d], st.upper[d], argmin=False)[0]
            lows.append(value[:, 0])
            highs.append(-value[:, 1])
        return _sanitize(torch.cat(lows), torch.cat(highs))

    def _crown_padded(self, st: _State, name: str, dom: Tensor, idx: Tensor, counts: Tensor,
                      most: int) -> Interval:
        """:meth:`_crown_pairs` with the rows laid out per domain, ``[B, 2 * most]`` (padding rows are zero)."""
        shape, size, B = self._shape(name), self.graph.values[name].size, st.B
        device = st.lower.device
        pos = torch.arange(dom.numel(), device=device) - (torch.cumsum(counts, 0) - counts)[dom]
        table = torch.full((B, most), -1, dtype=torch.long, device=device)
        table[dom, pos] = idx
        lower = torch.empty((B, most), dtype=self.dtype, device=device)
        upper = torch.empty((B, most), dtype=self.dtype, device=device)
        chunk = max(1, int(self.chunk_elements // (2 * B * self._widths[name])))
        for start in range(0, most, chunk):
            sub = table[:, start:start + chunk]
            n = sub.shape[1]
            b, j = torch.nonzero(sub >= 0, as_tuple=True)
            A = torch.zeros((B, 2 * n, size), dtype=self.dtype, device=device)
            A[b, j, sub[b, j]] = 1.0
            A[b, n + j, sub[b, j]] = -1.0
            coef, const = self._backward(st, name, A.reshape(B, 2 * n, *shape))
            value = _concretize(coef, const, st.lower, st.upper, argmin=False)[0]
            lower[:, start:start + n], upper[:, start:start + n] = value[:, :n], -value[:, n:]
        return _sanitize(lower[dom, pos], upper[dom, pos])

    # -- back-substitution -------------------------------------------------------------------
    def _relaxation(self, st: _State, node: Node) -> Any:
        if node.name not in st.relax:
            lo, hi = st.bounds[node.inputs[0]]
            relax = RELAXATIONS[node.op]
            if relax.kind == "elementwise":
                a_l, b_l, a_u, b_u = relax.relax(lo, hi, node.attrs)
                free = relax.unstable(lo, hi) if relax.unstable is not None else None
                st.relax[node.name] = (a_l, b_l, a_u, b_u, free)
            elif relax.kind == "max_pool":
                spatial = self._shape(node.inputs[0])[1:]
                ok = max_pool_relax.valid(spatial, node.attrs, lo)
                wl = max_pool_relax.windows(lo, node.attrs)
                wu = max_pool_relax.windows(hi, node.attrs)
                st.relax[node.name] = relax.relax(wl, wu, ok)
            else:
                st.relax[node.name] = relax.relax(lo, hi, int(node.attrs["axis"]) + 1)
        return st.relax[node.name]

    def _backward(self, st: _State, start: str, A: Tensor, alphas: dict[str, Tensor] | None = None, *,
                  dom: Tensor | None = None, betas: _Betas | None = None,
                  record: _Scores | None = None) -> tuple[Tensor, Tensor]:
        """Back-substitute ``A`` (``[B, R, *shape(start)]``) to the graph input through the lower-bound
        relaxations: returns ``coef`` ``[B, R, n_in]`` and ``const`` ``[B, R]`` with
        ``A . start >= coef . x + const`` on the domain.

        ``dom``: the first axis of ``A`` indexes these domains of ``st`` (a gathered batch of rows) rather
        than all of them in order.  ``betas``: the split multipliers' terms, added where the pass reaches
        a split value (docs/relaxations.md, "Split multipliers").  ``record``: collects branching scores
        from the coefficients at the outputs of relu, leaky_relu, sigmoid and tanh nodes."""
        B, R = A.shape[0], A.shape[1]
        acc: dict[str, Tensor] = {start: A.reshape(B * R, *self._shape(start))}
        const = torch.zeros(B * R, dtype=A.dtype, device=A.device)
        for node in reversed(self._cone(start)):
            Aout = acc.pop(node.output, None)
            if Aout is None:
                continue
            if betas is not None:
                Aout, const = betas.apply(node.output, Aout, const, B, R)
            if OPS[node.op].linear:
                const = const + Aout.reshape(B * R, -1) @ self._bias(node, Aout)
                grads = self._transpose(node, Aout)
                for name, g in zip(node.inputs, grads):
                    if g is not None:
                        acc[name] = acc[name] + g if name in acc else g
                continue
            A3 = Aout.reshape(B, R, *Aout.shape[1:])
            if record is not None:
                self._record(st, node, A3, record)
            Ain, c = self._through(st, node, A3, alphas, dom)
            const = const + c.reshape(B * R)
            if Ain is not None:
                name = node.inputs[0]
                Ain = Ain.reshape(B * R, *Ain.shape[2:])
                acc[name] = acc[name] + Ain if name in acc else Ain
        x = acc.pop(self.graph.input.name, None)
        if x is not None and betas is not None:
            x, const = betas.apply(self.graph.input.name, x, const, B, R)
        if x is None:
            x = torch.zeros((B * R, self.graph.n_inputs), dtype=A.dtype, device=A.device)
        return x.reshape(B, R, -1), const.reshape(B, R)

    def _through(self, st: _State, node: Node, A: Tensor, alphas: dict[str, Tensor] | None,
                 dom: Tensor | None = None) -> tuple[Tensor | None, Tensor]:
        """One non-linear node: ``A`` ``[B, R, *out]`` -> coefficients on its input and a constant ``[B, R]``
        (``dom``: the domains of ``A``'s rows, see :meth:`_backward`)."""
        relax = RELAXATIONS[node.op]
        r = self._relaxation(st, node)
        if dom is not None:  # the relaxations of the rows' domains
            picked = [None if t is None else t[dom] for t in r]
            r = max_pool_relax.MaxPoolRelax(*picked) if isinstance(r, max_pool_relax.MaxPoolRelax) else tuple(picked)
        B, R = A.shape[:2]
        pos = A.clamp(min=0)
        neg = A - pos
        if relax.kind == "elementwise":
            a_l, b_l, a_u, b_u, free = (t.unsqueeze(1) if t is not None else None for t in r)
            if alphas is not None and node.inputs[0] in alphas:
                a_l = torch.where(free, alphas[node.inputs[0]], a_l)
            return pos * a_l + neg * a_u, _dot(pos, b_l) + _dot(neg, b_u)
        if relax.kind == "softmax":
            lo, hi = (t.unsqueeze(1) for t in r)
            return None, _dot(pos, lo) + _dot(neg, hi)
        # max_pool: A over the outputs [B, R, C, *spatial_out] -> over the windows [B, R, C, K, L]
        C = A.shape[2]
        low, up = r.lower.unsqueeze(1), r.upper.unsqueeze(1)
        Awin = pos.reshape(B, R, C, 1, -1) * low + neg.reshape(B, R, C, 1, -1) * up
        const = _dot(neg, r.upper_const.unsqueeze(1))
        shape = self._shape(node.inputs[0])
        grads = self._transpose(node, Awin.reshape(B * R, *Awin.shape[2:]),
                                forward=lambda xs: max_pool_relax.windows(xs[0], node.attrs), shapes=[shape])
        return grads[0].reshape(B, R, *shape), const

    # -- branching scores ------------------------------------------------------------------------
    def _record(self, st: _State, node: Node, A: Tensor, record: _Scores) -> None:
        """Add the branching scores of ``node``'s input neurons for the rows of ``A`` (``[B, R, *out]``, the
        coefficients of the final bound at the node's output), weighted by ``record.weights`` ``[B, R]``.

        relu, leaky_relu (BaBSR's intercept score): ``sum_r w_r max(-lambda_r, 0) b_u``, where ``b_u`` is the
        upper line's intercept (``-l u / (u - l)`` for relu, 0 for stable neurons): what the lower bound loses
        by that neuron's relaxation at its upper line's intercept.  sigmoid, tanh: ``sum_r w_r |lambda_r|``
        times the gap between the upper and the lower line at ``m = (l + u) / 2``."""
        if node.op not in ("relu", "leaky_relu", "sigmoid", "tanh"):
            return
        B, R = A.shape[:2]
        lam = A.reshape(B, R, -1)
        w = record.weights.unsqueeze(-1)
        a_l, b_l, a_u, b_u, _ = (None if t is None else t.reshape(B, -1) for t in self._relaxation(st, node))
        if node.op in ("relu", "leaky_relu"):
            score = _mul_safe((w * (-lam).clamp(min=0)).sum(1), b_u)
        else:
            lo, hi = st.bounds[node.inputs[0]]
            m = (lo / 2 + hi / 2).reshape(B, -1)
            slope = a_u - a_l
            gap = torch.where(slope == 0, torch.zeros_like(m), slope * m) + (b_u - b_l)
            score = _mul_safe((w * lam.abs()).sum(1), gap.clamp(min=0))
        score = torch.nan_to_num(score.detach(), nan=0.0, posinf=torch.finfo(score.dtype).max)
        name = node.inputs[0]
        record.acc[name] = record.acc[name] + score if name in record.acc else score

    # -- the final bound -----------------------------------------------------------------------
    def bound(self, lower: Tensor, upper: Tensor, C: Tensor, d: Tensor | None = None, *, method: str = "crown",
              clamps: dict[str, Interval] | None = None, alphas: str | dict[str, Tensor] | None = None,
              with_upper: bool = False, alpha_steps: int = 20, alpha_lr: float = 0.1,
              alpha_time: float | None = None, splits: list[list[Split]] | None = None,
              betas: str | Tensor | None = None, beta_steps: int = 20, beta_lr: float = 0.05,
              beta_time: float | None = None, beta_start: Tensor | None = None,
              scores: bool | Tensor = False) -> DagResult:
        """Lower bounds of ``C y - d`` over each domain (see :class:`DagResult`).

        ``C``: ``[R, n_outputs]`` or ``[B, R, n_outputs]`` (rows over the flat output); ``d``: ``[R]`` or
        ``[B, R]``.  ``method``: ``"crown"`` or ``"ibp"``.  ``clamps``: value name -> ``(lo, hi)``
        ``[B, *shape]`` (``±inf`` where unclamped), for inputs of non-linear ops.  ``alphas``:
        ``"optimize"`` (alpha-CROWN: Adam on the relu/leaky_relu lower slopes of the final pass, at most
        ``alpha_steps`` steps and ``alpha_time`` seconds, the best bound per row kept) or slopes from an
        earlier result's ``.alphas``.  ``with_upper``: also upper bounds (the lower bounds of ``-C y + d``).

        ``splits``: per domain (``B`` lists) the neuron splits on its path, ``(value name, flat index,
        split value, side)`` in root-to-node order (side 1: ``v >= split value``, 0: ``v <= split value``;
        the value an input of a non-linear op, its clamp is the caller's business).  ``betas``: their
        multipliers in the final pass (docs/relaxations.md, "Split multipliers (beta)"): ``None`` (zero),
        a tensor ``[B, rows, k]`` (``rows``: those of the pass, ``2R`` with ``with_upper``, or 1; columns
        beyond a domain's path are ignored, missing ones are zero; every entry finite and >= 0) or
        ``"optimize"`` (projected Adam from zero or from ``beta_start``, shaped like a betas tensor, at most
        ``beta_steps`` steps and ``beta_time`` seconds, the best bound per row kept; jointly with the slopes
        when ``alphas="optimize"``, with the documented slopes fixed when ``alphas`` is None).  Intermediate
        bounds never use betas.  ``scores``: True (or a ``[B, R]`` non-negative weight per row) for the
        branching scores of :meth:`_record`, summed over the rows of ``lower``, in ``DagResult.scores``.
        ``betas``, ``scores`` need ``method="crown"``.
        """
        if method not in ("crown", "ibp"):
            raise ValueError(f"method must be 'crown' or 'ibp', not {method!r}")
        if method == "ibp" and (betas is not None or scores is not False):
            raise ValueError("betas and scores need method='crown'")
        t0 = time.perf_counter()
        with torch.no_grad():
            st = self._propagate(lower, upper, clamps, crown=method == "crown")
        t1 = time.perf_counter()
        C, d = self._spec(C, d, st)
        R = C.shape[1]
        if with_upper:
            C, d = torch.cat([C, -C], dim=1), torch.cat([d, -d], dim=1)
        if method == "ibp":
            lo, hi = st.bounds[self.graph.output]
            lo, hi = lo.reshape(st.B, 1, -1), hi.reshape(st.B, 1, -1)
            value = (_mul_safe(C.clamp(min=0), lo) + _mul_safe(C.clamp(max=0), hi)).sum(-1) - d
            value = torch.nan_to_num(value, nan=float("-inf"))
            x = coef = const = used = used_betas = record = None
        else:
            beta_spec = self._beta_spec(st, splits, betas, C.shape[1], beta_start)
            record = self._score_weights(st, scores, R, C.shape[1])
            opt = _Opt(alpha_steps, alpha_lr, alpha_time, beta_steps, beta_lr, beta_time)
            value, x, coef, const, used, used_betas = self._final(st, C, d, alphas, beta_spec, opt, record)
        value = torch.where(st.empty.unsqueeze(1), torch.full_like(value, float("inf")), value)
        result = DagResult(value[:, :R], st.intermediate, st.empty, alphas=used, betas=used_betas)
        if x is not None:
            result.x_min, result.coef, result.const = x[:, :R], coef[:, :R], const[:, :R]
        if with_upper:
            result.upper = -value[:, R:]
            if x is not None:
                result.x_max = x[:, R:]
        if record is not None:
            result.scores = {}
            for name, s in record.acc.items():
                s = torch.where(st.empty.unsqueeze(1), torch.zeros_like(s), s)
                result.scores[name] = s.reshape(st.B, *self._shape(name))
        t2 = time.perf_counter()
        result.timings = {"intermediate": t1 - t0, "final": t2 - t1, "total": t2 - t0}
        return result

    def _spec(self, C: Tensor, d: Tensor | None, st: _State) -> tuple[Tensor, Tensor]:
        C = torch.as_tensor(C).to(device=st.lower.device, dtype=self.dtype)
        if C.dim() == 2:
            C = C.unsqueeze(0).expand(st.B, *C.shape)
        if C.dim() != 3 or C.shape[0] != st.B or C.shape[2] != self.graph.n_outputs:
            raise ValueError(f"C must be [R, {self.graph.n_outputs}] or [{st.B}, R, {self.graph.n_outputs}], "
                             f"got {tuple(C.shape)}")
        if d is None:
            d = torch.zeros(C.shape[:2], dtype=self.dtype, device=C.device)
        d = torch.as_tensor(d).to(device=C.device, dtype=self.dtype)
        return C, d.reshape(-1, C.shape[1]).expand(st.B, C.shape[1])

    def _beta_spec(self, st: _State, splits: list[list[Split]] | None, betas: str | Tensor | None,
                   rows: int, start: Tensor | None = None) -> _BetaSpec | None:
        """The split terms (value name -> domain, element, column, sign, split value) and the betas' start."""
        if betas is None:
            return None
        if isinstance(betas, str) and betas != "optimize":
            raise ValueError(f"betas must be None, a tensor or 'optimize', not {betas!r}")
        splits = [[] for _ in range(st.B)] if splits is None else splits
        if len(splits) != st.B:
            raise ValueError(f"splits: one list per domain ({st.B}), got {len(splits)}")
        device = st.lower.device
        k = max((len(path) for path in splits), default=0)
        per: dict[str, list[tuple[int, int, int, float, float]]] = {}
        for b, path in enumerate(splits):
            for i, (name, index, value, side) in enumerate(path):
                if name not in self._consumers:
                    raise ValueError(f"split on {name!r}: splits apply to the inputs of non-linear ops "
                                     f"({', '.join(self.relaxed)})")
                if not 0 <= int(index) < self.graph.values[name].size or side not in (0, 1) \
                        or not math.isfinite(float(value)):
                    raise ValueError(f"split {(name, index, value, side)!r} of domain {b}: index out of range, "
                                     f"side not 0/1, or value not finite")
                per.setdefault(name, []).append((b, int(index), i, 1.0 if side == 1 else -1.0, float(value)))
        terms = {}
        for name, items in per.items():
            b_idx, e_idx, col = (torch.tensor([t[j] for t in items], dtype=torch.long, device=device)
                                 for j in range(3))
            sign, val = (torch.tensor([t[j] for t in items], dtype=self.dtype, device=device) for j in (3, 4))
            terms[name] = (b_idx, e_idx, col, sign, val)
        optimize = isinstance(betas, str)
        if optimize and start is None:
            return _BetaSpec(terms, torch.zeros((st.B, rows, k), dtype=self.dtype, device=device), True)
        given = torch.as_tensor(start if optimize else betas).to(device=device, dtype=self.dtype)
        what = "beta_start" if optimize else "betas"
        if given.dim() != 3 or given.shape[0] != st.B or given.shape[1] not in (1, rows):
            raise ValueError(f"{what} must be [{st.B}, {rows} (or 1), k], got {tuple(given.shape)}")
        if not bool(torch.isfinite(given).all()) or bool((given < 0).any()):
            raise ValueError(f"{what} must be finite and >= 0")
        given = given[:, :, :k]
        if given.shape[2] < k:
            given = torch.cat([given, given.new_zeros((*given.shape[:2], k - given.shape[2]))], dim=2)
        return _BetaSpec(terms, given.expand(st.B, rows, k).clone(), optimize)

    def _score_weights(self, st: _State, scores: bool | Tensor, R: int, rows: int) -> _Scores | None:
        if scores is False or scores is None:
            return None
        w = torch.zeros((st.B, rows), dtype=self.dtype, device=st.lower.device)
        if scores is True:
            w[:, :R] = 1.0
        else:
            given = torch.as_tensor(scores).to(device=w.device, dtype=self.dtype)
            w[:, :R] = given.reshape(-1, R).expand(st.B, R)
        return _Scores(w, {})

    def _final(self, st: _State, C: Tensor, d: Tensor, alphas: str | dict[str, Tensor] | None,
               betas: _BetaSpec | None, opt: _Opt, record: _Scores | None
               ) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Tensor] | None, Tensor | None]:
        out = self.graph.output
        self._cone(out)
        R = C.shape[1]
        chunk = max(1, int(self.chunk_elements // (st.B * self._widths[out])))
        budgets = [t for t, on in ((opt.alpha_time, alphas == "optimize"),
                                   (opt.beta_time, betas is not None and betas.optimize)) if on and t is not None]
        deadline = time.perf_counter() + min(budgets) if budgets else None
        parts = []
        for start in range(0, R, chunk):
            rows = slice(start, start + chunk)
            A = C[:, rows].reshape(st.B, -1, *self.graph.output_shape)
            given = alphas
            if isinstance(alphas, dict):
                given = {k: self._given_alpha(k, v, st.B, R, start, chunk) for k, v in alphas.items()}
            beta = None if betas is None else betas.start[:, rows]
            rec = None if record is None else _Scores(record.weights[:, rows], record.acc)
            parts.append(self._optimize(st, A, d[:, rows], given, beta, betas, opt, deadline, rec))
        value, x, coef, const = (torch.cat([p[i] for p in parts], dim=1) for i in range(4))
        used = None
        if alphas is not None:
            used = {k: torch.cat([p[4][k] for p in parts], dim=1) for k in parts[0][4]}
        used_betas = None if betas is None else torch.cat([p[5] for p in parts], dim=1)
        return value, x, coef, const, used, used_betas

    def _given_alpha(self, name: str, value: Tensor, B: int, R: int, start: int, chunk: int) -> Tensor:
        """Slopes passed in, as ``[B, rows of this chunk (or 1), *shape]``."""
        shape = self._shape(name)
        value = torch.as_tensor(value).to(self.dtype)
        if value.dim() == len(shape):
            value = value.reshape(1, 1, *shape)
        elif value.dim() == len(shape) + 1:
            value = value.unsqueeze(1)
        if value.shape[1] == R:
            value = value[:, start:start + chunk]
        elif value.shape[1] != 1:
            raise ValueError(f"alphas[{name!r}] has {value.shape[1]} rows, the specification {R}")
        return value.expand(B, *value.shape[1:])

    def _alpha_nodes(self, st: _State) -> list[Node]:
        nodes = []
        for node in self._cone(self.graph.output):
            relax = RELAXATIONS.get(node.op)
            if relax is not None and relax.alpha_range is not None:
                free = self._relaxation(st, node)[4]
                if bool(free.any()):
                    nodes.append(node)
        return nodes

    def _optimize(self, st: _State, A: Tensor, d: Tensor, alphas: str | dict[str, Tensor] | None,
                  beta: Tensor | None, betas: _BetaSpec | None, opt: _Opt, deadline: float | None,
                  record: _Scores | None
                  ) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Tensor], Tensor | None]:
        """The final pass on one chunk of rows: with the documented slopes or ``alphas``, betas ``beta``
        (``[B, R, k]``) if any; where asked, Adam on the slopes and/or the betas (projected on their sound
        ranges), the best bound per row over the parameters tried (and those parameters) returned."""
        B, R = A.shape[:2]
        params: dict[str, Tensor] = {}
        ranges: dict[str, tuple[float, float]] = {}
        if alphas is not None:
            for node in self._alpha_nodes(st):
                name = node.inputs[0]
                a_l = self._relaxation(st, node)[0]
                ranges[name] = RELAXATIONS[node.op].alpha_range(node.attrs)
                shape = (B, R, *self._shape(name))
                if isinstance(alphas, dict) and name in alphas:
                    init = alphas[name].to(A.device).expand(shape)
                else:
                    init = a_l.unsqueeze(1).expand(shape)
                params[name] = init.clamp(*ranges[name]).clone()
        if beta is not None:
            beta = beta.clone()
        opt_alpha = alphas == "optimize" and bool(params) and opt.alpha_steps > 0
        opt_beta = (betas is not None and betas.optimize and beta is not None and beta.shape[-1] > 0
                    and bool(betas.terms) and opt.beta_steps > 0)
        optimize = opt_alpha or opt_beta

        def evaluate(rec: _Scores | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
            terms = None if beta is None or not betas.terms else _Betas(betas.terms, beta)  # type: ignore[union-attr]
            coef, const = self._backward(st, self.graph.output, A, params if alphas is not None else None,
                                         betas=terms, record=rec)
            value, x = _concretize(coef, const - d, st.lower, st.upper)
            return value, x, coef, const - d

        with torch.no_grad():
            best = evaluate(None if optimize else record)
        best_alpha = {k: v.clone() for k, v in params.items()}
        best_beta = None if beta is None else beta.clone()
        if not optimize:
            return (*best, best_alpha, best_beta)

        def keep_best(found: tuple[Tensor, Tensor, Tensor, Tensor]) -> None:
            nonlocal best, best_beta
            better = found[0] > best[0]  # per row; the returned parameters are those of the best bound
            wide = better.unsqueeze(-1)
            best = (torch.where(better, found[0], best[0]), torch.where(wide, found[1], best[1]),
                    torch.where(wide, found[2], best[2]), torch.where(better, found[3], best[3]))
            for k, p in params.items():
                best_alpha[k] = torch.where(better.reshape(B, R, *([1] * (p.dim() - 2))), p.detach(), best_alpha[k])
            if best_beta is not None:
                best_beta = torch.where(wide, beta.detach(), best_beta)  # type: ignore[union-attr]

        groups = []
        if opt_alpha:
            for p in params.values():
                p.requires_grad_(True)
            groups.append({"params": list(params.values()), "lr": opt.alpha_lr})
        if opt_beta:
            beta.requires_grad_(True)  # type: ignore[union-attr]
            groups.append({"params": [beta], "lr": opt.beta_lr})
        adam = Adam(groups)
        steps = max(opt.alpha_steps if opt_alpha else 0, opt.beta_steps if opt_beta else 0)
        live = ~st.empty.unsqueeze(1)
        with torch.enable_grad():  # also when the caller runs under torch.no_grad()
            for _ in range(steps):
                if deadline is not None and time.perf_counter() > deadline:
                    break
                adam.zero_grad()
                found = evaluate()
                loss = -torch.where(live & torch.isfinite(found[0]), found[0], torch.zeros_like(found[0])).sum()
                loss.backward()
                with torch.no_grad():
                    keep_best(tuple(t.detach() for t in found))
                adam.step()
                with torch.no_grad():
                    for k, p in params.items():
                        p.clamp_(*ranges[k])
                    if opt_beta:
                        beta.clamp_(min=0.0)  # type: ignore[union-attr]
        with torch.no_grad():  # the parameters after the last step
            keep_best(evaluate())
            if record is not None:  # the scores of the best parameters (each row's pass is its own)
                params = {k: v.clone() for k, v in best_alpha.items()}
                beta = None if best_beta is None else best_beta.clone()
                evaluate(record)
        return (*(t.detach() for t in best), {k: v.detach() for k, v in best_alpha.items()},
                None if best_beta is None else best_beta.detach())


@dataclass
class _Opt:
    """Steps, learning rates and time budgets of the slopes' and the betas' optimisation."""

    alpha_steps: int
    alpha_lr: float
    alpha_time: float | None
    beta_steps: int
    beta_lr: float
    beta_time: float | None


@dataclass
class _BetaSpec:
    """Split terms per value name: (domain, flat element, column of beta, sign s, split value), all ``[M]``;
    the betas to start from (``[B, rows, k]``) and whether to optimise them."""

    terms: dict[str, tuple[Tensor, Tensor, Tensor, Tensor, Tensor]]
    start: Tensor
    optimize: bool


@dataclass
class _Betas:
    """The split terms of one chunk of rows in the final pass, with their betas ``values`` ``[B, R, k]``."""

    terms: dict[str, tuple[Tensor, Tensor, Tensor, Tensor, Tensor]]
    values: Tensor

    def apply(self, name: str, A: Tensor, const: Tensor, B: int, R: int) -> tuple[Tensor, Tensor]:
        """Where the pass reaches value ``name`` (coefficients ``A`` ``[B * R, *shape]``): ``-beta s`` on the
        split element's coefficient and ``+beta s value`` on the constant, per row."""
        terms = self.terms.get(name)
        if terms is None:
            return A, const
        b_idx, e_idx, col, sign, val = terms
        bs = self.values[b_idx, :, col] * sign.unsqueeze(1)  # [M, R]: beta_{r,i} s_i
        A3 = A.reshape(B, R, -1).transpose(1, 2).index_put((b_idx, e_idx), -bs, accumulate=True)
        add = torch.zeros((B, R), dtype=A.dtype, device=A.device).index_put((b_idx,), bs * val.unsqueeze(1),
                                                                            accumulate=True)
        return A3.transpose(1, 2).reshape(A.shape), const + add.reshape(B * R)


@dataclass
class _Scores:
    """Branching scores being collected: row weights ``[B, R]`` and value name -> ``[B, size]`` sums."""

    weights: Tensor
    acc: dict[str, Tensor]
