"""Read a ``torch.nn.Module`` into the IR (:class:`verify.ir.Graph`) by tracing it with ``torch.fx``.

The module (a copy, in eval mode) is traced with :func:`torch.fx.symbolic_trace` and run
once on zeros through fx's ``ShapeProp`` with a batch of 2, which gives every value's
static shape and shows an operation that mixes the rows of a batch (its output's first
dimension is not 2).  Each fx node then becomes an IR node named after it (the input
keeps the placeholder's name); ``origin`` is the module path for a submodule call, the
fx node's name for a function or method.  Dropout, Identity and ``contiguous`` emit no
node (their output aliases their input).  Anything else raises a one-line
:class:`~verify.errors.ModelError` naming the module path or the operation.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from verify.errors import ModelError
from verify.ir.graph import Graph, Node, Value
from verify.model.onnx_file import display, one_line

#: the batch size the module is run with to find the shapes (a batch-mixing op shows)
_TRACE_BATCH = 2


@dataclass(frozen=True)
class _Var:
    """A value that depends on the input: its IR name and shape (no batch dimension)."""

    name: str
    shape: tuple[int, ...]


class _Batch:
    """The batch dimension's size, as ``x.size(0)`` or ``x.shape[0]`` gives it."""

    def __repr__(self) -> str:
        return "batch"


BATCH = _Batch()

_ELEMENTWISE_MODULES: dict[type, str] = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh"}
_ALIAS_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity)
_UNARY_FUNCTIONS: dict[Any, str] = {
    torch.relu: "relu", F.relu: "relu", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", torch.tanh: "tanh",
    F.tanh: "tanh",
}
_ARITH_FUNCTIONS: dict[Any, str] = {
    operator.add: "add", operator.iadd: "add", torch.add: "add", operator.sub: "sub", operator.isub: "sub",
    torch.sub: "sub", operator.mul: "mul", operator.imul: "mul", torch.mul: "mul", operator.truediv: "div",
    operator.itruediv: "div", torch.div: "div",
}
_ARITH_METHODS = {"add": "add", "sub": "sub", "mul": "mul", "div": "div"}
SUPPORTED_MODULES = (
    "Linear", "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "BatchNorm1d", "BatchNorm2d", "ReLU",
    "LeakyReLU", "Sigmoid", "Tanh", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d", "Flatten", "Dropout", "Identity", "Softmax", "Sequential",
)


def _array(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().to(torch.float64).numpy().copy()


def _tuple(value: Any, rank: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value),) * rank


