"""VNN-LIB 1.0 and 2.0 readers: semantics, exact numbers, and errors with positions."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED
from verify.errors import InputFileError, SpecError, SpecSyntaxError
from verify.spec import load_spec, parse_vnnlib, parse_vnnlib2

HEADER = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
BOX = "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (>= X_1 0.1))\n(assert (<= X_1 0.2))\n"


def test_box_and_output_disjunction() -> None:
    prop = parse_vnnlib(HEADER + BOX + "(assert (or (and (<= Y_0 Y_1)) (and (>= Y_0 3.5) (< Y_1 -1))))")
    assert (prop.n_inputs, prop.n_outputs, len(prop.cases)) == (2, 2, 1)
    case = prop.cases[0]
    assert case.box.lower_exact == (Fraction(-1), Fraction(1, 10))
    assert [p.n_rows for p in case.unsafe] == [1, 2]
    np.testing.assert_array_equal(case.unsafe[0].C, [[1.0, -1.0]])
    np.testing.assert_array_equal(case.unsafe[1].C, [[-1.0, 0.0], [0.0, 1.0]])
    assert case.unsafe[1].strict == (False, True)


def test_decimal_bounds_are_rounded_outward_for_bounding_and_inward_for_witnesses() -> None:
    prop = parse_vnnlib(HEADER + BOX + "(assert (<= Y_0 0.1))")
    box = prop.cases[0].box
    assert Fraction(box.lower[1]) <= Fraction(1, 10) <= Fraction(box.lower_in[1])
    assert Fraction(box.upper_in[1]) <= Fraction(1, 5) <= Fraction(box.upper[1])
    poly = prop.cases[0].unsafe[0]
    assert Fraction(poly.d_in[0]) <= Fraction(1, 10) <= Fraction(poly.d[0])


def test_input_disjunction_gives_several_cases() -> None:
    text = HEADER + ("(assert (or (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1))"
                     " (and (>= X_0 2) (<= X_0 3) (>= X_1 0) (<= X_1 1))))\n(assert (>= Y_0 Y_1))")
    prop = parse_vnnlib(text)
    assert len(prop.cases) == 2
    assert [float(c.box.lower[0]) for c in prop.cases] == [0.0, 2.0]


def test_arithmetic_expressions() -> None:
    prop = parse_vnnlib(HEADER + BOX + "(assert (<= (+ (* 2 Y_0) (- Y_1) 1) (* 0.5 Y_1)))")
    poly = prop.cases[0].unsafe[0]
    np.testing.assert_array_equal(poly.C, [[2.0, -1.5]])
    assert poly.rhs == (Fraction(-1),)


def test_counterexample_check_is_exact() -> None:
    prop = parse_vnnlib(HEADER + BOX + "(assert (<= Y_0 Y_1))")
    x = np.array([0.5, 0.15], dtype=np.float32)
    assert prop.is_counterexample(x, np.array([1.0, 1.0]))
    assert not prop.is_counterexample(x, np.array([1.0, np.nextafter(1.0, 0)]))
    assert not prop.is_counterexample(np.array([0.5, 0.25], dtype=np.float32), np.array([0.0, 1.0]))


@pytest.mark.parametrize("text, line, col, needle", [
    (HEADER + "(assert (<= X_0 1)", 5, 19, "expected ')' to close"),
    (HEADER + "(assert (<= X_7 1))", 5, 13, "undeclared variable 'X_7'"),
    (HEADER + "(assert (<= X_0 1))\n(assert (foo X_0 1))", 6, 10, "expected 'and', 'or' or a comparison"),
    ("(declare-const X_0 Int)", 1, 20, "expected sort 'Real'"),
    (HEADER + BOX + "(assert (<= (* Y_0 Y_1) 1))", 9, 20, "product of two variables"),
    (HEADER + "(assert (<= X_0 1))\n(assert (>= X_0 2))\n(assert (<= X_1 1))\n(assert (>= X_1 0))\n"
     "(assert (<= Y_0 1))", 6, 9, "lower bound 2 is greater than upper bound 1"),
    (HEADER + "(assert (<= X_0 1))\n(assert (<= Y_0 1))", 5, 9, "X_0 has no lower bound"),
    (HEADER + ")", 5, 1, "unexpected ')'"),
])
def test_syntax_errors_name_file_line_column_and_expectation(text: str, line: int, col: int, needle: str) -> None:
    with pytest.raises(SpecSyntaxError) as info:
        parse_vnnlib(text, "spec.vnnlib")
    err = info.value
    assert (err.path, err.line, err.column) == ("spec.vnnlib", line, col), str(err)
    assert needle in str(err)
    assert str(err).startswith(f"spec.vnnlib:{line}:{col}: ")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not found"):
        load_spec(tmp_path / "missing.vnnlib")
    with pytest.raises(InputFileError, match="directory"):
        load_spec(tmp_path)


V2 = """(vnnlib-version <2.0>)
(declare-network net
  (declare-input X float32 [2, 2])
  (declare-output Y float32 [2])
)
(assert (and (>= X[0, 0] 0.0) (<= X[0, 0] 1.0) (>= X[0, 1] 0.0) (<= X[0, 1] 1.0)
             (>= X[1, 0] -1.0) (<= X[1, 0] 0.5) (>= X[1, 1] 0.25) (<= X[1, 1] 0.75)))
(assert (or (> Y[0] Y[1]) (<= Y[1] -2.0)))
"""


def test_vnnlib2_reader_uses_flat_c_order_and_conjoins_asserts() -> None:
    prop = parse_vnnlib2(V2, "v2.vnnlib")
    assert (prop.n_inputs, prop.n_outputs, len(prop.cases)) == (4, 2, 1)
    np.testing.assert_array_equal(prop.cases[0].box.lower, [0.0, 0.0, -1.0, 0.25])
    np.testing.assert_array_equal(prop.cases[0].box.upper, [1.0, 1.0, 0.5, 0.75])
    polys = prop.cases[0].unsafe
    np.testing.assert_array_equal(polys[0].C, [[-1.0, 1.0]])
    assert polys[0].strict == (True,)


def test_vnnlib2_errors_have_line_numbers(tmp_path: Path) -> None:
    bad = tmp_path / "bad.vnnlib"
    bad.write_text(V2.replace("Y[1] -2.0", "Z[1] -2.0"))
    with pytest.raises(SpecSyntaxError) as info:
        load_spec(bad)
    assert info.value.line == 8 and "Z" in str(info.value)


def test_all_benchmark_specs_parse() -> None:
    files = sorted(SHARED.glob("*/vnnlib/*.vnnlib"))
    if not files:
        pytest.skip("../shared/benchmarks is missing")
    for path in files[:60]:
        prop = load_spec(path)
        assert prop.cases and all(c.unsafe for c in prop.cases)


def test_acasxu_prop6_has_two_boxes() -> None:
    path = SHARED / "acasxu" / "vnnlib" / "prop_6.vnnlib"
    if not path.exists():
        pytest.skip("../shared/benchmarks/acasxu is missing")
    prop = load_spec(path)
    assert len(prop.cases) == 2 and all(len(c.unsafe) == 4 for c in prop.cases)


def test_lower_greater_than_upper_in_python_api() -> None:
    from verify.spec import box

    with pytest.raises(SpecError, match="greater than"):
        box([0.0, 1.0], [1.0, 0.5])
