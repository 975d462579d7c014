"""The checker's own reading of an ONNX file: a chain of linear operations and ReLUs.

Independent of verify's converter on purpose: the checker reads the file with its own
protobuf reader (:mod:`verify.certcheck.onnxfile`) and builds the operations itself, on
flat vectors (C order).  Linear
operations are kept separate, never multiplied together, so no weight is rounded:
``dense`` (a ``[out, in]`` matrix and bias, copied exactly from float32), ``diag``
(``y = s x + c`` per coordinate, with an error radius on ``s`` and ``c`` when they are not
exactly representable, e.g. after a division or a batch normalisation), and ``relu``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from verify.certcheck.onnxfile import OnnxReadError, read_graph
from verify.certcheck.rigorous import U, up


class UnsupportedModel(Exception):
    """The checker cannot read this model (an operator outside its small subset)."""


@dataclass
class Op:
    kind: str  # "dense", "diag" or "relu"
    W: np.ndarray | None = None
    b: np.ndarray | None = None
    s: np.ndarray | None = None
    s_err: np.ndarray | None = None
    c: np.ndarray | None = None
    c_err: np.ndarray | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind == "dense":
            self.absW = np.abs(self.W)
            self.absb = np.abs(self.b)

    @property
    def n_in(self) -> int:
        return int(self.W.shape[1]) if self.kind == "dense" else int(self.s.shape[0])  # type: ignore[union-attr]


@dataclass
class CheckerNetwork:
    """``blocks[k]``: the linear operations from ReLU layer k-1's output (or the input)
    to ReLU layer k's pre-activation; the last block ends at the network output."""

    n_inputs: int
    blocks: list[list[Op]] = field(default_factory=list)
    relu_names: list[str] = field(default_factory=list)

    @property
    def layer_sizes(self) -> list[int]:
        return [_out_size(block) for block in self.blocks]


def _out_size(block: list[Op]) -> int:
    last = block[-1]
    return int(last.W.shape[0]) if last.kind == "dense" else int(last.s.shape[0])  # type: ignore[union-attr]


