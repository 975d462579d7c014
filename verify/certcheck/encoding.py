"""Arrays in certificate JSON: ``{"dtype": "<f8", "shape": [...], "base64": "..."}``.

Little-endian raw bytes, base64-encoded: exact for floats (no decimal round trip) and
compact for the large split trees of branch and bound.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

ALLOWED = {"<f8", "<i8", "<i4", "<i2", "|i1", "|u1"}


def encode_array(a: np.ndarray, dtype: str = "<f8") -> dict[str, Any]:
    arr = np.ascontiguousarray(np.asarray(a).astype(dtype))
    return {"dtype": dtype, "shape": list(arr.shape), "base64": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode_array(obj: Any, what: str = "array") -> np.ndarray:
    """Decode an encoded array, with a ValueError naming ``what`` when it is malformed."""
    if not isinstance(obj, dict) or set(obj) != {"dtype", "shape", "base64"}:
        raise ValueError(f"{what}: expected an object with dtype, shape and base64")
    dtype = obj["dtype"]
    if dtype not in ALLOWED:
        raise ValueError(f"{what}: unsupported dtype {dtype!r}")
    shape = obj["shape"]
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise ValueError(f"{what}: bad shape {shape!r}")
    try:
        raw = base64.b64decode(obj["base64"], validate=True)
    except (ValueError, TypeError):
        raise ValueError(f"{what}: invalid base64") from None
    arr = np.frombuffer(raw, dtype=np.dtype(dtype))
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{what}: {arr.size} values for shape {shape}")
    return arr.reshape(shape).copy()
