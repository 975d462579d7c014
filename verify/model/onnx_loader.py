"""Convert an ONNX graph into a torch module that auto_LiRPA can bound.

Why our own converter: ``onnx2torch`` imports torchvision, whose PyPI build does not
import beside the CPU torch pinned here, and it emits modules auto_LiRPA 0.3 cannot
trace.  The operators we need (the VNN-COMP families) are few, so a small converter
that constant-folds what is static and maps the rest onto ``torch.nn`` is simpler.

Supported: Gemm, MatMul, Add, Sub, Mul, Div, Relu, Sigmoid, Tanh, Flatten, Reshape,
Conv (2-D), BatchNormalization, AveragePool, MaxPool (2-D), Constant, Identity.
Anything else raises :class:`~verify.errors.UnsupportedOperatorError` naming the
operator and the node.

The resulting :class:`OnnxNet` takes a batch of *flat* inputs ``[N, n_inputs]`` (the
VNN-LIB ``X_i`` order: the model's input tensor flattened in C order) and returns
flat outputs ``[N, n_outputs]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from verify.errors import InputFileError, ModelError, UnsupportedOperatorError
from verify.model import layers


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
                 input_name: str, output_name: str, constants: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.input_shape = tuple(int(d) for d in input_shape)  # without the batch dimension
        self.steps = steps
        self.ops = nn.ModuleDict(modules)
        self.input_name = input_name
        self.output_name = output_name
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


def _attributes(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _check_finite(name: str, value: np.ndarray) -> None:
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
        raise ModelError(f"weights of {name!r} contain {bad} NaN or infinite value(s); "
                         "verification needs finite weights: fix or re-export the model")


def read_onnx(path: str | Path) -> Any:
    """Load and structurally check an ONNX file, with a clear error when it is not one."""
    import onnx

    path = Path(path)
    if not path.exists():
        raise InputFileError(f"model file not found: {path}")
    if not path.is_file():
        raise InputFileError(f"model path is not a file: {path}")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and friends
        raise ModelError(f"{path}: not a readable ONNX file ({type(exc).__name__}: {exc})".strip()) from None
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: invalid ONNX model: {first}") from None
    if len(model.graph.node) == 0:
        raise ModelError(f"{path}: the ONNX graph has no nodes")
    return model


class _Converter:
    def __init__(self, model: Any, path: str) -> None:
        from onnx import numpy_helper

        self.path = path
        self.graph = model.graph
        self.consts: dict[str, np.ndarray] = {}
        for init in self.graph.initializer:
            value = numpy_helper.to_array(init)
            _check_finite(init.name, value)
            self.consts[init.name] = value
        self.shapes: dict[str, tuple[int, ...]] = {}  # static shapes, batch 1
        self.steps: list[Step] = []
        self.modules: dict[str, nn.Module] = {}
        self.uses: dict[str, int] = {}
        for node in self.graph.node:
            for i in node.input:
                self.uses[i] = self.uses.get(i, 0) + 1
        for out in self.graph.output:
            self.uses[out.name] = self.uses.get(out.name, 0) + 1

    # ---------------------------------------------------------------- helpers
    def _input(self) -> tuple[str, tuple[int, ...]]:
        real = [i for i in self.graph.input if i.name not in self.consts]
        if len(real) != 1:
            raise ModelError(f"{self.path}: expected exactly one network input, found {len(real)} "
                             f"({', '.join(i.name for i in real) or 'none'})")
        value_info = real[0]
        dims = []
        for d in value_info.type.tensor_type.shape.dim:
            dims.append(d.dim_value if d.dim_value > 0 else 1)
        if not dims:
            raise ModelError(f"{self.path}: input {value_info.name!r} has no static shape")
        return value_info.name, tuple(dims)

    def _add(self, node: Any, module: nn.Module, inputs: list[str], out_shape: tuple[int, ...],
             op_type: str | None = None, output: str | None = None) -> None:
        name = node.name or f"{node.op_type}_{len(self.steps)}"
        base = name
        k = 1
        while _key(name) in self.modules:
            name = f"{base}_{k}"
            k += 1
        output = output or node.output[0]
        self.modules[_key(name)] = module
        self.steps.append(Step(name, op_type or node.op_type, tuple(inputs), output))
        if out_shape[0] != 1:
            raise UnsupportedOperatorError(node.op_type, name, f"changes the batch dimension to {out_shape}")
        self.shapes[output] = out_shape

    def _node_name(self, node: Any, index: int) -> str:
        return node.name or f"#{index} ({node.op_type})"

    def _run_shape(self, module: nn.Module, *shapes: tuple[int, ...]) -> tuple[int, ...]:
        with torch.no_grad():
            out = module(*[torch.zeros(s, dtype=torch.float32) for s in shapes])
        return tuple(out.shape)

    # ---------------------------------------------------------------- conversion
    def convert(self) -> OnnxNet:
        input_name, input_shape = self._input()
        if input_shape[0] != 1:
            raise ModelError(f"{self.path}: input batch dimension is {input_shape[0]}; expected 1")
        self.shapes[input_name] = input_shape
        nodes = list(self.graph.node)
        skip: set[int] = set()
        for index, node in enumerate(nodes):
            if index in skip:
                continue
            handler = getattr(self, "_op_" + node.op_type, None)
            name = self._node_name(node, index)
            if handler is None:
                raise UnsupportedOperatorError(node.op_type, name)
            if len(node.output) != 1 and node.op_type not in ("BatchNormalization", "MaxPool"):
                raise UnsupportedOperatorError(node.op_type, name, "more than one output")
            fused = handler(node, name, nodes, index)
            if fused is not None:
                skip.add(fused)
        outputs = [o.name for o in self.graph.output]
        if len(outputs) != 1:
            raise ModelError(f"{self.path}: expected exactly one network output, found {len(outputs)}")
        out = outputs[0]
        if out in self.consts:
            raise ModelError(f"{self.path}: the network output {out!r} does not depend on the input")
        if out not in self.shapes:
            raise ModelError(f"{self.path}: the network output {out!r} is not computed by any node")
        return OnnxNet(input_shape[1:], self.steps, self.modules, input_name, out, {})

    def _const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name)

    def _var(self, name: str, node_name: str, op: str) -> tuple[int, ...]:
        if name not in self.shapes:
            raise UnsupportedOperatorError(op, node_name, f"input {name!r} is neither a constant nor computed earlier")
        return self.shapes[name]

    def _fold(self, node: Any, fn: Any) -> bool:
        """Constant-fold a node whose inputs are all constants."""
        ins = [i for i in node.input if i]
        if ins and all(i in self.consts for i in ins):
            value = np.asarray(fn(*[self.consts[i] for i in ins]))
            self.consts[node.output[0]] = value
            return True
        return False

    # each _op_X returns the index of a node it fused (or None)
    def _op_Constant(self, node: Any, name: str, nodes: list, index: int) -> None:
        from onnx import numpy_helper

        attrs = _attributes(node)
        if "value" not in attrs:
            raise UnsupportedOperatorError("Constant", name, "only the 'value' attribute is supported")
        value = numpy_helper.to_array(attrs["value"])
        _check_finite(name, value)
        self.consts[node.output[0]] = value

    def _op_Identity(self, node: Any, name: str, nodes: list, index: int) -> None:
        src = node.input[0]
        if src in self.consts:
            self.consts[node.output[0]] = self.consts[src]
            return
        shape = self._var(src, name, "Identity")
        self._add(node, nn.Identity(), [src], shape)

    def _op_Relu(self, node: Any, name: str, nodes: list, index: int) -> None:
        if self._fold(node, lambda a: np.maximum(a, 0)):
            return
        shape = self._var(node.input[0], name, node.op_type)
        self._add(node, nn.ReLU(), [node.input[0]], shape)

    def _op_Sigmoid(self, node: Any, name: str, nodes: list, index: int) -> None:
        if self._fold(node, lambda a: 1 / (1 + np.exp(-a))):
            return
        shape = self._var(node.input[0], name, node.op_type)
        self._add(node, nn.Sigmoid(), [node.input[0]], shape)

    def _op_Tanh(self, node: Any, name: str, nodes: list, index: int) -> None:
        if self._fold(node, np.tanh):
            return
        shape = self._var(node.input[0], name, node.op_type)
        self._add(node, nn.Tanh(), [node.input[0]], shape)

    def _op_Flatten(self, node: Any, name: str, nodes: list, index: int) -> None:
        axis = int(_attributes(node).get("axis", 1))
        if self._fold(node, lambda a: a.reshape(int(np.prod(a.shape[:axis])) if axis else 1, -1)):
            return
        shape = self._var(node.input[0], name, "Flatten")
        if axis < 0:
            axis += len(shape)
        if axis == 0:
            raise UnsupportedOperatorError("Flatten", name, "axis=0 folds the batch dimension")
        outer = int(np.prod(shape[1:axis])) if axis > 1 else 1
        inner = int(np.prod(shape[axis:]))
        inner_shape = (inner,) if axis == 1 else (outer, inner)
        if axis > 1:
            # [1, a, b, ...] with axis>1 gives [prod(shape[:axis]), inner]; batch 1 keeps it 2-D
            raise UnsupportedOperatorError("Flatten", name, f"axis={axis} (only axis=1 keeps the batch)")
        self._add(node, layers.Flatten(inner_shape), [node.input[0]], (1, *inner_shape))

    def _op_Reshape(self, node: Any, name: str, nodes: list, index: int) -> None:
        target = self._const(node.input[1])
        if target is None:
            raise UnsupportedOperatorError("Reshape", name, "the target shape must be a constant")
        attrs = _attributes(node)
        if attrs.get("allowzero", 0):
            raise UnsupportedOperatorError("Reshape", name, "allowzero=1")
        src = node.input[0]
        if src in self.consts:
            data = self.consts[src]
            shape = [data.shape[i] if int(s) == 0 else int(s) for i, s in enumerate(target)]
            self.consts[node.output[0]] = data.reshape(shape)
            return
        in_shape = self._var(src, name, "Reshape")
        shape = [in_shape[i] if int(s) == 0 else int(s) for i, s in enumerate(target.tolist())]
        try:
            out_shape = np.zeros(in_shape).reshape(shape).shape
        except ValueError:
            raise ModelError(f"Reshape node {name!r}: cannot reshape {in_shape} to {tuple(target.tolist())}") from None
        if out_shape[0] != 1:
            raise UnsupportedOperatorError("Reshape", name, f"reshapes the batch dimension ({in_shape} -> {out_shape})")
        self._add(node, layers.Reshape(out_shape[1:]), [src], tuple(out_shape))

    def _op_Gemm(self, node: Any, name: str, nodes: list, index: int) -> None:
        attrs = _attributes(node)
        alpha = float(attrs.get("alpha", 1.0))
        beta = float(attrs.get("beta", 1.0))
        a, b = node.input[0], node.input[1]
        c = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if attrs.get("transA", 0):
            raise UnsupportedOperatorError("Gemm", name, "transA=1 on the variable input")
        w = self._const(b)
        if w is None or a in self.consts:
            raise UnsupportedOperatorError("Gemm", name, "only variable x constant products are supported")
        in_shape = self._var(a, name, "Gemm")
        weight = (w.T if attrs.get("transB", 0) else w) * alpha  # [in, out]
        if len(in_shape) != 2 or weight.ndim != 2 or weight.shape[0] != in_shape[1]:
            raise ModelError(f"Gemm node {name!r}: input shape {in_shape} does not fit weight {weight.shape}")
        bias = None
        if c is not None:
            cv = self._const(c)
            if cv is None:
                raise UnsupportedOperatorError("Gemm", name, "bias C must be a constant")
            bias = np.broadcast_to(cv * beta, (1, weight.shape[1])).reshape(-1)
        self._add(node, _linear(weight, bias), [a], (1, weight.shape[1]))

    def _op_MatMul(self, node: Any, name: str, nodes: list, index: int) -> int | None:
        if self._fold(node, np.matmul):
            return None
        a, b = node.input
        w = self._const(b)
        if w is None or a in self.consts:
            raise UnsupportedOperatorError("MatMul", name, "only variable x constant products are supported")
        in_shape = self._var(a, name, "MatMul")
        if w.ndim != 2 or in_shape[-1] != w.shape[0]:
            raise UnsupportedOperatorError("MatMul", name, f"input {in_shape} times constant {w.shape}")
        out_shape = (*in_shape[:-1], w.shape[1])
        bias = None
        fused = None
        # fuse a following Add of a constant bias (the usual MatMul+Add pattern)
        if index + 1 < len(nodes) and self.uses.get(node.output[0], 0) == 1:
            nxt = nodes[index + 1]
            if nxt.op_type == "Add" and node.output[0] in nxt.input:
                other = nxt.input[1] if nxt.input[0] == node.output[0] else nxt.input[0]
                bv = self._const(other)
                if bv is not None and np.broadcast_shapes(bv.shape, out_shape) == out_shape and \
                        bv.size in (1, w.shape[1]) and (bv.ndim == 0 or bv.shape[-1] in (1, w.shape[1])):
                    bias = np.broadcast_to(bv.reshape(-1), (w.shape[1],)).copy()
                    fused = index + 1
        output = nodes[fused].output[0] if fused is not None else node.output[0]
        self._add(node, _linear(w, bias), [a], out_shape, op_type="MatMul", output=output)
        return fused

    def _binary(self, node: Any, name: str, kind: str) -> None:
        np_fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[kind]
        if self._fold(node, np_fn):
            return
        a, b = node.input
        ca, cb = self._const(a), self._const(b)
        if ca is None and cb is None:
            sa = self._var(a, name, node.op_type)
            sb = self._var(b, name, node.op_type)
            if kind not in ("add", "sub"):
                raise UnsupportedOperatorError(node.op_type, name, "product or quotient of two variable tensors")
            if sa != sb:
                raise UnsupportedOperatorError(node.op_type, name, f"broadcasting two variables {sa} and {sb}")
            self._add(node, layers.Add() if kind == "add" else layers.Sub(), [a, b], sa)
            return
        if ca is not None and kind == "div":
            raise UnsupportedOperatorError("Div", name, "division by a variable tensor")
        var, const, first = (b, ca, True) if ca is not None else (a, cb, False)
        shape = self._var(var, name, node.op_type)
        if kind == "div" and np.any(const == 0):
            raise ModelError(f"Div node {name!r} divides by zero")
        try:
            out_shape = np.broadcast_shapes(shape, const.shape)
        except ValueError:
            raise ModelError(f"{node.op_type} node {name!r}: shapes {shape} and {const.shape} "
                             "do not broadcast") from None
        if out_shape != shape:
            raise UnsupportedOperatorError(node.op_type, name, f"the constant {const.shape} enlarges the input {shape}")
        tensor = torch.tensor(np.asarray(const, dtype=np.float64 if const.dtype == np.float64 else np.float32))
        self._add(node, layers.ConstantOp(kind, tensor, first), [var], shape)

    def _op_Add(self, node: Any, name: str, nodes: list, index: int) -> None:
        self._binary(node, name, "add")

    def _op_Sub(self, node: Any, name: str, nodes: list, index: int) -> None:
        self._binary(node, name, "sub")

    def _op_Mul(self, node: Any, name: str, nodes: list, index: int) -> None:
        self._binary(node, name, "mul")

    def _op_Div(self, node: Any, name: str, nodes: list, index: int) -> None:
        self._binary(node, name, "div")

    def _op_Conv(self, node: Any, name: str, nodes: list, index: int) -> None:
        attrs = _attributes(node)
        x = node.input[0]
        w = self._const(node.input[1])
        if w is None:
            raise UnsupportedOperatorError("Conv", name, "the kernel must be a constant")
        b = self._const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        in_shape = self._var(x, name, "Conv")
        if w.ndim != 4 or len(in_shape) != 4:
            raise UnsupportedOperatorError("Conv", name, "only 2-D convolutions are supported")
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
            raise UnsupportedOperatorError("Conv", name, f"auto_pad={attrs['auto_pad']!r}")
        group = int(attrs.get("group", 1))
        strides = tuple(attrs.get("strides", (1, 1)))
        dilations = tuple(attrs.get("dilations", (1, 1)))
        pads = tuple(attrs.get("pads", (0, 0, 0, 0)))  # top, left, bottom, right
        conv = nn.Conv2d(in_shape[1], w.shape[0], kernel_size=w.shape[2:], stride=strides,
                         dilation=dilations, groups=group, bias=b is not None,
                         padding=(pads[0], pads[1]) if pads[0] == pads[2] and pads[1] == pads[3] else 0)
        with torch.no_grad():
            conv.weight.copy_(torch.tensor(w, dtype=torch.float32))
            if b is not None:
                conv.bias.copy_(torch.tensor(b, dtype=torch.float32))
        if pads[0] == pads[2] and pads[1] == pads[3]:
            module: nn.Module = conv
        else:
            module = nn.Sequential(layers.Pad((pads[1], pads[3], pads[0], pads[2])), conv)
        self._add(node, module, [x], self._run_shape(module, in_shape))

    def _op_BatchNormalization(self, node: Any, name: str, nodes: list, index: int) -> None:
        attrs = _attributes(node)
        x = node.input[0]
        params = [self._const(i) for i in node.input[1:5]]
        if any(p is None for p in params):
            raise UnsupportedOperatorError("BatchNormalization", name, "scale, bias, mean and var must be constants")
        if attrs.get("training_mode", 0):
            raise UnsupportedOperatorError("BatchNormalization", name, "training_mode=1")
        in_shape = self._var(x, name, "BatchNormalization")
        scale, bias, mean, var = (np.asarray(p, dtype=np.float64) for p in params)
        eps = float(attrs.get("epsilon", 1e-5))
        if np.any(var + eps <= 0):
            raise ModelError(f"BatchNormalization node {name!r} has a non-positive variance")
        cls = nn.BatchNorm2d if len(in_shape) == 4 else nn.BatchNorm1d
        if len(in_shape) not in (2, 3, 4):
            raise UnsupportedOperatorError("BatchNormalization", name, f"input rank {len(in_shape)}")
        bn = cls(in_shape[1], eps=eps)
        with torch.no_grad():
            bn.weight.copy_(torch.tensor(scale))
            bn.bias.copy_(torch.tensor(bias))
            bn.running_mean.copy_(torch.tensor(mean))
            bn.running_var.copy_(torch.tensor(var))
        bn.eval()
        self._add(node, bn, [x], in_shape)

    def _pool(self, node: Any, name: str, kind: str) -> None:
        attrs = _attributes(node)
        x = node.input[0]
        in_shape = self._var(x, name, node.op_type)
        if len(in_shape) != 4:
            raise UnsupportedOperatorError(node.op_type, name, "only 2-D pooling is supported")
        if attrs.get("ceil_mode", 0):
            raise UnsupportedOperatorError(node.op_type, name, "ceil_mode=1")
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
            raise UnsupportedOperatorError(node.op_type, name, f"auto_pad={attrs['auto_pad']!r}")
        if len(node.output) > 1 and node.output[1]:
            raise UnsupportedOperatorError(node.op_type, name, "the Indices output")
        kernel = tuple(attrs["kernel_shape"])
        strides = tuple(attrs.get("strides", (1, 1)))
        pads = tuple(attrs.get("pads", (0, 0, 0, 0)))
        symmetric = pads[0] == pads[2] and pads[1] == pads[3]
        padding = (pads[0], pads[1]) if symmetric else 0
        if kind == "max":
            if tuple(attrs.get("dilations", (1, 1))) != (1, 1):
                raise UnsupportedOperatorError("MaxPool", name, "dilations")
            pool: nn.Module = nn.MaxPool2d(kernel, strides, padding=padding)
            pad_value = float("-inf")
        else:
            include = bool(attrs.get("count_include_pad", 0))
            if not symmetric and not include:
                raise UnsupportedOperatorError("AveragePool", name, "asymmetric pads with count_include_pad=0")
            pool = nn.AvgPool2d(kernel, strides, padding=padding, count_include_pad=include)
            pad_value = 0.0
        module = pool if symmetric else nn.Sequential(layers.Pad((pads[1], pads[3], pads[0], pads[2]), pad_value), pool)
        self._add(node, module, [x], self._run_shape(module, in_shape))

    def _op_AveragePool(self, node: Any, name: str, nodes: list, index: int) -> None:
        self._pool(node, name, "avg")

    def _op_MaxPool(self, node: Any, name: str, nodes: list, index: int) -> None:
        self._pool(node, name, "max")


def _linear(weight: np.ndarray, bias: np.ndarray | None) -> nn.Linear:
    """nn.Linear from a weight stored as [in, out] (ONNX MatMul/Gemm layout)."""
    layer = nn.Linear(weight.shape[0], weight.shape[1], bias=True)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(np.ascontiguousarray(weight.T), dtype=torch.float32))
        if bias is None:
            layer.bias.zero_()
        else:
            layer.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return layer


def onnx_to_torch(path: str | Path) -> tuple[OnnxNet, Any]:
    """Convert the ONNX file at ``path``; returns the torch module and the onnx ModelProto."""
    model = read_onnx(path)
    net = _Converter(model, str(path)).convert()
    net.eval()
    return net, model
