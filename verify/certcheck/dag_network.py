"""The checker's own reading of a general ONNX graph: a DAG of structured operations.

Read with the checker's protobuf reader (:mod:`verify.certcheck.onnxfile`), independent
of verify's converter.  Every value is a flat float vector (C order of its ONNX shape,
batch 1).  Linear operations keep their structure and their weights exactly as in the
file (float64 copies of float32 numbers, never multiplied together):

* ``Dense``: ``y = x W^T + b`` along the last axis (Gemm, MatMul with a constant);
* ``Conv``: an N-D convolution (groups, dilations, pads, strides), or its adjoint for
  ConvTranspose; average pools are depthwise convolutions with a kernel of ones followed
  by a ``Diag`` of the reciprocal counts;
* ``Diag``: ``y = s x + c`` per coordinate, with error radii on ``s`` and ``c`` where they
  are not exactly representable (a division, a batch normalisation);
* ``Gather``: a copy of coordinates of one or more inputs, or of constants (reshapes,
  transposes, slices, pads, concatenations, broadcasts; no arithmetic);
* ``Sum``: ``y = x_1 +- x_2 ...`` of variable branches (residual joins).

Non-linear operations: ``Elementwise`` (relu, leaky_relu, sigmoid, tanh), ``MaxPool``
(window indices, padding excluded) and ``Softmax`` (only with nothing non-linear after it).
Shape computations (Shape, Gather, Unsqueeze, Concat, ... of constants) are folded with
integer arithmetic.  Anything else raises :class:`UnsupportedModel` with a one-line reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from verify.certcheck.network import UnsupportedModel
from verify.certcheck.onnxfile import Graph, Node, OnnxReadError, read_graph
from verify.certcheck.rigorous import U, up

#: Largest value (elements) the checker builds; larger models are refused.
MAX_VALUE_SIZE = 2**26
NON_LINEAR = {"Relu": "relu", "LeakyRelu": "leaky_relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}
_FLOAT_TYPES = {1, 10, 11}  # FLOAT, FLOAT16, DOUBLE (Cast to these is the identity on reals)


@dataclass
class Op:
    """One operation: ``output = f(inputs)`` (value ids)."""

    inputs: tuple[int, ...]
    output: int
    name: str
    KIND: ClassVar[str] = ""
    LINEAR: ClassVar[bool] = True


@dataclass
class Dense(Op):
    W: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # [m, k]
    b: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [lead * m]
    lead: int = 1  # the input is [lead, k], the output [lead, m]
    KIND: ClassVar[str] = "dense"


@dataclass
class Conv(Op):
    """A convolution from ``in_shape`` (channels first) to ``out_shape``; with ``transposed``
    the operation is its adjoint (ConvTranspose): from ``out_shape`` to ``in_shape``."""

    kernel: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # [c_out, c_in / groups, *k]
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per output element of the operation
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    pads: tuple[int, ...] = ()  # begin of each spatial axis
    pads_end: tuple[int, ...] = ()
    dilations: tuple[int, ...] = ()
    groups: int = 1
    transposed: bool = False
    KIND: ClassVar[str] = "conv"


@dataclass
class Diag(Op):
    s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    s_err: np.ndarray = field(default_factory=lambda: np.zeros(0))
    c: np.ndarray = field(default_factory=lambda: np.zeros(0))
    c_err: np.ndarray = field(default_factory=lambda: np.zeros(0))
    KIND: ClassVar[str] = "diag"


@dataclass
class Gather(Op):
    """``y[i] = cat(inputs)[idx[i]]``, or ``fill[i]`` where ``idx[i] < 0``."""

    idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    fill: np.ndarray = field(default_factory=lambda: np.zeros(0))
    multiplicity: int = 1  # the most outputs one input coordinate is copied to
    KIND: ClassVar[str] = "gather"


@dataclass
class Sum(Op):
    signs: tuple[float, ...] = ()
    KIND: ClassVar[str] = "sum"


@dataclass
class Elementwise(Op):
    fn: str = "relu"  # relu, leaky_relu, sigmoid, tanh
    alpha: float = 0.0  # leaky_relu's slope for z < 0
    KIND: ClassVar[str] = "elementwise"
    LINEAR: ClassVar[bool] = False


@dataclass
class MaxPool(Op):
    win: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))  # [n_out, K], -1: padding
    multiplicity: int = 1  # the most windows one input coordinate lies in
    KIND: ClassVar[str] = "max_pool"
    LINEAR: ClassVar[bool] = False


@dataclass
class Softmax(Op):
    groups: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))  # [G, k] flat indices
    KIND: ClassVar[str] = "softmax"
    LINEAR: ClassVar[bool] = False


@dataclass
class DagNetwork:
    """Values ``0 .. len(sizes) - 1`` (0 is the input), operations in topological order."""

    input_shape: tuple[int, ...]
    sizes: list[int]
    ops: list[Op]
    output: int
    neurons: dict[str, int]  # ONNX names of the inputs of non-linear operations -> value id
    exact: list[bool]  # interval bounds of the value are exact (up to rounding) on a box
    producer: dict[int, int] = field(default_factory=dict)  # value id -> index of its operation
    names: dict[str, int] = field(default_factory=dict)  # every ONNX tensor that is a variable -> value id

    @property
    def n_inputs(self) -> int:
        return self.sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.sizes[self.output]

    @property
    def bounded(self) -> set[int]:
        """The values that are inputs of non-linear operations."""
        return {op.inputs[0] for op in self.ops if not op.LINEAR}


@dataclass
class _Var:
    vid: int
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def read_dag(source: str | Path | bytes) -> DagNetwork:
    """Read an ONNX file (a path, or its bytes) into a :class:`DagNetwork` (or raise
    :class:`UnsupportedModel`)."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        graph = read_graph(data)
    except OnnxReadError as exc:
        raise UnsupportedModel(f"not a readable ONNX file: {exc}") from None
    try:
        return _Builder(graph).build()
    except (ValueError, IndexError, TypeError, KeyError, OverflowError, MemoryError) as exc:
        raise UnsupportedModel(f"malformed graph ({type(exc).__name__}: {str(exc)[:120]})") from None


