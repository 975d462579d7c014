"""The checker's own reader of the ONNX file format (protobuf), numpy only.

The checker needs little of an ONNX file: the graph's nodes (operator, name, inputs,
outputs, attributes), its initializers as arrays, and the names and shapes of its inputs
and outputs.  Reading those takes a protobuf wire-format decoder of a page, which keeps
the checker small and fast to start: the ``onnx`` package costs about a second to import
(it loads ml_dtypes), more than re-checking a small certificate.

What is read (field numbers of ``onnx.proto``; everything else is skipped):

* ``ModelProto.graph`` (7) -> ``GraphProto``: ``node`` (1), ``initializer`` (5),
  ``input`` (11), ``output`` (12); ``ModelProto.opset_import`` (8) ->
  ``OperatorSetIdProto``: ``domain`` (1), ``version`` (2) (operator semantics that changed
  between opsets are read by the version of the default domain);
* ``NodeProto``: ``input`` (1), ``output`` (2), ``name`` (3), ``op_type`` (4),
  ``attribute`` (5), ``domain`` (7);
* ``AttributeProto``: ``name`` (1), ``f`` (2), ``i`` (3), ``s`` (4), ``t`` (5),
  ``floats`` (7), ``ints`` (8), ``strings`` (9), ``type`` (20); the value is chosen by
  ``type``, as ``onnx.helper.get_attribute_value`` does (a tensor becomes an array);
* ``TensorProto``: ``dims`` (1), ``data_type`` (2), ``float_data`` (4),
  ``int32_data`` (5), ``int64_data`` (7), ``name`` (8), ``raw_data`` (9),
  ``double_data`` (10), ``uint64_data`` (11), ``data_location`` (14); numeric types
  only, data stored in the file (segments and external data are refused);
* ``ValueInfoProto``: ``name`` (1), ``type`` (2) -> ``tensor_type`` (1) -> ``shape`` (2)
  -> ``dim`` (1) -> ``dim_value`` (1) (0 when the dimension is symbolic).

Arrays are decoded as ``onnx.numpy_helper.to_array`` decodes them (little-endian raw
bytes, or the typed repeated fields, packed or not); tests/certcheck/test_onnxfile.py
compares the two on every model at hand.  Anything malformed raises
:class:`OnnxReadError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class OnnxReadError(Exception):
    """The file is not an ONNX model this reader can decode."""


#: TensorProto.DataType -> (numpy dtype, the field holding the values when there is no raw_data).
_DTYPES: dict[int, tuple[str, int]] = {
    1: ("<f4", 4),  # FLOAT: float_data
    2: ("|u1", 5),  # UINT8: int32_data
    3: ("|i1", 5),  # INT8
    4: ("<u2", 5),  # UINT16 (the bits, in int32_data)
    5: ("<i2", 5),  # INT16 (the bits)
    6: ("<i4", 5),  # INT32
    7: ("<i8", 7),  # INT64: int64_data
    9: ("|b1", 5),  # BOOL
    10: ("<f2", 5),  # FLOAT16 (the bits)
    11: ("<f8", 10),  # DOUBLE: double_data
    12: ("<u4", 11),  # UINT32: uint64_data
    13: ("<u8", 11),  # UINT64
}
_BITS = {4, 5, 10}  # int32_data holds the 16 bits of each value


@dataclass
class ValueInfo:
    name: str
    dims: list[int]  # dim_value per dimension, 0 when symbolic


@dataclass
class Node:
    op_type: str
    name: str
    input: list[str]
    output: list[str]
    attributes: dict[str, Any]
    domain: str = ""  # "" (or "ai.onnx") for the standard operators


@dataclass
class Graph:
    node: list[Node] = field(default_factory=list)
    initializer: dict[str, np.ndarray] = field(default_factory=dict)
    input: list[ValueInfo] = field(default_factory=list)
    output: list[ValueInfo] = field(default_factory=list)
    opset: dict[str, int] = field(default_factory=dict)  # operator set domain ("" default) -> version


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise OnnxReadError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _fields(buf: memoryview) -> list[tuple[int, int, Any]]:
    """``(field number, wire type, value)`` of a message: an int for varints, bytes
    (a memoryview) for fixed-size and length-delimited values."""
    out = []
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1 or wire == 5:
            size = 8 if wire == 1 else 4
            if pos + size > end:
                raise OnnxReadError("truncated fixed-size field")
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise OnnxReadError("truncated length-delimited field")
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise OnnxReadError(f"unsupported protobuf wire type {wire}")
        if number == 0:
            raise OnnxReadError("field number 0")
        out.append((number, wire, value))
    return out


def _text(value: Any, wire: int) -> str:
    if wire != 2:
        raise OnnxReadError("a string field with a non-string wire type")
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        raise OnnxReadError("a string field that is not UTF-8") from None


def _repeated_varints(values: list[tuple[int, Any]]) -> list[int]:
    """The unsigned values of a repeated varint field, each entry packed (wire 2) or not."""
    out: list[int] = []
    for wire, value in values:
        if wire == 0:
            out.append(value)
        elif wire == 2:
            pos = 0
            while pos < len(value):
                v, pos = _varint(value, pos)
                out.append(v)
        else:
            raise OnnxReadError("a varint field with a fixed-size wire type")
    return out


def _repeated_fixed(values: list[tuple[int, Any]], dtype: str) -> np.ndarray:
    """A repeated float / double field, each entry packed (wire 2) or not (wire 5 / 1)."""
    size = np.dtype(dtype).itemsize
    chunks = []
    for wire, value in values:
        if wire not in (2, 5 if size == 4 else 1) or len(value) % size:
            raise OnnxReadError(f"a repeated {dtype} field of the wrong wire type or length")
        chunks.append(bytes(value))
    return np.frombuffer(b"".join(chunks), dtype=dtype)


def _group(buf: memoryview) -> dict[int, list[tuple[int, Any]]]:
    grouped: dict[int, list[tuple[int, Any]]] = {}
    for number, wire, value in _fields(buf):
        grouped.setdefault(number, []).append((wire, value))
    return grouped


def _last(grouped: dict[int, list[tuple[int, Any]]], number: int, wire: int) -> Any:
    """The value of a singular scalar or string field (protobuf: the last one wins), None when absent."""
    values = grouped.get(number)
    if not values:
        return None
    got_wire, value = values[-1]
    if got_wire != wire:
        raise OnnxReadError(f"field {number} has wire type {got_wire}, expected {wire}")
    return value


def _message(grouped: dict[int, list[tuple[int, Any]]], number: int) -> Any:
    """The bytes of a singular message field, None when absent.  Protobuf would merge
    repeated occurrences; this reader refuses them instead (no writer produces them)."""
    values = grouped.get(number)
    if not values:
        return None
    if len(values) > 1:
        raise OnnxReadError(f"message field {number} occurs {len(values)} times")
    return _last(grouped, number, 2)


def tensor_array(buf: memoryview) -> tuple[str, np.ndarray]:
    """A ``TensorProto``'s name and values, decoded as ``onnx.numpy_helper.to_array`` does."""
    t = _group(buf)
    name = _text(_last(t, 8, 2) or b"", 2)
    if 3 in t:
        raise OnnxReadError(f"tensor {name!r}: segments are not supported")
    if (_last(t, 14, 0) or 0) != 0:
        raise OnnxReadError(f"tensor {name!r}: external data is not supported")
    data_type = _last(t, 2, 0) or 0
    if data_type not in _DTYPES:
        raise OnnxReadError(f"tensor {name!r}: data type {data_type} is not supported")
    dtype, storage = _DTYPES[data_type]
    dims = [_signed(v) for v in _repeated_varints(t.get(1, []))]
    if any(d < 0 for d in dims):
        raise OnnxReadError(f"tensor {name!r}: negative dimension")
    raw = _last(t, 9, 2)
    if raw is not None:
        if len(raw) % np.dtype(dtype).itemsize:
            raise OnnxReadError(f"tensor {name!r}: raw data of {len(raw)} bytes")
        values = np.frombuffer(bytes(raw), dtype=dtype)
    elif storage == 4:
        values = _repeated_fixed(t.get(4, []), "<f4")
    elif storage == 10:
        values = _repeated_fixed(t.get(10, []), "<f8")
    elif storage == 7:
        values = np.array([_signed(v) for v in _repeated_varints(t.get(7, []))], dtype="<i8")
    elif storage == 11:
        values = np.array(_repeated_varints(t.get(11, [])), dtype="<u8").astype(dtype)
    else:  # int32_data: int32 values, sign-extended to 64 bits on the wire
        ints = np.array([_signed(v) for v in _repeated_varints(t.get(5, []))], dtype=np.int64).astype(np.int32)
        if data_type in _BITS:
            values = ints.view(np.uint32).astype(np.uint16).view(dtype)
        elif data_type == 9:
            values = ints.view(np.uint32).astype(np.uint8).view(np.bool_)
        else:
            values = ints.astype(dtype)
    if values.size != int(np.prod(dims)):
        raise OnnxReadError(f"tensor {name!r}: {values.size} values for dimensions {dims}")
    return name, values.reshape(dims).copy()


