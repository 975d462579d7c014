"""Convert an ONNX graph into a torch module that auto_LiRPA can bound.

Why our own converter: ``onnx2torch`` imports torchvision, whose PyPI build does not
import beside the CPU torch pinned here, and it emits modules auto_LiRPA 0.3 cannot
trace.  The operators we need (the VNN-COMP families) are few, so a small converter
that constant-folds what is static and maps the rest onto ``torch.nn`` is simpler.

Supported: Gemm, MatMul, Add, Sub, Mul, Div, Relu, Sigmoid, Tanh, Flatten, Reshape,
Conv (2-D), BatchNormalization, AveragePool, MaxPool (2-D), Constant, Identity.
Anything else raises :class:`~verify.errors.UnsupportedOperatorError` naming the
operator and the node.

The file is read and checked by :mod:`verify.model.onnx_file` first.  Then each node's
inputs are checked *before* anything is built from them: their number, the data type
and shape of each constant (weights are finite floats of the network's type, and exactly
float32 values: verify's network is float32), the shapes of the variable inputs
(inner dimensions of products, channels of convolutions, broadcasting of biases and
constants), the attributes (types, lengths, ranges), and the size and cost of what the
node computes (:data:`~verify.model.onnx_file.MAX_TENSOR_ELEMENTS` elements,
:data:`MAX_OP_MACS` multiply-adds).  Every refusal is one line naming the file and the
node.

The resulting :class:`OnnxNet` takes a batch of *flat* inputs ``[N, n_inputs]`` (the
VNN-LIB ``X_i`` order: the model's input tensor flattened in C order) and returns
flat outputs ``[N, n_outputs]``.  A double-precision model (double input) is converted
to the same float32 network (its weights must be float32 values); its reference
semantics stay onnxruntime's, in double.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from verify.errors import ModelError, UnsupportedOperatorError
from verify.model import layers
from verify.model.onnx_file import (
    MAX_RANK,
    MAX_TENSOR_ELEMENTS,
    display,
    input_spec,
    name_of,
    node_label,
    read_onnx,
    tensor_array,
    type_name,
)

#: Most multiply-adds one node may cost per input (the largest convolution of VGG-16 at
#: 224 x 224 needs 1.9e9).
MAX_OP_MACS = 2**33
#: Most elements all the values of the network may have together (batch size 1).
MAX_TOTAL_ELEMENTS = 2**28

_DOUBLE = 11  # TensorProto.DOUBLE
# AttributeProto types
_A_FLOAT, _A_INT, _A_STRING, _A_TENSOR, _A_FLOATS, _A_INTS = 1, 2, 3, 4, 6, 7
_RESERVED = frozenset(dir(nn.ModuleDict()))  # keys a ModuleDict refuses


@dataclass
class Step:
    """One operation of the converted graph: ``outputs = module(*inputs)``."""

    name: str  # ONNX node name (or a generated one)
    op_type: str  # ONNX op type it came from
    inputs: tuple[str, ...]
    output: str


class OnnxNet(nn.Module):
    """A feed-forward torch module built from an ONNX graph (flat input, flat output)."""

    def __init__(self, input_shape: tuple[int, ...], steps: list[Step], modules: dict[str, nn.Module],
                 input_name: str, output_name: str, constants: dict[str, torch.Tensor],
                 input_dtype: str = "float32") -> None:
        super().__init__()
        self.input_shape = tuple(int(d) for d in input_shape)  # without the batch dimension
        self.steps = steps
        self.ops = nn.ModuleDict(modules)
        self.input_name = input_name
        self.output_name = output_name
        self.input_dtype = input_dtype  # the ONNX model's: "float32" or "float64"
        # graph outputs that are constants (rare, but legal) are kept as buffers
        for key, value in constants.items():
            self.register_buffer("const_" + key, value)
        self._constant_keys = list(constants)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env: dict[str, torch.Tensor] = {self.input_name: x.reshape(x.shape[0], *self.input_shape)}
        for step in self.steps:
            module = self.ops[_key(step.name)]
            env[step.output] = module(*[env[i] for i in step.inputs])
        out = env[self.output_name]
        return out.reshape(out.shape[0], -1)


def _key(name: str) -> str:
    """ModuleDict keys cannot contain dots."""
    return name.replace(".", "_")


def _elements(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


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


class _Converter:
    def __init__(self, model: Any, shown: str) -> None:
        self.shown = shown
        self.graph = model.graph
        self.input_name, self.input_shape, elem = input_spec(self.graph, shown)
        self.float_dtype = np.dtype(np.float64 if elem == _DOUBLE else np.float32)
        self.consts: dict[str, np.ndarray] = {}
        for init in self.graph.initializer:
            self.consts[init.name] = tensor_array(init, f"initializer {name_of(init.name)}", shown)
        self.shapes: dict[str, tuple[int, ...]] = {}  # static shapes of the variables, batch 1
        self.steps: list[Step] = []
        self.modules: dict[str, nn.Module] = {}
        self.total = 0
        self.uses: dict[str, int] = {}
        for node in self.graph.node:
            for i in node.input:
                self.uses[i] = self.uses.get(i, 0) + 1
        for out in self.graph.output:
            self.uses[out.name] = self.uses.get(out.name, 0) + 1

    # ---------------------------------------------------------------- errors
    def _error(self, node: Any, name: str, message: str) -> ModelError:
        return ModelError(f"{self.shown}: {display(node.op_type, 40)} node {name_of(name)}: {message}")

    def _unsupported(self, node: Any, name: str, detail: str = "") -> UnsupportedOperatorError:
        exc = UnsupportedOperatorError(display(node.op_type, 40), display(name, 120), detail)
        exc.args = (f"{self.shown}: {exc}",)
        return exc

    # ---------------------------------------------------------------- attributes
    def _attr(self, node: Any, name: str, key: str, kind: int) -> Any:
        """The attribute ``key`` of ``node`` (checked to be of type ``kind``), or None."""
        for a in node.attribute:
            if a.name != key:
                continue
            if a.type != kind:
                expected = {_A_FLOAT: "a float", _A_INT: "an integer", _A_STRING: "a string", _A_TENSOR: "a tensor",
                            _A_FLOATS: "a list of floats", _A_INTS: "a list of integers"}[kind]
                raise self._error(node, name, f"attribute {name_of(key)} must be {expected}")
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

    def _int(self, node: Any, name: str, key: str, default: int, allowed: tuple[int, ...] | None = None) -> int:
        value = self._attr(node, name, key, _A_INT)
        value = default if value is None else value
        if allowed is not None and value not in allowed:
            raise self._error(node, name, f"attribute {key}={value}; expected one of {list(allowed)}")
        return value

    def _float(self, node: Any, name: str, key: str, default: float) -> float:
        value = self._attr(node, name, key, _A_FLOAT)
        value = default if value is None else value
        if not np.isfinite(value):
            raise self._error(node, name, f"attribute {key}={value} is not finite")
        return value

    def _ints(self, node: Any, name: str, key: str, default: tuple[int, ...], length: int,
              minimum: int) -> tuple[int, ...]:
        value = self._attr(node, name, key, _A_INTS)
        value = default if value is None else value
        if len(value) != length or any(v < minimum for v in value) or any(v > MAX_TENSOR_ELEMENTS for v in value):
            raise self._error(node, name, f"attribute {key}={list(value)[:8]}; expected {length} integers from "
                              f"{minimum} to {MAX_TENSOR_ELEMENTS}")
        return value

    def _no_auto_pad(self, node: Any, name: str, pads_given: bool) -> None:
        auto_pad = self._attr(node, name, "auto_pad", _A_STRING) or "NOTSET"
        if auto_pad not in ("NOTSET", "VALID"):
            raise self._unsupported(node, name, f"auto_pad={display(auto_pad, 20)!r}")
        if auto_pad == "VALID" and pads_given:
            raise self._error(node, name, "auto_pad=VALID together with pads")

    # ---------------------------------------------------------------- inputs
    def _arity(self, node: Any, name: str, lo: int, hi: int | None = None) -> list[str]:
        """The node's inputs (trailing empty optional ones dropped), checked in number."""
        hi = lo if hi is None else hi
        ins = list(node.input)
        while len(ins) > lo and not ins[-1]:
            ins.pop()
        if not lo <= len(ins) <= hi:
            expected = str(lo) if lo == hi else f"{lo} to {hi}"
            raise self._error(node, name, f"has {len(ins)} inputs; expected {expected}")
        for k, value in enumerate(ins):
            if not value:
                raise self._unsupported(node, name, f"input {k} is left empty")
        return ins

    def _const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name)

    def _var(self, value: str, node: Any, name: str) -> tuple[int, ...]:
        if value not in self.shapes:
            raise self._unsupported(node, name, f"input {name_of(value)} is neither a constant nor computed earlier")
        return self.shapes[value]

    def _weight(self, value: str, node: Any, name: str, role: str, same_type: bool = True,
                required: bool = True) -> np.ndarray:
        """A constant input used as a weight: finite floats of the network's type, exactly
        representable in float32."""
        w = self._const(value)
        if w is None:
            if value in self.shapes:
                raise self._unsupported(node, name, f"the {role} must be a constant")
            raise self._unsupported(node, name, f"{role} {name_of(value)} is not defined")
        what = f"{role} {name_of(value)}"
        if w.dtype.kind != "f":
            raise self._error(node, name, f"{what} has type {w.dtype}; expected {self.float_dtype} weights")
        if same_type and w.dtype != self.float_dtype:
            raise self._error(node, name, f"{what} has type {w.dtype} but the network's input is "
                              f"{self.float_dtype} (ONNX needs one type)")
        if not np.all(np.isfinite(w)):
            raise self._error(node, name, f"{what} contains NaN or infinite values")
        if w.dtype == np.float64 and not np.array_equal(w.astype(np.float32).astype(np.float64), w):
            raise self._error(node, name, f"{what} has double values that are not float32 values; verify reasons "
                              "about float32 weights: export the model in float32")
        return w

    def _check_macs(self, node: Any, name: str, macs: int) -> None:
        if macs > MAX_OP_MACS:
            raise self._error(node, name, f"needs {macs} multiply-adds per input, more than the limit of {MAX_OP_MACS}")

    # ---------------------------------------------------------------- building
    def _add(self, node: Any, name: str, module: nn.Module, inputs: list[str], out_shape: tuple[int, ...],
             op_type: str | None = None, output: str | None = None) -> None:
        out_shape = tuple(int(d) for d in out_shape)
        if len(out_shape) > MAX_RANK:
            raise self._error(node, name, f"computes a tensor of rank {len(out_shape)}, more than the limit of "
                              f"{MAX_RANK}")
        if not out_shape or out_shape[0] != 1:
            raise self._unsupported(node, name, f"changes the batch dimension (its output has shape {out_shape})")
        if any(d <= 0 for d in out_shape):
            raise self._error(node, name, f"computes an empty tensor of shape {out_shape}")
        n = _elements(out_shape)
        if n > MAX_TENSOR_ELEMENTS:
            raise self._error(node, name, f"computes {n} elements, more than the limit of {MAX_TENSOR_ELEMENTS}")
        self.total += n
        if self.total > MAX_TOTAL_ELEMENTS:
            raise self._error(node, name, f"the network's values reach {self.total} elements in all, more than the "
                              f"limit of {MAX_TOTAL_ELEMENTS}")
        base = name
        k = 1
        while _key(name) in self.modules or _key(name) in _RESERVED:
            name = f"{base}_{k}"
            k += 1
        output = output or node.output[0]
        self.modules[_key(name)] = module
        self.steps.append(Step(name, op_type or node.op_type, tuple(inputs), output))
        self.shapes[output] = out_shape

    def _node_name(self, node: Any, index: int) -> str:
        return node.name or f"#{index} ({node.op_type})"

    def _fold(self, node: Any, name: str, ins: list[str], shape: tuple[int, ...] | None, fn: Any) -> bool:
        """Constant-fold a node whose inputs are all constants; ``shape``: the result's shape
        (None when the inputs' shapes do not fit, an error)."""
        if not ins or not all(i in self.consts for i in ins):
            return False
        if shape is None:
            shapes = " and ".join(str(tuple(self.consts[i].shape)) for i in ins)
            raise self._error(node, name, f"constant inputs of shapes {shapes} do not fit")
        if len(shape) > MAX_RANK:
            raise self._error(node, name, f"folds to a tensor of rank {len(shape)}, more than the limit of {MAX_RANK}")
        if _elements(shape) > MAX_TENSOR_ELEMENTS:
            raise self._error(node, name, f"folds to {_elements(shape)} elements, more than the limit of "
                              f"{MAX_TENSOR_ELEMENTS}")
        with np.errstate(all="ignore"):
            self.consts[node.output[0]] = np.asarray(fn(*[self.consts[i] for i in ins]))
        return True

    # ---------------------------------------------------------------- conversion
    def convert(self) -> OnnxNet:
        self.shapes[self.input_name] = self.input_shape
        self.total = _elements(self.input_shape)
        nodes = list(self.graph.node)
        skip: set[int] = set()
        for index, node in enumerate(nodes):
            if index in skip:
                continue
            name = self._node_name(node, index)
            if node.domain not in ("", "ai.onnx"):
                raise self._unsupported(node, name, f"operator domain {display(node.domain, 40)!r}")
            handler = getattr(self, "_op_" + node.op_type, None)
            if handler is None:
                raise self._unsupported(node, name)
            extra = [o for o in node.output[1:] if o]
            if extra and node.op_type not in ("BatchNormalization", "MaxPool"):
                raise self._unsupported(node, name, "more than one output")
            used = [o for o in extra if self.uses.get(o)]
            if used:
                raise self._unsupported(node, name, f"the output {name_of(used[0])} (only the first is supported)")
            fused = handler(node, name, nodes, index)
            if fused is not None:
                skip.add(fused)
        out = self.graph.output[0].name
        if out in self.consts:
            raise ModelError(f"{self.shown}: the network output {name_of(out)} does not depend on the input")
        if out not in self.shapes:
            raise ModelError(f"{self.shown}: the network output {name_of(out)} is not computed by any node")
        self._check_declared_output(self.graph.output[0], self.shapes[out])
        return OnnxNet(self.input_shape[1:], self.steps, self.modules, self.input_name, out, {},
                       input_dtype=str(self.float_dtype))

    def _check_declared_output(self, value: Any, shape: tuple[int, ...]) -> None:
        """The output's declared type and (static) size agree with what the graph computes."""
        label = f"{self.shown}: output {name_of(value.name)}"
        if value.type.WhichOneof("value") != "tensor_type":
            raise ModelError(f"{label} is not declared as a tensor")
        tensor = value.type.tensor_type
        elem = 11 if self.float_dtype == np.float64 else 1
        if tensor.elem_type != elem:
            raise ModelError(f"{label} is declared {type_name(tensor.elem_type)}, but the network computes "
                             f"{type_name(elem)}")
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
        if _elements(tuple(dims)) != _elements(shape):
            raise ModelError(f"{label} is declared with shape {dims}, but the graph computes shape {list(shape)}")

    # each _op_X returns the index of a node it fused (or None)
    def _op_Constant(self, node: Any, name: str, nodes: list, index: int) -> None:
        self._arity(node, name, 0)
        keys = [a.name for a in node.attribute]
        if len(keys) != 1:
            raise self._error(node, name, f"needs exactly one value attribute, has {len(keys)}")
        key = keys[0]
        if key == "value":
            tensor = self._attr(node, name, "value", _A_TENSOR)
            value = tensor_array(tensor, f"the value of Constant node {node_label(node, index)}", self.shown)
        elif key in ("value_float", "value_floats"):
            value = np.asarray(self._attr(node, name, key, _A_FLOAT if key == "value_float" else _A_FLOATS),
                               dtype=np.float32)
            if not np.all(np.isfinite(value)):
                raise self._error(node, name, f"{key} contains NaN or infinite values")
        elif key in ("value_int", "value_ints"):
            value = np.asarray(self._attr(node, name, key, _A_INT if key == "value_int" else _A_INTS), dtype=np.int64)
        else:
            raise self._unsupported(node, name, f"the {display(key, 30)!r} attribute (use 'value')")
        self.consts[node.output[0]] = value

    def _unary(self, node: Any, name: str, module: nn.Module, fn: Any) -> None:
        (src,) = self._arity(node, name, 1)
        if src in self.consts:
            if self.consts[src].dtype.kind not in "fiub":
                raise self._error(node, name, f"constant {name_of(src)} is not numeric")
            self._fold(node, name, [src], tuple(self.consts[src].shape), fn)
            return
        self._add(node, name, module, [src], self._var(src, node, name))

    def _op_Identity(self, node: Any, name: str, nodes: list, index: int) -> None:
        self._unary(node, name, nn.Identity(), lambda a: a)

    def _op_Relu(self, node: Any, name: str, nodes: list, index: int) -> None:
        self._unary(node, name, nn.ReLU(), lambda a: np.maximum(a, 0).astype(a.dtype))

    def _op_Sigmoid(self, node: Any, name: str, nodes: list, index: int) -> None:
        self._unary(node, name, nn.Sigmoid(), lambda a: (1 / (1 + np.exp(-a))).astype(a.dtype))

    def _op_Tanh(self, node: Any, name: str, nodes: list, index: int) -> None:
        self._unary(node, name, nn.Tanh(), lambda a: np.tanh(a).astype(a.dtype))

    def _op_Flatten(self, node: Any, name: str, nodes: list, index: int) -> None:
        (src,) = self._arity(node, name, 1)
        axis = self._int(node, name, "axis", 1)
        const = self._const(src)
        shape = tuple(const.shape) if const is not None else self._var(src, node, name)
        if not -len(shape) <= axis <= len(shape):
            raise self._error(node, name, f"axis={axis} is outside [-{len(shape)}, {len(shape)}] for input shape "
                              f"{shape}")
        if axis < 0:
            axis += len(shape)
        outer, inner = _elements(shape[:axis]), _elements(shape[axis:])
        if const is not None:
            self._fold(node, name, [src], (outer, inner), lambda a: a.reshape(outer, inner))
            return
        if axis == 0:
            raise self._unsupported(node, name, "axis=0 folds the batch dimension")
        if axis > 1:
            raise self._unsupported(node, name, f"axis={axis} (only axis=1 keeps the batch)")
        self._add(node, name, layers.Flatten((inner,)), [src], (1, inner))

    def _reshape_target(self, node: Any, name: str, in_shape: tuple[int, ...], target: np.ndarray) -> tuple[int, ...]:
        if target.dtype.kind not in "iu" or target.ndim != 1:
            raise self._error(node, name, f"the target shape must be a 1-D integer tensor, not {target.dtype} of "
                              f"shape {tuple(target.shape)}")
        if target.size > MAX_RANK:
            raise self._error(node, name, f"the target shape has {target.size} dimensions, more than the limit of "
                              f"{MAX_RANK}")
        values = [int(v) for v in target.tolist()]
        if any(v < -1 for v in values) or values.count(-1) > 1:
            raise self._error(node, name, f"target shape {values[:8]} has a value below -1 or more than one -1")
        shape = []
        for i, v in enumerate(values):
            if v == 0:
                if i >= len(in_shape):
                    raise self._error(node, name, f"target shape {values[:8]} copies axis {i} (0), which the input "
                                      f"shape {in_shape} does not have")
                v = in_shape[i]
            shape.append(v)
        total = _elements(in_shape)
        if -1 in shape:
            known = _elements(tuple(v for v in shape if v != -1))
            if known == 0 or total % known:
                raise self._error(node, name, f"cannot reshape {in_shape} to {tuple(values[:8])}")
            shape[shape.index(-1)] = total // known
        if _elements(tuple(shape)) != total:
            raise self._error(node, name, f"cannot reshape {in_shape} ({total} elements) to {tuple(values[:8])}")
        return tuple(shape)

    def _op_Reshape(self, node: Any, name: str, nodes: list, index: int) -> None:
        src, target_name = self._arity(node, name, 2)
        target = self._const(target_name)
        if target is None:
            raise self._unsupported(node, name, "the target shape must be a constant")
        if self._int(node, name, "allowzero", 0, (0, 1)):
            raise self._unsupported(node, name, "allowzero=1")
        const = self._const(src)
        if const is not None:
            shape = self._reshape_target(node, name, tuple(const.shape), target)
            self._fold(node, name, [src, target_name], shape, lambda a, _: a.reshape(shape))
            return
        in_shape = self._var(src, node, name)
        out_shape = self._reshape_target(node, name, in_shape, target)
        if not out_shape or out_shape[0] != 1:
            raise self._unsupported(node, name, f"reshapes the batch dimension ({in_shape} -> {out_shape})")
        self._add(node, name, layers.Reshape(out_shape[1:]), [src], out_shape)

    def _op_Gemm(self, node: Any, name: str, nodes: list, index: int) -> None:
        ins = self._arity(node, name, 2, 3)
        alpha = self._float(node, name, "alpha", 1.0)
        beta = self._float(node, name, "beta", 1.0)
        trans_a = self._int(node, name, "transA", 0, (0, 1))
        trans_b = self._int(node, name, "transB", 0, (0, 1))
        a, b = ins[0], ins[1]
        c = ins[2] if len(ins) > 2 else None
        if trans_a:
            raise self._unsupported(node, name, "transA=1 on the variable input")
        if a in self.consts:
            raise self._unsupported(node, name, "only variable x constant products are supported")
        w = self._weight(b, node, name, "weight B")
        in_shape = self._var(a, node, name)
        if w.ndim != 2:
            raise self._error(node, name, f"weight B has shape {tuple(w.shape)}; Gemm needs a matrix")
        weight = w.T if trans_b else w  # [in, out]
        if len(in_shape) != 2 or weight.shape[0] != in_shape[1]:
            raise self._error(node, name, f"input A of shape {in_shape} does not fit weight B of shape "
                              f"{tuple(w.shape)}{' (transB=1)' if trans_b else ''}")
        n_out = int(weight.shape[1])
        self._check_macs(node, name, _elements(weight.shape))
        with np.errstate(all="ignore"):
            weight = weight * alpha
        if not np.all(np.isfinite(weight)):
            raise self._error(node, name, f"alpha={alpha} makes weight B infinite")
        bias = None
        if c is not None:
            cv = self._weight(c, node, name, "bias C")
            if cv.ndim > 2 or _broadcast(tuple(cv.shape), (1, n_out)) != (1, n_out):
                raise self._error(node, name, f"bias C has shape {tuple(cv.shape)}; it must broadcast to the "
                                  f"output shape (1, {n_out})")
            with np.errstate(all="ignore"):
                bias = np.broadcast_to(cv * beta, (1, n_out)).reshape(-1)
            if not np.all(np.isfinite(bias)):
                raise self._error(node, name, f"beta={beta} makes bias C infinite")
        self._add(node, name, _linear(weight, bias), [a], (1, n_out))

    def _fusable_bias(self, value: str, out_shape: tuple[int, ...], n_out: int) -> np.ndarray | None:
        """A constant that a MatMul's following Add can fold into the product's bias."""
        bv = self._const(value)
        if bv is None or bv.dtype != self.float_dtype or not np.all(np.isfinite(bv)):
            return None
        if bv.dtype == np.float64 and not np.array_equal(bv.astype(np.float32).astype(np.float64), bv):
            return None
        if _broadcast(tuple(bv.shape), out_shape) != out_shape or bv.size not in (1, n_out):
            return None
        if bv.ndim and bv.shape[-1] not in (1, n_out):
            return None
        return np.broadcast_to(bv.reshape(-1), (n_out,)).copy()

    def _op_MatMul(self, node: Any, name: str, nodes: list, index: int) -> int | None:
        a, b = self._arity(node, name, 2)
        if a in self.consts and b in self.consts:
            shape = _matmul_shape(tuple(self.consts[a].shape), tuple(self.consts[b].shape))
            if shape is not None:
                k = self.consts[a].shape[-1]
                self._check_macs(node, name, _elements(shape) * int(k))
            self._fold(node, name, [a, b], shape, np.matmul)
            return None
        if a in self.consts or b not in self.consts:
            raise self._unsupported(node, name, "only variable x constant products are supported")
        w = self._weight(b, node, name, "weight B")
        in_shape = self._var(a, node, name)
        if w.ndim != 2:
            raise self._unsupported(node, name, f"only a 2-D constant weight (B has shape {tuple(w.shape)})")
        if len(in_shape) < 2 or in_shape[-1] != w.shape[0]:
            raise self._error(node, name, f"input A of shape {in_shape} does not fit weight B of shape "
                              f"{tuple(w.shape)}")
        n_out = int(w.shape[1])
        out_shape = (*in_shape[:-1], n_out)
        self._check_macs(node, name, _elements(out_shape) * int(w.shape[0]))
        bias = None
        fused = None
        # fuse a following Add of a constant bias (the usual MatMul+Add pattern)
        if index + 1 < len(nodes) and self.uses.get(node.output[0], 0) == 1:
            nxt = nodes[index + 1]
            if nxt.op_type == "Add" and nxt.domain in ("", "ai.onnx") and len(nxt.input) == 2 and \
                    node.output[0] in nxt.input and len([o for o in nxt.output if o]) == 1:
                other = nxt.input[1] if nxt.input[0] == node.output[0] else nxt.input[0]
                bias = self._fusable_bias(other, out_shape, n_out)
                if bias is not None:
                    fused = index + 1
        output = nodes[fused].output[0] if fused is not None else node.output[0]
        self._add(node, name, _linear(w, bias), [a], out_shape, op_type="MatMul", output=output)
        return fused

    def _binary(self, node: Any, name: str, kind: str) -> None:
        np_fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[kind]
        a, b = self._arity(node, name, 2)
        ca, cb = self._const(a), self._const(b)
        if ca is not None and cb is not None:
            self._fold(node, name, [a, b], _broadcast(tuple(ca.shape), tuple(cb.shape)), np_fn)
            return
        if ca is None and cb is None:
            sa = self._var(a, node, name)
            sb = self._var(b, node, name)
            if kind not in ("add", "sub"):
                raise self._unsupported(node, name, "product or quotient of two variable tensors")
            if sa != sb:
                if _broadcast(sa, sb) is None:
                    raise self._error(node, name, f"the shapes of its inputs {sa} and {sb} do not broadcast")
                raise self._unsupported(node, name, f"broadcasting two variables {sa} and {sb}")
            self._add(node, name, layers.Add() if kind == "add" else layers.Sub(), [a, b], sa)
            return
        if ca is not None and kind == "div":
            raise self._unsupported(node, name, "division by a variable tensor")
        var, const_name, first = (b, a, True) if ca is not None else (a, b, False)
        shape = self._var(var, node, name)
        const = self._weight(const_name, node, name, "constant")
        out_shape = _broadcast(shape, tuple(const.shape))
        if out_shape is None:
            raise self._error(node, name, f"the shapes of its inputs {shape} and {tuple(const.shape)} do not "
                              "broadcast")
        if out_shape != shape:
            raise self._unsupported(node, name, f"the constant {tuple(const.shape)} enlarges the input {shape}")
        if kind == "div" and np.any(const == 0):
            raise self._error(node, name, "divides by zero")
        tensor = torch.tensor(np.asarray(const, dtype=np.float32))
        self._add(node, name, layers.ConstantOp(kind, tensor, first), [var], shape)

    def _op_Add(self, node: Any, name: str, nodes: list, index: int) -> None:
        self._binary(node, name, "add")

    def _op_Sub(self, node: Any, name: str, nodes: list, index: int) -> None:
        self._binary(node, name, "sub")

    def _op_Mul(self, node: Any, name: str, nodes: list, index: int) -> None:
        self._binary(node, name, "mul")

    def _op_Div(self, node: Any, name: str, nodes: list, index: int) -> None:
        self._binary(node, name, "div")

    def _op_Conv(self, node: Any, name: str, nodes: list, index: int) -> None:
        ins = self._arity(node, name, 2, 3)
        x = ins[0]
        w = self._weight(ins[1], node, name, "kernel W")
        if x in self.consts:
            raise self._unsupported(node, name, "a convolution of a constant")
        in_shape = self._var(x, node, name)
        if w.ndim != 4 or len(in_shape) != 4:
            raise self._unsupported(node, name, f"only 2-D convolutions are supported (input {in_shape}, kernel "
                                    f"{tuple(w.shape)})")
        self._no_auto_pad(node, name, self._attr(node, name, "pads", _A_INTS) is not None)
        group = self._int(node, name, "group", 1)
        strides = self._ints(node, name, "strides", (1, 1), 2, 1)
        dilations = self._ints(node, name, "dilations", (1, 1), 2, 1)
        pads = self._ints(node, name, "pads", (0, 0, 0, 0), 4, 0)  # top, left, bottom, right
        kernel = self._attr(node, name, "kernel_shape", _A_INTS)
        m, cg, kh, kw = (int(d) for d in w.shape)
        if kernel is not None and tuple(kernel) != (kh, kw):
            raise self._error(node, name, f"kernel_shape={list(kernel)} but kernel W has shape {tuple(w.shape)}")
        if min(m, cg, kh, kw) <= 0:
            raise self._error(node, name, f"kernel W has an empty shape {tuple(w.shape)}")
        if group < 1 or m % group or cg * group != in_shape[1]:
            raise self._error(node, name, f"kernel W of shape {tuple(w.shape)} with group={group} does not fit the "
                              f"input's {in_shape[1]} channels (input shape {in_shape})")
        b = None
        if len(ins) > 2:
            b = self._weight(ins[2], node, name, "bias B")
            if tuple(b.shape) != (m,):
                raise self._error(node, name, f"bias B has shape {tuple(b.shape)}; expected ({m},)")
        padded = (in_shape[2] + pads[0] + pads[2], in_shape[3] + pads[1] + pads[3])
        extent = (dilations[0] * (kh - 1) + 1, dilations[1] * (kw - 1) + 1)
        if padded[0] < extent[0] or padded[1] < extent[1]:
            raise self._error(node, name, f"the kernel {(kh, kw)} (dilations {list(dilations)}) does not fit the "
                              f"padded input {padded}")
        out_shape = (1, m, (padded[0] - extent[0]) // strides[0] + 1, (padded[1] - extent[1]) // strides[1] + 1)
        if _elements((1, in_shape[1], *padded)) > MAX_TENSOR_ELEMENTS:
            raise self._error(node, name, f"pads {list(pads)} make the input {padded}, more than the limit of "
                              f"{MAX_TENSOR_ELEMENTS} elements")
        if _elements(out_shape) > MAX_TENSOR_ELEMENTS:
            raise self._error(node, name, f"computes {_elements(out_shape)} elements, more than the limit of "
                              f"{MAX_TENSOR_ELEMENTS}")
        self._check_macs(node, name, _elements(out_shape) * cg * kh * kw)
        symmetric = pads[0] == pads[2] and pads[1] == pads[3]
        conv = nn.Conv2d(in_shape[1], m, kernel_size=(kh, kw), stride=strides, dilation=dilations, groups=group,
                         bias=b is not None, padding=(pads[0], pads[1]) if symmetric else 0)
        with torch.no_grad():
            conv.weight.copy_(torch.tensor(np.asarray(w, dtype=np.float32)))
            if b is not None:
                conv.bias.copy_(torch.tensor(np.asarray(b, dtype=np.float32)))
        module: nn.Module = conv if symmetric else nn.Sequential(layers.Pad((pads[1], pads[3], pads[0], pads[2])),
                                                                 conv)
        self._add(node, name, module, [x], out_shape)

    def _op_BatchNormalization(self, node: Any, name: str, nodes: list, index: int) -> None:
        ins = self._arity(node, name, 5)
        x = ins[0]
        if self._int(node, name, "training_mode", 0, (0, 1)):
            raise self._unsupported(node, name, "training_mode=1")
        if self._int(node, name, "spatial", 1, (0, 1)) == 0:
            raise self._unsupported(node, name, "spatial=0")
        roles = ("scale", "bias B", "mean", "var")
        params = [self._weight(v, node, name, role, same_type=False) for v, role in zip(ins[1:5], roles)]
        if x in self.consts:
            raise self._unsupported(node, name, "a batch normalisation of a constant")
        in_shape = self._var(x, node, name)
        if len(in_shape) not in (2, 3, 4):
            raise self._unsupported(node, name, f"input rank {len(in_shape)} (input shape {in_shape})")
        channels = in_shape[1]
        for role, value, p in zip(roles, ins[1:5], params):
            if tuple(p.shape) != (channels,):
                raise self._error(node, name, f"{role} {name_of(value)} has shape {tuple(p.shape)}; the input "
                                  f"{in_shape} has {channels} channels")
        scale, bias, mean, var = (np.asarray(p, dtype=np.float64) for p in params)
        eps = self._float(node, name, "epsilon", 1e-5)
        if np.any(var + eps <= 0):
            raise self._error(node, name, "has a non-positive variance (var + epsilon <= 0)")
        cls = nn.BatchNorm2d if len(in_shape) == 4 else nn.BatchNorm1d
        bn = cls(channels, eps=eps)
        with torch.no_grad():
            bn.weight.copy_(torch.tensor(scale))
            bn.bias.copy_(torch.tensor(bias))
            bn.running_mean.copy_(torch.tensor(mean))
            bn.running_var.copy_(torch.tensor(var))
        bn.eval()
        self._add(node, name, bn, [x], in_shape)

    def _pool(self, node: Any, name: str, kind: str) -> None:
        (x,) = self._arity(node, name, 1)
        if x in self.consts:
            raise self._unsupported(node, name, "pooling a constant")
        in_shape = self._var(x, node, name)
        if len(in_shape) != 4:
            raise self._unsupported(node, name, f"only 2-D pooling is supported (input shape {in_shape})")
        if self._int(node, name, "ceil_mode", 0, (0, 1)):
            raise self._unsupported(node, name, "ceil_mode=1")
        self._no_auto_pad(node, name, self._attr(node, name, "pads", _A_INTS) is not None)
        if self._attr(node, name, "kernel_shape", _A_INTS) is None:
            raise self._error(node, name, "has no kernel_shape")
        kernel = self._ints(node, name, "kernel_shape", (1, 1), 2, 1)
        strides = self._ints(node, name, "strides", (1, 1), 2, 1)
        pads = self._ints(node, name, "pads", (0, 0, 0, 0), 4, 0)
        if self._ints(node, name, "dilations", (1, 1), 2, 1) != (1, 1):
            raise self._unsupported(node, name, "dilations")
        if pads[0] >= kernel[0] or pads[2] >= kernel[0] or pads[1] >= kernel[1] or pads[3] >= kernel[1]:
            raise self._error(node, name, f"pads {list(pads)} must be smaller than the kernel {list(kernel)}")
        padded = (in_shape[2] + pads[0] + pads[2], in_shape[3] + pads[1] + pads[3])
        if padded[0] < kernel[0] or padded[1] < kernel[1]:
            raise self._error(node, name, f"the kernel {list(kernel)} does not fit the padded input {padded}")
        out_shape = (1, in_shape[1], (padded[0] - kernel[0]) // strides[0] + 1,
                     (padded[1] - kernel[1]) // strides[1] + 1)
        if _elements((1, in_shape[1], *padded)) > MAX_TENSOR_ELEMENTS:
            raise self._error(node, name, f"pads {list(pads)} make the input {padded}, more than the limit of "
                              f"{MAX_TENSOR_ELEMENTS} elements")
        self._check_macs(node, name, _elements(out_shape) * kernel[0] * kernel[1])
        # torch pads inside the pool only symmetrically and by at most half the kernel
        inner = pads[0] == pads[2] and pads[1] == pads[3] and pads[0] <= kernel[0] // 2 and pads[1] <= kernel[1] // 2
        padding = (pads[0], pads[1]) if inner else 0
        if kind == "max":
            pool: nn.Module = nn.MaxPool2d(kernel, strides, padding=padding)
            pad_value = float("-inf")
        else:
            include = bool(self._int(node, name, "count_include_pad", 0, (0, 1)))
            if not inner and not include and any(pads):
                raise self._unsupported(node, name, f"pads {list(pads)} with count_include_pad=0")
            pool = nn.AvgPool2d(kernel, strides, padding=padding, count_include_pad=include)
            pad_value = 0.0
        module = pool if inner or not any(pads) else \
            nn.Sequential(layers.Pad((pads[1], pads[3], pads[0], pads[2]), pad_value), pool)
        self._add(node, name, module, [x], out_shape)

    def _op_AveragePool(self, node: Any, name: str, nodes: list, index: int) -> None:
        self._pool(node, name, "avg")

    def _op_MaxPool(self, node: Any, name: str, nodes: list, index: int) -> None:
        self._pool(node, name, "max")


def _linear(weight: np.ndarray, bias: np.ndarray | None) -> nn.Linear:
    """nn.Linear from a weight stored as [in, out] (ONNX MatMul/Gemm layout)."""
    layer = nn.Linear(weight.shape[0], weight.shape[1], bias=True)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(np.ascontiguousarray(weight.T, dtype=np.float32)))
        if bias is None:
            layer.bias.zero_()
        else:
            layer.bias.copy_(torch.tensor(np.asarray(bias, dtype=np.float32)))
    return layer


def onnx_to_torch(path: str | Path) -> tuple[OnnxNet, Any, bytes]:
    """Read, check and convert the ONNX file at ``path``; returns the torch module, the onnx
    ModelProto (external data copied in) and the file's bytes."""
    model, data = read_onnx(path)
    net = _Converter(model, display(path)).convert()
    net.eval()
    return net, model, data