def _ints(v: Any, what: str) -> list[int]:
    a = np.asarray(v)
    if a.dtype.kind not in "iub" and not (a.dtype.kind == "f" and np.all(a == np.round(a))):
        raise UnsupportedModel(f"{what}: expected whole numbers")
    return [int(x) for x in a.reshape(-1)]


class _Builder:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        opset = graph.opset.get("", graph.opset.get("ai.onnx"))
        self.opset: int | None = opset
        self.sizes: list[int] = []
        self.ops: list[Op] = []
        self.box: list[bool] = []  # the value's coordinates are independent on a box (a box's image)
        self.exact: list[bool] = []
        self.after_softmax: list[bool] = []
        self.env: dict[str, Any] = {}
        self.neurons: dict[str, int] = {}

    # -- values ------------------------------------------------------------------------
    def _value(self, size: int, box: bool, exact: bool, after_softmax: bool) -> int:
        if not 0 < size <= MAX_VALUE_SIZE:
            raise UnsupportedModel(f"a value of {size} elements (the checker handles 1 to {MAX_VALUE_SIZE})")
        self.sizes.append(int(size))
        self.box.append(box)
        self.exact.append(exact)
        self.after_softmax.append(after_softmax)
        return len(self.sizes) - 1

    def _op(self, op_cls: type, inputs: list[_Var], shape: tuple[int, ...], name: str, box: bool = False,
            exact: bool = False, **params: Any) -> _Var:
        after = any(self.after_softmax[v.vid] for v in inputs)
        if after and not op_cls.LINEAR:
            raise UnsupportedModel(f"{name!r}: a non-linear operation after Softmax (Softmax must be the last)")
        vid = self._value(int(np.prod(shape, dtype=np.int64)), box, exact, after or op_cls is Softmax)
        if any(isinstance(v, np.ndarray) and v.dtype.kind == "f" and not np.all(np.isfinite(v))
               for v in params.values()):
            raise UnsupportedModel(f"{name!r}: a weight that is not finite")
        self.ops.append(op_cls(inputs=tuple(v.vid for v in inputs), output=vid, name=name, **params))
        return _Var(vid, tuple(int(d) for d in shape))

    def _get(self, name: str) -> Any:
        if name not in self.env:
            raise UnsupportedModel(f"tensor {name!r} is used before it is defined (not in topological order?)")
        return self.env[name]

    def _const(self, name: str, what: str) -> np.ndarray:
        v = self._get(name)
        if isinstance(v, _Var):
            raise UnsupportedModel(f"{what}: expected a constant, got a variable ({name!r})")
        return v

    # -- reading -----------------------------------------------------------------------
    def build(self) -> DagNetwork:
        g = self.graph
        for name, array in g.initializer.items():
            self.env[name] = _as_const(array)
        inputs = [i for i in g.input if i.name not in g.initializer]
        if len(inputs) != 1 or len(g.output) != 1:
            raise UnsupportedModel("the checker needs exactly one input and one output")
        shape = tuple(max(int(d), 1) for d in inputs[0].dims)
        x = _Var(self._value(int(np.prod(shape, dtype=np.int64)), True, True, False), shape)
        self.env[inputs[0].name] = x
        live = self._live()
        for node in g.node:
            if not any(o in live for o in node.output):
                continue
            if node.domain not in ("", "ai.onnx"):
                raise UnsupportedModel(f"operator {node.op_type} of domain {node.domain!r} ({node.name!r})")
            if any(o in live for o in node.output[1:] if o):
                raise UnsupportedModel(f"{node.op_type} {node.name!r}: an output other than its first is used")
            self._node(node)
        out = self._get(g.output[0].name)
        if not isinstance(out, _Var):
            raise UnsupportedModel("the output does not depend on the input")
        producer = {op.output: k for k, op in enumerate(self.ops)}
        names = {name: v.vid for name, v in self.env.items() if isinstance(v, _Var)}
        return DagNetwork(shape, self.sizes, self.ops, out.vid, self.neurons, self.exact, producer, names)

    def _live(self) -> set[str]:
        """Tensor names the output depends on."""
        live = {self.graph.output[0].name}
        for node in reversed(self.graph.node):
            if any(o in live for o in node.output):
                live.update(i for i in node.input if i)
        return live

    def _node(self, node: Node) -> None:
        op = node.op_type
        ins = list(node.input)
        vals = [self._get(i) if i else None for i in ins]
        if op == "Constant":
            self._define(node, _constant_value(node))
            return
        if vals and all(v is None or not isinstance(v, _Var) for v in vals) and op != "Shape":
            self._define(node, self._fold(node, vals))
            return
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            raise UnsupportedModel(f"operator {op} ({node.name!r}) is outside the checker's subset")
        self._define(node, handler(node, vals))

    def _define(self, node: Node, value: Any) -> None:
        if not node.output or node.output[0] in self.env:
            raise UnsupportedModel(f"{node.op_type} {node.name!r}: its output is not a new tensor name")
        self.env[node.output[0]] = value

    def _var(self, v: Any, node: Node, k: int = 0) -> _Var:
        if not isinstance(v, _Var):
            raise UnsupportedModel(f"{node.op_type} {node.name!r}: input {k} must depend on the network input")
        return v

    # -- constants ---------------------------------------------------------------------
    def _fold(self, node: Node, vals: list[Any]) -> np.ndarray:
        """Evaluate a node on constants: index operations and integer arithmetic only."""
        op = node.op_type
        a = node.attributes
        if any(v is None for v in vals[:1]):
            raise UnsupportedModel(f"{op} {node.name!r}: missing input")
        if op in ("Add", "Sub", "Mul", "Div", "Neg"):
            if any(np.asarray(v).dtype.kind == "f" for v in vals if v is not None):
                raise UnsupportedModel(f"{op} {node.name!r}: float arithmetic on constants is not folded")
            x = vals[0]
            if op == "Neg":
                return -x
            y = vals[1]
            if op == "Div":
                if np.any(y == 0):
                    raise UnsupportedModel(f"Div {node.name!r}: division by zero")
                q = np.abs(x) // np.abs(y)
                return np.sign(x) * np.sign(y) * q  # ONNX integer division truncates
            return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[op](x, y)
        if op == "Cast":
            to = int(a.get("to", 1))
            x = vals[0]
            if to in _FLOAT_TYPES:
                return x.astype(np.float64)
            if to in (6, 7):  # INT32, INT64
                if x.dtype.kind == "f" and not np.all(x == np.round(x)):
                    raise UnsupportedModel(f"Cast {node.name!r}: a float constant that is not whole")
                return x.astype(np.int64)
            raise UnsupportedModel(f"Cast {node.name!r} to type {to}")
        if op == "ConstantOfShape":
            value = a.get("value")
            fill = np.asarray(value).reshape(-1)[0] if value is not None else 0.0
            return np.full(_ints(vals[0], "ConstantOfShape"), fill, dtype=np.float64 if
                           np.asarray(fill).dtype.kind == "f" else np.int64)
        if op == "Concat":
            axis = int(a.get("axis", 0))
            return np.concatenate([np.asarray(v) for v in vals if v is not None], axis=axis)
        shaped = self._shape_op(node, vals, np.asarray(vals[0]).shape)
        if shaped is None:
            raise UnsupportedModel(f"{op} {node.name!r} on constants is outside the checker's subset")
        fn, _ = shaped
        return fn(np.asarray(vals[0]))

    # -- index operations (no arithmetic) -----------------------------------------------
    def _shape_op(self, node: Node, vals: list[Any], shape: tuple[int, ...]) -> Any:
        """``(f, description)`` with ``f`` the operation applied to an array of ``shape``
        (for index operations), or None for other operators."""
        op = node.op_type
        a = node.attributes
        rank = len(shape)
        if op in ("Identity", "Dropout", "Cast"):
            if op == "Cast" and int(a.get("to", 1)) not in _FLOAT_TYPES:
                raise UnsupportedModel(f"Cast {node.name!r} of a variable to a non-float type")
            if op == "Dropout" and len(vals) > 2 and vals[2] is not None and bool(np.any(vals[2])):
                raise UnsupportedModel(f"Dropout {node.name!r} in training mode")
            return (lambda x: x), op
        if op == "Flatten":
            axis = int(a.get("axis", 1))
            axis = axis + rank if axis < 0 else axis
            if not 0 <= axis <= rank:
                raise UnsupportedModel(f"Flatten {node.name!r}: axis {axis}")
            new = (int(np.prod(shape[:axis], dtype=np.int64)), int(np.prod(shape[axis:], dtype=np.int64)))
            return (lambda x: x.reshape(new)), op
        if op == "Reshape":
            target = _ints(self._const(node.input[1], "Reshape shape") if len(vals) > 1 else a.get("shape", []),
                           "Reshape")
            allowzero = int(a.get("allowzero", 0))
            new = [shape[i] if t == 0 and not allowzero else t for i, t in enumerate(target)]
            return (lambda x: x.reshape(new)), op
        if op == "Transpose":
            perm = a.get("perm") or list(reversed(range(rank)))
            return (lambda x: x.transpose(perm)), op
        if op == "Squeeze":
            axes = a.get("axes") if len(vals) < 2 or vals[1] is None else _ints(vals[1], "Squeeze axes")
            if axes is None:
                axes = [i for i, d in enumerate(shape) if d == 1]
            axes = [int(i) + rank if int(i) < 0 else int(i) for i in axes]
            if any(not 0 <= i < rank or shape[i] != 1 for i in axes):
                raise UnsupportedModel(f"Squeeze {node.name!r}: axes {axes} of shape {shape}")
            return (lambda x: x.reshape([d for i, d in enumerate(shape) if i not in axes])), op
        if op == "Unsqueeze":
            axes = a.get("axes") if len(vals) < 2 or vals[1] is None else _ints(vals[1], "Unsqueeze axes")
            if axes is None:
                raise UnsupportedModel(f"Unsqueeze {node.name!r}: no axes")
            out_rank = rank + len(axes)
            axes = sorted(int(i) + out_rank if int(i) < 0 else int(i) for i in axes)
            if len(set(axes)) != len(axes) or any(not 0 <= i < out_rank for i in axes):
                raise UnsupportedModel(f"Unsqueeze {node.name!r}: axes {axes}")
            it = iter(shape)
            new = [1 if i in axes else next(it) for i in range(out_rank)]
            return (lambda x: x.reshape(new)), op
        if op == "Slice":
            return self._slice(node, vals, shape), op
        if op == "Gather":
            indices = np.asarray(self._const(node.input[1], "Gather indices"))
            idx = _ints(indices, "Gather indices")
            axis = int(a.get("axis", 0))
            axis = axis + rank if axis < 0 else axis
            if not 0 <= axis < rank or any(not -shape[axis] <= i < shape[axis] for i in idx):
                raise UnsupportedModel(f"Gather {node.name!r}: indices out of range")
            ind = np.asarray(idx, dtype=np.int64).reshape(indices.shape)
            return (lambda x: np.take(x, ind, axis=axis)), op
        if op == "Shape":
            start = int(a.get("start", 0))
            end = a.get("end")
            dims = list(shape)[start:None if end is None else int(end)]
            return (lambda x: np.asarray(dims, dtype=np.int64)), op
        return None

    def _slice(self, node: Node, vals: list[Any], shape: tuple[int, ...]) -> Any:
        a = node.attributes
        rank = len(shape)
        if len(vals) > 1:
            starts = _ints(vals[1], "Slice starts")
            ends = _ints(self._const(node.input[2], "Slice ends"), "Slice ends")
            axes = _ints(vals[3], "Slice axes") if len(vals) > 3 and vals[3] is not None else \
                list(range(len(starts)))
            steps = _ints(vals[4], "Slice steps") if len(vals) > 4 and vals[4] is not None else [1] * len(starts)
        else:
            starts, ends = list(a.get("starts", [])), list(a.get("ends", []))
            axes = list(a.get("axes", range(len(starts))))
            steps = [1] * len(starts)
        if not len(starts) == len(ends) == len(axes) == len(steps) or any(s == 0 for s in steps):
            raise UnsupportedModel(f"Slice {node.name!r}: malformed")
        index = [slice(None)] * rank
        for s, e, ax, st in zip(starts, ends, axes, steps):
            ax = ax + rank if ax < 0 else ax
            if not 0 <= ax < rank:
                raise UnsupportedModel(f"Slice {node.name!r}: axis {ax}")
            big = 2**62
            index[ax] = slice(max(min(s, big), -big), max(min(e, big), -big), st)
        return lambda x: x[tuple(index)]

    def _index_op(self, node: Node, x: _Var, fn: Any) -> _Var:
        """Apply an index operation to a variable: a view when it keeps the order."""
        idx = np.asarray(fn(np.arange(x.size, dtype=np.int64).reshape(x.shape)))
        if idx.size == x.size and np.array_equal(idx.reshape(-1), np.arange(x.size)):
            return _Var(x.vid, tuple(int(d) for d in idx.shape))
        return self._gather(node.name, [x], idx, np.zeros(idx.shape))

    def _gather(self, name: str, sources: list[_Var], idx: np.ndarray, fill: np.ndarray) -> _Var:
        flat = idx.reshape(-1).astype(np.int64)
        counts = np.bincount(flat[flat >= 0], minlength=1) if np.any(flat >= 0) else np.zeros(1, dtype=np.int64)
        mult = int(counts.max())
        box = len(sources) == 1 and mult <= 1 and self.box[sources[0].vid]
        exact = all(self.exact[s.vid] for s in sources)
        return self._op(Gather, sources, idx.shape, name, box=box, exact=exact, idx=flat,
                        fill=fill.reshape(-1).astype(np.float64), multiplicity=mult)

    def _generic_index(self, node: Node, vals: list[Any]) -> _Var:
        x = self._var(vals[0], node)
        shaped = self._shape_op(node, vals, x.shape)
        assert shaped is not None
        return self._index_op(node, x, shaped[0])

    _op_Identity = _op_Dropout = _op_Cast = _op_Flatten = _op_Reshape = _op_Transpose = _generic_index
    _op_Squeeze = _op_Unsqueeze = _op_Slice = _op_Gather = _generic_index

    def _op_Shape(self, node: Node, vals: list[Any]) -> np.ndarray:
        v = vals[0]
        shape = v.shape if isinstance(v, _Var) else np.asarray(v).shape
        shaped = self._shape_op(node, vals, tuple(shape))
        return shaped[0](None)

    def _op_Concat(self, node: Node, vals: list[Any]) -> _Var:
        axis = int(node.attributes.get("axis", 0))
        parts_idx, parts_fill, sources = [], [], []
        offset = 0
        for v in vals:
            if isinstance(v, _Var):
                parts_idx.append(offset + np.arange(v.size, dtype=np.int64).reshape(v.shape))
                parts_fill.append(np.zeros(v.shape))
                sources.append(v)
                offset += v.size
            elif v is not None:
                arr = np.asarray(v, dtype=np.float64)
                parts_idx.append(np.full(arr.shape, -1, dtype=np.int64))
                parts_fill.append(arr)
        rank = parts_idx[0].ndim
        axis = axis + rank if axis < 0 else axis
        idx = np.concatenate(parts_idx, axis=axis)
        fill = np.concatenate(parts_fill, axis=axis)
        if len(sources) == 1 and idx.size == sources[0].size and np.array_equal(idx.reshape(-1),
                                                                              np.arange(idx.size)):
            return _Var(sources[0].vid, tuple(idx.shape))
        return self._gather(node.name, sources, idx, fill)

    def _op_Pad(self, node: Node, vals: list[Any]) -> _Var:
        x = self._var(vals[0], node)
        a = node.attributes
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        rank = len(x.shape)
        if len(vals) > 1:
            pads = _ints(self._const(node.input[1], "Pad pads"), "Pad pads")
            value = float(np.asarray(vals[2]).reshape(-1)[0]) if len(vals) > 2 and vals[2] is not None and \
                np.asarray(vals[2]).size else 0.0
            axes = _ints(vals[3], "Pad axes") if len(vals) > 3 and vals[3] is not None else list(range(rank))
        else:
            pads = list(a.get("pads", []))
            value = float(a.get("value", 0.0))
            axes = list(range(rank))
        axes = [i + rank if i < 0 else i for i in axes]
        if len(pads) != 2 * len(axes) or mode not in ("constant", "reflect", "edge") or \
                any(not 0 <= i < rank for i in axes):
            raise UnsupportedModel(f"Pad {node.name!r}: mode {mode!r} or pads {pads} not supported")
        k = len(axes)
        idx = np.arange(x.size, dtype=np.int64).reshape(x.shape)
        crop = [slice(None)] * rank
        widths = [(0, 0)] * rank
        for j, ax in enumerate(axes):
            b, e = pads[j], pads[j + k]
            widths[ax] = (max(b, 0), max(e, 0))
            crop[ax] = slice(-min(b, 0), x.shape[ax] + min(e, 0))
        idx = idx[tuple(crop)]
        if mode == "constant":
            idx = np.pad(idx, widths, mode="constant", constant_values=-1)
            fill = np.where(idx < 0, value, 0.0)
        else:
            if any(w > 0 for pair in widths for w in pair) and idx.size == 0:
                raise UnsupportedModel(f"Pad {node.name!r}: padding an empty tensor")
            idx = np.pad(idx, widths, mode=mode)
            fill = np.zeros(idx.shape)
        return self._gather(node.name, [x], idx, fill)

    # -- linear operations -------------------------------------------------------------
    def _broadcast(self, node: Node, x: _Var, shape: tuple[int, ...]) -> _Var:
        if x.shape == shape:
            return x
        idx = np.broadcast_to(np.arange(x.size, dtype=np.int64).reshape(x.shape), shape)
        if idx.size == x.size:
            return _Var(x.vid, shape)
        return self._gather(node.name + ":broadcast", [x], np.ascontiguousarray(idx), np.zeros(shape))

    def _diag(self, node: Node, x: _Var, s: np.ndarray, s_err: np.ndarray, c: np.ndarray, c_err: np.ndarray,
              name: str | None = None) -> _Var:
        n = x.size
        arrays = [np.broadcast_to(np.asarray(v, dtype=np.float64), x.shape).reshape(n).copy()
                  for v in (s, s_err, c, c_err)]
        return self._op(Diag, [x], x.shape, name or node.name, box=self.box[x.vid], exact=self.exact[x.vid],
                        s=arrays[0], s_err=arrays[1], c=arrays[2], c_err=arrays[3])

    def _arith(self, node: Node, vals: list[Any]) -> _Var:
        op = node.op_type
        if len(vals) != 2 or vals[0] is None or vals[1] is None:
            raise UnsupportedModel(f"{op} {node.name!r}: expects two inputs")
        a, b = vals
        if isinstance(a, _Var) and isinstance(b, _Var):
            if op not in ("Add", "Sub"):
                raise UnsupportedModel(f"{op} {node.name!r} of two variables is outside the checker's subset")
            shape = tuple(np.broadcast_shapes(a.shape, b.shape))
            a, b = self._broadcast(node, a, shape), self._broadcast(node, b, shape)
            return self._op(Sum, [a, b], shape, node.name, signs=(1.0, 1.0 if op == "Add" else -1.0))
        var_first = isinstance(a, _Var)
        x = a if var_first else b
        k = np.asarray(b if var_first else a, dtype=np.float64)
        if not np.all(np.isfinite(k)):
            raise UnsupportedModel(f"{op} {node.name!r}: a constant that is not finite")
        shape = tuple(np.broadcast_shapes(x.shape, k.shape))
        x = self._broadcast(node, x, shape)
        k = np.broadcast_to(k, shape)
        one, zero = np.ones(shape), np.zeros(shape)
        if op == "Add":
            return self._diag(node, x, one, zero, k, zero)
        if op == "Sub":
            return self._diag(node, x, one, zero, -k, zero) if var_first else self._diag(node, x, -one, zero, k, zero)
        if op == "Mul":
            return self._diag(node, x, k, zero, zero, zero)
        if not var_first or np.any(k == 0):
            raise UnsupportedModel(f"Div {node.name!r}: only a variable by a non-zero constant")
        s = 1.0 / k
        mant = np.frexp(k)[0]
        exact = np.abs(mant) == 0.5  # dividing by a power of two is exact
        return self._diag(node, x, s, np.where(exact, 0.0, up(2 * U * np.abs(s))), zero, zero)

    _op_Add = _op_Sub = _op_Mul = _op_Div = _arith

    def _op_Neg(self, node: Node, vals: list[Any]) -> _Var:
        x = self._var(vals[0], node)
        return self._diag(node, x, -np.ones(x.shape), np.zeros(x.shape), np.zeros(x.shape), np.zeros(x.shape))

    def _dense(self, name: str, x: _Var, W: np.ndarray, b: np.ndarray | None) -> _Var:
        """``x @ W^T + b`` along the last axis of ``x`` (``W``: ``[m, k]``)."""
        shape = x.shape if x.shape else (1,)
        if shape[-1] != W.shape[1]:
            raise UnsupportedModel(f"{name!r}: inner dimensions {shape[-1]} and {W.shape[1]} differ")
        lead = int(np.prod(shape[:-1], dtype=np.int64))
        out_shape = (*shape[:-1], W.shape[0])
        bias = np.zeros(out_shape) if b is None else np.broadcast_to(b, out_shape)
        return self._op(Dense, [_Var(x.vid, shape)], out_shape, name, exact=self.box[x.vid],
                        W=np.ascontiguousarray(W, dtype=np.float64), b=bias.reshape(-1).astype(np.float64), lead=lead)

    def _op_Gemm(self, node: Node, vals: list[Any]) -> _Var:
        a = node.attributes
        x = self._var(vals[0], node)
        w = self._const(node.input[1], f"Gemm {node.name!r} weight")
        if a.get("transA", 0) or len(x.shape) != 2 or w.ndim != 2:
            raise UnsupportedModel(f"Gemm {node.name!r}: only a 2-D variable times a constant (transA=0)")
        W = w if a.get("transB", 0) else w.T
        c = vals[2] if len(vals) > 2 and vals[2] is not None else None
        if isinstance(c, _Var):
            raise UnsupportedModel(f"Gemm {node.name!r}: a variable C")
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        if alpha == 1.0 and beta == 1.0:
            return self._dense(node.name, x, W, c)
        y = self._dense(node.name, x, W, None)
        cc = np.zeros(y.shape) if c is None else np.broadcast_to(np.asarray(c, dtype=np.float64) * beta, y.shape)
        return self._diag(node, y, np.full(y.shape, alpha), np.zeros(y.shape), cc, up(2 * U * np.abs(cc)),
                          name=node.name + ":alpha-beta")

    def _op_MatMul(self, node: Node, vals: list[Any]) -> _Var:
        a, b = vals[0], vals[1]
        if isinstance(a, _Var) and isinstance(b, _Var):
            raise UnsupportedModel(f"MatMul {node.name!r} of two variables is outside the checker's subset")
        if isinstance(a, _Var):
            w = np.asarray(b, dtype=np.float64)
            if w.ndim == 1:
                y = self._dense(node.name, a, w[None, :], None)
                return _Var(y.vid, y.shape[:-1])
            while w.ndim > 2 and w.shape[0] == 1:
                w = w[0]
            if w.ndim != 2:
                raise UnsupportedModel(f"MatMul {node.name!r}: a batched constant")
            if len(a.shape) == 1:
                y = self._dense(node.name, _Var(a.vid, (1, a.shape[0])), w.T, None)
                return _Var(y.vid, (w.shape[1],))
            return self._dense(node.name, a, w.T, None)
        w = np.asarray(a, dtype=np.float64)
        x = b
        while w.ndim > 2 and w.shape[0] == 1:
            w = w[0]
        if w.ndim != 2 or len(x.shape) < 2:
            raise UnsupportedModel(f"MatMul {node.name!r}: constant @ variable needs a 2-D constant")
        rank = len(x.shape)
        perm = list(range(rank - 2)) + [rank - 1, rank - 2]
        xt = self._index_op(node, x, lambda t: t.transpose(perm))
        y = self._dense(node.name, xt, w, None)
        return self._index_op(node, y, lambda t: t.transpose(perm))

    def _conv_geometry(self, node: Node, spatial: tuple[int, ...], kernel: tuple[int, ...]) -> tuple:
        a = node.attributes
        r = len(kernel)
        strides = tuple(int(s) for s in (a.get("strides") or [1] * r))
        dil = tuple(int(d) for d in (a.get("dilations") or [1] * r))
        pads = [int(p) for p in (a.get("pads") or [0] * (2 * r))]
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else str(auto)
        if len(strides) != r or len(dil) != r or len(pads) != 2 * r or min(strides + dil, default=1) < 1 or \
                min(pads, default=0) < 0:
            raise UnsupportedModel(f"{node.op_type} {node.name!r}: malformed strides, dilations or pads")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = [0] * (2 * r)
            for i in range(r):
                out = -(-spatial[i] // strides[i])
                total = max((out - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - spatial[i], 0)
                small, big = total // 2, total - total // 2
                pads[i], pads[i + r] = (small, big) if auto == "SAME_UPPER" else (big, small)
        elif auto == "VALID":
            pads = [0] * (2 * r)
        elif auto != "NOTSET":
            raise UnsupportedModel(f"{node.op_type} {node.name!r}: auto_pad {auto}")
        return strides, dil, tuple(pads[:r]), tuple(pads[r:])

    def _conv_op(self, name: str, x: _Var, kernel: np.ndarray, bias: np.ndarray | None, strides: tuple,
                 dil: tuple, pb: tuple, pe: tuple, groups: int, out_spatial: tuple | None = None) -> _Var:
        cin, spatial = x.shape[1], x.shape[2:]
        cout, kin, ks = kernel.shape[0], kernel.shape[1], kernel.shape[2:]
        if groups < 1 or cin % groups or cout % groups or kin * groups != cin:
            raise UnsupportedModel(f"Conv {name!r}: channels {cin} -> {cout} with groups {groups} and kernel "
                                   f"{kernel.shape}")
        osp = tuple((spatial[i] + pb[i] + pe[i] - dil[i] * (ks[i] - 1) - 1) // strides[i] + 1
                    for i in range(len(ks)))
        if out_spatial is not None:
            osp = out_spatial
        if min(osp, default=1) < 1:
            raise UnsupportedModel(f"Conv {name!r}: empty output")
        out_shape = (1, cout, *osp)
        b = np.zeros(cout) if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
        if b.shape != (cout,):
            raise UnsupportedModel(f"Conv {name!r}: bias of shape {b.shape}")
        full = np.repeat(b, int(np.prod(osp, dtype=np.int64)))
        return self._op(Conv, [x], out_shape, name, exact=self.box[x.vid], kernel=kernel.astype(np.float64),
                        bias=full, in_shape=(cin, *spatial), out_shape=(cout, *osp), strides=strides, pads=pb,
                        pads_end=pe, dilations=dil, groups=groups)

    def _op_Conv(self, node: Node, vals: list[Any]) -> _Var:
        x = self._var(vals[0], node)
        kernel = np.asarray(self._const(node.input[1], f"Conv {node.name!r} weight"), dtype=np.float64)
        bias = vals[2] if len(vals) > 2 and vals[2] is not None else None
        if isinstance(bias, _Var):
            raise UnsupportedModel(f"Conv {node.name!r}: a variable bias")
        r = kernel.ndim - 2
        if r < 1 or len(x.shape) != r + 2 or x.shape[0] != 1:
            raise UnsupportedModel(f"Conv {node.name!r}: input {x.shape} and kernel {kernel.shape}")
        ks = node.attributes.get("kernel_shape")
        if ks is not None and tuple(int(k) for k in ks) != kernel.shape[2:]:
            raise UnsupportedModel(f"Conv {node.name!r}: kernel_shape differs from the weight's")
        strides, dil, pb, pe = self._conv_geometry(node, x.shape[2:], kernel.shape[2:])
        return self._conv_op(node.name, x, kernel, bias, strides, dil, pb, pe, int(node.attributes.get("group", 1)))

    def _op_ConvTranspose(self, node: Node, vals: list[Any]) -> _Var:
        x = self._var(vals[0], node)
        a = node.attributes
        kernel = np.asarray(self._const(node.input[1], f"ConvTranspose {node.name!r} weight"), dtype=np.float64)
        bias = vals[2] if len(vals) > 2 and vals[2] is not None else None
        if isinstance(bias, _Var):
            raise UnsupportedModel(f"ConvTranspose {node.name!r}: a variable bias")
        r = kernel.ndim - 2
        groups = int(a.get("group", 1))
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else str(auto)
        if r < 1 or len(x.shape) != r + 2 or x.shape[0] != 1 or auto not in ("NOTSET", "SAME_UPPER", "SAME_LOWER",
                                                                              "VALID"):
            raise UnsupportedModel(f"ConvTranspose {node.name!r}: input {x.shape}, kernel {kernel.shape}, {auto}")
        ks = kernel.shape[2:]
        if a.get("kernel_shape") is not None and tuple(int(k) for k in a["kernel_shape"]) != ks:
            raise UnsupportedModel(f"ConvTranspose {node.name!r}: kernel_shape differs from the weight's")
        cin, h = x.shape[1], x.shape[2:]
        strides = tuple(int(s) for s in (a.get("strides") or [1] * r))
        dil = tuple(int(d) for d in (a.get("dilations") or [1] * r))
        op_ = [int(v) for v in (a.get("output_padding") or [0] * r)]
        if len(strides) != r or len(dil) != r or len(op_) != r or min(strides + dil) < 1 or \
                any(not 0 <= op_[i] < max(strides[i], dil[i]) for i in range(r)):
            raise UnsupportedModel(f"ConvTranspose {node.name!r}: strides, dilations or output_padding")
        target = a.get("output_shape")
        if target is None and auto in ("SAME_UPPER", "SAME_LOWER"):
            target = [h[i] * strides[i] for i in range(r)]
        if target is not None:  # pads from the output shape (the ONNX operator's definition)
            target = [int(t) for t in target][-r:]
            total = [strides[i] * (h[i] - 1) + op_[i] + (ks[i] - 1) * dil[i] + 1 - target[i] for i in range(r)]
            if len(target) != r or min(total) < 0:
                raise UnsupportedModel(f"ConvTranspose {node.name!r}: output_shape {target}")
            upper = auto == "SAME_UPPER"
            pb = tuple(t // 2 if upper else t - t // 2 for t in total)
            pe = tuple(t - t // 2 if upper else t // 2 for t in total)
        elif auto == "VALID":
            pb = pe = (0,) * r
        else:
            pads = [int(p) for p in (a.get("pads") or [0] * (2 * r))]
            if len(pads) != 2 * r or min(pads) < 0:
                raise UnsupportedModel(f"ConvTranspose {node.name!r}: pads {pads}")
            pb, pe = tuple(pads[:r]), tuple(pads[r:])
        if kernel.shape[0] != cin or cin % groups:
            raise UnsupportedModel(f"ConvTranspose {node.name!r}: channels")
        cout = kernel.shape[1] * groups
        big = tuple((h[i] - 1) * strides[i] - pb[i] - pe[i] + dil[i] * (ks[i] - 1) + op_[i] + 1 for i in range(r))
        if min(big) < 1:
            raise UnsupportedModel(f"ConvTranspose {node.name!r}: empty output")
        # the adjoint of the convolution from [cout, *big] to [cin, *h] with this kernel
        b = np.zeros(cout) if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
        if b.shape != (cout,):
            raise UnsupportedModel(f"ConvTranspose {node.name!r}: bias of shape {b.shape}")
        osp = tuple((big[i] + pb[i] + pe[i] - dil[i] * (ks[i] - 1) - 1) // strides[i] + 1 for i in range(r))
        if osp != tuple(h):
            raise UnsupportedModel(f"ConvTranspose {node.name!r}: inconsistent geometry")
        full = np.repeat(b, int(np.prod(big, dtype=np.int64)))
        return self._op(Conv, [x], (1, cout, *big), node.name, kernel=kernel, bias=full, in_shape=(cout, *big),
                        out_shape=(cin, *h), strides=strides, pads=pb, pads_end=pe, dilations=dil, groups=groups,
                        transposed=True)

    def _op_BatchNormalization(self, node: Node, vals: list[Any]) -> _Var:
        x = self._var(vals[0], node)
        a = node.attributes
        if int(a.get("training_mode", 0)) or len(vals) != 5 or len(x.shape) < 2:
            raise UnsupportedModel(f"BatchNormalization {node.name!r}: inference mode with 5 inputs only")
        gamma_, beta, mean, var = (np.asarray(self._const(i, "BatchNormalization"), dtype=np.float64).reshape(-1)
                                   for i in node.input[1:5])
        ch = x.shape[1]
        if any(v.shape != (ch,) for v in (gamma_, beta, mean, var)):
            raise UnsupportedModel(f"BatchNormalization {node.name!r}: parameters of the wrong size")
        eps = float(a.get("epsilon", 1e-5))
        if np.any(var + eps <= 0):
            raise UnsupportedModel(f"BatchNormalization {node.name!r}: variance + epsilon <= 0")
        scale = gamma_ / np.sqrt(var + eps)
        shift = beta - mean * scale
        s_err = up(np.abs(scale) * 8 * U)  # var + eps, sqrt and the division: 3 roundings
        c_err = up(np.abs(mean) * s_err + np.abs(shift) * 4 * U + np.abs(mean * scale) * 4 * U)
        per = (1, ch) + (1,) * (len(x.shape) - 2)
        return self._diag(node, x, scale.reshape(per), s_err.reshape(per), shift.reshape(per), c_err.reshape(per))

    def _pool_geometry(self, node: Node, x: _Var) -> tuple:
        a = node.attributes
        ks = tuple(int(k) for k in a.get("kernel_shape", []))
        r = len(ks)
        if r < 1 or len(x.shape) != r + 2 or x.shape[0] != 1 or min(ks) < 1:
            raise UnsupportedModel(f"{node.op_type} {node.name!r}: kernel {ks} on input {x.shape}")
        strides, dil, pb, pe = self._conv_geometry(node, x.shape[2:], ks)
        return ks, strides, dil, pb, pe

    def _op_AveragePool(self, node: Node, vals: list[Any]) -> _Var:
        x = self._var(vals[0], node)
        a = node.attributes
        ks, strides, dil, pb, pe = self._pool_geometry(node, x)
        if int(a.get("ceil_mode", 0)) and _pool_sizes(x.shape[2:], ks, strides, dil, pb, pe, True) != \
                _pool_sizes(x.shape[2:], ks, strides, dil, pb, pe, False):
            raise UnsupportedModel(f"AveragePool {node.name!r}: ceil_mode that changes the output size")
        ch = x.shape[1]
        kernel = np.ones((ch, 1, *ks))
        y = self._conv_op(node.name, x, kernel, None, strides, dil, pb, pe, ch)
        if int(a.get("count_include_pad", 0)):
            count = np.full(y.shape, float(np.prod(ks)))
        else:  # the number of entries of each window inside the input
            win = _windows(1, x.shape[2:], ks, strides, dil, pb, y.shape[2:])
            count = np.broadcast_to((win >= 0).sum(axis=1).astype(np.float64).reshape(1, 1, *y.shape[2:]), y.shape)
        s = 1.0 / count
        exact = np.abs(np.frexp(count)[0]) == 0.5
        return self._diag(node, y, s, np.where(exact, 0.0, up(2 * U * s)), np.zeros(y.shape), np.zeros(y.shape),
                          name=node.name + ":mean")

    def _op_GlobalAveragePool(self, node: Node, vals: list[Any]) -> _Var:
        x = self._var(vals[0], node)
        if len(x.shape) < 3 or x.shape[0] != 1:
            raise UnsupportedModel(f"GlobalAveragePool {node.name!r}: input {x.shape}")
        ch, sp = x.shape[1], x.shape[2:]
        r = len(sp)
        y = self._conv_op(node.name, x, np.ones((ch, 1, *sp)), None, (1,) * r, (1,) * r, (0,) * r, (0,) * r, ch)
        count = float(np.prod(sp))
        s = np.full(y.shape, 1.0 / count)
        err = 0.0 if np.frexp(count)[0] == 0.5 else float(up(2 * U / count))
        return self._diag(node, y, s, np.full(y.shape, err), np.zeros(y.shape), np.zeros(y.shape),
                          name=node.name + ":mean")

    # -- non-linear operations ---------------------------------------------------------
    def _nonlinear(self, node: Node, vals: list[Any]) -> _Var:
        x = self._var(vals[0], node)
        fn = NON_LINEAR[node.op_type]
        alpha = 0.0
        if fn == "leaky_relu":
            alpha = float(node.attributes.get("alpha", 0.01))
            if not 0.0 <= alpha <= 1.0:
                raise UnsupportedModel(f"LeakyRelu {node.name!r}: alpha {alpha} outside [0, 1]")
        self.neurons[node.input[0]] = x.vid
        return self._op(Elementwise, [x], x.shape, node.name, box=self.box[x.vid], exact=self.exact[x.vid], fn=fn,
                        alpha=alpha)

    _op_Relu = _op_LeakyRelu = _op_Sigmoid = _op_Tanh = _nonlinear

    def _op_MaxPool(self, node: Node, vals: list[Any]) -> _Var:
        x = self._var(vals[0], node)
        a = node.attributes
        ks, strides, dil, pb, pe = self._pool_geometry(node, x)
        sp = x.shape[2:]
        osp = _pool_sizes(sp, ks, strides, dil, pb, pe, bool(int(a.get("ceil_mode", 0))))
        if min(osp) < 1:
            raise UnsupportedModel(f"MaxPool {node.name!r}: empty output")
        win = _windows(x.shape[1], sp, ks, strides, dil, pb, tuple(osp))
        if np.any((win < 0).all(axis=1)):
            raise UnsupportedModel(f"MaxPool {node.name!r}: a window lies entirely in the padding")
        valid = win[win >= 0]
        mult = int(np.bincount(valid, minlength=x.size).max())
        self.neurons[node.input[0]] = x.vid
        return self._op(MaxPool, [x], (1, x.shape[1], *osp), node.name, exact=self.box[x.vid], win=win,
                        multiplicity=mult)

    def _op_GlobalMaxPool(self, node: Node, vals: list[Any]) -> _Var:
        x = self._var(vals[0], node)
        if len(x.shape) < 3 or x.shape[0] != 1:
            raise UnsupportedModel(f"GlobalMaxPool {node.name!r}: input {x.shape}")
        sp = x.shape[2:]
        r = len(sp)
        win = _windows(x.shape[1], sp, sp, (1,) * r, (1,) * r, (0,) * r, (1,) * r)
        self.neurons[node.input[0]] = x.vid
        return self._op(MaxPool, [x], (1, x.shape[1], *([1] * r)), node.name, exact=self.box[x.vid], win=win,
                        multiplicity=1)

    def _op_Softmax(self, node: Node, vals: list[Any]) -> _Var:
        x = self._var(vals[0], node)
        rank = len(x.shape)
        axis = node.attributes.get("axis")
        idx = np.arange(x.size, dtype=np.int64).reshape(x.shape)

        def per_axis(ax: int) -> np.ndarray:
            ax = ax + rank if ax < 0 else ax
            return np.moveaxis(idx, ax, -1).reshape(-1, x.shape[ax])

        def coerced(ax: int) -> np.ndarray:
            ax = ax + rank if ax < 0 else ax
            return idx.reshape(int(np.prod(x.shape[:ax], dtype=np.int64)), -1)

        if self.opset is not None and self.opset >= 13:
            groups = per_axis(int(-1 if axis is None else axis))
        elif self.opset is not None:
            groups = coerced(int(1 if axis is None else axis))
        else:
            options = [per_axis(-1 if axis is None else int(axis)), coerced(1 if axis is None else int(axis))]
            if options[0].shape != options[1].shape or not np.array_equal(options[0], options[1]):
                raise UnsupportedModel(f"Softmax {node.name!r}: the file names no opset, and the axis semantics "
                                       "differ between opsets")
            groups = options[0]
        self.neurons[node.input[0]] = x.vid
        return self._op(Softmax, [x], x.shape, node.name, groups=np.ascontiguousarray(groups))


def _as_const(array: np.ndarray) -> np.ndarray:
    a = np.asarray(array)
    if a.dtype.kind == "f":
        return a.astype(np.float64)
    if a.dtype.kind == "b":
        return a.astype(np.int64)
    if a.dtype == np.uint64 and a.size and int(a.max()) >= 2**63:
        raise UnsupportedModel("an unsigned 64-bit constant out of range")
    return a.astype(np.int64)


def _constant_value(node: Node) -> np.ndarray:
    a = node.attributes
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in a and a[key] is not None:
            v = a[key]
            if key in ("value_float", "value_floats"):
                return np.asarray(v, dtype=np.float64)
            if key in ("value_int", "value_ints"):
                return np.asarray(v, dtype=np.int64)
            return _as_const(v)
    raise UnsupportedModel(f"Constant {node.name!r}: no value the checker reads")


def _windows(ch: int, sp: tuple[int, ...], ks: tuple[int, ...], strides: tuple[int, ...], dil: tuple[int, ...],
             pb: tuple[int, ...], osp: tuple[int, ...]) -> np.ndarray:
    """Flat input indices of each pooling window, ``[ch * prod(osp), prod(ks)]``; -1 for padding."""
    r = len(ks)
    grids_o = np.meshgrid(*[np.arange(o) for o in osp], indexing="ij")
    grids_k = np.meshgrid(*[np.arange(k) for k in ks], indexing="ij")
    pos = []
    ok = np.ones((*osp, *ks), dtype=bool)
    for i in range(r):
        p = grids_o[i].reshape(*osp, *([1] * r)) * strides[i] - pb[i] + grids_k[i].reshape(*([1] * r), *ks) * dil[i]
        ok &= (p >= 0) & (p < sp[i])
        pos.append(p)
    flat = np.zeros((*osp, *ks), dtype=np.int64)
    for i in range(r):
        flat = flat * sp[i] + np.clip(pos[i], 0, sp[i] - 1)
    flat = np.where(ok, flat, -1).reshape(int(np.prod(osp)), int(np.prod(ks)))
    n_sp = int(np.prod(sp))
    chans = np.arange(ch, dtype=np.int64)[:, None, None] * n_sp
    return np.where(flat[None] >= 0, flat[None] + chans, -1).reshape(ch * flat.shape[0], flat.shape[1])



def _pool_sizes(sp: tuple[int, ...], ks: tuple[int, ...], strides: tuple[int, ...], dil: tuple[int, ...],
                pb: tuple[int, ...], pe: tuple[int, ...], ceil: bool) -> list[int]:
    """Output sizes of a pool; in ceil mode a last window that would start in the end padding is dropped."""
    out = []
    for i in range(len(ks)):
        span = sp[i] + pb[i] + pe[i] - dil[i] * (ks[i] - 1) - 1
        o = (-(-span // strides[i]) if ceil else span // strides[i]) + 1
        if ceil and (o - 1) * strides[i] >= sp[i] + pb[i]:
            o -= 1
        out.append(o)
    return out