def _attribute(buf: memoryview) -> tuple[str, Any]:
    """An ``AttributeProto``'s name and value, chosen by its ``type`` as
    ``onnx.helper.get_attribute_value`` chooses it (None for types the checker never reads)."""
    a = _group(buf)
    name = _text(_last(a, 1, 2) or b"", 2)
    kind = _last(a, 20, 0) or 0
    if 21 in a:
        raise OnnxReadError(f"attribute {name!r} refers to a function attribute")
    if kind == 1:  # FLOAT
        raw = _last(a, 2, 5)
        return name, 0.0 if raw is None else struct.unpack("<f", raw)[0]
    if kind == 2:  # INT
        return name, _signed(_last(a, 3, 0) or 0)
    if kind == 3:  # STRING
        return name, bytes(_last(a, 4, 2) or b"")
    if kind == 4:  # TENSOR
        raw = _message(a, 5)
        if raw is None:
            raise OnnxReadError(f"attribute {name!r}: no tensor")
        return name, tensor_array(raw)[1]
    if kind == 6:  # FLOATS
        return name, [float(v) for v in _repeated_fixed(a.get(7, []), "<f4")]
    if kind == 7:  # INTS
        return name, [_signed(v) for v in _repeated_varints(a.get(8, []))]
    if kind == 8:  # STRINGS
        if any(w != 2 for w, _ in a.get(9, [])):
            raise OnnxReadError(f"attribute {name!r}: a string of the wrong wire type")
        return name, [bytes(v) for _, v in a.get(9, [])]
    return name, None


