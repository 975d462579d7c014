"""Certificate arrays: dense and sparse encodings round-trip; malformed ones are refused."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from verify.certcheck.encoding import decode_array, encode_array, encode_sparse

mostly_zero = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=12),
                         elements=st.one_of(st.just(0.0), st.floats(-1e6, 1e6, allow_nan=False)))


@given(mostly_zero)
def test_sparse_and_dense_round_trip(a: np.ndarray) -> None:
    for enc in (encode_array(a), encode_sparse(a)):
        out = decode_array(enc)
        assert out.shape == a.shape
        assert np.array_equal(out, a)  # bit-exact (no decimal round trip)


def test_sparse_is_used_only_when_shorter() -> None:
    a = np.zeros((1, 256))
    a[0, [3, 77]] = [0.25, -1.5]
    enc = encode_sparse(a)
    assert "index" in enc and len(enc["base64"]) < 40
    assert "index" not in encode_sparse(np.ones((1, 256)))


def _b64(values: list[int], dtype: str) -> str:
    return base64.b64encode(np.asarray(values, dtype=dtype).tobytes()).decode("ascii")


@pytest.mark.parametrize("index, values, message", [
    ([5, 2], [1.0, 2.0], "increasing"),
    ([2, 2], [1.0, 2.0], "increasing"),
    ([0, 10], [1.0, 2.0], "inside shape"),
    ([-1, 2], [1.0, 2.0], "inside shape"),
    ([1, 2, 3], [1.0, 2.0], "positions"),
])
def test_malformed_sparse_arrays_are_refused(index: list[int], values: list[float], message: str) -> None:
    enc = {"dtype": "<f8", "shape": [2, 5], "index": _b64(index, "<i4"), "base64": _b64(values, "<f8")}
    with pytest.raises(ValueError, match=message):
        decode_array(enc, "alphas")


def test_truncated_bytes_are_refused() -> None:
    enc = {"dtype": "<f8", "shape": [2], "base64": base64.b64encode(b"\0" * 12).decode("ascii")}
    with pytest.raises(ValueError, match="whole number"):
        decode_array(enc)
