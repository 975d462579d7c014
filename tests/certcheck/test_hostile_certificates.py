"""Hostile and broken certificate input (issue 23): through ``verify certcheck``, every
input error is one line on stderr and exit 2, a well-formed certificate whose claims do
not hold is exit 1; never a traceback, never exit 4, never a hang."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from tests.conftest import ROOT
from verify.cli import main

MODEL = ROOT / "examples" / "tiny" / "classifier.onnx"
SPEC = ROOT / "specs" / "tiny_robust_class0.vnnlib"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from verify.check import CheckOptions, check
    from verify.model.network import load_model
    from verify.spec import load_spec

    result = check(load_model(MODEL), load_spec(SPEC), CheckOptions(timeout=30))
    assert result.verdict == "verified" and result.certificate is not None
    return json.loads(json.dumps(result.certificate))


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main(["certcheck", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def _input_error(capsys: pytest.CaptureFixture[str], *argv: object) -> str:
    code, _, err = _run(capsys, *argv)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("verify: error: "), (code, err[:500])
    assert "Traceback" not in err
    return lines[0]


def _write(tmp_path: Path, obj: object, name: str = "cert.json") -> Path:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def test_the_real_certificate_is_valid(cert: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, MODEL, SPEC, _write(tmp_path, cert))
    assert code == 0 and out.startswith("VALID")


def test_deep_nesting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _input_error(capsys, MODEL, SPEC, _write(tmp_path, "[" * 50_000 + "]" * 50_000))
    assert "cert.json" in line and "nested more than" in line


def test_a_huge_integer_literal(cert: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = json.dumps(cert).replace('"version": 1', '"version": ' + "1" * 5000, 1)
    line = _input_error(capsys, MODEL, SPEC, _write(tmp_path, text))
    assert "integer literal of 5000 digits" in line


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers(cert: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str], literal: str) -> None:
    bad = copy.deepcopy(cert)
    bad["cases"][0]["extra"] = "PLACEHOLDER"
    text = json.dumps(bad).replace('"PLACEHOLDER"', literal)
    line = _input_error(capsys, MODEL, SPEC, _write(tmp_path, text))
    assert "not a JSON certificate" in line


@pytest.mark.parametrize("edit, where", [
    (lambda c: c.__setitem__("model", "x"), "model: expected an object"),
    (lambda c: c.__setitem__("cases", [1]), "cases[0]: expected an object"),
    (lambda c: c.__setitem__("cases", {}), "cases: expected a list"),
    (lambda c: c["cases"][0]["input-split"].__setitem__("tree", []), "cases[0].input-split.tree: expected an object"),
    (lambda c: c["cases"][0]["input-split"]["tree"].pop("dim"), "cases[0].input-split.tree: missing key 'dim'"),
    (lambda c: c["cases"][0]["input-split"]["closures"]["margin"].__setitem__("base64", 5),
     "cases[0].input-split.closures.margin: expected base64 text"),
    (lambda c: c["cases"][0]["input-split"]["tree"]["parent"].__setitem__("shape", [10**12]),
     "cases[0].input-split.tree.parent: bad shape"),
    (lambda c: c["cases"][0].__setitem__("case", True), "cases[0].case: expected a whole number"),
    (lambda c: c["spec"].__setitem__("sha256", None), "spec.sha256: expected a string"),
])
def test_fields_of_the_wrong_type(cert: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: object,
                                  where: str) -> None:
    bad = copy.deepcopy(cert)
    edit(bad)  # type: ignore[operator]
    line = _input_error(capsys, MODEL, SPEC, _write(tmp_path, bad))
    assert f"cert.json: {where}" in line, line


def test_not_utf8_not_json_duplicate_keys(cert: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bytes.json"
    path.write_bytes(b"\xff\xfe{}")
    assert "not UTF-8" in _input_error(capsys, MODEL, SPEC, path)
    assert "line 1 column" in _input_error(capsys, MODEL, SPEC, _write(tmp_path, '{"format": '))
    text = json.dumps(cert).replace('"verdict": "verified"', '"verdict": "verified", "verdict": "verified"')
    assert "duplicate key 'verdict'" in _input_error(capsys, MODEL, SPEC, _write(tmp_path, text))


def test_size_limit(cert: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERIFY_MAX_CERT_BYTES", "100")
    assert "more than the limit of 100" in _input_error(capsys, MODEL, SPEC, _write(tmp_path, cert))


@pytest.mark.parametrize("slot", [0, 1, 2])
def test_paths_that_are_not_regular_files(cert: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          slot: int) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    good = [MODEL, SPEC, _write(tmp_path, cert)]
    for bad, says in ((fifo, "named pipe"), (tmp_path, "directory"), ("x" * 5000, "too long"),
                      (tmp_path / "missing", "not found")):
        argv = list(good)
        argv[slot] = bad
        assert says in _input_error(capsys, *argv)


def test_a_claim_that_does_not_hold_is_exit_1(cert: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = copy.deepcopy(cert)
    bad["model"]["sha256"] = "0" * 64
    code, out, err = _run(capsys, MODEL, SPEC, _write(tmp_path, bad))
    assert code == 1 and out.startswith("INVALID") and "sha256" in out and err == ""