def read_network(source: str | Path | bytes) -> CheckerNetwork:
    """Read an ONNX file (a path, or the file's bytes) into a :class:`CheckerNetwork` (or
    raise :class:`UnsupportedModel`)."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        graph = read_graph(data)
    except OnnxReadError as exc:
        raise UnsupportedModel(f"not a readable ONNX file: {exc}") from None
    consts = {name: array.astype(np.float64) for name, array in graph.initializer.items()}
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise UnsupportedModel("the checker needs exactly one input and one output")
    shape = tuple(max(d, 1) for d in inputs[0].dims)
    current = inputs[0].name
    net = CheckerNetwork(int(np.prod(shape[1:])))
    block: list[Op] = []
    for node in graph.node:
        attrs = node.attributes
        op = node.op_type
        if op == "Constant":
            consts[node.output[0]] = np.asarray(attrs["value"]).astype(np.float64)
            continue
        ins = list(node.input)
        if current not in ins:
            if all(i in consts or not i for i in ins):
                raise UnsupportedModel(f"constant-only node {op} {node.name!r}")
            raise UnsupportedModel(f"node {op} {node.name!r} is not on the chain")
        if op in ("Flatten", "Identity"):
            shape = (1, int(np.prod(shape[1:])))
        elif op == "Reshape":
            target = [int(v) for v in consts[ins[1]]]
            shape = tuple(np.zeros(shape).reshape([shape[i] if t == 0 else t for i, t in enumerate(target)]).shape)
            if shape[0] != 1:
                raise UnsupportedModel(f"Reshape {node.name!r} changes the batch dimension")
        elif op == "Relu":
            net.blocks.append(block)
            net.relu_names.append(node.name or f"relu{len(net.relu_names)}")
            block = []
        elif op in ("MatMul", "Gemm"):
            w = consts.get(ins[1])
            if w is None or len(shape) != 2:
                raise UnsupportedModel(f"{op} {node.name!r}: needs a constant weight on a 2-D input")
            if op == "Gemm":
                if attrs.get("transA", 0) or float(attrs.get("alpha", 1.0)) != 1.0 or \
                        float(attrs.get("beta", 1.0)) != 1.0:
                    raise UnsupportedModel(f"Gemm {node.name!r}: only alpha=beta=1, transA=0")
                W = w if attrs.get("transB", 0) else w.T
                b = np.broadcast_to(consts[ins[2]], (W.shape[0],)).copy() if len(ins) > 2 and ins[2] else \
                    np.zeros(W.shape[0])
            else:
                W, b = w.T, np.zeros(w.shape[1])
            block.append(Op("dense", W=np.ascontiguousarray(W), b=b, name=node.name))
            shape = (1, W.shape[0])
        elif op in ("Add", "Sub", "Mul", "Div"):
            other = ins[1] if ins[0] == current else ins[0]
            if other not in consts:
                raise UnsupportedModel(f"{op} {node.name!r}: only with a constant")
            k = np.broadcast_to(consts[other], shape).reshape(-1).astype(np.float64)
            n = k.size
            zeros = np.zeros(n)
            if op == "Add":
                block.append(Op("diag", s=np.ones(n), s_err=zeros, c=k.copy(), c_err=zeros, name=node.name))
            elif op == "Sub":
                sign = 1.0 if ins[0] == current else -1.0
                block.append(Op("diag", s=np.full(n, sign), s_err=zeros, c=-sign * k, c_err=zeros, name=node.name))
            elif op == "Mul":
                block.append(Op("diag", s=k.copy(), s_err=zeros, c=zeros, c_err=zeros, name=node.name))
            else:
                if ins[0] != current or np.any(k == 0):
                    raise UnsupportedModel(f"Div {node.name!r}: only by a non-zero constant")
                s = 1.0 / k
                block.append(Op("diag", s=s, s_err=up(np.abs(s) * U), c=zeros, c_err=zeros, name=node.name))
        elif op == "Conv":
            W, b, shape = _conv_dense(consts[ins[1]], consts[ins[2]] if len(ins) > 2 and ins[2] else None,
                                      shape, attrs, node.name)
            block.append(Op("dense", W=W, b=b, name=node.name))
        elif op == "BatchNormalization":
            gamma_, beta, mean, var = (consts[i] for i in ins[1:5])
            eps = float(attrs.get("epsilon", 1e-5))
            per = int(np.prod(shape[2:])) if len(shape) > 2 else 1
            scale = gamma_ / np.sqrt(var + eps)
            shift = beta - mean * scale
            s_err = up(np.abs(scale) * 8 * U)
            c_err = up(np.abs(mean) * s_err + np.abs(shift) * 4 * U + np.abs(mean * scale) * 4 * U)
            block.append(Op("diag", s=np.repeat(scale, per), s_err=np.repeat(s_err, per), c=np.repeat(shift, per),
                            c_err=np.repeat(c_err, per), name=node.name))
        else:
            raise UnsupportedModel(f"operator {op} ({node.name!r}) is outside the checker's subset")
        current = node.output[0]
    if current != graph.output[0].name:
        raise UnsupportedModel("the output is not the end of the chain")
    if not block:
        n = net.layer_sizes[-1]
        block = [Op("diag", s=np.ones(n), s_err=np.zeros(n), c=np.zeros(n), c_err=np.zeros(n), name="output")]
    net.blocks.append(block)
    for k, blk in enumerate(net.blocks):
        if not blk:
            raise UnsupportedModel(f"ReLU layer {k} directly follows another ReLU")
    return net


def _conv_dense(kernel: np.ndarray, bias: np.ndarray | None, shape: tuple[int, ...], attrs: dict,
                name: str) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """The dense matrix of a 2-D convolution (entries are copies of kernel weights: exact)."""
    if len(shape) != 4 or kernel.ndim != 4 or int(attrs.get("group", 1)) != 1:
        raise UnsupportedModel(f"Conv {name!r}: only 2-D, group 1")
    if tuple(attrs.get("dilations", (1, 1))) != (1, 1):
        raise UnsupportedModel(f"Conv {name!r}: dilation")
    _, cin, h, w = shape
    cout, kin, kh, kw = kernel.shape
    if kin != cin:
        raise UnsupportedModel(f"Conv {name!r}: channel mismatch")
    sh, sw = attrs.get("strides", (1, 1))
    pt, pl, pb, pr = attrs.get("pads", (0, 0, 0, 0))
    oh = (h + pt + pb - kh) // sh + 1
    ow = (w + pl + pr - kw) // sw + 1
    W = np.zeros((cout * oh * ow, cin * h * w))
    oc, y, x, ic, i, j = np.meshgrid(np.arange(cout), np.arange(oh), np.arange(ow), np.arange(cin), np.arange(kh),
                                     np.arange(kw), indexing="ij")
    iy = y * sh - pt + i
    ix = x * sw - pl + j
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    rows = ((oc * oh + y) * ow + x)[ok]
    cols = ((ic * h + iy) * w + ix)[ok]
    W[rows, cols] = kernel[oc[ok], ic[ok], i[ok], j[ok]]
    b = np.repeat(bias if bias is not None else np.zeros(cout), oh * ow)
    return W, b, (1, cout, oh, ow)
