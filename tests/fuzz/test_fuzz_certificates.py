"""Fuzzing the certificate checker (issue 23): mutated certificates through ``verify
certcheck`` (in this process) are rejected (exit 1, or exit 2 with one line on stderr) or
accepted (exit 0); never exit 4, never a traceback, never a hang.

The certificates are real ones, made here: the bundled tiny classifier on
``specs/tiny_robust_class0.vnnlib`` (IBP, one box), and a 3-16-16-2 net whose property
needs input splitting and alpha-CROWN slopes (the instance of tests/certcheck).  Both
properties hold, so a mutated certificate that is still accepted is still a proof of a
true statement.  A *forgery* is also fuzzed: the tiny certificate with its spec hash
rewritten to ``specs/tiny_robust_class0_wide.vnnlib``, which is false (a counterexample
exists); it and every mutation of it must be rejected, never exit 0.

Mutations: numbers (margins, split values, slopes, indices, shapes; inside the encoded
arrays too) moved by small and large amounts or made NaN/huge, values replaced by other
JSON types, keys dropped or duplicated, list items dropped or duplicated, values nested
deep, sha256 replaced, and the text truncated or given stray bytes.

A few hundred examples by default; ``VERIFY_FUZZ_EXAMPLES`` for more, ``VERIFY_FUZZ_SEED``
for another seed (default 23).  Figures (tried, exits, slowest, peak memory) print with -s.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from verify.cli import main

EXAMPLES = int(os.environ.get("VERIFY_FUZZ_EXAMPLES", "300"))
SEED = int(os.environ.get("VERIFY_FUZZ_SEED", "23"))
MAX_SECONDS = 20.0
TINY = ROOT / "examples" / "tiny" / "classifier.onnx"
SPEC = ROOT / "specs" / "tiny_robust_class0.vnnlib"
WIDE = ROOT / "specs" / "tiny_robust_class0_wide.vnnlib"
WORK = Path(tempfile.mkdtemp(prefix="verify-fuzz-cert-"))

TALLY: dict[str, Any] = {"tried": 0, "exit": {}, "slowest": 0.0, "forged_tried": 0}


def _certify(model: Path, spec: Path) -> dict[str, Any]:
    from verify.check import CheckOptions, check
    from verify.model.network import load_model
    from verify.spec import load_spec

    result = check(load_model(model), load_spec(spec), CheckOptions(timeout=60, falsify=False))
    assert result.verdict == "verified" and result.certificate is not None, result.reason
    return json.loads(json.dumps(result.certificate))


@pytest.fixture(scope="module")
def seeds() -> dict[str, tuple[Path, Path, dict[str, Any]]]:
    from tests.certcheck.test_checker import _instance

    split_model, split_spec, split_cert = _instance(WORK)
    tiny = _certify(TINY, SPEC)
    forged = copy.deepcopy(tiny)
    forged["spec"]["sha256"] = hashlib.sha256(WIDE.read_bytes()).hexdigest()
    forged["spec"]["file"] = WIDE.name
    return {"tiny": (TINY, SPEC, tiny), "split": (split_model, split_spec, json.loads(json.dumps(split_cert))),
            "forged": (TINY, WIDE, forged)}


def _paths(obj: Any, at: tuple = ()) -> list[tuple]:
    out = [at]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*at, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*at, i))
    return out


def _get(obj: Any, path: tuple) -> Any:
    for k in path:
        obj = obj[k]
    return obj


def _set(obj: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    _get(obj, path[:-1])[path[-1]] = value
    return obj


NUMBERS = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64), st.integers(-(2**70), 2**70),
                    st.sampled_from([0, -1, 1, 2, 255, 2**31, 2**63, 10**30, 1e308, -1e308, 5e-324, 0.5]))
DELTAS = st.sampled_from([1e-12, -1e-12, 1e-9, -1e-9, 1e-6, -1e-6, 1e-3, -1e-3, 1.0, -1.0, 1e3, -1e6, 1e300])
ODD = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=8), st.just([]), st.just({}), st.just([1, "a"]),
                st.just({"dtype": "<f8", "shape": [1], "base64": "AAAAAAAA8H8="}))  # +inf as an array


@st.composite
def mutated(draw: st.DrawFn, cert: dict[str, Any]) -> bytes:
    cert = copy.deepcopy(cert)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(cert) if isinstance(cert, (dict, list)) else [()]
        path = draw(st.sampled_from(paths))
        value = _get(cert, path)
        op = draw(st.sampled_from(["number", "array", "array", "type", "drop", "duplicate", "deep", "sha"]))
        if op == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
            new = value + draw(DELTAS) if draw(st.booleans()) else draw(NUMBERS)
            cert = _set(cert, path, new)
        elif op == "array" and isinstance(value, dict) and "base64" in value and value.get("dtype") in \
                ("<f8", "<i8", "<i4", "<i2", "|i1", "|u1"):
            text = value["base64"] if isinstance(value["base64"], str) else ""
            try:
                packed = base64.b64decode(text[: len(text) - len(text) % 4])
            except ValueError:  # an earlier mutation broke the text: leave it broken
                packed = b""
            raw = np.frombuffer(packed[: len(packed) - len(packed) % np.dtype(value["dtype"]).itemsize],
                                dtype=value["dtype"]).copy()
            choice = draw(st.sampled_from(["element", "shape", "dtype", "truncate"]))
            if choice == "element" and raw.size:
                k = draw(st.integers(0, raw.size - 1))
                if raw.dtype.kind == "f":
                    raw[k] = raw[k] + draw(DELTAS) if draw(st.booleans()) else draw(
                        st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1e308]))
                else:
                    info = np.iinfo(raw.dtype)
                    step = draw(st.integers(-3, 3)) * draw(st.sampled_from([1, 100, 10**9]))
                    raw[k] = int(np.clip(int(raw[k]) + step, info.min, info.max))
                value["base64"] = base64.b64encode(raw.tobytes()).decode()
            elif choice == "shape" and value["shape"]:
                k = draw(st.integers(0, len(value["shape"]) - 1))
                value["shape"][k] = draw(st.sampled_from([0, 1, value["shape"][k] + 1, value["shape"][k] * 1000,
                                                          2**31, 2**40, -1]))
            elif choice == "dtype":
                value["dtype"] = draw(st.sampled_from(["<f8", "<i8", "<i4", "|u1", "<f4", ">f8", "object"]))
            else:
                value["base64"] = value["base64"][: draw(st.integers(0, len(value["base64"])))]
        elif op == "type":
            cert = _set(cert, path, draw(ODD))
        elif op == "drop" and path:
            parent = _get(cert, path[:-1])
            del parent[path[-1]]
        elif op == "duplicate" and path and isinstance(_get(cert, path[:-1]), list):
            parent = _get(cert, path[:-1])
            parent.insert(path[-1], copy.deepcopy(value))
        elif op == "deep":
            depth = draw(st.sampled_from([10, 63, 64, 65, 1000]))
            for _ in range(depth):
                value = [value]
            cert = _set(cert, path, value)
        elif op == "sha":
            part = draw(st.sampled_from(["model", "spec"]))
            if isinstance(cert, dict) and isinstance(cert.get(part), dict):
                cert[part]["sha256"] = draw(st.sampled_from(["0" * 64, "", hashlib.sha256(WIDE.read_bytes())
                                                              .hexdigest(), hashlib.sha256(SPEC.read_bytes())
                                                              .hexdigest()]))
    text = json.dumps(cert, allow_nan=True).encode()
    extra = draw(st.integers(0, 9))
    if extra == 0:
        text = text[: draw(st.integers(0, len(text)))]
    elif extra == 1:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.binary(min_size=1, max_size=6)) + text[at:]
    elif extra == 2:  # a duplicated key
        text = text.replace(b'"verdict": ', b'"verdict": "x", "verdict": ', 1)
    elif extra == 3:
        text = b"[" * 50_000 + text
    return text


def run_one(capsys: pytest.CaptureFixture[str], model: Path, spec: Path, data: bytes, forged: bool) -> None:
    path = WORK / "fuzzed.json"
    path.write_bytes(data)
    start = time.monotonic()
    code = main(["certcheck", str(model), str(spec), str(path)])
    seconds = time.monotonic() - start
    out, err = capsys.readouterr()
    TALLY["tried"] += 1
    TALLY["forged_tried"] += forged
    key = f"{code}-forged" if forged else str(code)
    TALLY["exit"][key] = TALLY["exit"].get(key, 0) + 1
    TALLY["slowest"] = max(TALLY["slowest"], seconds)
    assert seconds < MAX_SECONDS, f"took {seconds:.1f} s (seed {SEED})"
    assert "Traceback" not in err and "internal error" not in err, f"{err[:500]} (seed {SEED})"
    assert code in (0, 1, 2), f"exit {code}: {err[:500]} (seed {SEED})"
    if code == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("verify: error: ") and str(path) in lines[0], \
            f"{err[:500]!r} (seed {SEED})"
    else:
        assert err == "", f"{err[:500]!r} (seed {SEED})"
    if forged:
        assert code != 0, f"a forged certificate for a false property was accepted: {out[:300]} (seed {SEED})"


SETTINGS = settings(max_examples=max(1, EXAMPLES // 3), deadline=None, database=None, derandomize=False,
                    suppress_health_check=list(HealthCheck), print_blob=True)


@pytest.mark.parametrize("which", ["tiny", "split", "forged"])
def test_fuzzed_certificates(which: str, seeds: dict[str, tuple[Path, Path, dict[str, Any]]],
                             capsys: pytest.CaptureFixture[str]) -> None:
    model, spec, cert = seeds[which]

    @seed(SEED)
    @SETTINGS
    @given(data=mutated(cert))
    def fuzz(data: bytes) -> None:
        run_one(capsys, model, spec, data, which == "forged")

    before = TALLY["tried"]
    fuzz()
    assert TALLY["tried"] > before, f"no {which} certificate was tried"


def test_the_seeds_are_what_they_claim(seeds: dict[str, tuple[Path, Path, dict[str, Any]]],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    for which, (model, spec, cert) in seeds.items():
        path = WORK / f"{which}.json"
        path.write_text(json.dumps(cert))
        code = main(["certcheck", str(model), str(spec), str(path)])
        capsys.readouterr()
        assert code == (1 if which == "forged" else 0), which


def test_fuzz_figures(capsys: pytest.CaptureFixture[str]) -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert TALLY["tried"] > 0 and "4" not in TALLY["exit"], TALLY
    with capsys.disabled():
        print(f"\nfuzz certificates: seed {SEED}, {TALLY['tried']} tried ({TALLY['forged_tried']} forged), exits "
              f"{dict(sorted(TALLY['exit'].items()))}, 0 exit 4, 0 hangs, slowest {TALLY['slowest']:.3f} s, "
              f"peak memory {peak:.0f} MiB")