class _Converter:
    """One conversion: fx nodes in order -> IR nodes."""

    def __init__(self, gm: fx.GraphModule, shown: str, input_shape: tuple[int, ...]) -> None:
        self.gm = gm
        self.shown = shown
        self.input_shape = input_shape
        self.env: dict[str, Any] = {}
        self.nodes: list[Node] = []
        self.values: dict[str, Value] = {}
        self.input: Value | None = None
        self.fx_node: fx.Node | None = None

    # ---------------------------------------------------------------- helpers
    def _where(self) -> str:
        node = self.fx_node
        if node is None:
            return ""
        if node.op == "call_module":
            module = self.gm.get_submodule(str(node.target))
            return f"module {display(node.target, 80)!r} ({type(module).__name__})"
        if node.op == "call_method":
            return f"{display(node.name, 60)!r} (method .{display(node.target, 40)})"
        return f"{display(node.name, 60)!r} ({_function_name(node.target)})"

    def _error(self, message: str) -> ModelError:
        return ModelError(f"{self.shown}: {self._where()}: {message}")

    def _out_shape(self) -> tuple[int, ...]:
        """The current node's output shape (batch dimension removed), checked to keep the batch."""
        assert self.fx_node is not None
        meta = self.fx_node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            raise self._error("does not compute one tensor")
        shape = tuple(int(d) for d in meta.shape)
        if not shape or shape[0] != _TRACE_BATCH:
            raise self._error(f"mixes the rows of a batch (on a batch of {_TRACE_BATCH} it computes shape "
                              f"{list(shape)}); every operation must keep the batch dimension first")
        return shape[1:]

    def _emit(self, op: str, inputs: list[_Var], attrs: dict[str, Any]) -> _Var:
        assert self.fx_node is not None
        node = self.fx_node
        shape = self._out_shape()
        origin = str(node.target) if node.op == "call_module" else node.name
        self.nodes.append(Node(op, node.name, tuple(v.name for v in inputs), node.name, attrs, (origin,)))
        self.values[node.name] = Value(node.name, shape)
        return _Var(node.name, shape)

    def _var(self, value: Any, what: str = "input") -> _Var:
        if not isinstance(value, _Var):
            raise self._error(f"the {what} must be a tensor computed from the network's input")
        return value

    def _axis(self, axis: Any, rank: int) -> int:
        """A dimension of a tensor of ``rank`` (batch included), normalised."""
        if not isinstance(axis, int) or not -rank <= axis < rank:
            raise self._error(f"dimension {axis!r} is outside [-{rank}, {rank - 1}]")
        return axis + rank if axis < 0 else axis

    def _arg(self, node: fx.Node, index: int, key: str, default: Any) -> Any:
        if len(node.args) > index:
            return self._load(node.args[index])
        return self._load(node.kwargs.get(key, default))

    def _load(self, arg: Any) -> Any:
        """An fx argument with its nodes replaced by what they computed."""
        if isinstance(arg, fx.Node):
            return self.env[arg.name]
        if isinstance(arg, (list, tuple)):
            return type(arg)(self._load(a) for a in arg)
        if isinstance(arg, dict):
            return {k: self._load(v) for k, v in arg.items()}
        return arg

    # ---------------------------------------------------------------- conversion
    def convert(self) -> Graph:
        output: Any = None
        for node in self.gm.graph.nodes:
            self.fx_node = node
            if node.op == "placeholder":
                if self.input is not None:
                    raise self._error("the module takes more than one input")
                self.input = Value(node.name, self.input_shape)
                self.values[node.name] = self.input
                self.env[node.name] = _Var(node.name, self.input_shape)
            elif node.op == "get_attr":
                self.env[node.name] = self._get_attr(str(node.target))
            elif node.op == "call_module":
                self.env[node.name] = self._call_module(node)
            elif node.op == "call_function":
                self.env[node.name] = self._call_function(node)
            elif node.op == "call_method":
                self.env[node.name] = self._call_method(node)
            elif node.op == "output":
                output = self._load(node.args[0])
        self.fx_node = None
        if self.input is None:
            raise ModelError(f"{self.shown}: the module takes no input")
        if isinstance(output, (tuple, list)):
            raise ModelError(f"{self.shown}: the module returns {len(output)} values; expected one tensor")
        if not isinstance(output, _Var):
            raise ModelError(f"{self.shown}: the module's output does not depend on its input")
        needed = {output.name}
        kept: list[Node] = []
        for node in reversed(self.nodes):
            if node.output in needed:
                kept.append(node)
                needed.update(node.inputs)
        kept.reverse()
        for node in kept:
            if node.op == "softmax" and node.output != output.name:
                raise ModelError(f"{self.shown}: softmax {display(node.origin[0], 80)!r} is supported only as the "
                                 "network's last operation")
        values = {k: v for k, v in self.values.items() if k in needed}
        return Graph(self.input, kept, output.name, values, source=self.shown)

    def _get_attr(self, target: str) -> Any:
        obj: Any = self.gm
        for part in target.split("."):
            obj = getattr(obj, part)
        if isinstance(obj, torch.Tensor):
            return obj.detach()
        return obj

    # ---------------------------------------------------------------- modules
    def _call_module(self, node: fx.Node) -> Any:
        m = self.gm.get_submodule(str(node.target))
        args = [self._load(a) for a in node.args]
        if len(args) != 1 or node.kwargs:
            raise self._error("takes one tensor argument here")
        x = self._var(args[0])
        if isinstance(m, _ALIAS_MODULES):
            return x
        for cls, op in _ELEMENTWISE_MODULES.items():
            if type(m) is cls:
                return self._emit(op, [x], {})
        if isinstance(m, nn.LeakyReLU):
            return self._emit("leaky_relu", [x], {"alpha": float(m.negative_slope)})
        if isinstance(m, nn.Linear):
            return self._emit("linear", [x], {"W": _array(m.weight), "b": _array(m.bias)})
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            return self._conv(m, x)
        if isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d)):
            return self._conv_transpose(m, x)
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return self._batchnorm(m, x)
        if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)):
            return self._pool(m, x)
        if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
            return self._adaptive_pool(m, x)
        if isinstance(m, nn.Flatten):
            return self._flatten(x, m.start_dim, m.end_dim)
        if isinstance(m, nn.Softmax):
            return self._softmax(x, m.dim)
        raise self._error("is not supported; supported modules: " + ", ".join(SUPPORTED_MODULES))

    def _conv(self, m: nn.Conv1d | nn.Conv2d, x: _Var) -> _Var:
        rank = len(m.kernel_size)
        if m.padding_mode != "zeros":
            raise self._error(f"padding_mode={m.padding_mode!r} (only 'zeros')")
        if len(x.shape) != rank + 1:
            raise self._error(f"input of shape {list(x.shape)} for a {rank}-D convolution")
        kernel, dilation = _tuple(m.kernel_size, rank), _tuple(m.dilation, rank)
        if isinstance(m.padding, str):
            begins, ends = [0] * rank, [0] * rank
            if m.padding == "same":
                for i in range(rank):
                    total = dilation[i] * (kernel[i] - 1)
                    begins[i], ends[i] = total // 2, total - total // 2
        else:
            begins = ends = list(_tuple(m.padding, rank))
        return self._emit("conv", [x], {"W": _array(m.weight), "b": _array(m.bias),
                                        "strides": list(_tuple(m.stride, rank)), "pads": list(begins) + list(ends),
                                        "dilations": list(dilation), "groups": int(m.groups)})

    def _conv_transpose(self, m: nn.ConvTranspose1d | nn.ConvTranspose2d, x: _Var) -> _Var:
        rank = len(m.kernel_size)
        if m.padding_mode != "zeros":
            raise self._error(f"padding_mode={m.padding_mode!r} (only 'zeros')")
        if len(x.shape) != rank + 1:
            raise self._error(f"input of shape {list(x.shape)} for a {rank}-D transposed convolution")
        pads = list(_tuple(m.padding, rank))
        return self._emit("conv_transpose", [x], {
            "W": _array(m.weight), "b": _array(m.bias), "strides": list(_tuple(m.stride, rank)), "pads": pads + pads,
            "dilations": list(_tuple(m.dilation, rank)), "groups": int(m.groups),
            "output_padding": list(_tuple(m.output_padding, rank))})

    def _batchnorm(self, m: nn.BatchNorm1d | nn.BatchNorm2d, x: _Var) -> _Var:
        if m.running_mean is None or m.running_var is None:
            raise self._error("has no running statistics (track_running_stats=False uses the batch's)")
        mean, var = _array(m.running_mean), _array(m.running_var)
        assert mean is not None and var is not None
        scale = 1.0 / np.sqrt(var + float(m.eps))
        if m.weight is not None:
            scale = scale * _array(m.weight)
        shift = -mean * scale
        if m.bias is not None:
            shift = shift + _array(m.bias)
        tail = (len(mean),) + (1,) * (len(x.shape) - 1)
        return self._emit("affine", [x], {"scale": scale.reshape(tail), "shift": shift.reshape(tail)})

    def _pool(self, m: nn.Module, x: _Var) -> _Var:
        is_max = isinstance(m, (nn.MaxPool1d, nn.MaxPool2d))
        rank = 1 if isinstance(m, (nn.MaxPool1d, nn.AvgPool1d)) else 2
        if len(x.shape) != rank + 1:
            raise self._error(f"input of shape {list(x.shape)} for a {rank}-D pool")
        kernel = _tuple(m.kernel_size, rank)
        stride = _tuple(m.stride if m.stride is not None else m.kernel_size, rank)
        padding = _tuple(m.padding, rank)
        dilation = _tuple(getattr(m, "dilation", 1), rank)
        if getattr(m, "return_indices", False):
            raise self._error("return_indices=True")
        if getattr(m, "divisor_override", None) is not None:
            raise self._error("divisor_override")
        floor = tuple((x.shape[1 + i] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
                      for i in range(rank))
        if m.ceil_mode and floor != self._out_shape()[1:]:
            raise self._error("ceil_mode=True changes the output shape here (only floor rounding is supported)")
        attrs: dict[str, Any] = {"kernel": list(kernel), "strides": list(stride), "pads": list(padding) * 2}
        if is_max:
            attrs["dilations"] = list(dilation)
            return self._emit("max_pool", [x], attrs)
        attrs["count_include_pad"] = bool(m.count_include_pad)
        return self._emit("avg_pool", [x], attrs)

    def _adaptive_pool(self, m: nn.Module, x: _Var) -> _Var:
        rank = 1 if isinstance(m, nn.AdaptiveAvgPool1d) else 2
        if len(x.shape) != rank + 1:
            raise self._error(f"input of shape {list(x.shape)} for a {rank}-D pool")
        size = m.output_size if isinstance(m.output_size, (tuple, list)) else (m.output_size,) * rank
        sizes = x.shape[1:]
        out = tuple(sizes[i] if size[i] is None else int(size[i]) for i in range(rank))
        if any(sizes[i] % out[i] for i in range(rank)):
            raise self._error(f"output size {list(out)} does not divide the input {list(sizes)} (only evenly "
                              "dividing adaptive pools are supported)")
        kernel = [sizes[i] // out[i] for i in range(rank)]
        return self._emit("avg_pool", [x], {"kernel": kernel, "strides": kernel, "pads": [0] * (2 * rank),
                                            "count_include_pad": False})

    def _flatten(self, x: _Var, start: Any, end: Any) -> _Var:
        rank = len(x.shape) + 1
        if self._axis(start, rank) == 0:
            raise self._error("flattens the batch dimension (start_dim must be 1 or more)")
        self._axis(end, rank)
        return self._emit("reshape", [x], {"shape": list(self._out_shape())})

    def _softmax(self, x: _Var, dim: Any) -> _Var:
        if dim is None:
            raise self._error("softmax without an explicit dim")
        axis = self._axis(dim, len(x.shape) + 1)
        if axis == 0:
            raise self._error("softmax over the batch dimension")
        return self._emit("softmax", [x], {"axis": axis - 1})

    # ---------------------------------------------------------------- functions and methods
    def _call_function(self, node: fx.Node) -> Any:
        fn = node.target
        args = [self._load(a) for a in node.args]
        if fn in _UNARY_FUNCTIONS:
            return self._emit(_UNARY_FUNCTIONS[fn], [self._var(args[0] if args else None)], {})
        if fn is F.leaky_relu:
            slope = self._arg(node, 1, "negative_slope", 0.01)
            return self._emit("leaky_relu", [self._var(args[0])], {"alpha": float(slope)})
        if fn in (F.softmax, torch.softmax):
            return self._softmax(self._var(args[0]), self._arg(node, 1, "dim", None))
        if fn in (F.dropout, F.dropout1d, F.dropout2d):
            return self._var(args[0])
        if fn in _ARITH_FUNCTIONS:
            if node.kwargs.get("alpha", 1) != 1 or node.kwargs.get("rounding_mode") is not None:
                raise self._error("alpha or rounding_mode")
            return self._arith(_ARITH_FUNCTIONS[fn], args[0], args[1])
        if fn in (operator.neg, torch.neg):
            return self._arith("mul", args[0], -1.0)
        if fn is torch.flatten:
            x = self._var(args[0])
            return self._flatten(x, self._arg(node, 1, "start_dim", 0), self._arg(node, 2, "end_dim", -1))
        if fn is torch.reshape:
            return self._reshape(self._var(args[0]), self._arg(node, 1, "shape", None))
        if fn is torch.cat or fn is torch.concat:
            return self._cat(self._arg(node, 0, "tensors", ()), self._arg(node, 1, "dim", 0))
        if fn is torch.permute:
            return self._permute(self._var(args[0]), self._arg(node, 1, "dims", None))
        if fn is torch.transpose:
            return self._transpose(self._var(args[0]), self._arg(node, 1, "dim0", None),
                                   self._arg(node, 2, "dim1", None))
        if fn is getattr and len(args) == 2 and args[1] == "shape" and isinstance(args[0], _Var):
            return (BATCH, *args[0].shape)
        if fn is operator.getitem and isinstance(args[0], tuple) and isinstance(args[1], (int, slice)):
            return args[0][args[1]]
        raise self._error("is not supported")

    def _call_method(self, node: fx.Node) -> Any:
        name = str(node.target)
        args = [self._load(a) for a in node.args]
        if name == "size":
            x = self._var(args[0])
            shape = (BATCH, *x.shape)
            dim = self._arg(node, 1, "dim", None)
            return shape if dim is None else shape[self._axis(dim, len(shape))]
        if name == "contiguous":
            return self._var(args[0])
        if name in ("relu", "sigmoid", "tanh"):
            return self._emit(name, [self._var(args[0])], {})
        if name == "softmax":
            return self._softmax(self._var(args[0]), self._arg(node, 1, "dim", None))
        if name in ("view", "reshape"):
            target = args[1] if len(args) == 2 and isinstance(args[1], (tuple, list)) else tuple(args[1:])
            return self._reshape(self._var(args[0]), target)
        if name == "flatten":
            return self._flatten(self._var(args[0]), self._arg(node, 1, "start_dim", 0),
                                 self._arg(node, 2, "end_dim", -1))
        if name == "permute":
            dims = args[1] if len(args) == 2 and isinstance(args[1], (tuple, list)) else tuple(args[1:])
            return self._permute(self._var(args[0]), dims)
        if name == "transpose":
            return self._transpose(self._var(args[0]), self._arg(node, 1, "dim0", None),
                                   self._arg(node, 2, "dim1", None))
        if name in _ARITH_METHODS and len(args) == 2 and not node.kwargs:
            return self._arith(_ARITH_METHODS[name], args[0], args[1])
        raise self._error("is not supported")

    def _arith(self, kind: str, a: Any, b: Any) -> Any:
        va, vb = isinstance(a, _Var), isinstance(b, _Var)
        if isinstance(a, _Batch) or isinstance(b, _Batch):
            raise self._error("arithmetic on the batch size")
        if not va and not vb:
            fn: Callable[[Any, Any], Any] = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
                                             "div": operator.truediv}[kind]
            return fn(a, b)
        if va and vb:
            if kind not in ("add", "sub"):
                raise self._error("the product or quotient of two tensors computed from the input")
            if a.shape != b.shape:
                raise self._error(f"{kind} of tensors of different shapes {list(a.shape)} and {list(b.shape)} "
                                  "(broadcasting two branches is not supported)")
            return self._emit(kind, [a, b], {})
        x, c, const_first = (b, a, True) if vb else (a, b, False)
        if kind == "div" and const_first:
            raise self._error("division by a tensor computed from the input")
        full = self._broadcast(c, x.shape)
        scale: np.ndarray | None = None
        shift: np.ndarray | None = None
        if kind == "add":
            shift = full
        elif kind == "sub":
            scale, shift = (np.full(x.shape, -1.0), full) if const_first else (None, -full)
        elif kind == "mul":
            scale = full
        else:
            if np.any(full == 0):
                raise self._error("divides by zero")
            scale = 1.0 / full
        return self._emit("affine", [x], {"scale": scale, "shift": shift})

    def _broadcast(self, c: Any, shape: tuple[int, ...]) -> np.ndarray:
        """A constant operand (a number or a tensor) broadcast to a value's shape (no batch)."""
        if isinstance(c, bool) or not isinstance(c, (int, float, torch.Tensor)):
            raise self._error(f"an operand of type {type(c).__name__}")
        a = np.asarray(_array(c) if isinstance(c, torch.Tensor) else float(c), dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise self._error("a constant operand is not finite")
        if a.ndim > len(shape) + 1:
            raise self._error(f"the constant of shape {list(a.shape)} has more dimensions than the input")
        if a.ndim == len(shape) + 1:
            if a.shape[0] != 1:
                raise self._error(f"the constant of shape {list(a.shape)} spans the batch dimension")
            a = a.reshape(a.shape[1:])
        try:
            out = np.broadcast_shapes(a.shape, shape)
        except ValueError:
            raise self._error(f"the constant of shape {list(a.shape)} does not broadcast to {list(shape)}") from None
        if tuple(out) != tuple(shape):
            raise self._error(f"the constant of shape {list(a.shape)} enlarges the input {list(shape)}")
        return np.broadcast_to(a, shape).copy()

    def _reshape(self, x: _Var, target: Any) -> _Var:
        if not isinstance(target, (tuple, list)) or not target:
            raise self._error(f"reshape to {target!r}: expected a static shape")
        first, rest = target[0], list(target[1:])
        if any(not isinstance(v, int) or isinstance(v, bool) for v in rest):
            raise self._error(f"reshape to {list(target)}: only the first dimension may be the batch size")
        if not (first is BATCH or (first == -1 and -1 not in rest)):
            raise self._error(f"reshape to {list(target)} does not keep the batch dimension first (use "
                              "x.size(0) or -1 there)")
        return self._emit("reshape", [x], {"shape": list(self._out_shape())})

    def _cat(self, tensors: Any, dim: Any) -> _Var:
        if not isinstance(tensors, (tuple, list)) or not tensors:
            raise self._error("expects a list of tensors")
        xs = [self._var(t, "tensor to concatenate") for t in tensors]
        axis = self._axis(dim, len(xs[0].shape) + 1)
        if axis == 0:
            raise self._error("concatenation along the batch dimension")
        return self._emit("concat", xs, {"axis": axis - 1})

    def _permute(self, x: _Var, dims: Any) -> _Var:
        rank = len(x.shape) + 1
        if not isinstance(dims, (tuple, list)) or len(dims) != rank:
            raise self._error(f"permute dims {dims!r} for a tensor of rank {rank}")
        perm = [self._axis(d, rank) for d in dims]
        if sorted(perm) != list(range(rank)) or perm[0] != 0:
            raise self._error(f"permute dims {list(dims)} must keep the batch dimension first")
        return self._emit("transpose", [x], {"perm": [p - 1 for p in perm[1:]]})

    def _transpose(self, x: _Var, d0: Any, d1: Any) -> _Var:
        rank = len(x.shape) + 1
        a, b = self._axis(d0, rank), self._axis(d1, rank)
        if 0 in (a, b) and a != b:
            raise self._error("transposes the batch dimension")
        perm = list(range(rank))
        perm[a], perm[b] = perm[b], perm[a]
        return self._emit("transpose", [x], {"perm": [p - 1 for p in perm[1:]]})


def _function_name(fn: Any) -> str:
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__name__", None) or repr(fn)
    if module in ("_operator", "operator"):
        module = "operator"
    return display(f"{module}.{name}" if module else name, 80)


def graph_from_module(module: nn.Module, input_shape: tuple[int, ...]) -> Graph:
    """The IR graph of ``module`` on inputs of ``input_shape`` (without the batch dimension).

    The module is copied and put in eval mode (the caller's is not touched); its weights
    are copied exactly into float64 constants.  Raises a one-line
    :class:`~verify.errors.ModelError` naming the module path or operation that is not
    supported.
    """
    shown = type(module).__name__
    input_shape = tuple(int(d) for d in input_shape)
    if any(d <= 0 for d in input_shape):
        raise ModelError(f"{shown}: input shape {list(input_shape)} has a dimension that is not positive")
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelError(f"{shown}: weights of {name!r} contain NaN or infinite values; verification needs "
                             "finite weights")
    module = copy.deepcopy(module).eval()
    if fx.Tracer().is_leaf_module(module, ""):  # fx traces into the root: keep a torch.nn layer whole
        module = nn.Sequential(module)
    try:
        gm = fx.symbolic_trace(module)
    except Exception as exc:  # tracing runs the user's Python: anything may escape
        raise ModelError(f"{shown}: torch.fx cannot trace the module: {one_line(exc)}") from None
    param = next((p for p in module.parameters() if p.is_floating_point()), None)
    dtype = param.dtype if param is not None else torch.float32
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(torch.zeros((_TRACE_BATCH, *input_shape), dtype=dtype))
    except Exception as exc:  # the module's own forward: anything may escape
        raise ModelError(f"{shown}: the module does not run on a batch of inputs of shape {list(input_shape)}: "
                         f"{one_line(exc)}") from None
    return _Converter(gm, shown, input_shape).convert()
