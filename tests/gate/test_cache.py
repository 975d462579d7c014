"""verify.gate.cache: a cached re-run is at least 10x faster, and re-checks rather than trusts.

Cached verified answers are re-checked with the certificate checker, cached falsified
answers replayed; a tampered entry is noticed and the property checked again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.gate.conftest import HARD_SPEC, by_id, gate, write_manifest
from verify.gate.cache import GateCache, cache_key, storable


def _entries(root: Path) -> list[Path]:
    return sorted((root / ".verify-cache" / "gate" / "results").rglob("*.json"))


def test_cached_rerun_reuses_rechecked_answers(example: Path) -> None:
    first = gate(example)
    second = gate(example)
    assert first.exit_code == second.exit_code == 0
    assert first.report["counts"]["cached"] == 0 and second.report["counts"]["cached"] == 7
    for pid, p in by_id(second).items():
        q = by_id(first)[pid]
        assert p["cache"]["hit"]
        assert (p["verdict"], p["margin"], p["method"]) == (q["verdict"], q["margin"], q["method"])
        assert p["cache"]["original_seconds"] == q["seconds"]
        if p["verdict"] == "verified":
            assert p["cache"]["recheck"]["valid"] and "claim(s) re-checked" in p["cache"]["recheck"]["message"]
        else:
            assert p["cache"]["replay"]["confirmed"] and p["counterexample"]["x"] == q["counterexample"]["x"]


_TIMING = """
import io, json, sys, time
from pathlib import Path
import torch  # imported before both runs: neither pays for it
from verify.gate import GateOptions, run_gate
out = []
for _ in range(2):
    start = time.monotonic()
    run = run_gate(GateOptions(manifest=Path(sys.argv[1]), stream=io.StringIO()))
    out.append([time.monotonic() - start, run.exit_code, run.report["counts"]["cached"]])
print(json.dumps(out))
"""


def test_cached_rerun_is_ten_times_faster(example: Path) -> None:
    """Both runs of the example gate in a fresh process (no model or import warmed by other tests)."""
    done = subprocess.run([sys.executable, "-c", _TIMING, str(example / "verify.toml")], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (first_s, code1, cached1), (second_s, code2, cached2) = json.loads(done.stdout.strip().splitlines()[-1])
    assert (code1, cached1, code2, cached2) == (0, 0, 0, 7)
    assert first_s >= 10 * second_s, f"first run {first_s:.3f} s, cached run {second_s:.3f} s"


def test_tampered_certificate_is_rejected_and_rechecked(example: Path) -> None:
    gate(example)
    tampered = 0
    for path in _entries(example):
        entry = json.loads(path.read_text())
        if entry["result"]["verdict"] == "verified":
            entry["certificate"]["cases"][0]["input-split"]["closures"] = {"node": "", "polytope": ""}
            path.write_text(json.dumps(entry))
            tampered += 1
    assert tampered == 6
    again = gate(example)
    assert again.exit_code == 0
    for p in by_id(again).values():
        assert p["cache"]["hit"] == (p["verdict"] == "falsified")  # every verified one was checked again
    third = gate(example)  # and the fresh certificates were stored in place of the bad ones
    assert third.report["counts"]["cached"] == 7


def test_tampered_counterexample_is_replayed_and_rejected(example: Path) -> None:
    gate(example)
    for path in _entries(example):
        entry = json.loads(path.read_text())
        if entry["result"]["verdict"] == "falsified":
            entry["result"]["counterexample"]["x"] = [0.2, 0.2, 0.3, 0.7]  # the class-0 centre: no counterexample
            path.write_text(json.dumps(entry))
    again = gate(example)
    wide = by_id(again)["class0-robust-wide"]
    assert wide["verdict"] == "falsified" and not wide["cache"]["hit"] and wide["counterexample"]["x"] != [0.2, 0.2,
                                                                                                          0.3, 0.7]


def test_unknown_is_not_stored_and_options_change_the_key(example: Path) -> None:
    (example / "specs/hard.vnnlib").write_text(HARD_SPEC)
    head = ('[models]\ntiny = "examples/tiny/classifier.onnx"\n'
            '[[properties]]\nname = "hard"\nspec = "specs/hard.vnnlib"\n')
    path = write_manifest(example, head + "timeout = 0.1\n")
    assert by_id(gate(example, manifest=path))["hard"]["verdict"] == "unknown"
    assert _entries(example) == []
    write_manifest(example, head + "timeout = 10\n")
    assert by_id(gate(example, manifest=path))["hard"]["cache"] == {"hit": False, "stored": True}
    write_manifest(example, head + "timeout = 11\n")  # another timeout: another key
    assert not by_id(gate(example, manifest=path))["hard"]["cache"]["hit"]
    write_manifest(example, head + "timeout = 10\n")
    assert by_id(gate(example, manifest=path))["hard"]["cache"]["hit"]


def test_no_cache_and_cache_dir(example: Path, tmp_path: Path) -> None:
    gate(example, cache=False)
    assert _entries(example) == []
    run = gate(example, cache_dir=tmp_path / "elsewhere")
    assert run.report["counts"]["cached"] == 0 and len(list((tmp_path / "elsewhere").rglob("*.json"))) > 7
    assert gate(example, cache_dir=tmp_path / "elsewhere").report["counts"]["cached"] == 7


def test_key_and_what_is_stored(tmp_path: Path) -> None:
    base = cache_key("m", "s", {"seed": 0, "timeout": 1.0})
    assert base == cache_key("m", "s", {"timeout": 1.0, "seed": 0})
    others = [cache_key("m2", "s", {"seed": 0, "timeout": 1.0}), cache_key("m", "s2", {"seed": 0, "timeout": 1.0}),
              cache_key("m", "s", {"seed": 1, "timeout": 1.0}), cache_key("m", "s", {"seed": 0, "timeout": 2.0})]
    assert len({base, *others}) == 5
    assert storable({"verdict": "verified"}, {"cases": []})
    assert not storable({"verdict": "verified"}, None)  # nothing to re-check
    assert storable({"verdict": "falsified", "counterexample": {"x": [0.0]}}, None)
    assert not storable({"verdict": "unknown"}, None)
    cache = GateCache(tmp_path)
    assert cache.put(base, {"verdict": "falsified", "counterexample": {"x": [1.0]}}, None, {})
    assert cache.get(base)["result"]["counterexample"] == {"x": [1.0]}
    assert GateCache(tmp_path, enabled=False).get(base) is None
    assert cache.model_sizes("abc") is None
    cache.store_model_sizes("abc", (4, 3))
    assert cache.model_sizes("abc") == (4, 3)
