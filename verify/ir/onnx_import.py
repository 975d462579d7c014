"""Read an ONNX model into the IR (:class:`verify.ir.Graph`), checking every node first.

The file is read and checked by :mod:`verify.model.onnx_file` (size limits, structure,
tensor encodings, ``onnx.checker``).  Then each node's inputs, attributes and shapes are
checked before its IR node is built; every refusal is one line naming the file and the
node (:class:`~verify.errors.ModelError`, or :class:`~verify.errors.UnsupportedOperatorError`
for what verify cannot express).  Whatever does not depend on the network's input is
folded to a constant (the ``Shape -> Gather -> Unsqueeze -> Concat`` chains exporters
emit for a reshape target included: the shape of every value is static, batch size 1).
Weights become float64 constants, copied exactly; they must be float32 values (also in a
double model), as the loader has always required.

Names: an IR value that is an ONNX tensor has that tensor's name (certificates name
neurons by it); ``Identity``, ``Dropout`` and float-to-float ``Cast`` emit no node, their
output aliases their input (so the graph's output is the value the ONNX output aliases).
Values an op needs in between (a ``Slice`` over several axes, a constant-times-variable
``MatMul``) get fresh names ``<output>:<step>``.  A node's ``origin`` is its ONNX node's
name (``#<index> (<op>)`` for an unnamed node).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from verify.errors import SUPPORTED_OPS_HINT, ModelError, UnsupportedOperatorError
from verify.ir.graph import Graph, Node, Value
from verify.model import onnx_lite
from verify.model.onnx_file import (
    MAX_RANK,
    MAX_TENSOR_ELEMENTS,
    TENSOR_TYPES,
    _tensors,
    check_structure,
    check_tensor,
    check_with_onnx,
    display,
    input_spec,
    name_of,
    node_label,
    parse_model,
    read_onnx,
    tensor_array,
    type_name,
)

# AttributeProto types
_A_FLOAT, _A_INT, _A_STRING, _A_TENSOR, _A_FLOATS, _A_INTS = 1, 2, 3, 4, 6, 7
_FLOAT, _DOUBLE = 1, 11  # TensorProto.FLOAT, TensorProto.DOUBLE
#: ops whose outputs after the first may exist (they must be unused)
_MULTI_OUTPUT = ("BatchNormalization", "MaxPool", "Dropout")

#: The ONNX operators :func:`graph_from_onnx` reads (each has an ``_op_<name>`` method).
SUPPORTED_OPS = SUPPORTED_OPS_HINT


#: Most multiply-adds one node may cost per input (the largest convolution of VGG-16 at
#: 224 x 224 needs 1.9e9).
MAX_OP_MACS = 2**33
#: Most elements all the values of the network may have together (batch size 1).
MAX_TOTAL_ELEMENTS = 2**28


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """numpy broadcasting of two shapes, or None when they do not broadcast."""
    try:
        return tuple(np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        return None


def _matmul_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """``np.matmul``'s result shape, or None when the shapes do not multiply."""
    if not a or not b:
        return None
    a2 = a if len(a) > 1 else (1, *a)
    b2 = b if len(b) > 1 else (*b, 1)
    if a2[-1] != b2[-2]:
        return None
    batch = _broadcast(a2[:-2], b2[:-2])
    if batch is None:
        return None
    out = (*batch, a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def _elements(shape: tuple[int, ...] | list[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


class _Importer:
    """One conversion: ONNX nodes in order -> IR nodes, constants folded on the way."""

    def __init__(self, model: Any, shown: str) -> None:
        self.shown = shown
        self.graph = model.graph
        self.opset = next(int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx"))
        self.input_name, self.input_shape, elem = input_spec(self.graph, shown)
        self.float_dtype = np.dtype(np.float64 if elem == _DOUBLE else np.float32)
        self.consts: dict[str, np.ndarray] = {}
        for init in self.graph.initializer:
            self.consts[init.name] = tensor_array(init, f"initializer {name_of(init.name)}", shown)
        #: static shapes (batch dimension 1 included) of the variable ONNX tensors
        self.shapes: dict[str, tuple[int, ...]] = {self.input_name: self.input_shape}
        #: ONNX tensor -> the IR value it is (Identity, Dropout, Cast)
        self.alias: dict[str, str] = {}
        self.nodes: list[Node] = []
        self.values: dict[str, Value] = {self.input_name: Value(self.input_name, self.input_shape[1:])}
        self.node_names: set[str] = set()
        self.taken: set[str] = {self.input_name} | set(self.consts)
        self.uses: dict[str, int] = {}
        for node in self.graph.node:
            self.taken.update(o for o in node.output if o)
            for i in node.input:
                self.uses[i] = self.uses.get(i, 0) + 1
        for out in self.graph.output:
            self.uses[out.name] = self.uses.get(out.name, 0) + 1
        self.total = _elements(self.input_shape)
        # the node being converted: its ONNX node, label for messages, IR name base, origin
        self.node: Any = None
        self.index = 0
        self.label = ""
        self.base = ""

    # ---------------------------------------------------------------- errors
    def _error(self, message: str) -> ModelError:
        return ModelError(f"{self.shown}: {display(self.node.op_type, 40)} node {name_of(self.label)}: {message}")

    def _unsupported(self, detail: str = "") -> UnsupportedOperatorError:
        exc = UnsupportedOperatorError(display(self.node.op_type, 40), display(self.label, 120), detail)
        exc.args = (f"{self.shown}: {exc}",)
        return exc

    # ---------------------------------------------------------------- attributes
    def _attr(self, key: str, kind: int) -> Any:
        """The attribute ``key`` of the node (checked to be of type ``kind``), or None."""
        for a in self.node.attribute:
            if a.name != key:
                continue
            if a.type != kind:
                expected = {_A_FLOAT: "a float", _A_INT: "an integer", _A_STRING: "a string", _A_TENSOR: "a tensor",
                            _A_FLOATS: "a list of floats", _A_INTS: "a list of integers"}[kind]
                raise self._error(f"attribute {name_of(key)} must be {expected}")
            if kind == _A_FLOAT:
                return float(a.f)
            if kind == _A_INT:
                return int(a.i)
            if kind == _A_STRING:
                return a.s.decode("utf-8", "replace")
            if kind == _A_INTS:
                return tuple(int(v) for v in a.ints)
            if kind == _A_FLOATS:
                return tuple(float(v) for v in a.floats)
            return a.t
        return None

    def _int(self, key: str, default: int, allowed: tuple[int, ...] | None = None) -> int:
        value = self._attr(key, _A_INT)
        value = default if value is None else value
        if allowed is not None and value not in allowed:
            raise self._error(f"attribute {key}={value}; expected one of {list(allowed)}")
        return value

    def _float(self, key: str, default: float) -> float:
        value = self._attr(key, _A_FLOAT)
        value = default if value is None else value
        if not np.isfinite(value):
            raise self._error(f"attribute {key}={value} is not finite")
        return value

    def _ints(self, key: str, default: tuple[int, ...], length: int, minimum: int) -> tuple[int, ...]:
        value = self._attr(key, _A_INTS)
        value = default if value is None else value
        if len(value) != length or any(v < minimum for v in value) or any(v > MAX_TENSOR_ELEMENTS for v in value):
            raise self._error(f"attribute {key}={list(value)[:8]}; expected {length} integers from {minimum} to "
                              f"{MAX_TENSOR_ELEMENTS}")
        return tuple(value)

    # ---------------------------------------------------------------- inputs
    def _arity(self, lo: int, hi: int | None = None) -> list[str]:
        """The node's inputs (trailing empty optional ones dropped), checked in number."""
        hi = lo if hi is None else hi
        ins = list(self.node.input)
        while len(ins) > lo and not ins[-1]:
            ins.pop()
        if not lo <= len(ins) <= hi:
            expected = str(lo) if lo == hi else f"{lo} to {hi}"
            raise self._error(f"has {len(ins)} inputs; expected {expected}")
        return ins

    def _is_const(self, value: str) -> bool:
        return value in self.consts

    def _shape(self, value: str) -> tuple[int, ...]:
        """The static shape of an input, constant or variable (batch dimension included)."""
        if value in self.consts:
            return tuple(int(d) for d in self.consts[value].shape)
        if value in self.shapes:
            return self.shapes[value]
        if not value:
            raise self._unsupported("a required input is left empty")
        raise self._unsupported(f"input {name_of(value)} is neither a constant nor computed earlier")

    def _var(self, value: str, role: str = "input") -> tuple[str, tuple[int, ...]]:
        """A variable input: its IR value's name and its shape (batch dimension included)."""
        if value in self.consts:
            raise self._unsupported(f"the {role} is a constant (only the network's input may flow into it)")
        shape = self._shape(value)
        return self.alias.get(value, value), shape

    def _const_input(self, value: str, role: str) -> np.ndarray:
        if value in self.consts:
            return self.consts[value]
        if value in self.shapes:
            raise self._unsupported(f"the {role} must be a constant (it depends on the network's input)")
        raise self._unsupported(f"the {role} {name_of(value)} is not defined")

    def _const_ints(self, value: str, role: str, scalar: bool = False) -> list[int]:
        """A constant integer input: a 1-D tensor (or, with ``scalar``, also a 0-D one)."""
        a = self._const_input(value, role)
        if a.dtype.kind not in "iu" or a.ndim > 1 or (a.ndim == 0 and not scalar):
            raise self._error(f"the {role} must be a 1-D integer tensor, not {a.dtype} of shape {tuple(a.shape)}")
        if a.size > MAX_RANK and not scalar:
            raise self._error(f"the {role} has {a.size} entries, more than the limit of {MAX_RANK}")
        return [int(v) for v in np.asarray(a).reshape(-1).tolist()]

    def _weight(self, value: str, role: str, same_type: bool = True) -> np.ndarray:
        """A constant input used as a weight: finite floats (of the network's type) that are
        float32 values (verify's network is float32, also for a double model), as float64."""
        w = self._const_input(value, role)
        what = f"{role} {name_of(value)}"
        if w.dtype.kind != "f":
            raise self._error(f"{what} has type {w.dtype}; expected {self.float_dtype} values")
        if same_type and w.dtype != self.float_dtype:
            raise self._error(f"{what} has type {w.dtype} but the network's input is {self.float_dtype} "
                              "(ONNX needs one type)")
        if not np.all(np.isfinite(w)):
            raise self._error(f"{what} contains NaN or infinite values")
        if w.dtype == np.float64 and not np.array_equal(w.astype(np.float32).astype(np.float64), w):
            raise self._error(f"{what} has double values that are not float32 values; verify reasons about float32 "
                              "weights: export the model in float32")
        return np.asarray(w, dtype=np.float64)

    def _finite(self, value: np.ndarray, what: str) -> np.ndarray:
        """A constant computed from weights, refused where it overflows the network's float type."""
        with np.errstate(all="ignore"):
            ok = np.all(np.isfinite(np.asarray(value).astype(self.float_dtype)))
        if not ok:
            raise self._error(f"{what} is infinite in {self.float_dtype}")
        return value

    def _axis(self, axis: int, rank: int, what: str = "axis") -> int:
        if not -rank <= axis < rank:
            raise self._error(f"{what}={axis} is outside [-{rank}, {rank - 1}] for a tensor of rank {rank}")
        return axis + rank if axis < 0 else axis

    def _check_macs(self, macs: int) -> None:
        if macs > MAX_OP_MACS:
            raise self._error(f"needs {macs} multiply-adds per input, more than the limit of {MAX_OP_MACS}")

    # ---------------------------------------------------------------- results
    def _set_const(self, value: Any, output: str | None = None) -> None:
        value = np.asarray(value)
        if value.ndim > MAX_RANK:
            raise self._error(f"folds to a tensor of rank {value.ndim}, more than the limit of {MAX_RANK}")
        self.consts[output or self.node.output[0]] = value

    def _check_fold_size(self, shape: tuple[int, ...] | list[int]) -> None:
        if len(shape) > MAX_RANK:
            raise self._error(f"folds to a tensor of rank {len(shape)}, more than the limit of {MAX_RANK}")
        if any(d < 0 for d in shape):
            raise self._error(f"folds to a tensor with a negative dimension {list(shape)[:8]}")
        if _elements(shape) > MAX_TENSOR_ELEMENTS:
            raise self._error(f"folds to {_elements(shape)} elements, more than the limit of {MAX_TENSOR_ELEMENTS}")

    def _fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.taken:
            name = f"{base}#{k}"
            k += 1
        self.taken.add(name)
        return name

    def _emit(self, op: str, inputs: list[str], shape: tuple[int, ...], attrs: dict[str, Any],
              output: str | None = None, step: str = "") -> str:
        """Add an IR node computing a value of ``shape`` (batch dimension 1 included);
        ``output`` defaults to the ONNX node's output, ``step`` names an intermediate step."""
        shape = tuple(int(d) for d in shape)
        if len(shape) > MAX_RANK:
            raise self._error(f"computes a tensor of rank {len(shape)}, more than the limit of {MAX_RANK}")
        if not shape or shape[0] != 1:
            raise self._unsupported(f"changes the batch dimension (its output has shape {list(shape)})")
        if any(d <= 0 for d in shape):
            raise self._error(f"computes an empty tensor of shape {list(shape)}")
        n = _elements(shape)
        if n > MAX_TENSOR_ELEMENTS:
            raise self._error(f"computes {n} elements, more than the limit of {MAX_TENSOR_ELEMENTS}")
        self.total += n
        if self.total > MAX_TOTAL_ELEMENTS:
            raise self._error(f"the network's values reach {self.total} elements in all, more than the limit of "
                              f"{MAX_TOTAL_ELEMENTS}")
        output = output or self.node.output[0]
        name = self.base + (f":{step}" if step else "")
        unique, k = name, 1
        while unique in self.node_names:
            unique = f"{name}#{k}"
            k += 1
        self.node_names.add(unique)
        self.nodes.append(Node(op, unique, tuple(inputs), output, attrs, (self.label,)))
        self.values[output] = Value(output, shape[1:])
        self.shapes[output] = shape
        return output

    def _intermediate(self, step: str) -> str:
        return self._fresh(f"{self.node.output[0]}:{step}")

    def _alias(self, src: str) -> None:
        """The node's output is its input ``src`` (no IR node)."""
        out = self.node.output[0]
        if src in self.consts:
            self.consts[out] = self.consts[src]
            return
        ir, shape = self._var(src)
        self.alias[out] = ir
        self.shapes[out] = shape

    # ---------------------------------------------------------------- conversion
    def convert(self) -> Graph:
        for index, node in enumerate(self.graph.node):
            self.node, self.index = node, index
            self.label = node.name or f"#{index} ({display(node.op_type, 40)})"
            self.base = node.name or f"{node.op_type}_{index}"
            if node.domain not in ("", "ai.onnx"):
                raise self._unsupported(f"operator domain {display(node.domain, 40)!r}")
            handler = getattr(self, "_op_" + node.op_type, None)
            if handler is None or node.op_type not in SUPPORTED_OPS:
                raise self._unsupported()
            extra = [o for o in node.output[1:] if o]
            if extra and node.op_type not in _MULTI_OUTPUT:
                raise self._unsupported("more than one output")
            used = [o for o in extra if self.uses.get(o)]
            if used:
                role = "mask" if node.op_type == "Dropout" else "optional"
                raise self._unsupported(f"its {role} output {name_of(used[0])} is used (only the first output is "
                                        "supported)")
            handler()
        self.node = None
        return self._finish()

    def _finish(self) -> Graph:
        value = self.graph.output[0]
        out = value.name
        if out in self.consts:
            raise ModelError(f"{self.shown}: the network output {name_of(out)} does not depend on the input")
        if out not in self.shapes:
            raise ModelError(f"{self.shown}: the network output {name_of(out)} is not computed by any node")
        self._check_declared_output(value, self.shapes[out])
        ir_out = self.alias.get(out, out)
        # only the nodes the output depends on
        needed = {ir_out}
        kept: list[Node] = []
        for node in reversed(self.nodes):
            if node.output in needed:
                kept.append(node)
                needed.update(node.inputs)
        kept.reverse()
        for node in kept:
            if node.op == "softmax" and node.output != ir_out:
                raise ModelError(f"{self.shown}: Softmax node {name_of(node.origin[0])}: a softmax is supported only "
                                 f"as the network's last operation (its output {name_of(node.output)} is not the "
                                 f"network output {name_of(out)})")
        values = {k: v for k, v in self.values.items() if k in needed or k == ir_out}
        return Graph(self.values[self.input_name], kept, ir_out, values, source=self.shown)

    def _check_declared_output(self, value: Any, shape: tuple[int, ...]) -> None:
        """The output's declared type and (static) size agree with what the graph computes."""
        label = f"{self.shown}: output {name_of(value.name)}"
        tensor = value.type.tensor_type
        elem = _DOUBLE if self.float_dtype == np.float64 else _FLOAT
        if tensor.elem_type != elem:
            raise ModelError(f"{label} is declared {type_name(tensor.elem_type)}, but the network computes "
                             f"{type_name(elem)} (the input's type)")
        if not tensor.HasField("shape"):
            return
        dims = []
        for axis, d in enumerate(tensor.shape.dim):
            if d.WhichOneof("value") == "dim_value":
                dims.append(int(d.dim_value))
            elif axis == 0:
                dims.append(1)
            else:
                return  # symbolic: nothing to compare
        if _elements(dims) != _elements(shape):
            raise ModelError(f"{label} is declared with shape {dims}, but the graph computes shape {list(shape)}")

    # ---------------------------------------------------------------- constants and shapes
    def _op_Constant(self) -> None:
        self._arity(0)
        keys = [a.name for a in self.node.attribute]
        if len(keys) != 1:
            raise self._error(f"needs exactly one value attribute, has {len(keys)}")
        key = keys[0]
        if key == "value":
            tensor = self._attr("value", _A_TENSOR)
            value = tensor_array(tensor, f"the value of Constant node {node_label(self.node, self.index)}",
                                 self.shown)
        elif key in ("value_float", "value_floats"):
            value = np.asarray(self._attr(key, _A_FLOAT if key == "value_float" else _A_FLOATS), dtype=np.float32)
            if not np.all(np.isfinite(value)):
                raise self._error(f"{key} contains NaN or infinite values")
        elif key in ("value_int", "value_ints"):
            value = np.asarray(self._attr(key, _A_INT if key == "value_int" else _A_INTS), dtype=np.int64)
        else:
            raise self._unsupported(f"the {display(key, 30)!r} attribute (use 'value')")
        self._set_const(value)

    def _op_ConstantOfShape(self) -> None:
        (src,) = self._arity(1)
        shape = self._const_ints(src, "shape")
        self._check_fold_size(shape)
        tensor = self._attr("value", _A_TENSOR)
        fill = np.zeros(1, np.float32)
        if tensor is not None:
            fill = tensor_array(tensor, f"the value of ConstantOfShape node {name_of(self.label)}", self.shown)
            if fill.size != 1:
                raise self._error(f"attribute 'value' has {fill.size} elements; expected 1")
        self._set_const(np.full(shape, fill.reshape(-1)[0], dtype=fill.dtype))

    def _op_Shape(self) -> None:
        (src,) = self._arity(1)
        shape = self._shape(src)
        rank = len(shape)
        start = self._int("start", 0)
        end = self._int("end", rank)
        start = min(max(start + rank if start < 0 else start, 0), rank)
        end = min(max(end + rank if end < 0 else end, 0), rank)
        self._set_const(np.asarray(shape[start:end], dtype=np.int64))

    def _op_Gather(self) -> None:
        data, indices = self._arity(2)
        if not self._is_const(data):
            raise self._unsupported("gathering from a tensor that depends on the network's input")
        a = self.consts[data]
        idx = self._const_input(indices, "indices")
        if idx.dtype.kind not in "iu":
            raise self._error(f"the indices have type {idx.dtype}; expected integers")
        if a.ndim == 0:
            raise self._error("gathers from a scalar")
        axis = self._axis(self._int("axis", 0), a.ndim)
        n = a.shape[axis]
        idx = np.asarray(idx, dtype=np.int64)
        if np.any(idx < -n) or np.any(idx >= n):
            raise self._error(f"an index is outside [-{n}, {n - 1}] (axis {axis} of a tensor of shape "
                              f"{list(a.shape)})")
        self._check_fold_size((*a.shape[:axis], *idx.shape, *a.shape[axis + 1:]))
        self._set_const(np.take(a, np.where(idx < 0, idx + n, idx), axis=axis))

    def _op_Cast(self) -> None:
        (src,) = self._arity(1)
        to = self._attr("to", _A_INT)
        if to is None:
            raise self._error("has no attribute 'to'")
        if self._is_const(src):
            if to not in TENSOR_TYPES:
                raise self._unsupported(f"a cast to {type_name(to)}")
            dtype = onnx_lite.NUMPY_TYPES[to]
            with np.errstate(all="ignore"):
                self._set_const(self.consts[src].astype(dtype))
            return
        if to not in (_FLOAT, _DOUBLE):
            raise self._unsupported(f"a cast of the network's (float) values to {type_name(to)}; only float to "
                                    "float casts are supported")
        self._alias(src)

    def _op_Identity(self) -> None:
        (src,) = self._arity(1)
        self._alias(src)

    def _op_Dropout(self) -> None:
        ins = self._arity(1, 3)
        if len(ins) > 2 and ins[2]:
            mode = self._const_input(ins[2], "training_mode")
            if mode.size != 1 or bool(mode.reshape(-1)[0]):
                raise self._unsupported("training_mode must be a constant false (verify reads models in inference)")
        self._alias(ins[0])

    # ---------------------------------------------------------------- element-wise
    def _unary(self, op: str, fn: Any, attrs: dict[str, Any] | None = None) -> None:
        (src,) = self._arity(1)
        if self._is_const(src):
            a = self.consts[src]
            if a.dtype.kind != "f":
                raise self._error(f"constant {name_of(src)} has type {a.dtype}; expected floats")
            with np.errstate(all="ignore"):
                self._set_const(np.asarray(fn(a)).astype(a.dtype))
            return
        ir, shape = self._var(src)
        self._emit(op, [ir], shape, attrs or {})

    def _op_Relu(self) -> None:
        self._unary("relu", lambda a: np.maximum(a, 0))

    def _op_Sigmoid(self) -> None:
        self._unary("sigmoid", lambda a: 1 / (1 + np.exp(-a)))

    def _op_Tanh(self) -> None:
        self._unary("tanh", np.tanh)

    def _op_LeakyRelu(self) -> None:
        alpha = self._float("alpha", 0.01)
        self._unary("leaky_relu", lambda a: np.where(a >= 0, a, alpha * a), {"alpha": alpha})

    def _op_Softmax(self) -> None:
        (src,) = self._arity(1)
        shape = self._shape(src)
        rank = len(shape)
        axis = self._axis(self._int("axis", -1 if self.opset >= 13 else 1), rank)
        if self.opset < 13:
            # the input is coerced to 2-D at ``axis``: a softmax over all the axes from ``axis`` on
            big = [k for k in range(axis, rank) if shape[k] > 1]
            if len(big) > 1:
                raise self._unsupported(f"a softmax over the axes {axis}.. of shape {list(shape)} together "
                                        "(opset < 13 semantics); export with opset 13 or a single axis")
            if axis == 0 and not self._is_const(src):
                raise self._unsupported("a softmax that includes the batch axis")
            axis = big[0] if big else axis
        if self._is_const(src):
            a = self.consts[src].astype(np.float64)
            e = np.exp(a - a.max(axis=axis, keepdims=True))
            self._set_const((e / e.sum(axis=axis, keepdims=True)).astype(self.consts[src].dtype))
            return
        ir, shape = self._var(src)
        if axis == 0:
            raise self._unsupported("a softmax over the batch axis")
        self._emit("softmax", [ir], shape, {"axis": axis - 1})

    # ---------------------------------------------------------------- arithmetic
    def _binary(self, kind: str) -> None:
        a, b = self._arity(2)
        sa, sb = self._shape(a), self._shape(b)
        if self._is_const(a) and self._is_const(b):
            out = _broadcast(sa, sb)
            if out is None:
                raise self._error(f"constant inputs of shapes {list(sa)} and {list(sb)} do not broadcast")
            self._check_fold_size(out)
            self._set_const(_fold_binary(kind, self.consts[a], self.consts[b], self._error))
            return
        if not self._is_const(a) and not self._is_const(b):
            if kind not in ("add", "sub"):
                raise self._unsupported("the product or quotient of two tensors that depend on the network's input")
            if sa != sb:
                raise self._unsupported(f"{'adding' if kind == 'add' else 'subtracting'} two variable tensors of "
                                        f"different shapes {list(sa)} and {list(sb)} (broadcasting)")
            self._emit(kind, [self.alias.get(a, a), self.alias.get(b, b)], sa, {})
            return
        const_first = self._is_const(a)
        var, cname = (b, a) if const_first else (a, b)
        if kind == "div" and const_first:
            raise self._unsupported("division by a tensor that depends on the network's input")
        ir, shape = self._var(var)
        c = self._weight(cname, "constant")
        full = self._broadcast_const(c, shape)
        scale: np.ndarray | None = None
        shift: np.ndarray | None = None
        if kind == "add":
            shift = full
        elif kind == "sub":
            if const_first:
                scale, shift = np.full(shape[1:], -1.0), full
            else:
                shift = -full
        elif kind == "mul":
            scale = full
        else:
            if np.any(full == 0):
                raise self._error("divides by zero")
            with np.errstate(all="ignore"):
                scale = self._finite(1.0 / full, "the reciprocal of the divisor")
        self._emit("affine", [ir], shape, {"scale": scale, "shift": shift})

    def _broadcast_const(self, c: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """A constant operand broadcast to the variable's shape without its batch dimension."""
        cs = tuple(c.shape)
        if len(cs) > len(shape):
            raise self._unsupported(f"the constant of shape {list(cs)} has more dimensions than the input "
                                    f"{list(shape)}")
        if len(cs) == len(shape):
            if cs[0] != 1:
                raise self._unsupported(f"the constant of shape {list(cs)} spans the batch axis (its leading "
                                        "dimension must be 1)")
            c = c.reshape(cs[1:])
            cs = cs[1:]
        out = _broadcast(cs, shape[1:])
        if out is None:
            raise self._error(f"the shapes of its inputs {list(shape)} and {list(c.shape)} do not broadcast")
        if out != shape[1:]:
            raise self._unsupported(f"the constant of shape {list(cs)} enlarges the input {list(shape)}")
        return np.broadcast_to(np.asarray(c, dtype=np.float64), shape[1:]).copy()

    def _op_Add(self) -> None:
        self._binary("add")

    def _op_Sub(self) -> None:
        self._binary("sub")

    def _op_Mul(self) -> None:
        self._binary("mul")

    def _op_Div(self) -> None:
        self._binary("div")

    # ---------------------------------------------------------------- products
    def _op_Gemm(self) -> None:
        ins = self._arity(2, 3)
        alpha = self._float("alpha", 1.0)
        beta = self._float("beta", 1.0)
        trans_a = self._int("transA", 0, (0, 1))
        trans_b = self._int("transB", 0, (0, 1))
        a, b = ins[0], ins[1]
        c = ins[2] if len(ins) > 2 and ins[2] else None
        if all(self._is_const(v) for v in (a, b) + ((c,) if c else ())):
            ca, cb = self.consts[a], self.consts[b]
            if ca.ndim != 2 or cb.ndim != 2:
                raise self._error("constant inputs A and B must be matrices")
            ca, cb = (ca.T if trans_a else ca), (cb.T if trans_b else cb)
            if ca.shape[1] != cb.shape[0]:
                raise self._error(f"constant inputs of shapes {list(ca.shape)} and {list(cb.shape)} do not multiply")
            self._check_macs(ca.shape[0] * ca.shape[1] * cb.shape[1])
            y = alpha * (ca @ cb)
            if c is not None:
                cc = self.consts[c]
                if _broadcast(tuple(cc.shape), y.shape) != y.shape:
                    raise self._error(f"bias C of shape {list(cc.shape)} does not broadcast to {list(y.shape)}")
                y = y + beta * cc
            self._set_const(y.astype(ca.dtype))
            return
        if self._is_const(a):
            raise self._unsupported("only products of the variable input A with a constant B are supported")
        if trans_a:
            raise self._unsupported("transA=1 on the variable input")
        ir, in_shape = self._var(a)
        w = self._weight(b, "weight B")
        if w.ndim != 2:
            raise self._error(f"weight B has shape {list(w.shape)}; Gemm needs a matrix")
        weight = w.T if trans_b else w  # [in, out]
        if len(in_shape) != 2 or weight.shape[0] != in_shape[1]:
            raise self._error(f"input A of shape {list(in_shape)} does not fit weight B of shape {list(w.shape)}"
                              f"{' (transB=1)' if trans_b else ''}")
        n_out = int(weight.shape[1])
        self._check_macs(_elements(weight.shape))
        with np.errstate(all="ignore"):
            W = self._finite(np.ascontiguousarray((weight * alpha).T), f"alpha={alpha} times weight B")
        bias = None
        if c is not None:
            cv = self._weight(c, "bias C")
            if cv.ndim > 2 or _broadcast(tuple(cv.shape), (1, n_out)) != (1, n_out):
                raise self._error(f"bias C has shape {list(cv.shape)}; it must broadcast to the output shape "
                                  f"[1, {n_out}]")
            with np.errstate(all="ignore"):
                bias = self._finite(np.broadcast_to(cv * beta, (1, n_out)).reshape(-1).copy(),
                                    f"beta={beta} times bias C")
        self._emit("linear", [ir], (1, n_out), {"W": W, "b": bias})

    def _op_MatMul(self) -> None:
        a, b = self._arity(2)
        sa, sb = self._shape(a), self._shape(b)
        if self._is_const(a) and self._is_const(b):
            shape = _matmul_shape(sa, sb)
            if shape is None:
                raise self._error(f"constant inputs of shapes {list(sa)} and {list(sb)} do not multiply")
            self._check_macs(_elements(shape) * int(sa[-1]))
            self._check_fold_size(shape)
            self._set_const(np.matmul(self.consts[a], self.consts[b]))
            return
        if not self._is_const(a) and not self._is_const(b):
            raise self._unsupported("the product of two tensors that depend on the network's input")
        if self._is_const(b):
            ir, xs = self._var(a)
            w = self._weight(b, "weight B")
            if w.ndim > 2:
                if w.ndim > len(xs) or any(d != 1 for d in w.shape[:-2]):
                    raise self._unsupported(f"a batched product with a constant B of shape {list(w.shape)}")
                w = w.reshape(w.shape[-2:])
            k = int(w.shape[0])
            if len(xs) < 2 or xs[-1] != k:
                raise self._error(f"input A of shape {list(xs)} does not fit weight B of shape {list(w.shape)}")
            if w.ndim == 1:  # a vector: contract the last axis away
                self._check_macs(_elements(xs))
                mid = self._emit("linear", [ir], (*xs[:-1], 1), {"W": w.reshape(1, k), "b": None},
                                 output=self._intermediate("linear"), step="linear")
                self._emit("reshape", [mid], xs[:-1], {"shape": list(xs[1:-1])})
                return
            n_out = int(w.shape[1])
            self._check_macs(_elements(xs) * n_out)
            self._emit("linear", [ir], (*xs[:-1], n_out), {"W": np.ascontiguousarray(w.T), "b": None})
            return
        # constant A times variable B: a linear map over the variable's second-to-last axis
        ir, xs = self._var(b)
        c = self._weight(a, "constant A")
        if c.ndim != 2 or len(xs) < 3 or xs[-2] != c.shape[1]:
            raise self._unsupported(f"the product of a constant A of shape {list(c.shape)} with the variable B of "
                                    f"shape {list(xs)} (only a matrix A times a B of rank 3 or more)")
        m = int(c.shape[0])
        rank = len(xs) - 1
        perm = [*range(rank - 2), rank - 1, rank - 2]
        swapped = (*xs[:-2], xs[-1], xs[-2])
        self._check_macs(_elements(xs) * m)
        t1 = self._emit("transpose", [ir], swapped, {"perm": perm}, output=self._intermediate("transpose"),
                        step="transpose")
        t2 = self._emit("linear", [t1], (*swapped[:-1], m), {"W": c, "b": None},
                        output=self._intermediate("linear"), step="linear")
        self._emit("transpose", [t2], (*xs[:-2], m, xs[-1]), {"perm": perm})

    # ---------------------------------------------------------------- convolutions
    def _pads(self, sizes: tuple[int, ...], extents: tuple[int, ...], strides: tuple[int, ...]) -> list[int]:
        """Explicit pads (begins, then ends) from ``pads`` or ``auto_pad``."""
        rank = len(sizes)
        auto = self._attr("auto_pad", _A_STRING) or "NOTSET"
        given = self._attr("pads", _A_INTS) is not None
        if auto == "NOTSET":
            pads = list(self._ints("pads", (0,) * (2 * rank), 2 * rank, 0))
        elif auto in ("VALID", "SAME_UPPER", "SAME_LOWER"):
            if given:
                raise self._error(f"auto_pad={auto} together with pads")
            pads = [0] * (2 * rank)
            if auto != "VALID":
                for k in range(rank):
                    out = -(-sizes[k] // strides[k])
                    total = max(0, (out - 1) * strides[k] + extents[k] - sizes[k])
                    small, big = total // 2, total - total // 2
                    pads[k], pads[k + rank] = (small, big) if auto == "SAME_UPPER" else (big, small)
        else:
            raise self._unsupported(f"auto_pad={display(auto, 20)!r}")
        return pads

    def _spatial(self, x: str, kernel_rank: int, what: str) -> tuple[str, tuple[int, ...]]:
        ir, shape = self._var(x)
        if kernel_rank not in (1, 2) or len(shape) != kernel_rank + 2:
            raise self._unsupported(f"only 1-D and 2-D {what} are supported (input shape {list(shape)}, "
                                    f"{kernel_rank}-D kernel)")
        return ir, shape

    def _op_Conv(self) -> None:
        ins = self._arity(2, 3)
        w = self._weight(ins[1], "kernel W")
        ir, xs = self._spatial(ins[0], w.ndim - 2, "convolutions")
        rank = w.ndim - 2
        m, cg, *k = (int(d) for d in w.shape)
        kernel = self._attr("kernel_shape", _A_INTS)
        if kernel is not None and tuple(kernel) != tuple(k):
            raise self._error(f"kernel_shape={list(kernel)} but kernel W has shape {list(w.shape)}")
        if min(m, cg, *k) <= 0:
            raise self._error(f"kernel W has an empty shape {list(w.shape)}")
        group = self._int("group", 1)
        if group < 1 or m % group or cg * group != xs[1]:
            raise self._error(f"kernel W of shape {list(w.shape)} with group={group} does not fit the input's "
                              f"{xs[1]} channels (input shape {list(xs)})")
        strides = self._ints("strides", (1,) * rank, rank, 1)
        dilations = self._ints("dilations", (1,) * rank, rank, 1)
        extents = tuple(dilations[i] * (k[i] - 1) + 1 for i in range(rank))
        pads = self._pads(xs[2:], extents, strides)
        b = None
        if len(ins) > 2 and ins[2]:
            b = self._weight(ins[2], "bias B")
            if tuple(b.shape) != (m,):
                raise self._error(f"bias B has shape {list(b.shape)}; expected [{m}]")
        padded = tuple(xs[2 + i] + pads[i] + pads[i + rank] for i in range(rank))
        if _elements((xs[1], *padded)) > MAX_TENSOR_ELEMENTS:
            raise self._error(f"pads {pads} make the input {list(padded)}, more than the limit of "
                              f"{MAX_TENSOR_ELEMENTS} elements")
        if any(padded[i] < extents[i] for i in range(rank)):
            raise self._error(f"the kernel {k} (dilations {list(dilations)}) does not fit the padded input "
                              f"{list(padded)}")
        out = (1, m, *((padded[i] - extents[i]) // strides[i] + 1 for i in range(rank)))
        self._check_macs(_elements(out) * cg * _elements(k))
        self._emit("conv", [ir], out, {"W": w, "b": b, "strides": list(strides), "pads": pads,
                                       "dilations": list(dilations), "groups": group})

    def _op_ConvTranspose(self) -> None:
        ins = self._arity(2, 3)
        w = self._weight(ins[1], "kernel W")
        ir, xs = self._spatial(ins[0], w.ndim - 2, "transposed convolutions")
        rank = w.ndim - 2
        ci, cog, *k = (int(d) for d in w.shape)
        kernel = self._attr("kernel_shape", _A_INTS)
        if kernel is not None and tuple(kernel) != tuple(k):
            raise self._error(f"kernel_shape={list(kernel)} but kernel W has shape {list(w.shape)}")
        if min(ci, cog, *k) <= 0:
            raise self._error(f"kernel W has an empty shape {list(w.shape)}")
        group = self._int("group", 1)
        if group < 1 or ci != xs[1] or ci % group:
            raise self._error(f"kernel W of shape {list(w.shape)} with group={group} does not fit the input's "
                              f"{xs[1]} channels (input shape {list(xs)})")
        co = cog * group
        strides = self._ints("strides", (1,) * rank, rank, 1)
        dilations = self._ints("dilations", (1,) * rank, rank, 1)
        out_pad = self._ints("output_padding", (0,) * rank, rank, 0)
        if any(out_pad[i] >= max(strides[i], dilations[i]) for i in range(rank)):
            raise self._unsupported(f"output_padding={list(out_pad)} not smaller than the strides {list(strides)} "
                                    f"or dilations {list(dilations)}")
        extents = tuple(dilations[i] * (k[i] - 1) + 1 for i in range(rank))
        full = tuple(strides[i] * (xs[2 + i] - 1) + out_pad[i] + extents[i] for i in range(rank))
        auto = self._attr("auto_pad", _A_STRING) or "NOTSET"
        target = self._attr("output_shape", _A_INTS)
        given = self._attr("pads", _A_INTS) is not None
        if auto not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
            raise self._unsupported(f"auto_pad={display(auto, 20)!r}")
        if (auto != "NOTSET" or target is not None) and given:
            raise self._error("pads together with auto_pad or output_shape")
        if target is None and auto in ("SAME_UPPER", "SAME_LOWER"):
            target = tuple(xs[2 + i] * strides[i] for i in range(rank))
        if target is not None:
            target = tuple(target)[-rank:]
            if len(target) != rank:
                raise self._error(f"output_shape={list(target)} has not {rank} spatial dimensions")
            pads = [0] * (2 * rank)
            for i in range(rank):
                total = full[i] - target[i]
                if total < 0:
                    raise self._unsupported(f"output_shape={list(target)} larger than the full output {list(full)}")
                small, big = total // 2, total - total // 2
                pads[i], pads[i + rank] = (small, big) if auto == "SAME_UPPER" else (big, small)
        elif auto == "VALID":
            pads = [0] * (2 * rank)
        else:
            pads = list(self._ints("pads", (0,) * (2 * rank), 2 * rank, 0))
        b = None
        if len(ins) > 2 and ins[2]:
            b = self._weight(ins[2], "bias B")
            if tuple(b.shape) != (co,):
                raise self._error(f"bias B has shape {list(b.shape)}; expected [{co}]")
        if _elements((co, *full)) > MAX_TENSOR_ELEMENTS:
            raise self._error(f"computes {_elements((co, *full))} elements before cropping, more than the limit of "
                              f"{MAX_TENSOR_ELEMENTS}")
        out = (1, co, *(full[i] - pads[i] - pads[i + rank] for i in range(rank)))
        if any(d <= 0 for d in out):
            raise self._error(f"pads {pads} crop the whole output {list(full)}")
        self._check_macs(_elements(xs) * cog * _elements(k))
        self._emit("conv_transpose", [ir], out, {"W": w, "b": b, "strides": list(strides), "pads": pads,
                                                 "dilations": list(dilations), "groups": group,
                                                 "output_padding": list(out_pad)})

    def _op_BatchNormalization(self) -> None:
        ins = self._arity(5)
        if self._int("training_mode", 0, (0, 1)):
            raise self._unsupported("training_mode=1")
        if self._int("spatial", 1, (0, 1)) == 0:
            raise self._unsupported("spatial=0")
        roles = ("scale", "bias B", "mean", "var")
        params = [self._weight(v, role, same_type=False) for v, role in zip(ins[1:5], roles)]
        ir, xs = self._var(ins[0])
        if len(xs) < 2:
            raise self._unsupported(f"input rank {len(xs)} (input shape {list(xs)})")
        channels = xs[1]
        for role, value, p in zip(roles, ins[1:5], params):
            if tuple(p.shape) != (channels,):
                raise self._error(f"{role} {name_of(value)} has shape {list(p.shape)}; the input {list(xs)} has "
                                  f"{channels} channels")
        gamma, beta, mean, var = params
        eps = self._float("epsilon", 1e-5)
        if np.any(var + eps <= 0):
            raise self._error("has a non-positive variance (var + epsilon <= 0)")
        with np.errstate(all="ignore"):
            scale = self._finite(gamma / np.sqrt(var + eps), "the scale (scale / sqrt(var + epsilon))")
            shift = self._finite(beta - mean * scale, "the shift (B - mean * scale)")
        tail = (channels,) + (1,) * (len(xs) - 2)
        self._emit("affine", [ir], xs, {"scale": scale.reshape(tail), "shift": shift.reshape(tail)})

    # ---------------------------------------------------------------- pooling and padding
    def _pool(self, kind: str) -> None:
        (x,) = self._arity(1)
        kernel = self._attr("kernel_shape", _A_INTS)
        if kernel is None:
            raise self._error("has no kernel_shape")
        rank = len(kernel)
        ir, xs = self._spatial(x, rank, "pools")
        kernel = self._ints("kernel_shape", (1,) * rank, rank, 1)
        strides = self._ints("strides", (1,) * rank, rank, 1)
        dilations = self._ints("dilations", (1,) * rank, rank, 1)
        if kind == "avg" and any(d != 1 for d in dilations):
            raise self._unsupported(f"dilations {list(dilations)}")
        extents = tuple(dilations[i] * (kernel[i] - 1) + 1 for i in range(rank))
        pads = self._pads(xs[2:], extents, strides)
        if any(pads[i] >= extents[i] or pads[i + rank] >= extents[i] for i in range(rank)):
            raise self._error(f"pads {pads} must be smaller than the kernel {list(kernel)}")
        padded = tuple(xs[2 + i] + pads[i] + pads[i + rank] for i in range(rank))
        if _elements((xs[1], *padded)) > MAX_TENSOR_ELEMENTS:
            raise self._error(f"pads {pads} make the input {list(padded)}, more than the limit of "
                              f"{MAX_TENSOR_ELEMENTS} elements")
        if any(padded[i] < extents[i] for i in range(rank)):
            raise self._error(f"the kernel {list(kernel)} does not fit the padded input {list(padded)}")
        if self._int("ceil_mode", 0, (0, 1)) and any((padded[i] - extents[i]) % strides[i] for i in range(rank)):
            raise self._unsupported("ceil_mode=1 changes the output shape here (only floor rounding is supported)")
        out = (*xs[:2], *((padded[i] - extents[i]) // strides[i] + 1 for i in range(rank)))
        self._check_macs(_elements(out) * _elements(kernel))
        attrs: dict[str, Any] = {"kernel": list(kernel), "strides": list(strides), "pads": pads}
        if kind == "max":
            attrs["dilations"] = list(dilations)
            self._emit("max_pool", [ir], out, attrs)
        else:
            attrs["count_include_pad"] = bool(self._int("count_include_pad", 0, (0, 1)))
            self._emit("avg_pool", [ir], out, attrs)

    def _op_MaxPool(self) -> None:
        self._pool("max")

    def _op_AveragePool(self) -> None:
        self._pool("avg")

    def _global_pool(self, op: str) -> None:
        (x,) = self._arity(1)
        ir, xs = self._var(x)
        if len(xs) not in (3, 4):
            raise self._unsupported(f"only 1-D and 2-D pools are supported (input shape {list(xs)})")
        rank = len(xs) - 2
        self._check_macs(_elements(xs))
        attrs: dict[str, Any] = {"kernel": list(xs[2:]), "strides": [1] * rank, "pads": [0] * (2 * rank)}
        if op == "max_pool":
            attrs["dilations"] = [1] * rank
        else:
            attrs["count_include_pad"] = False
        self._emit(op, [ir], (*xs[:2], *([1] * rank)), attrs)

    def _op_GlobalAveragePool(self) -> None:
        self._global_pool("avg_pool")

    def _op_GlobalMaxPool(self) -> None:
        self._global_pool("max_pool")

    def _op_Pad(self) -> None:
        if self.opset < 11:
            (x,) = self._arity(1)
            pads_attr = self._attr("pads", _A_INTS)
            if pads_attr is None:
                raise self._error("has no pads")
            pads, value, axes = list(pads_attr), self._float("value", 0.0), None
        else:
            ins = self._arity(2, 4)
            x = ins[0]
            pads = self._const_ints(ins[1], "pads")
            value = 0.0
            if len(ins) > 2 and ins[2]:
                v = self._const_input(ins[2], "constant_value")
                if v.size != 1 or v.dtype.kind not in "fiu" or not np.all(np.isfinite(v)):
                    raise self._error("the constant_value must be one finite number")
                value = float(v.reshape(-1)[0])
            axes = self._const_ints(ins[3], "axes") if len(ins) > 3 and ins[3] else None
        mode = self._attr("mode", _A_STRING) or "constant"
        if mode != "constant":
            raise self._unsupported(f"mode={display(mode, 20)!r} (only 'constant')")
        shape = self._shape(x)
        rank = len(shape)
        if axes is not None:
            axes = [self._axis(a, rank, "axis") for a in axes]
            if len(set(axes)) != len(axes) or len(pads) != 2 * len(axes):
                raise self._error(f"pads {pads[:8]} do not fit axes {axes}")
            full = [0] * (2 * rank)
            for j, a in enumerate(axes):
                full[a], full[a + rank] = pads[j], pads[j + len(axes)]
            pads = full
        if len(pads) != 2 * rank:
            raise self._error(f"has {len(pads)} pads; a tensor of rank {rank} needs {2 * rank}")
        if any(p < 0 for p in pads):
            raise self._unsupported(f"negative pads {pads[:8]} (cropping)")
        if any(p > MAX_TENSOR_ELEMENTS for p in pads):
            raise self._error(f"pads {pads[:8]} are larger than the limit of {MAX_TENSOR_ELEMENTS}")
        out = tuple(shape[i] + pads[i] + pads[i + rank] for i in range(rank))
        if self._is_const(x):
            self._check_fold_size(out)
            a = self.consts[x]
            self._set_const(np.pad(a, [(pads[i], pads[i + rank]) for i in range(rank)], constant_values=value))
            return
        ir, _ = self._var(x)
        if pads[0] or pads[rank]:
            raise self._unsupported(f"pads {pads} pad the batch axis")
        self._emit("pad", [ir], out, {"pads": pads[1:rank] + pads[rank + 1:], "value": value})

    # ---------------------------------------------------------------- shapes
    def _reshape_to(self, src: str, out: tuple[int, ...], what: str) -> None:
        """Reshape ``src`` to ``out`` (batch dimension included): fold or emit."""
        if self._is_const(src):
            self._check_fold_size(out)
            self._set_const(self.consts[src].reshape(out))
            return
        ir, xs = self._var(src)
        if not out or out[0] != 1:
            raise self._unsupported(f"{what} the batch axis ({list(xs)} -> {list(out)})")
        self._emit("reshape", [ir], out, {"shape": list(out[1:])})

    def _op_Reshape(self) -> None:
        src, target_name = self._arity(2)
        target = self._const_ints(target_name, "target shape")
        allowzero = self._int("allowzero", 0, (0, 1))
        xs = self._shape(src)
        if any(v < -1 for v in target) or target.count(-1) > 1:
            raise self._error(f"target shape {target[:8]} has a value below -1 or more than one -1")
        shape = []
        for i, v in enumerate(target):
            if v == 0 and not allowzero:
                if i >= len(xs):
                    raise self._error(f"target shape {target[:8]} copies axis {i} (0), which the input shape "
                                      f"{list(xs)} does not have")
                v = xs[i]
            shape.append(v)
        total = _elements(xs)
        if -1 in shape:
            known = _elements([v for v in shape if v != -1])
            if known == 0 or total % known:
                raise self._error(f"cannot reshape {list(xs)} to {target[:8]}")
            shape[shape.index(-1)] = total // known
        if _elements(shape) != total:
            raise self._error(f"cannot reshape {list(xs)} ({total} elements) to {target[:8]}")
        self._reshape_to(src, tuple(shape), "reshapes")

    def _op_Flatten(self) -> None:
        (src,) = self._arity(1)
        xs = self._shape(src)
        axis = self._int("axis", 1)
        if not -len(xs) <= axis <= len(xs):
            raise self._error(f"axis={axis} is outside [-{len(xs)}, {len(xs)}] for input shape {list(xs)}")
        if axis < 0:
            axis += len(xs)
        outer, inner = _elements(xs[:axis]), _elements(xs[axis:])
        if not self._is_const(src) and (axis == 0 or _elements(xs[1:axis]) != 1):
            raise self._unsupported(f"axis={axis} folds the batch axis into others (input shape {list(xs)})")
        self._reshape_to(src, (outer, inner), "flattens")

    def _squeeze_axes(self, ins: list[str]) -> list[int] | None:
        if self.opset < 13:
            axes = self._attr("axes", _A_INTS)
            return None if axes is None else list(axes)
        return self._const_ints(ins[1], "axes") if len(ins) > 1 and ins[1] else None

    def _op_Squeeze(self) -> None:
        ins = self._arity(1, 2)
        xs = self._shape(ins[0])
        axes = self._squeeze_axes(ins)
        if axes is None:
            axes = [i for i, d in enumerate(xs) if d == 1]
        axes = sorted({self._axis(a, len(xs)) for a in axes})
        if any(xs[a] != 1 for a in axes):
            raise self._error(f"squeezes axes {axes} of shape {list(xs)}, not all of size 1")
        if 0 in axes and not self._is_const(ins[0]):
            raise self._unsupported(f"squeezes the batch axis (axes {axes} of shape {list(xs)})")
        self._reshape_to(ins[0], tuple(d for i, d in enumerate(xs) if i not in axes), "squeezes")

    def _op_Unsqueeze(self) -> None:
        ins = self._arity(1, 2)
        xs = self._shape(ins[0])
        axes = self._squeeze_axes(ins)
        if axes is None:
            raise self._error("has no axes")
        rank = len(xs) + len(axes)
        norm = [self._axis(a, rank) for a in axes]
        if len(set(norm)) != len(norm):
            raise self._error(f"axes {axes} repeat an axis")
        if 0 in norm and not self._is_const(ins[0]):
            raise self._unsupported(f"inserts an axis before the batch axis (axes {axes})")
        rest = iter(xs)
        out = tuple(1 if i in norm else next(rest) for i in range(rank))
        self._reshape_to(ins[0], out, "unsqueezes")

    def _op_Transpose(self) -> None:
        (src,) = self._arity(1)
        xs = self._shape(src)
        perm = self._attr("perm", _A_INTS)
        perm = tuple(reversed(range(len(xs)))) if perm is None else perm
        if sorted(perm) != list(range(len(xs))):
            raise self._error(f"perm={list(perm)[:8]} is not a permutation of the {len(xs)} axes")
        if self._is_const(src):
            self._set_const(np.transpose(self.consts[src], perm))
            return
        ir, _ = self._var(src)
        if perm[0] != 0:
            raise self._unsupported(f"perm={list(perm)} moves the batch axis (axis 0 must stay first)")
        self._emit("transpose", [ir], tuple(xs[p] for p in perm), {"perm": [p - 1 for p in perm[1:]]})

    def _op_Concat(self) -> None:
        ins = self._arity(1, 2**31)
        shapes = [self._shape(i) for i in ins]
        rank = len(shapes[0])
        axis = self._attr("axis", _A_INT)
        if axis is None:
            raise self._error("has no axis")
        axis = self._axis(axis, rank)
        for s in shapes:
            if len(s) != rank or any(s[i] != shapes[0][i] for i in range(rank) if i != axis):
                raise self._error(f"input shapes {[list(t) for t in shapes[:4]]} differ outside axis {axis}")
        out = tuple(sum(s[axis] for s in shapes) if i == axis else shapes[0][i] for i in range(rank))
        consts = [self._is_const(i) for i in ins]
        if all(consts):
            self._check_fold_size(out)
            self._set_const(np.concatenate([self.consts[i] for i in ins], axis=axis))
            return
        if any(consts):
            raise self._unsupported("concatenating a constant with tensors that depend on the network's input")
        if axis == 0:
            raise self._unsupported("concatenation along the batch axis")
        self._emit("concat", [self.alias.get(i, i) for i in ins], out, {"axis": axis - 1})

    def _op_Slice(self) -> None:
        if self.opset < 10:
            (src,) = self._arity(1)
            starts, ends = self._attr("starts", _A_INTS), self._attr("ends", _A_INTS)
            if starts is None or ends is None:
                raise self._error("needs starts and ends")
            axes = self._attr("axes", _A_INTS)
            starts, ends, axes, steps = list(starts), list(ends), None if axes is None else list(axes), None
        else:
            ins = self._arity(3, 5)
            src = ins[0]
            starts, ends = self._const_ints(ins[1], "starts"), self._const_ints(ins[2], "ends")
            axes = self._const_ints(ins[3], "axes") if len(ins) > 3 and ins[3] else None
            steps = self._const_ints(ins[4], "steps") if len(ins) > 4 and ins[4] else None
        xs = self._shape(src)
        rank = len(xs)
        axes = list(range(len(starts))) if axes is None else axes
        steps = [1] * len(starts) if steps is None else steps
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise self._error(f"starts, ends, axes and steps have different lengths ({len(starts)}, {len(ends)}, "
                              f"{len(axes)}, {len(steps)})")
        axes = [self._axis(a, rank) for a in axes]
        if len(set(axes)) != len(axes):
            raise self._error(f"axes {axes} repeat an axis")
        if any(s == 0 for s in steps):
            raise self._error("a step is 0")
        cuts = [(a, *_slice_bounds(starts[j], ends[j], steps[j], xs[a])) for j, a in enumerate(axes)]
        out = list(xs)
        for a, start, stop, step in cuts:
            out[a] = _slice_length(start, stop, step)
        if self._is_const(src):
            index = [slice(None)] * rank
            for a, start, stop, step in cuts:
                index[a] = slice(start, None if stop < 0 else stop, step)
            self._set_const(self.consts[src][tuple(index)])
            return
        ir, _ = self._var(src)
        if any(d <= 0 for d in out):
            raise self._error(f"computes an empty tensor of shape {out} from {list(xs)}")
        if any(step < 0 for _, _, _, step in cuts):
            raise self._unsupported("a negative step on a tensor that depends on the network's input")
        cuts = [c for c in cuts if c[0] != 0 or c[1:3] != (0, 1)]  # a no-op slice of the batch axis
        if any(a == 0 for a, *_ in cuts):
            raise self._unsupported(f"slices the batch axis (shape {list(xs)})")
        if not cuts:
            self._alias(src)
            return
        shape = list(xs)
        for j, (a, start, stop, step) in enumerate(cuts):
            shape[a] = _slice_length(start, stop, step)
            last = j == len(cuts) - 1
            ir = self._emit("slice", [ir], tuple(shape), {"axis": a - 1, "start": start, "stop": stop, "step": step},
                            output=None if last else self._intermediate(f"slice{a}"), step="" if last else f"axis{a}")


def _slice_bounds(start: int, end: int, step: int, dim: int) -> tuple[int, int, int]:
    """ONNX's clamping of a slice of one axis (``stop`` -1 means: up to the start, for step < 0)."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        return min(max(start, 0), dim), min(max(end, 0), dim), step
    return min(max(start, 0), dim - 1), min(max(end, -1), dim - 1), step


def _slice_length(start: int, stop: int, step: int) -> int:
    return max(0, -(-(stop - start) // step))


def _fold_binary(kind: str, a: np.ndarray, b: np.ndarray, error: Any) -> np.ndarray:
    """ONNX arithmetic on two constants (integer division truncates, as onnxruntime's does)."""
    with np.errstate(all="ignore"):
        if kind == "add":
            return np.add(a, b)
        if kind == "sub":
            return np.subtract(a, b)
        if kind == "mul":
            return np.multiply(a, b)
        if a.dtype.kind in "iu" and b.dtype.kind in "iu":
            if np.any(b == 0):
                raise error("divides an integer by zero")
            q = np.abs(a) // np.abs(b)
            return (np.sign(a) * np.sign(b) * q).astype(np.result_type(a, b))
        return np.divide(a, b)


def _checked(model: Any, shown: str) -> Any:
    """A copy of a ``ModelProto`` that passed :func:`~verify.model.onnx_file.read_onnx`'s
    checks (those that do not need the file)."""
    if not onnx_lite.is_model_proto(model):
        raise ModelError(f"{shown}: expected an onnx.ModelProto or a path, not {type(model).__name__}")
    if model.ByteSize() >= 2**31:
        raise ModelError(f"{shown}: the model is over 2 GB, more than onnx can check")
    model = parse_model(model.SerializeToString(), shown)
    check_structure(model.graph, shown)
    for where, t in _tensors(model.graph):
        check_tensor(t, where, shown)
    check_with_onnx(model, shown)
    return model


def graph_from_onnx(model: str | Path | Any | tuple[Any, bytes], *,
                    name: str | None = None) -> Graph:
    """The IR graph of an ONNX model: a path (read and checked by
    :func:`~verify.model.onnx_file.read_onnx`), what ``read_onnx`` returns (its
    ``(ModelProto, bytes)``, already checked) or a ``ModelProto`` (checked here).

    ``name`` is how messages and ``Graph.source`` call the model (default: the path, or
    ``"ONNX model"``).  Raises a one-line :class:`~verify.errors.ModelError` (or
    :class:`~verify.errors.UnsupportedOperatorError`) naming the file and the node.
    """
    if isinstance(model, (str, Path)):
        shown = name if name is not None else display(model)
        proto, _ = read_onnx(model)
    elif isinstance(model, tuple) and len(model) == 2 and onnx_lite.is_model_proto(model[0]):
        shown = name if name is not None else "ONNX model"
        proto = model[0]
    else:
        shown = name if name is not None else "ONNX model"
        proto = _checked(model, shown)
    return _Importer(proto, shown).convert()


def onnx_to_graph(path: str | Path) -> tuple[Graph, Any, bytes]:
    """Read, check and convert the ONNX file at ``path`` (the IR's counterpart of
    the old torch converter); returns the graph, the ModelProto
    (external data copied in) and the file's bytes."""
    proto, data = read_onnx(path)
    return _Importer(proto, display(path)).convert(), proto, data
