"""Reading an ONNX file defensively: everything is checked before any of it is used.

A model file is user input, and may be broken or hostile.  This module reads it in
stages, each of which refuses what it cannot vouch for with one line (a
:class:`~verify.errors.VerifyError`) naming the file and the place:

1. the path: a regular file (not a directory, FIFO, device or socket), readable, no
   larger than :func:`max_model_bytes` (``VERIFY_MAX_MODEL_BYTES``, default 2 GiB);
2. the bytes: a protobuf ``ModelProto`` with a graph, an IR version and a default-domain
   opset verify knows;
3. external data: each file relative to the model's folder and inside it, a regular file
   long enough for the tensor (then copied into the model, so onnxruntime needs no file);
4. the graph's structure: one tensor input of float or double type with a static shape
   (a symbolic batch dimension is allowed) of at most :data:`MAX_TENSOR_ELEMENTS`
   elements, one output, every value defined once and before it is used (no cycles);
5. every tensor's encoding (initializers and ``Constant`` values): a data type verify
   reads, non-negative dimensions, and exactly as much data as the shape needs;
6. ``onnx.checker`` (operator schemas, attribute types).

The onnx package's parts come through :mod:`verify.model.onnx_lite` (no ``import onnx``: start-up).

The importer (:mod:`verify.ir.onnx_import`) then checks each operator's shapes and
attributes before building anything.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from verify.errors import InputFileError, ModelError
from verify.model import onnx_lite

#: Default limit on the size of a model file (its external data included), in bytes.
DEFAULT_MAX_MODEL_BYTES = 2 * 1024**3
#: Environment variable that overrides :data:`DEFAULT_MAX_MODEL_BYTES`.
MAX_MODEL_BYTES_ENV = "VERIFY_MAX_MODEL_BYTES"
#: Most elements one tensor of the network (the input, or any intermediate value at batch
#: size 1) may have: 2**27 float32 values are 512 MiB.
MAX_TENSOR_ELEMENTS = 2**27
#: Most dimensions a tensor may have (numpy's limit is 64).
MAX_RANK = 32
#: Most nodes a graph may have.
MAX_NODES = 100_000
#: The oldest default-domain opset read (onnxruntime's oldest too).
MIN_OPSET = 7

_FLOAT, _DOUBLE = 1, 11  # TensorProto.FLOAT, TensorProto.DOUBLE

# data type -> (name, bytes per element in raw_data, typed field holding the values)
TENSOR_TYPES: dict[int, tuple[str, int, str]] = {
    1: ("float", 4, "float_data"),
    2: ("uint8", 1, "int32_data"),
    3: ("int8", 1, "int32_data"),
    4: ("uint16", 2, "int32_data"),
    5: ("int16", 2, "int32_data"),
    6: ("int32", 4, "int32_data"),
    7: ("int64", 8, "int64_data"),
    9: ("bool", 1, "int32_data"),
    10: ("float16", 2, "int32_data"),
    11: ("double", 8, "double_data"),
    12: ("uint32", 4, "uint64_data"),
    13: ("uint64", 8, "uint64_data"),
}


def display(text: Any, limit: int = 160) -> str:
    """``text`` for a one-line message: control characters escaped, the middle of a very
    long text elided."""
    s = str(text)
    if not s.isprintable():
        s = s.encode("unicode_escape", "backslashreplace").decode("ascii")
    if len(s) > limit:
        half = limit // 2
        s = f"{s[:half]}...({len(s) - 2 * half} characters)...{s[-half:]}"
    return s


def name_of(text: str) -> str:
    """A node, tensor or value name quoted for a message (``'fc1'``)."""
    return "'" + display(text, 120).replace("'", "\\'") + "'"


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message collapsed to one line (or its type's name when empty)."""
    text = " ".join(str(exc).split())
    return display(text or type(exc).__name__, limit)


def type_name(data_type: int) -> str:
    if data_type in TENSOR_TYPES:
        return TENSOR_TYPES[data_type][0]
    try:
        return onnx_lite.data_type_name(data_type).lower()
    except ValueError:
        return f"{data_type} (not an ONNX data type)"