def _value_info(buf: memoryview) -> ValueInfo:
    v = _group(buf)
    dims: list[int] = []
    type_proto = _message(v, 2)
    tensor_type = _message(_group(type_proto), 1) if type_proto is not None else None
    shape = _message(_group(tensor_type), 2) if tensor_type is not None else None
    if shape is not None:
        for wire, dim in _group(shape).get(1, []):
            if wire != 2:
                raise OnnxReadError("a shape dimension that is not a message")
            dims.append(_signed(_last(_group(dim), 1, 0) or 0))  # 0 for a dim_param
    return ValueInfo(_text(_last(v, 1, 2) or b"", 2), dims)


def _node(buf: memoryview) -> Node:
    n = _group(buf)
    attributes = dict(_attribute(value) for wire, value in n.get(5, []) if wire == 2)
    return Node(op_type=_text(_last(n, 4, 2) or b"", 2), name=_text(_last(n, 3, 2) or b"", 2),
                input=[_text(v, w) for w, v in n.get(1, [])], output=[_text(v, w) for w, v in n.get(2, [])],
                attributes=attributes, domain=_text(_last(n, 7, 2) or b"", 2))


def read_graph(data: bytes) -> Graph:
    """The graph of a serialized ``ModelProto`` (raises :class:`OnnxReadError`)."""
    model = _group(memoryview(data))
    raw = _message(model, 7)
    if raw is None:
        raise OnnxReadError("no graph (not an ONNX model file?)")
    g = _group(raw)
    graph = Graph()
    for number, target in ((1, "node"), (5, "initializer"), (11, "input"), (12, "output")):
        for wire, value in g.get(number, []):
            if wire != 2:
                raise OnnxReadError(f"graph field {number} is not a message")
            if target == "node":
                graph.node.append(_node(value))
            elif target == "initializer":
                name, array = tensor_array(value)
                graph.initializer[name] = array
            else:
                getattr(graph, target).append(_value_info(value))
    for wire, value in model.get(8, []):
        if wire != 2:
            raise OnnxReadError("opset_import is not a message")
        o = _group(value)
        graph.opset[_text(_last(o, 1, 2) or b"", 2)] = _signed(_last(o, 2, 0) or 0)
    return graph


def read_graph_file(path: str | Path) -> Graph:
    return read_graph(Path(path).read_bytes())
