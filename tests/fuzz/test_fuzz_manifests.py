"""Fuzzing the gate manifest reader (issue 23): mutations of the bundled ``verify.toml``
through :func:`verify.gate.manifest.load_manifest` (and, for each family it returns,
:func:`read_family_rows` on the tiny model's sizes), in this process, give a manifest or a
:class:`VerifyError` with a one-line message naming the manifest; nothing else, no hang.

Mutations: a key's value replaced (numbers with inf, nan, 1e308, huge and negative ints;
strings, arrays, inline tables, booleans, dates; paths that are missing, too long, a
folder, a FIFO, /dev/null, a NUL byte), keys renamed, lines dropped or duplicated, values
nested deep, stray bytes (non-UTF-8), truncation.  A few hundred examples by default;
``VERIFY_FUZZ_EXAMPLES`` for more, ``VERIFY_FUZZ_SEED`` for another seed (default 23).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from verify.errors import VerifyError
from verify.gate.manifest import Manifest, load_manifest, read_family_rows

EXAMPLES = int(os.environ.get("VERIFY_FUZZ_EXAMPLES", "300"))
SEED = int(os.environ.get("VERIFY_FUZZ_SEED", "23"))
MAX_SECONDS = 10.0

WORK = Path(tempfile.mkdtemp(prefix="verify-fuzz-manifest-"))
(WORK / "examples").mkdir()
shutil.copytree(ROOT / "examples" / "tiny", WORK / "examples" / "tiny")
shutil.copytree(ROOT / "specs", WORK / "specs")
os.mkfifo(WORK / "fifo.npy")
(WORK / "folder.csv").mkdir()
(WORK / "bad.csv").write_bytes(b"a,b,c,d,label\n0.1,0.2,0.3,0.4,0\n1e400,nan,x,,\n\xff\n")
(WORK / "wide.csv").write_text("0.1,0.2,0.3,0.4,0,9\n")
(WORK / "labels.csv").write_text("0.1,0.2,0.3,0.4,7\n0.1,0.2,0.3,0.4,1.5\n")
SEED_TEXT = (ROOT / "verify.toml").read_text()
KEYS = ["timeout", "require", "seed", "name", "spec", "model", "models", "description", "data", "eps", "clip",
        "label-column", "limit", "min-verified-rate", "tiny", "timout", "spek", "tool", "properties", "families"]
PATHS = ['"missing.onnx"', '"' + "x" * 5000 + '"', '"' + "d/" * 3000 + 'f"', '"folder.csv"', '"fifo.npy"',
         '"/dev/null"', '"a\\u0000b"', '"bad.csv"', '"wide.csv"', '"labels.csv"', '"examples/tiny/points.npy"',
         '"specs/tiny_robust_class0.vnnlib"', '"examples/tiny/classifier.onnx"', '"specs"', '""', '"/"']
VALUES = st.one_of(
    st.sampled_from(["inf", "-inf", "nan", "+nan", "1e308", "-1e308", "1e-320", "0", "-0", "-1", "0.5", "1.5", "1",
                     "9223372036854775807", "-9223372036854775808", "9223372036854775808", "1" * 25, "9" * 5000,
                     "0x7fffffffffffffff", "0xffffffffffffffffffffffff", "1_000", "true", "false", "[]", "[1, 2]",
                     "[0.0, 1.0]", "[1, 0]", "[nan, 1]", "[[1]]", "{}", "{a = 1}", "1979-05-27", "07:32:00",
                     "1979-05-27T07:32:00Z", '"verified"', '"none"', '"not-falsified"', '"x"', '"tiny"', '["tiny"]',
                     '["tiny", "tiny"]', '["nope"]', '"' + "é" * 20 + '"', "'''a\nb'''", '"""a\nb"""']),
    st.sampled_from(PATHS),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(2**70), 2**70).map(str),
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    lines = SEED_TEXT.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["value", "value", "value", "key", "drop", "duplicate", "deep", "insert"]))
        i = draw(st.integers(0, len(lines) - 1)) if lines else 0
        assignments = [k for k, ln in enumerate(lines) if re.match(r"^[\w-]+\s*=", ln)]
        if op == "value" and assignments:
            k = draw(st.sampled_from(assignments))
            lines[k] = lines[k].split("=", 1)[0] + "= " + draw(VALUES)
        elif op == "key" and assignments:
            k = draw(st.sampled_from(assignments))
            lines[k] = draw(st.sampled_from(KEYS)) + " =" + lines[k].split("=", 1)[1]
        elif op == "drop" and lines:
            del lines[i]
        elif op == "duplicate" and lines:
            lines.insert(i, lines[i])
        elif op == "deep" and assignments:
            k = draw(st.sampled_from(assignments))
            n = draw(st.sampled_from([3, 31, 32, 33, 1000, 50_000]))
            open_, close = draw(st.sampled_from([("[", "]"), ("{a = ", "}")]))
            key, value = lines[k].split("=", 1)
            lines[k] = f"{key}= {open_ * n}{value.strip() or '1'}{close * draw(st.sampled_from([n, 0]))}"
        elif op == "insert":
            lines.insert(i, draw(st.sampled_from(KEYS)) + " = " + draw(VALUES))
    data = "\n".join(lines).encode("utf-8")
    extra = draw(st.integers(0, 9))
    if extra == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=6)) + data[at:]
    elif extra == 1:
        data = data[: draw(st.integers(0, len(data)))]
    return data


TALLY = {"tried": 0, "manifests": 0, "errors": 0, "slowest": 0.0}


@seed(SEED)
@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
          suppress_health_check=list(HealthCheck), print_blob=True)
@given(data=mutated())
def test_fuzzed_manifests(data: bytes) -> None:
    path = WORK / "verify.toml"
    path.write_bytes(data)
    start = time.monotonic()
    try:
        manifest = load_manifest(path)
        for fam in manifest.families:
            read_family_rows(fam, path, 4, 3)
        outcome: object = manifest
    except VerifyError as exc:
        outcome = exc
    seconds = time.monotonic() - start
    TALLY["tried"] += 1
    TALLY["slowest"] = max(TALLY["slowest"], seconds)
    assert seconds < MAX_SECONDS, f"took {seconds:.1f} s (seed {SEED})"
    if isinstance(outcome, Manifest):
        TALLY["manifests"] += 1
        return
    TALLY["errors"] += 1
    message = str(outcome)
    assert message and "\n" not in message and "\r" not in message, f"{message[:300]!r} (seed {SEED})"
    assert str(path) in message, f"does not name the manifest: {message[:300]!r} (seed {SEED})"


def test_fuzz_figures() -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nfuzz manifests: seed {SEED}, {TALLY['tried']} tried, {TALLY['manifests']} Manifest, {TALLY['errors']} "
          f"VerifyError (one line), 0 other, slowest {TALLY['slowest']:.3f} s, peak memory {peak:.0f} MiB")
    assert TALLY["manifests"] + TALLY["errors"] == TALLY["tried"]