# ---------------------------------------------------------------------- 1. the path
def max_model_bytes() -> int:
    """The size limit for model files: ``VERIFY_MAX_MODEL_BYTES`` or 2 GiB."""
    text = os.environ.get(MAX_MODEL_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_MODEL_BYTES
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise InputFileError(f"{MAX_MODEL_BYTES_ENV}={display(text, 40)} is not a positive whole number of bytes")
    return value


def _path_error(path: Path, exc: OSError, what: str) -> InputFileError:
    shown = display(path)
    if isinstance(exc, FileNotFoundError):
        return InputFileError(f"{what} not found: {shown}")
    if isinstance(exc, NotADirectoryError):
        return InputFileError(f"{what} not found: {shown} (a part of the path is not a folder)")
    if isinstance(exc, PermissionError):
        return InputFileError(f"{what} not readable: {shown} (permission denied)")
    if exc.errno == errno.ENAMETOOLONG:
        longest = max((len(part) for part in path.parts), default=0)
        return InputFileError(f"{what} path is too long for the file system ({len(str(path))} characters, the "
                              f"longest part {longest}; most allow 255 per part and 4096 in all): {shown}")
    return InputFileError(f"{what} not readable: {shown} ({display(exc.strerror or type(exc).__name__, 80)})")


def _kind(mode: int) -> str | None:
    """What a non-regular file is, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _too_large(shown: str, size: int, limit: int, what: str = "model file") -> InputFileError:
    return InputFileError(f"{shown}: the {what} has {size} bytes, more than the limit of {limit}; set "
                          f"{MAX_MODEL_BYTES_ENV} to a larger number of bytes to load it")


def stat_regular_file(path: Path, what: str = "model file") -> os.stat_result:
    """``os.stat`` of ``path``, refusing what is not a regular file (one line each)."""
    shown = display(path)
    text = str(path)
    if not text:
        raise InputFileError(f"{what} path is empty")
    if "\x00" in text:
        raise InputFileError(f"{what} path contains a NUL character: {shown}")
    try:
        info = os.stat(text)
    except OSError as exc:
        raise _path_error(path, exc, what) from None
    except ValueError as exc:  # a path the OS cannot represent
        raise InputFileError(f"{what} path is not valid: {shown} ({one_line(exc, 80)})") from None
    kind = _kind(info.st_mode)
    if kind is not None:
        raise InputFileError(f"{what} path is {kind}, not a regular file: {shown}")
    return info


def read_regular_file(path: Path, limit: int, what: str = "model file", offset: int = 0,
                      count: int | None = None) -> bytes:
    """The bytes of the regular file at ``path`` (all of it, at most ``limit``; or ``count``
    bytes from ``offset``), refusing anything else.  Never blocks on a FIFO or device: the
    file is opened non-blocking and checked again once open."""
    shown = display(path)
    text = str(path)
    info = stat_regular_file(path, what)
    if count is None and info.st_size > limit:
        raise _too_large(shown, info.st_size, limit, what)
    if count is not None and info.st_size < offset + count:
        raise InputFileError(f"the {what} has {info.st_size} bytes; {count} are needed from offset {offset}")
    try:
        fd = os.open(text, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _path_error(path, exc, what) from None
    try:
        kind = _kind(os.fstat(fd).st_mode)  # the path may have changed since the stat
        if kind is not None:
            raise InputFileError(f"{what} path is {kind}, not a regular file: {shown}")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            if count is None:
                data = fh.read(limit + 1)
            else:
                fh.seek(offset)
                data = fh.read(count)
                if len(data) != count:
                    raise InputFileError(f"the {what} ended before the {count} bytes needed from offset {offset}")
    except OSError as exc:
        raise _path_error(path, exc, what) from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise _too_large(shown, len(data), limit, what)
    return data


# ---------------------------------------------------------------------- 2. the bytes
def parse_model(data: bytes, shown: str) -> Any:
    """A ``ModelProto`` from the file's bytes, or a one-line error."""
    from google.protobuf.message import DecodeError

    if not data:
        raise ModelError(f"{shown}: the model file is empty")
    model = onnx_lite.model_proto()
    try:
        model.ParseFromString(data)
    except DecodeError as exc:
        raise ModelError(f"{shown}: not an ONNX model (the protobuf does not decode: {one_line(exc, 120)})") from None
    check_text(model, shown)
    if not model.HasField("graph") or model.ir_version <= 0:
        missing = "graph" if not model.HasField("graph") else "IR version"
        raise ModelError(f"{shown}: not an ONNX model (it has no {missing}; is it an ONNX file?)")
    opsets = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    newest = onnx_lite.opset_version()
    if not opsets:
        raise ModelError(f"{shown}: the model imports no opset of the default ONNX domain")
    if not MIN_OPSET <= opsets[0] <= newest:
        raise ModelError(f"{shown}: the model's ONNX opset is {opsets[0]}; verify reads opsets {MIN_OPSET} "
                         f"to {newest}: convert it (onnx.version_converter)")
    return model


def _non_utf8(message: Any, where: str) -> str | None:
    """Where a text field of ``message`` (recursively) is not UTF-8, or None.  The protobuf
    runtime hands such a field over as ``bytes`` rather than failing."""
    from google.protobuf.descriptor import FieldDescriptor

    for field, value in message.ListFields():
        if field.type not in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE):
            continue
        values = list(value) if field.is_repeated else [value]
        for k, item in enumerate(values):
            here = f"{where}.{field.name}" + (f"[{k}]" if field.is_repeated else "")
            if field.type == FieldDescriptor.TYPE_STRING:
                if not isinstance(item, str):
                    return here
            else:
                found = _non_utf8(item, here)
                if found:
                    return found
    return None


