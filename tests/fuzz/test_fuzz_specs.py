"""Fuzzing the spec readers (issue 23): mutated VNN-LIB 1.0 and 2.0 text either gives a
Property that fits the tiny model or a VerifyError with a one-line message naming the
file; never another exception, never a hang, nothing printed (stdout and stderr, at the level
of file descriptors: the 2.0 package is native code).

The mutations start from the specs in ``specs/`` and the fixtures of ``tests/spec``:
tokens deleted, duplicated, swapped or inserted (operators, variables, numbers with
huge, tiny and NaN-like literals among them), parentheses nested deep, random bytes,
a byte-order mark, truncation.  Each input runs through ``load_spec`` and ``check_fits``
on the sizes of ``examples/tiny/classifier.onnx`` (4 inputs, 3 outputs), in this process.

A few hundred examples by default (the file takes well under a minute); set
``VERIFY_FUZZ_EXAMPLES`` for more (e.g. 2000), and ``VERIFY_FUZZ_SEED`` for another seed
(default 23; the runs are deterministic for a seed and print their figures with ``-s``).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from tests.spec.test_vnnlib import BOX as FIXTURE_BOX
from tests.spec.test_vnnlib import HEADER as FIXTURE_HEADER
from tests.spec.test_vnnlib import V2 as FIXTURE_V2
from verify.errors import VerifyError
from verify.spec import Property, load_spec

EXAMPLES = int(os.environ.get("VERIFY_FUZZ_EXAMPLES", "300"))
SEED = int(os.environ.get("VERIFY_FUZZ_SEED", "23"))
#: Seconds one input may take (the readers take milliseconds; this leaves room for a loaded machine).
MAX_SECONDS = 10.0
N_INPUTS, N_OUTPUTS = 4, 3

SPECS = ROOT / "specs"
V1_SEEDS = [p.read_text() for p in sorted(SPECS.glob("*.vnnlib")) if ".v2." not in p.name] + [
    FIXTURE_HEADER.replace("X_1 Real)", "X_1 Real)\n(declare-const X_2 Real)\n(declare-const X_3 Real)")
    .replace("Y_1 Real)", "Y_1 Real)\n(declare-const Y_2 Real)") + FIXTURE_BOX
    + "".join(f"(assert (>= X_{i} 0))\n(assert (<= X_{i} 1))\n" for i in (2, 3))
    + "(assert (or (and (<= (+ (* 2 Y_0) (- Y_1) 1) (* 0.5 Y_2))) (and (>= Y_0 3.5) (< Y_1 -1))))\n",
]
V2_SEEDS = [p.read_text() for p in sorted(SPECS.glob("*.v2.vnnlib"))] + [
    FIXTURE_V2,
    FIXTURE_V2.replace("[2, 2]", "[1, 4]").replace("X[1, ", "X[0, 2").replace("[2])", "[3])")
    .replace("(> Y[0] Y[1])", "(!= (+ Y[0] (* 2.5 Y[2])) (- Y[1] 1.0))"),
]

_TOKEN = re.compile(r"\s+|[()]|[^\s()]+")

POOL = ["(", ")", "((((", "))))", "and", "or", "not", "<=", ">=", "<", ">", "=", "!=", "+", "-", "*", "/",
        "assert", "declare-const", "Real", "Int", "X_0", "X_3", "X_4", "X_01", "Y_2", "Y_3", "Y_99999999999",
        "X[0, 0]", "X[0, 9]", "Y[0, 2]", "Y[0, 99999999999999999999999]", "X[-1, 0]", "X", "Y",
        "(vnnlib-version <2.0>)", "(vnnlib-version <2.7>)", "<2.99999999999>", "declare-network",
        "declare-input", "declare-output", "declare-hidden", "float32", "float64", "int8", "[1, 4]",
        "[1, 99999999999]", "[0]", "[]", "[18446744073709551616]", ";", "; é", "\"onnx\"", "|x|", "#b101"]
HUGE = ["1e400", "-1e400", "1e999999999", "1e-999999999", "1.7976931348623159e308", "1.7976931348623157e308",
        "4.9e-324", "1e-400", "0." + "0" * 400 + "1", "1" * 5000, "9" * 25, "9" * 25 + ".0", "-" + "9" * 19,
        "9223372036854775808", "0." + "9" * 1100, "NaN", "nan", "inf", "-inf", "Infinity", "1e", ".", "-.5",
        "5.", "0x10", "1_000", "+1", "-0", "1/3", "١٢٣"]
NUMBERS = st.one_of(
    st.sampled_from(HUGE),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: f"{f:.17f}"),
    st.integers(-(10**30), 10**30).map(str),
)
TOKENS = st.one_of(st.sampled_from(POOL), NUMBERS, st.text(max_size=6))


@st.composite
def mutated(draw: st.DrawFn, seeds: list[str]) -> bytes:
    tokens = _TOKEN.findall(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "number", "deep", "truncate"]))
        n = len(tokens)
        i = draw(st.integers(0, max(0, n - 1)))
        j = draw(st.integers(i, min(n, i + 8)))
        if op == "delete":
            del tokens[i:j]
        elif op == "duplicate":
            tokens[i:i] = tokens[i:j] * draw(st.integers(1, 3))
        elif op == "swap" and n > 1:
            k = draw(st.integers(0, n - 1))
            tokens[i], tokens[k] = tokens[k], tokens[i]
        elif op == "insert":
            tokens[i:i] = [" ", draw(TOKENS), " "]
        elif op == "number":  # replace a number by a hostile one
            where = [k for k, t in enumerate(tokens) if re.fullmatch(r"-?[\d.]+", t)]
            if where:
                tokens[draw(st.sampled_from(where))] = draw(NUMBERS)
        elif op == "deep":
            k = draw(st.sampled_from([2, 50, 99, 100, 101, 1000, 1500]))
            tokens[i:j] = ["(" * k, *tokens[i:j], ")" * draw(st.sampled_from([0, k]))]
        elif op == "truncate":
            tokens = tokens[:i]
    data = "".join(tokens).encode("utf-8")
    if draw(st.integers(0, 4)) == 0:  # random bytes somewhere
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    if draw(st.integers(0, 9)) == 0:
        data = b"\xef\xbb\xbf" + data
    if draw(st.integers(0, 9)) == 0:
        data = data.replace(b"\n", b"\r\n")
    if draw(st.integers(0, 9)) == 0:
        data = data[:draw(st.integers(0, len(data)))]
    return data


class Tally:
    """What the inputs gave, for the figures printed at the end."""

    def __init__(self) -> None:
        self.tried = self.properties = self.errors = 0
        self.slowest = 0.0


TALLIES: dict[str, Tally] = {"1.0": Tally(), "2.0": Tally()}
WORK = Path(tempfile.mkdtemp(prefix="verify-fuzz-"))
FALLBACK = "the VNN-LIB 2.0 parser (package vnnlib) failed"


def run_one(data: bytes, tally: Tally, fit_early: bool) -> str:
    path = WORK / "fuzzed.vnnlib"
    path.write_bytes(data)
    printed_file = tempfile.TemporaryFile()
    saved = os.dup(1), os.dup(2)
    os.dup2(printed_file.fileno(), 1)
    os.dup2(printed_file.fileno(), 2)
    start = time.monotonic()
    try:
        sizes = {"n_inputs": N_INPUTS, "n_outputs": N_OUTPUTS} if fit_early else {}
        prop = load_spec(path, **sizes)
        prop.check_fits(N_INPUTS, N_OUTPUTS, "the tiny model")
        outcome: object = prop
    except VerifyError as exc:
        outcome = exc
    finally:
        seconds = time.monotonic() - start
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)
    printed_file.seek(0)
    printed = printed_file.read()
    printed_file.close()
    tally.tried += 1
    tally.slowest = max(tally.slowest, seconds)
    assert seconds < MAX_SECONDS, f"took {seconds:.1f} s (seed {SEED})"
    assert printed == b"", f"printed on stdout or stderr: {printed[:300]!r} (seed {SEED})"
    if isinstance(outcome, Property):
        tally.properties += 1
        assert (outcome.n_inputs, outcome.n_outputs) == (N_INPUTS, N_OUTPUTS)
        return "property"
    tally.errors += 1
    message = str(outcome)
    assert "\n" not in message and "\r" not in message, f"several lines: {message[:300]!r} (seed {SEED})"
    assert str(path) in message, f"does not name the file: {message[:300]!r} (seed {SEED})"
    assert FALLBACK not in message, f"prescan missed a native parser failure: {message[:300]!r} (seed {SEED})"
    return "error"


SETTINGS = settings(max_examples=max(1, EXAMPLES // 2), deadline=None, database=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example], print_blob=True)


def report(version: str) -> None:
    t = TALLIES[version]
    print(f"\nfuzz VNN-LIB {version}: seed {SEED}, {t.tried} tried, {t.properties} Property, {t.errors} "
          f"VerifyError, 0 other, slowest {t.slowest:.3f} s")


@seed(SEED)
@SETTINGS
@given(data=mutated(V1_SEEDS), fit_early=st.booleans())
def test_fuzzed_vnnlib1(data: bytes, fit_early: bool) -> None:
    assert run_one(data, TALLIES["1.0"], fit_early) in ("property", "error")


@seed(SEED)
@SETTINGS
@given(data=mutated(V2_SEEDS), fit_early=st.booleans())
def test_fuzzed_vnnlib2(data: bytes, fit_early: bool) -> None:
    assert run_one(data, TALLIES["2.0"], fit_early) in ("property", "error")


def test_fuzz_figures() -> None:
    """Prints what the two fuzz tests saw (run with -s); every input was accounted for."""
    for version in TALLIES:
        report(version)
        t = TALLIES[version]
        assert t.properties + t.errors == t.tried
