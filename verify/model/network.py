"""The model a property talks about: its IR graph (what every later layer reads), a torch
module view of it for gradient attacks, and the reference semantics used to replay
counterexamples (onnxruntime for ONNX, the module for torch).

All of verify works on *flat* inputs and outputs: ``x`` has shape ``[N, n_inputs]``
(the model's input tensor flattened in C order, as VNN-LIB numbers ``X_i``) and the
output has shape ``[N, n_outputs]``.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from verify.errors import InputFileError, ModelError
from verify.ir.graph import Graph
from verify.ir.module import IRModule
from verify.ir.onnx_import import onnx_to_graph
from verify.ir.torch_import import graph_from_module
from verify.model.onnx_file import display, one_line, stat_regular_file
from verify.spec.files import file_sha256  # noqa: F401  (re-exported: one implementation)


class FlatWrapper(nn.Module):
    """Adapts a user's module to flat inputs and outputs."""

    def __init__(self, module: nn.Module, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.module = module
        self.input_shape = tuple(int(d) for d in input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x.reshape(x.shape[0], *self.input_shape))
        return out.reshape(out.shape[0], -1)


@dataclass
class Model:
    """A loaded network.

    ``ir`` is its IR graph (:mod:`verify.ir`), the one representation bounds, branch and
    bound, compression and pictures read; ``net`` is a float32 torch module (flat in,
    flat out): the IR run by torch for ONNX models, the user's module for torch models;
    :meth:`evaluate` is the reference semantics; :meth:`net64` is a float64 copy.
    """

    net: nn.Module
    input_shape: tuple[int, ...]
    n_inputs: int
    n_outputs: int
    kind: str  # "onnx" or "torch"
    path: Path | None = None
    sha256: str | None = None
    onnx_model: Any = None
    #: the ONNX model's input and output element types ("float32" or "float64"): what
    #: :meth:`evaluate` feeds onnxruntime, and the type of what it returns
    input_dtype: str = "float32"
    output_dtype: str = "float32"
    ir: Graph | None = field(default=None, repr=False)
    _session: Any = field(default=None, repr=False)
    _net64: nn.Module | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.path.name if self.path else type(self.net).__name__

    def net64(self) -> nn.Module:
        """A float64 copy of the network (weights converted exactly)."""
        if self._net64 is None:
            self._net64 = copy.deepcopy(self.net).double().eval()
        return self._net64

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """Run the *original* model on float32 inputs ``[N, n_inputs]``; returns ``[N, n_outputs]``,
        float32 (float64 for an ONNX model whose output is double).

        For ONNX this is onnxruntime on the unmodified file, the semantics counterexamples
        are judged by, fed the input type the model declares (float32 values are exact in
        double).  For a torch module it is the module itself in float32.
        """
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(-1, self.n_inputs))
        if self.kind == "onnx":
            return self._evaluate_onnx(x)
        with torch.no_grad():
            return self.net(torch.from_numpy(x)).numpy().astype(np.float32)

    def _evaluate_onnx(self, x: np.ndarray) -> np.ndarray:
        # one input at a time: the model's meaning is at batch size 1 (as converted), and a
        # graph with a symbolic batch dimension may still mix the rows of a batch (a Reshape
        # to [1, -1] does)
        session = self._ort_session()
        name = session.get_inputs()[0].name
        rows = [self._run_onnx(session, name, row.reshape(1, -1)) for row in x.astype(self.input_dtype)]
        return np.concatenate(rows, axis=0) if rows else np.zeros((0, self.n_outputs), self.output_dtype)

    def _run_onnx(self, session: Any, input_name: str, x: np.ndarray) -> np.ndarray:
        try:
            out = session.run(None, {input_name: x.reshape(x.shape[0], *self.input_shape)})[0]
        except _ort_errors() as exc:
            raise ModelError(f"{self._shown()}: onnxruntime cannot run the model: {_one_line(exc)}") from None
        out = np.asarray(out)
        if out.size != x.shape[0] * self.n_outputs:
            raise ModelError(f"{self._shown()}: onnxruntime computes an output of shape {list(out.shape)}, verify's "
                             f"converted network {self.n_outputs} values per input")
        return out.astype(self.output_dtype).reshape(x.shape[0], self.n_outputs)

    def _shown(self) -> str:
        return display(self.path) if self.path is not None else self.name

    def _ort_session(self) -> Any:
        if self._session is None:
            import onnxruntime as ort  # here: only replaying or evaluating needs onnxruntime

            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            try:
                self._session = ort.InferenceSession(self.onnx_model.SerializeToString(), options,
                                                     providers=["CPUExecutionProvider"])
            except _ort_errors() as exc:
                raise ModelError(f"{self._shown()}: onnxruntime cannot load the model (its reference semantics): "
                                 f"{_one_line(exc)}") from None
        return self._session

    def forward64(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """float64 forward pass through the converted network (no gradient)."""
        t = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(-1, self.n_inputs)
        with torch.no_grad():
            return self.net64()(t)


def _check_module_finite(net: nn.Module) -> None:
    for name, tensor in list(net.named_parameters()) + list(net.named_buffers()):
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            raise ModelError(f"weights of {name!r} contain {bad} NaN or infinite value(s); "
                             "verification needs finite weights: fix or re-export the model")


def _ort_errors() -> tuple[type[BaseException], ...]:
    """The exceptions onnxruntime raises for a model or input it refuses."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state  # here: evaluated only when onnxruntime raised

    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile", "NoModel",
             "NotImplemented", "RuntimeException", "EPFail")
    return tuple(getattr(state, n) for n in names if isinstance(getattr(state, n, None), type))


def _one_line(exc: BaseException) -> str:
    return one_line(exc)


def load_model(source: str | Path | nn.Module, input_shape: tuple[int, ...] | None = None) -> Model:
    """Load a model from an ONNX file, or wrap a ``torch.nn.Module``.

    For a module, ``input_shape`` (without the batch dimension) is required unless the
    module starts with an ``nn.Linear`` (then it is ``(in_features,)``).  An ONNX file is
    checked before use (:mod:`verify.model.onnx_file`, :mod:`verify.ir.onnx_import`):
    whatever is wrong with it is a one-line :class:`~verify.errors.VerifyError`.
    """
    if isinstance(source, nn.Module):
        return _from_torch(source, input_shape)
    path = Path(source)
    if path.suffix.lower() in (".pt", ".pth"):
        stat_regular_file(path)
        raise InputFileError(f"{display(path)}: load PyTorch models in Python and pass the module to verify "
                             "(see README, 'Python API'), or export them to ONNX for the CLI")
    graph, proto, data = onnx_to_graph(path)
    net = IRModule(graph).eval()
    dtype = _input_dtype(proto)
    # the importer checked that the output's type is the input's (every supported operator keeps it)
    return Model(net=net, input_shape=graph.input_shape, n_inputs=graph.n_inputs, n_outputs=graph.n_outputs,
                 kind="onnx", path=path, sha256=hashlib.sha256(data).hexdigest(), onnx_model=proto,
                 input_dtype=dtype, output_dtype=dtype, ir=graph)


def _input_dtype(proto: Any) -> str:
    """``float64`` for a model whose (variable) input is double, else ``float32``."""
    initializers = {t.name for t in proto.graph.initializer}
    for value in proto.graph.input:
        if value.name not in initializers:
            return "float64" if value.type.tensor_type.elem_type == 11 else "float32"
    return "float32"


def _from_torch(module: nn.Module, input_shape: tuple[int, ...] | None) -> Model:
    if isinstance(module, IRModule):  # another model's network (flat in, flat out): its IR is known
        if input_shape is None:
            input_shape = (module.graph.n_inputs,)
    if input_shape is None:
        first = next((m for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d))), None)
        if isinstance(first, nn.Linear):
            input_shape = (first.in_features,)
        else:
            raise ModelError("pass input_shape=(...) (without the batch dimension) for this module")
    module = module.float().eval()
    _check_module_finite(module)
    net = FlatWrapper(module, tuple(input_shape)).eval()
    n_in = int(np.prod(input_shape))
    with torch.no_grad():
        try:
            out = net(torch.zeros(1, n_in))
        except Exception as exc:
            raise ModelError(f"the module does not accept inputs of shape {tuple(input_shape)}: {exc}") from None
    graph = module.graph if isinstance(module, IRModule) and tuple(input_shape) == (module.graph.n_inputs,) else \
        graph_from_module(module, tuple(input_shape))
    return Model(net=net, input_shape=tuple(input_shape), n_inputs=n_in, n_outputs=int(out.shape[1]), kind="torch",
                 ir=graph)