def check_text(model: Any, shown: str) -> None:
    """Every name and text of the model is UTF-8 (ONNX requires it)."""
    found = _non_utf8(model, "model")
    if found:
        raise ModelError(f"{shown}: not a valid ONNX model: the text of {display(found, 100)} is not UTF-8")


# ---------------------------------------------------------------------- 3. external data
def _tensors(graph: Any) -> list[tuple[str, Any]]:
    """The tensors verify reads: initializers and the ``value`` of ``Constant`` nodes, with
    where each is (for messages)."""
    out = [(f"initializer {name_of(t.name)}", t) for t in graph.initializer]
    for index, node in enumerate(graph.node):
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.HasField("t"):
                    out.append((f"the value of Constant node {node_label(node, index)}", a.t))
    return out


def node_label(node: Any, index: int) -> str:
    return name_of(node.name) if node.name else f"#{index} ({display(node.op_type, 40)})"


def inline_external_data(model: Any, model_path: Path, shown: str, used: int, limit: int) -> None:
    """Copy every tensor's external data into the model (validated: a regular file inside
    the model's folder, at an offset and length that fit); ``used`` of ``limit`` bytes are
    taken by the model file."""
    budget = limit - used
    base = model_path.resolve().parent
    for where, t in _tensors(model.graph):
        if t.data_location != 1:  # TensorProto.EXTERNAL
            continue
        info = {e.key: e.value for e in t.external_data}
        location = info.get("location", "")
        if not location:
            raise ModelError(f"{shown}: {where} keeps its data in an external file but names none")
        loc = Path(location)
        if loc.is_absolute() or ".." in loc.parts or "\x00" in location:
            raise ModelError(f"{shown}: {where} keeps its data in {name_of(location)}, outside the model's folder; "
                             "external data must be a relative path inside it")
        target = base / loc
        try:
            inside = target.resolve().is_relative_to(base)
        except (OSError, RuntimeError):  # a symbolic-link loop
            inside = False
        if not inside:
            raise ModelError(f"{shown}: {where} keeps its data in {name_of(location)}, which leads outside the "
                             "model's folder")
        try:
            offset = int(info.get("offset", "0"))
            length = int(info["length"]) if "length" in info else None
        except ValueError:
            raise ModelError(f"{shown}: {where}: the external data's offset and length must be whole numbers") from None
        need = _expected_bytes(t, where, shown)
        if offset < 0 or (length is not None and length != need):
            raise ModelError(f"{shown}: {where}: external data at offset {offset} with length {length}; "
                             f"its shape and type need {need} bytes")
        if need > budget:
            raise _too_large(shown, limit - budget + need, limit, "model with its external data")
        try:
            blob = read_regular_file(target, need, f"external data file {name_of(location)} of {where}",
                                     offset, need)
        except InputFileError as exc:
            raise ModelError(f"{shown}: {exc}") from None
        budget -= need
        t.raw_data = blob
        del t.external_data[:]
        t.data_location = 0  # TensorProto.DEFAULT


