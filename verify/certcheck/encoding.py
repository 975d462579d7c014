"""Arrays in certificate JSON: ``{"dtype": "<f8", "shape": [...], "base64": "..."}``.

Little-endian raw bytes, base64-encoded: exact for floats (no decimal round trip) and
compact for the large split trees of branch and bound.  A sparse array adds ``"index"``:
the flat positions (base64, ``<i4``, strictly increasing) of the values in ``base64``;
every other entry is 0.  Branch and bound uses it for slopes and multipliers that are
nonzero on a few neurons only.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

ALLOWED = {"<f8", "<i8", "<i4", "<i2", "|i1", "|u1"}


def encode_array(a: np.ndarray, dtype: str = "<f8") -> dict[str, Any]:
    arr = np.ascontiguousarray(np.asarray(a).astype(dtype))
    return {"dtype": dtype, "shape": list(arr.shape), "base64": base64.b64encode(arr.tobytes()).decode("ascii")}


def encode_sparse(a: np.ndarray, dtype: str = "<f8") -> dict[str, Any]:
    """Encode only the nonzero entries of ``a`` (dense when that is not shorter)."""
    arr = np.asarray(a).astype(dtype)
    index = np.flatnonzero(arr).astype("<i4")
    if index.size * (4 + arr.itemsize) >= arr.size * arr.itemsize:
        return encode_array(arr, dtype)
    return {"dtype": dtype, "shape": list(arr.shape), "index": base64.b64encode(index.tobytes()).decode("ascii"),
            "base64": base64.b64encode(np.ascontiguousarray(arr.reshape(-1)[index]).tobytes()).decode("ascii")}


def _b64(text: Any, what: str, dtype: str) -> np.ndarray:
    if not isinstance(text, str):
        raise ValueError(f"{what}: expected base64 text")
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        raise ValueError(f"{what}: invalid base64") from None
    if len(raw) % np.dtype(dtype).itemsize:
        raise ValueError(f"{what}: {len(raw)} bytes is not a whole number of {dtype} values")
    return np.frombuffer(raw, dtype=np.dtype(dtype))


#: Most entries one array may have (a sparse array is expanded to this many; 128 MiB of <f8).
MAX_ELEMENTS = 2**24


def inspect_array(obj: Any, what: str = "array") -> tuple[str, list[int], np.ndarray, np.ndarray | None]:
    """Check an encoded array without expanding it: ``(dtype, shape, values, index)``
    (``index`` None when dense), or a ValueError naming ``what``."""
    if not isinstance(obj, dict) or set(obj) - {"index"} != {"dtype", "shape", "base64"}:
        raise ValueError(f"{what}: expected an object with dtype, shape and base64 (and optionally index)")
    dtype = obj["dtype"]
    if not isinstance(dtype, str) or dtype not in ALLOWED:
        raise ValueError(f"{what}: unsupported dtype {dtype!r:.40}; expected one of {', '.join(sorted(ALLOWED))}")
    shape = obj["shape"]
    if not isinstance(shape, list) or len(shape) > 8 or \
            not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_ELEMENTS for s in shape):
        raise ValueError(f"{what}: bad shape {shape!r:.60}")
    size = 1
    for s in shape:
        size *= s
    if size > MAX_ELEMENTS:
        raise ValueError(f"{what}: shape {shape} has {size} entries, more than the {MAX_ELEMENTS} allowed")
    arr = _b64(obj["base64"], what, dtype)
    if "index" not in obj:
        if arr.size != size:
            raise ValueError(f"{what}: {arr.size} values for shape {shape}")
        return dtype, shape, arr, None
    index = _b64(obj["index"], what, "<i4").astype(np.int64)
    if index.size != arr.size:
        raise ValueError(f"{what}: {arr.size} values for {index.size} positions")
    if index.size and (index[0] < 0 or index[-1] >= size or np.any(np.diff(index) <= 0)):
        raise ValueError(f"{what}: positions must be increasing and inside shape {shape}")
    return dtype, shape, arr, index


def decode_array(obj: Any, what: str = "array") -> np.ndarray:
    """Decode an encoded array (dense or sparse), with a ValueError naming ``what`` when it
    is malformed."""
    dtype, shape, arr, index = inspect_array(obj, what)
    if index is not None:
        dense = np.zeros(int(np.prod(shape)), dtype=np.dtype(dtype))
        dense[index] = arr
        return dense.reshape(shape)
    return arr.reshape(shape).copy()
