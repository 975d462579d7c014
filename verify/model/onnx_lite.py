"""The parts of the ``onnx`` package the model loader needs, without ``import onnx``.

The loader needs onnx's protobuf classes (``ModelProto``), its C++ checker and the newest
opset it knows.  ``import onnx`` brings those, and also ``onnx.helper``, which loads
``ml_dtypes`` for tensor types verify does not read: 0.86 s of the 1.0 s that importing
onnx took here (``python -X importtime``), on every ``verify check`` (issue 22).  So this
module loads onnx's own generated protobuf module and its C++ extension as submodules of
the ``onnx`` package without running the package's ``__init__``: a bare package object
stands in for ``onnx`` while they load, then it is removed again.  They stay registered
under their usual names, so a later ``import onnx`` (tests, the example builder) finds
and reuses them: the classes are the same objects either way, and the protobuf
descriptors are registered once.  Where ``onnx`` is already imported, its modules are
used as they are.

Tensor decoding (:func:`to_array`) is ours instead of ``onnx.numpy_helper.to_array``
(which needs ``onnx.helper``); it reads exactly the types of
:data:`verify.model.onnx_file.TENSOR_TYPES`, whose lengths the loader checks first.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

import numpy as np

_LOCK = threading.Lock()
_MODULES: dict[str, Any] = {}

#: ONNX element type -> numpy dtype (little-endian, as ONNX stores raw data).
NUMPY_TYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"), 2: np.dtype("u1"), 3: np.dtype("i1"), 4: np.dtype("<u2"), 5: np.dtype("<i2"),
    6: np.dtype("<i4"), 7: np.dtype("<i8"), 9: np.dtype("?"), 10: np.dtype("<f2"), 11: np.dtype("<f8"),
    12: np.dtype("<u4"), 13: np.dtype("<u8"),
}


def _load() -> dict[str, Any]:
    with _LOCK:
        if _MODULES:
            return _MODULES
        names = ("onnx.onnx_ml_pb2", "onnx.onnx_cpp2py_export.checker", "onnx.onnx_cpp2py_export.defs")
        if "onnx" in sys.modules:
            mods = [importlib.import_module(n) for n in names]
        else:
            spec = importlib.util.find_spec("onnx")
            if spec is None or not spec.submodule_search_locations:
                raise ImportError("the onnx package is not installed: pip install onnx")
            stand_in = types.ModuleType("onnx")
            stand_in.__path__ = list(spec.submodule_search_locations)
            stand_in.__spec__ = spec
            sys.modules["onnx"] = stand_in
            try:
                mods = [importlib.import_module(n) for n in names]
            finally:
                if sys.modules.get("onnx") is stand_in:
                    del sys.modules["onnx"]
        _MODULES.update(zip(("pb", "checker", "defs"), mods))
        return _MODULES


def model_proto() -> Any:
    """A new, empty ``onnx.ModelProto``."""
    return _load()["pb"].ModelProto()


def is_model_proto(obj: object) -> bool:
    return isinstance(obj, _load()["pb"].ModelProto)


def data_type_name(data_type: int) -> str:
    """The ONNX name of an element type (``FLOAT``), or raises ``ValueError``."""
    return str(_load()["pb"].TensorProto.DataType.Name(data_type))


def validation_error() -> type[Exception]:
    """The exception class of onnx's checker (``onnx.checker.ValidationError``)."""
    return _load()["checker"].ValidationError


def check_model(model: Any) -> None:
    """``onnx.checker.check_model(model)`` (the same C++ check: schemas, attribute types)."""
    _load()["checker"].check_model(model.SerializeToString(), False, False, False)


def opset_version() -> int:
    """The newest default-domain opset the installed onnx knows (``onnx.defs.onnx_opset_version()``)."""
    return int(_load()["defs"].schema_version_map()[""][1])


def to_array(t: Any) -> np.ndarray:
    """The values of a ``TensorProto`` whose type and length were checked
    (:func:`verify.model.onnx_file.check_tensor`), as ``onnx.numpy_helper.to_array`` gives them."""
    dtype = NUMPY_TYPES[t.data_type]
    dims = tuple(int(d) for d in t.dims)
    if t.HasField("raw_data"):
        return np.frombuffer(t.raw_data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))
    if t.data_type == 1:
        values = np.asarray(t.float_data, dtype=np.float32)
    elif t.data_type == 11:
        values = np.asarray(t.double_data, dtype=np.float64)
    elif t.data_type == 7:
        values = np.asarray(t.int64_data, dtype=np.int64)
    elif t.data_type in (12, 13):
        values = np.asarray(t.uint64_data, dtype=np.uint64).astype(dtype.newbyteorder("="))
    elif t.data_type == 10:  # float16 bit patterns in int32_data
        values = np.asarray(t.int32_data, dtype=np.int32).astype(np.uint16).view(np.float16)
    else:
        values = np.asarray(t.int32_data, dtype=np.int32).astype(dtype.newbyteorder("="))
    return values.reshape(dims)