# ---------------------------------------------------------------------- 4. structure
def _elements(dims: list[int]) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def input_spec(graph: Any, shown: str) -> tuple[str, tuple[int, ...], int]:
    """The network input's name, static shape (batch dimension 1) and ONNX element type."""
    inits = {t.name for t in graph.initializer}
    real = [i for i in graph.input if i.name not in inits]
    if len(real) != 1:
        names = ", ".join(name_of(i.name) for i in real[:5]) + (", ..." if len(real) > 5 else "")
        raise ModelError(f"{shown}: expected exactly one network input, found {len(real)} ({names or 'none'})")
    value = real[0]
    label = f"input {name_of(value.name)}"
    if value.type.WhichOneof("value") != "tensor_type":
        raise ModelError(f"{shown}: {label} is not a tensor")
    tensor = value.type.tensor_type
    if tensor.elem_type not in (_FLOAT, _DOUBLE):
        raise ModelError(f"{shown}: {label} has element type {type_name(tensor.elem_type)}; verify reads float or "
                         "double inputs (a property's inputs are real numbers): cast the input in the model")
    if not tensor.HasField("shape") or len(tensor.shape.dim) == 0:
        raise ModelError(f"{shown}: {label} has no static shape; verify needs one, e.g. [1, 784]")
    if len(tensor.shape.dim) > MAX_RANK:
        raise ModelError(f"{shown}: {label} has {len(tensor.shape.dim)} dimensions, more than the limit of {MAX_RANK}")
    dims: list[int] = []
    for axis, d in enumerate(tensor.shape.dim):
        which = d.WhichOneof("value")
        if which == "dim_value":
            if d.dim_value <= 0:
                what = "zero-sized" if d.dim_value == 0 else f"negative ({d.dim_value})"
                raise ModelError(f"{shown}: {label} has a {what} dimension at axis {axis}")
            if d.dim_value > MAX_TENSOR_ELEMENTS:
                raise ModelError(f"{shown}: {label} declares dimension {d.dim_value} at axis {axis}, more than the "
                                 f"limit of {MAX_TENSOR_ELEMENTS} elements")
            dims.append(int(d.dim_value))
        elif axis == 0:
            dims.append(1)  # a symbolic batch dimension
        else:
            symbol = f" {name_of(d.dim_param)}" if which == "dim_param" else ""
            raise ModelError(f"{shown}: {label} has a symbolic dimension{symbol} at axis {axis}; verify needs static "
                             "sizes after the batch dimension: fix them in the model")
    if dims[0] != 1:
        raise ModelError(f"{shown}: {label} has batch dimension {dims[0]} (shape {dims}); expected 1")
    if _elements(dims) > MAX_TENSOR_ELEMENTS:
        raise ModelError(f"{shown}: {label} has {_elements(dims)} elements, more than the limit of "
                         f"{MAX_TENSOR_ELEMENTS}")
    return value.name, tuple(dims), int(tensor.elem_type)


def check_structure(graph: Any, shown: str) -> None:
    """One input, one output, at most :data:`MAX_NODES` nodes, every value defined once and
    before its use (so no cycles)."""
    if len(graph.node) == 0:
        raise ModelError(f"{shown}: the ONNX graph has no nodes")
    if len(graph.node) > MAX_NODES:
        raise ModelError(f"{shown}: the graph has {len(graph.node)} nodes, more than the limit of {MAX_NODES}")
    if len(graph.sparse_initializer):
        raise ModelError(f"{shown}: sparse initializer {name_of(graph.sparse_initializer[0].values.name)} is not "
                         "supported: store it as a dense initializer")
    input_spec(graph, shown)
    if len(graph.output) != 1:
        raise ModelError(f"{shown}: expected exactly one network output, found {len(graph.output)}")
    output = graph.output[0]
    if output.type.WhichOneof("value") != "tensor_type":
        raise ModelError(f"{shown}: output {name_of(output.name)} is not declared as a tensor")
    if not output.type.tensor_type.HasField("shape"):
        raise ModelError(f"{shown}: output {name_of(output.name)} declares no shape (ONNX requires one; its "
                         "dimensions may be symbolic)")
    defined: set[str] = set()
    for i in graph.input:
        defined.add(i.name)
    for t in graph.initializer:
        if not t.name:
            raise ModelError(f"{shown}: an initializer has no name")
        defined.add(t.name)
    named: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        if node.name and named.setdefault(node.name, index) != index:
            raise ModelError(f"{shown}: two nodes are named {name_of(node.name)} (#{named[node.name]} and #{index}); "
                             "node names must be unique")
    later: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for out in node.output:
            if out:
                later.setdefault(out, index)
    for index, node in enumerate(graph.node):
        label = f"node {node_label(node, index)} ({display(node.op_type, 40)})"
        for name in node.input:
            if not name or name in defined:
                continue
            if name in later:
                raise ModelError(f"{shown}: {label} uses {name_of(name)} before node "
                                 f"{node_label(graph.node[later[name]], later[name])} computes it: the graph has a "
                                 "cycle or is not in topological order")
            raise ModelError(f"{shown}: {label} uses {name_of(name)}, which is neither the input, an initializer "
                             "nor the output of a node")
        if not node.output or not node.output[0]:
            raise ModelError(f"{shown}: {label} has no output")
        for out in node.output:
            if out and out in defined:
                raise ModelError(f"{shown}: {label} computes {name_of(out)}, which is already defined (a value is "
                                 "defined once)")
            if out:
                defined.add(out)
    out = graph.output[0].name
    if out not in defined:
        raise ModelError(f"{shown}: the network output {name_of(out)} is not computed by any node")


