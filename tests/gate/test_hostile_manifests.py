"""Hostile and broken gate manifests (issue 23): through ``verify gate``, each is one line
on stderr naming the manifest file and the key, exit 2, nothing run; never a traceback,
never exit 4, never a hang."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from verify.cli import main

MODEL = '[models]\ntiny = "examples/tiny/classifier.onnx"\n'
PROP = '[[properties]]\nname = "p"\nspec = "specs/tiny_robust_class0.vnnlib"\n'
FAMILY = '[[families]]\nname = "f"\ndata = "examples/tiny/points.npy"\neps = 0.02\n'


def _gate_error(example: Path, capsys: pytest.CaptureFixture[str], text: str | bytes) -> str:
    path = example / "hostile.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    code = main(["gate", "--manifest", str(path), "--no-cache", "--cache-dir", str(example / "cache"), "--quiet"])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("verify: error: "), (code, err[:500])
    assert str(path) in lines[0] and out == ""
    return lines[0]


@pytest.mark.parametrize("value", ["1e308", "inf", "-inf", "nan", "-1", "0", "1e7", "1" + "0" * 19,
                                   "123456789012345678901234567890", '"10"', "true", "[1]", "1979-05-27"])
@pytest.mark.parametrize("where", ["top", "property", "family"])
def test_timeouts(example: Path, capsys: pytest.CaptureFixture[str], value: str, where: str) -> None:
    text = {"top": f"timeout = {value}\n" + MODEL + PROP,
            "property": MODEL + PROP + f"timeout = {value}\n",
            "family": MODEL + FAMILY + f"timeout = {value}\n"}[where]
    line = _gate_error(example, capsys, text)
    assert "timeout" in line


@pytest.mark.parametrize("key, value, says", [
    ("min-verified-rate", "1.5", "min-verified-rate"), ("min-verified-rate", "-0.1", "min-verified-rate"),
    ("min-verified-rate", "nan", "min-verified-rate"), ("min-verified-rate", "'high'", "min-verified-rate"),
    ("eps", "-0.1", "'eps'"), ("eps", "nan", "'eps'"), ("eps", "inf", "'eps'"), ("eps", "1" * 400 + ".0", "'eps'"),
    ("clip", "[0, nan]", "'clip'"), ("clip", "[-inf, inf]", "'clip'"), ("clip", "[1, 0]", "'clip'"),
    ("clip", "[0, 1e400]", "'clip'"), ("limit", "0", "'limit'"), ("limit", "9223372036854775807", "'limit'"),
    ("label-column", "1.5", "'label-column'"), ("description", "5", "'description'"),
    ("model", "[1]", "model"), ("models", "[{a = 1}]", "model"), ("spek", "1", "unknown key 'spek'"),
])
def test_family_values(example: Path, capsys: pytest.CaptureFixture[str], key: str, value: str, says: str) -> None:
    base = FAMILY.replace("eps = 0.02\n", "") if key == "eps" else FAMILY
    line = _gate_error(example, capsys, MODEL + base + f"{key} = {value}\n")
    assert says in line and "[[families]] #1" in line, line


@pytest.mark.parametrize("text, says", [
    ("seed = " + "9" * 5000 + "\n" + MODEL + PROP, "integer of 5000 digits"),
    ("seed = -1\n" + MODEL + PROP, "'seed'"),
    ("seed = 99999999999999999\n" + MODEL + PROP, "'seed'"),
    ("x = " + "[" * 5000 + "]" * 5000 + "\n" + MODEL + PROP, "nested more than"),
    ("x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n" + MODEL + PROP, "nested more than"),
    ("timout = 3\n" + MODEL + PROP, "unknown key 'timout'"),
    (MODEL + PROP + "description = [1]\n", "'description'"),
    (MODEL + PROP + "require = ['verified']\n", "'require'"),
    (MODEL + PROP + "model = {a = 1}\n", "model"),
    (MODEL.replace('"examples', '"' + "x" * 5000 + '/examples') + PROP, "too long"),
    (MODEL.replace('"examples/tiny/classifier.onnx"', '"examples"') + PROP, "directory"),
    (MODEL.replace('"examples/tiny/classifier.onnx"', '"a\\u0000b"') + PROP, "NUL"),
    (MODEL + PROP.replace('"specs/tiny_robust_class0.vnnlib"', '"specs"'), "directory"),
])
def test_manifest_values(example: Path, capsys: pytest.CaptureFixture[str], text: str, says: str) -> None:
    assert says in _gate_error(example, capsys, text)


def test_not_utf8(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "not UTF-8" in _gate_error(example, capsys, b"timeout = 3\n\xff\xfe\n" + (MODEL + PROP).encode())


def test_data_files_that_are_not_regular(example: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    os.mkfifo(example / "fifo.npy")
    (example / "dir.csv").mkdir()
    for data, says in (("fifo.npy", "named pipe"), ("dir.csv", "directory"), ("missing.csv", "file not found")):
        line = _gate_error(example, capsys, MODEL + FAMILY.replace("examples/tiny/points.npy", data))
        assert says in line and "[[families]] #1 ('f'): data" in line, line
    monkeypatch.setenv("VERIFY_MAX_DATA_BYTES", "10")
    assert "more than the limit of 10" in _gate_error(example, capsys, MODEL + FAMILY)


def test_broken_data_files(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (example / "bad.csv").write_bytes(b"0.1,0.2,0.3,0.4,0\n\xff,1,2,3,0\n")
    (example / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00" + b"garbage" * 10)
    for data, says in (("bad.csv", "not UTF-8"), ("bad.npy", "cannot read")):
        line = _gate_error(example, capsys, MODEL + FAMILY.replace("examples/tiny/points.npy", data))
        assert says in line and "family 'f'" in line, line
