"""verify.gate.family: the VNN-LIB file of a family row is the very property the builders make."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.gate.family import ball_property, exact_decimal, vnnlib_text, write_spec
from verify.spec import load_spec, parse_vnnlib

floats = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@given(st.lists(floats, min_size=4, max_size=4), st.floats(0, 0.5), st.integers(0, 2), st.booleans())
@settings(max_examples=60, deadline=None)
def test_row_file_reads_back_as_the_same_property(center: list[float], eps: float, label: int, clip: bool) -> None:
    bounds = (-100.0, 100.0) if clip else None
    center = [min(max(c, -100.0), 100.0) for c in center]
    prop = ball_property(center, eps, bounds, label, 3)
    again = parse_vnnlib(vnnlib_text(prop, label, "test"), "row.vnnlib")
    assert again.fingerprint() == prop.fingerprint()
    assert again.cases[0].box.lower_exact == prop.cases[0].box.lower_exact


@given(floats, floats)
def test_exact_decimal_is_exact(a: float, b: float) -> None:
    value = Fraction(a) - Fraction(b)
    assert Fraction(exact_decimal(value)) == value


def test_exact_decimal_examples() -> None:
    assert exact_decimal(Fraction(0)) == "0"
    assert exact_decimal(Fraction(-3, 4)) == "-0.75"
    assert exact_decimal(Fraction(12)) == "12"
    assert exact_decimal(Fraction(0.1)) == "0.1000000000000000055511151231257827021181583404541015625"


def test_write_spec_is_content_addressed(tmp_path: Path) -> None:
    prop = ball_property(np.array([0.2, 0.2, 0.3, 0.7]), 0.02, (0.0, 1.0), 0, 3)
    text = vnnlib_text(prop, 0, "row 0")
    path, sha = write_spec(tmp_path, "fam", text)
    again, sha2 = write_spec(tmp_path, "fam", text)
    assert path == again and sha == sha2 and path.parent == tmp_path / "fam"
    loaded = load_spec(path)
    assert loaded.sha256 == sha and loaded.fingerprint() == prop.fingerprint()
    other, sha3 = write_spec(tmp_path, "fam", vnnlib_text(ball_property([0.5] * 4, 0.02, None, 1, 3), 1, "r"))
    assert other != path and sha3 != sha
