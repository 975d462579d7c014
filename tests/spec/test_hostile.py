"""Hostile and broken spec files (issue 23): one line naming the file, exit 2, no traceback,
no hang, no runaway memory.  One test per class of input a fuzzer found; a few go
through the CLI as well."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from verify.cli import main
from verify.errors import InputFileError, SpecError, SpecMismatchError, SpecSyntaxError, VerifyError
from verify.spec import Property, box, load_spec, parse_vnnlib
from verify.spec.property import Polytope

MODEL = str(ROOT / "examples" / "tiny" / "classifier.onnx")

HEADER = "".join(f"(declare-const X_{i} Real)\n" for i in range(4)) + \
    "".join(f"(declare-const Y_{i} Real)\n" for i in range(3))
BOX = "".join(f"(assert (>= X_{i} 0.1))\n(assert (<= X_{i} 0.2))\n" for i in range(4))
V2_HEADER = ("(vnnlib-version <2.0>)\n(declare-network classifier\n  (declare-input X float32 [1, 4])\n"
             "  (declare-output Y float32 [1, 3])\n)\n")
V2_BOX = "(assert (and " + " ".join(f"(>= X[0, {i}] 0.1) (<= X[0, {i}] 0.2)" for i in range(4)) + "))\n"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def refused(path: Path, kind: type[VerifyError] = SpecError, **kwargs: object) -> str:
    """The message of the error load_spec gives: of type ``kind``, one line, naming the file."""
    start = time.monotonic()
    with pytest.raises(kind) as info:
        load_spec(path, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert time.monotonic() - start < 5, "refusing a hostile spec must be quick"
    assert "\n" not in message and str(path) in message, message
    return message


def cli(capsys: pytest.CaptureFixture[str], spec: Path, *options: str) -> tuple[int, list[str]]:
    code = main(["check", MODEL, str(spec), "--quiet", *options])
    err = capsys.readouterr().err
    return code, err.strip().splitlines()


def test_numbers_out_of_float64_range_or_too_long(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i, literal in enumerate(["1e400", "1.7976931348623159e308", "-1e999999999", "1" * 5000,
                                 "0." + "0" * 2000 + "1"]):
        spec = write(tmp_path, f"n{i}.vnnlib", HEADER + BOX + f"(assert (<= Y_0 {literal}))\n")
        message = refused(spec, SpecSyntaxError)
        assert f"{spec}:16:17: number " in message and ("out of range" in message or "characters" in message)
    # the largest float64 itself is fine, and so is a tiny number
    ok = write(tmp_path, "ok.vnnlib", HEADER + BOX + "(assert (<= Y_0 1.7976931348623157e308))\n"
                                                    "(assert (<= Y_1 1e-320))\n")
    assert load_spec(ok).cases[0].unsafe[0].n_rows == 2
    # arithmetic that leaves float64's range, or needs huge exact numbers, is refused too
    precise = "0." + "9" * 1000
    cases = [("(* 1e300 1e300 Y_0)", "out of range"), ("(+ 1e308 1e308 Y_0)", "out of range"),
             (f"(* {precise} {precise} {precise} {precise} {precise} Y_0)", "bits")]
    for i, (expr, needle) in enumerate(cases):
        spec = write(tmp_path, f"a{i}.vnnlib", HEADER + BOX + f"(assert (<= {expr} 1))\n")
        assert needle in refused(spec)
    spec = write(tmp_path, "bound.vnnlib", HEADER + BOX + "(assert (<= (* 1e-300 X_0) 1e300))\n(assert (<= Y_0 1))\n")
    assert "bound this gives on X_0" in refused(spec)
    # the Python API validates decimal strings the same way
    with pytest.raises(SpecError, match="out of range"):
        box(["1e999999999"], ["1"])
    # through the CLI: exit 2 and one line
    code, lines = cli(capsys, write(tmp_path, "cli.vnnlib", HEADER + BOX + "(assert (<= Y_0 1e999999999))\n"))
    assert code == 2 and len(lines) == 1 and "out of range" in lines[0], lines


def test_structure_nesting_encodings_indices_and_shapes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = write(tmp_path, "deep.vnnlib", HEADER + BOX + "(assert " + "(and " * 1000 + "(<= Y_0 1)"
                 + ")" * 1001 + "\n")
    assert "nested more than 100 deep" in refused(deep, SpecSyntaxError)
    deep_arith = write(tmp_path, "arith.vnnlib", HEADER + BOX + "(assert (<= " + "(+ " * 5000 + "Y_0"
                       + ")" * 5000 + " 1))\n")
    assert "nested more than 100 deep" in refused(deep_arith, SpecSyntaxError)
    deep2 = write(tmp_path, "deep2.vnnlib", V2_HEADER + V2_BOX + "(assert " + "(and " * 1000
                  + "(<= Y[0, 0] 1.0)" + ")" * 1001 + "\n")
    assert "nested more than 100 deep" in refused(deep2, SpecSyntaxError)
    # a byte-order mark is accepted (1.0 and 2.0), non-ASCII is fine in comments
    for name, text in (("bom1.vnnlib", HEADER + BOX + "(assert (<= Y_0 Y_1))\n"),
                       ("bom2.vnnlib", V2_HEADER + V2_BOX + "; café\n(assert (>= Y[0, 0] Y[0, 1]))\n")):
        assert load_spec(write(tmp_path, name, b"\xef\xbb\xbf" + text.encode())).n_inputs == 4
    # non-ASCII outside comments in 2.0, and bytes that are not UTF-8, are named by position
    accent = write(tmp_path, "accent.vnnlib", V2_HEADER + V2_BOX + "(assert (>= Yé[0, 0] Y[0, 1]))\n")
    assert "non-ASCII character 'é' (U+00E9)" in refused(accent, SpecSyntaxError)
    nul = write(tmp_path, "nul.vnnlib", V2_HEADER + V2_BOX + "(assert (>= Y[0, 0] Y[0, 1]))\x00(assert (<= x 1))\n")
    assert "control character" in refused(nul, SpecSyntaxError)
    latin1 = write(tmp_path, "latin1.vnnlib", (HEADER + "; caf").encode() + b"\xe9\n")
    assert f"{latin1}:8:6: not a text file: byte 0xe9" in refused(latin1, SpecSyntaxError)
    # 2.0 integers beyond int64 (an index, a size, a constant), versions beyond int32
    for i, (old, new) in enumerate([("Y[0, 1])", "Y[0, 99999999999999999999999])"),
                                    ("[1, 3]", "[1, 18446744073709551616]"), ("<2.0>", "<2.99999999999>")]):
        spec = write(tmp_path, f"int{i}.vnnlib", (V2_HEADER + V2_BOX + "(assert (>= Y[0, 0] Y[0, 1]))\n")
                     .replace(old, new))
        assert "out of range" in refused(spec, SpecSyntaxError)
    # a declared shape far beyond the model: refused before anything of that size is built
    huge = write(tmp_path, "huge.vnnlib", V2_HEADER.replace("[1, 4]", "[1, 99999999999]") + V2_BOX
                 + "(assert (>= Y[0, 0] Y[0, 1]))\n")
    assert "declares 99999999999 inputs" in refused(huge, SpecError)  # no model sizes: never bounded
    assert "declares 99999999999 inputs but the model has 4" in refused(huge, SpecMismatchError, n_inputs=4,
                                                                        n_outputs=3)
    wide = write(tmp_path, "wide.vnnlib", V2_HEADER.replace("[1, 3]", "[99999999999, 99999999999]")
                 + V2_BOX + "(assert (>= Y[0, 0] Y[0, 1]))\n")
    assert "output constraints too large" in refused(wide, SpecError)
    code, lines = cli(capsys, huge)
    assert code == 2 and len(lines) == 1 and "99999999999" in lines[0], lines


def test_variable_free_constraints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    true = write(tmp_path, "true.vnnlib", HEADER + BOX + "(assert (<= 0 1))\n")
    prop = load_spec(true)
    (poly,) = prop.cases[0].unsafe  # every output: one all-zero row, 0 y <= 0
    assert poly.n_rows == 1 and not poly.C.any() and poly.d[0] == 0 and poly.contains([5.0, -3.0, 1e30])
    false = write(tmp_path, "false.vnnlib", HEADER + BOX + "(assert (<= 1 0))\n")
    (poly,) = load_spec(false).cases[0].unsafe  # no output: 0 y <= -1
    assert poly.n_rows == 1 and not poly.contains([0.0, 0.0, 0.0])
    # a false disjunct is dropped, a true conjunct too
    mixed = write(tmp_path, "mixed.vnnlib", HEADER + BOX + "(assert (or (< 0 0) (and (<= 0 1) (>= Y_1 Y_0))))\n")
    (poly,) = load_spec(mixed).cases[0].unsafe
    assert poly.n_rows == 1 and list(poly.C[0]) == [1.0, -1.0, 0.0]
    # a property built in Python with an empty polytope or no polytope is normalised the same way
    built = Property((prop.cases[0].__class__(prop.cases[0].box, (Polytope((), (), ()),)),), 4, 3)
    assert built.cases[0].unsafe[0].n_rows == 1 and built.cases[0].unsafe[0].contains([1.0, 2.0, 3.0])
    # end to end: always unsafe is falsified (a replayed counterexample), never unsafe is verified
    code, _ = cli(capsys, true, "--timeout", "60")
    assert code == 1
    code, _ = cli(capsys, false, "--timeout", "60")
    assert code == 0


@pytest.mark.parametrize("body, needle", [
    ("from verify.spec.property import Property\nPROPERTY = Property.__new__(Property)\n", "not fully built"),
    ("PROPERTY = 3\n", "PROPERTY is a int, expected a Property"),
    ("x = 1\n", "defines no PROPERTY"),
    ("raise KeyboardInterrupt\n", ":1: the Python spec raised KeyboardInterrupt"),
    ("class Boom(BaseException):\n    pass\n\n\nraise Boom('deep\\ntrouble')\n", ":5: the Python spec raised Boom"),
    ("import sys\nsys.exit(0)\n", ":2: the Python spec called sys.exit(0)"),
    ("raise ValueError('two\\nlines')\n", "ValueError: two lines"),
    ("PROPERTY = (\n", "Python syntax error"),
    ("import time\ntime.sleep(3600)\n", "did not define PROPERTY within 1 s"),
])
def test_python_specs_that_misbehave(tmp_path: Path, body: str, needle: str) -> None:
    spec = write(tmp_path, "bad.py", body)
    assert needle in refused(spec, SpecError, timeout=1.0)


def test_python_spec_exiting_never_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i, body in enumerate(["import sys\nsys.exit(0)\n", "raise KeyboardInterrupt\n", "PROPERTY = None\n"]):
        code, lines = cli(capsys, write(tmp_path, f"s{i}.py", body))
        assert code == 2 and len(lines) == 1 and f"s{i}.py" in lines[0], lines


def test_size_limit_and_files_that_are_not_regular(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    spec = write(tmp_path, "long.vnnlib", HEADER + BOX + "(assert (<= Y_0 1))\n" * 100)
    monkeypatch.setenv("VERIFY_MAX_SPEC_BYTES", "1000")
    message = refused(spec, InputFileError)
    assert "more than the limit of 1000 bytes" in message and "VERIFY_MAX_SPEC_BYTES" in message
    code, lines = cli(capsys, spec)
    assert code == 2 and len(lines) == 1 and "VERIFY_MAX_SPEC_BYTES" in lines[0], lines
    monkeypatch.setenv("VERIFY_MAX_SPEC_BYTES", "100000")
    assert load_spec(spec).n_inputs == 4
    monkeypatch.delenv("VERIFY_MAX_SPEC_BYTES")
    fifo = tmp_path / "pipe.vnnlib"
    os.mkfifo(fifo)
    assert "FIFO" in refused(fifo, InputFileError)
    assert "directory" in refused(tmp_path, InputFileError)
    if os.path.exists("/dev/zero"):
        with pytest.raises(InputFileError, match="character device"):
            load_spec("/dev/zero")
    code, lines = cli(capsys, fifo)
    assert code == 2 and len(lines) == 1 and "FIFO" in lines[0], lines


def test_the_2_0_package_prints_nothing(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    spec = write(tmp_path, "minor.vnnlib", (V2_HEADER + V2_BOX + "(assert (>= Y[0, 0] Y[0, 1]))\n")
                 .replace("<2.0>", "<2.7>"))
    capfd.readouterr()
    assert load_spec(spec).n_outputs == 3
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    # a failure is one line, even though the package reports many
    bad = write(tmp_path, "bad2.vnnlib", V2_HEADER + V2_BOX + "(assert (>= Z[0, 0] Y[0, 1]))\n")
    assert "Z" in refused(bad, SpecSyntaxError)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_parse_vnnlib_takes_model_sizes() -> None:
    with pytest.raises(SpecMismatchError, match="declares 4 inputs but the model has 5"):
        parse_vnnlib(HEADER + BOX + "(assert (<= Y_0 1))", "x.vnnlib", n_inputs=5, n_outputs=3)


def test_python_spec_side_effects_are_undone(tmp_path: Path) -> None:
    import sys
    import warnings

    spec = write(tmp_path, "messy.py", "import os, sys, warnings\nsys.stdout = None\nsys.argv[:] = ['x']\n"
                                       "os.chdir('/')\nsys.setrecursionlimit(50)\nwarnings.simplefilter('error')\n"
                                       "from verify.spec import *\nPROPERTY = make_property(linf_ball([0.5] * 4, 0.1),"
                                       " argmax_is(0, n_outputs=3))\n")
    before = (sys.stdout, list(sys.argv), os.getcwd(), sys.getrecursionlimit(), list(warnings.filters))
    assert load_spec(spec).n_inputs == 4
    assert (sys.stdout, list(sys.argv), os.getcwd(), sys.getrecursionlimit(), list(warnings.filters)) == before


def test_zero_literals_with_huge_exponents_cost_nothing(tmp_path: Path) -> None:
    start = time.monotonic()
    spec = write(tmp_path, "zeros.vnnlib",
                 HEADER + BOX + "(assert (<= Y_0 0e999999999))\n(assert (<= Y_1 -0.0e-99999999))\n")
    assert load_spec(spec).cases[0].unsafe[0].rhs == (0, 0)
    assert box(["0e999999999"], ["1"]).lower[0] == 0.0
    assert time.monotonic() - start < 5