# ---------------------------------------------------------------------- 5. tensors
def _expected_bytes(t: Any, where: str, shown: str) -> int:
    if t.data_type not in TENSOR_TYPES:
        raise ModelError(f"{shown}: {where} has data type {type_name(t.data_type)}, which verify does not read "
                         "(float, double, float16 or integers)")
    dims = list(t.dims)
    if len(dims) > MAX_RANK:
        raise ModelError(f"{shown}: {where} has {len(dims)} dimensions, more than the limit of {MAX_RANK}")
    if any(d < 0 for d in dims):
        raise ModelError(f"{shown}: {where} has a negative dimension {dims}")
    return _elements(dims) * TENSOR_TYPES[t.data_type][1]


def check_tensor(t: Any, where: str, shown: str) -> None:
    """A tensor's data type, dimensions and data length agree (so decoding it cannot fail)."""
    need = _expected_bytes(t, where, shown)
    name, size, field = TENSOR_TYPES[t.data_type]
    if t.data_location not in (0, 1):
        raise ModelError(f"{shown}: {where} has an unknown data_location {t.data_location}")
    if t.data_location == 1:
        raise ModelError(f"{shown}: {where} keeps its data in an external file")
    if t.HasField("segment"):
        raise ModelError(f"{shown}: {where} is a segment of a tensor, which verify does not read")
    n = need // size
    if t.HasField("raw_data"):
        if len(t.raw_data) != need:
            raise ModelError(f"{shown}: {where} has {len(t.raw_data)} bytes of raw data; its shape {list(t.dims)} "
                             f"and type {name} need {need}")
        return
    have = len(getattr(t, field))
    if have != n:
        raise ModelError(f"{shown}: {where} has {have} values; its shape {list(t.dims)} needs {n}")


def tensor_array(t: Any, where: str, shown: str) -> np.ndarray:
    """The values of a tensor (checked first by :func:`check_tensor`)."""
    check_tensor(t, where, shown)
    value = onnx_lite.to_array(t)
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
        raise ModelError(f"{shown}: {where} contains {bad} NaN or infinite value(s); verification needs finite "
                         "weights: fix or re-export the model")
    return value


# ---------------------------------------------------------------------- all stages
def read_onnx(path: str | Path) -> tuple[Any, bytes]:
    """Read and check the ONNX file at ``path``; returns the ``ModelProto`` (external data
    copied in) and the file's bytes."""
    path = Path(path)
    shown = display(path)
    limit = max_model_bytes()
    data = read_regular_file(path, limit)
    model = parse_model(data, shown)
    inline_external_data(model, path, shown, len(data), limit)
    check_structure(model.graph, shown)
    for where, t in _tensors(model.graph):
        check_tensor(t, where, shown)
    if model.ByteSize() >= 2**31:
        raise ModelError(f"{shown}: the model with its external data is over 2 GB, more than onnx can check")
    check_with_onnx(model, shown)
    return model, data


def check_with_onnx(model: Any, shown: str) -> None:
    """Stage 6: onnx's own checker (operator schemas, attribute types), one line on failure."""
    try:
        onnx_lite.check_model(model)
    except onnx_lite.validation_error() as exc:
        raise ModelError(f"{shown}: invalid ONNX model: {one_line(exc)}") from None
