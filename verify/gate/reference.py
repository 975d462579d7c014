"""The original model's outputs without converting the model: onnxruntime on the ONNX file.

Replaying a cached counterexample needs only the model's reference semantics, which for
ONNX are onnxruntime's (:meth:`verify.model.network.Model.evaluate` runs the same
session, with the same options, on the same file, one input at a time).  Loading a
:class:`Model` would convert the graph to torch, for nothing: :func:`reference_model`
opens the session on the file itself.  It does so only for the plain case, where the
two agree by construction: one float32 input with a static shape after the batch
dimension (symbolic or 1), one float32 output, fed one row at a time (a graph may mix the
rows of a batch, e.g. by a Reshape, so a batch is never fed).  Any other model (a double
input or output among them) gives None, and the caller loads the full model, whose
``evaluate`` feeds the declared type.  The model file is the one whose sha256 is in the cache
key, so it is the file the first run loaded and checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

_SESSIONS: dict[str, OnnxReference | None] = {}


class OnnxReference:
    """An ONNX file run by onnxruntime on flat float32 inputs ``[N, n_inputs]``, as
    :meth:`Model.evaluate <verify.model.network.Model.evaluate>` runs it: one input at a
    time, float32 in and out."""

    def __init__(self, path: Path, session: Any, input_name: str, input_shape: tuple[int, ...]) -> None:
        self.path = path
        self.session = session
        self.input_name = input_name
        self.input_shape = input_shape  # without the batch dimension
        self.n_inputs = int(np.prod(input_shape))

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(-1, self.n_inputs))
        rows = [np.asarray(self.session.run(None, {self.input_name: row.reshape(1, *self.input_shape)})[0],
                           dtype=np.float32).reshape(1, -1) for row in x]
        return np.concatenate(rows, axis=0) if rows else np.zeros((0, 0), np.float32)


def reference_model(path: str | Path) -> OnnxReference | None:
    """onnxruntime on the ONNX file at ``path`` (once per process), or None when the file
    is not one the session alone can stand in for (see the module's docstring)."""
    key = str(Path(path).resolve())
    if key not in _SESSIONS:
        _SESSIONS[key] = _open(Path(path))
    return _SESSIONS[key]


def _open(path: Path) -> OnnxReference | None:
    if path.suffix.lower() != ".onnx":
        return None
    import onnxruntime as ort  # here, not on top: only replaying a cached counterexample needs it

    options = ort.SessionOptions()  # as Model._ort_session: one thread, errors only
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception:  # the full model load reports what is wrong with the file
        return None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1 or inputs[0].type != "tensor(float)" or \
            outputs[0].type != "tensor(float)":
        return None  # a double model: Model.evaluate feeds and returns its declared types
    shape = list(inputs[0].shape or [])
    if not shape or not all(isinstance(d, int) and d > 0 for d in shape[1:]):
        return None
    if isinstance(shape[0], int) and shape[0] != 1:  # verify's converter refuses such a model
        return None
    return OnnxReference(path, session, inputs[0].name, tuple(int(d) for d in shape[1:]))
