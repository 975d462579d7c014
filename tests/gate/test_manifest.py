"""verify.gate.manifest: the example manifest, pyproject.toml, and errors that name file, table and key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.gate.conftest import write_manifest
from verify.errors import ManifestError
from verify.gate.manifest import FamilyEntry, find_manifest, load_manifest, read_family_rows

MODEL = '[models]\ntiny = "examples/tiny/classifier.onnx"\n'
PROP = '[[properties]]\nname = "p"\nspec = "specs/tiny_robust_class0.vnnlib"\n'


def test_repository_manifest() -> None:
    m = load_manifest(ROOT / "verify.toml")
    assert list(m.models) == ["tiny"] and m.models["tiny"].path == ROOT / "examples/tiny/classifier.onnx"
    names = {p.name: p for p in m.properties}
    assert set(names) == {"class0-robust", "class1-robust", "class2-output-range", "class0-robust-wide"}
    assert names["class0-robust-wide"].require == "none" and names["class0-robust"].require == "verified"
    assert all(p.timeout == 10 and p.models == ("tiny",) for p in m.properties)
    (fam,) = m.families
    assert fam.eps == 0.02 and fam.clip == (0.0, 1.0) and fam.min_verified_rate == 1.0 and fam.label_column == -1


def test_pyproject_tool_verify(example: Path) -> None:
    text = "[project]\nname = 'x'\n\n[tool.verify]\ntimeout = 5\nrequire = 'not-falsified'\n\n" \
           "[tool.verify.models]\ntiny = 'examples/tiny/classifier.onnx'\n\n" \
           "[[tool.verify.properties]]\nname = 'p'\nspec = 'specs/tiny_robust_class0.vnnlib'\n"
    path = write_manifest(example, text, "pyproject.toml")
    (example / "verify.toml").unlink()
    assert find_manifest(example) == path
    m = load_manifest(path)
    assert m.properties[0].timeout == 5 and m.properties[0].require == "not-falsified"
    # a pyproject without the table is not a manifest
    write_manifest(example, "[project]\nname = 'x'\n", "pyproject.toml")
    with pytest.raises(ManifestError, match="no manifest"):
        find_manifest(example)
    with pytest.raises(ManifestError, match=r"no \[tool.verify\] table"):
        load_manifest(path)


def test_verify_toml_wins_over_pyproject(example: Path) -> None:
    write_manifest(example, "[tool.verify]\n", "pyproject.toml")
    assert find_manifest(example) == example / "verify.toml"


@pytest.mark.parametrize("text, message", [
    ("timout = 3\n" + MODEL + PROP, r"top level: unknown key 'timout' \(did you mean 'timeout'\?\); expected one of"),
    (MODEL + PROP + "spek = 'x'\n",
     r"\[\[properties\]\] #1 \('p'\): unknown key 'spek' \(did you mean 'spec'\?\)"),
    (MODEL + PROP + PROP, r"\[\[properties\]\] #2: duplicate name 'p' \(already used by \[\[properties\]\] #1\)"),
    (MODEL + PROP + '[[families]]\nname = "p"\ndata = "examples/tiny/points.npy"\neps = 0.1\n',
     r"\[\[families\]\] #1: duplicate name 'p' \(already used by \[\[properties\]\] #1\)"),
    (MODEL + '[[properties]]\nname = "p"\nspec = "specs/missing.vnnlib"\n',
     r"\('p'\): spec: file not found: specs/missing.vnnlib \(paths are relative to"),
    ('[models]\ntiny = "nope.onnx"\n' + PROP, r"\[models\]: model 'tiny': file not found: nope.onnx"),
    (PROP, r"\[models\]: missing"),
    (MODEL, "no properties"),
    (MODEL + PROP + 'require = "maybe"\n', r"key 'require': expected one of 'verified', 'not-falsified', 'none'"),
    (MODEL + PROP + "timeout = -1\n", r"key 'timeout': expected a number of seconds > 0, got -1"),
    (MODEL + PROP + 'model = "other"\n', r"model 'other' is not in \[models\]; known: tiny"),
    (MODEL + '[[properties]]\nname = "bad name"\nspec = "specs/tiny_robust_class0.vnnlib"\n', "name 'bad name'"),
    (MODEL + '[[properties]]\nspec = "specs/tiny_robust_class0.vnnlib"\n', "missing key 'name'"),
    (MODEL + '[[families]]\nname = "f"\ndata = "examples/tiny/points.npy"\n', r"key 'eps': expected a number >= 0"),
    (MODEL + '[[families]]\nname = "f"\ndata = "examples/tiny/points.npy"\neps = 0.1\nclip = [1, 0]\n',
     r"key 'clip': expected \[low, high\]"),
    (MODEL + '[[families]]\nname = "f"\ndata = "examples/tiny/points.npy"\neps = 0.1\nmin-verified-rate = 2\n',
     r"key 'min-verified-rate': expected a fraction in \[0, 1\]"),
    (MODEL + '[[families]]\nname = "f"\ndata = "specs/tiny_output_range.py"\neps = 0.1\n',
     r"key 'data': expected a .npy or .csv file"),
    ("models = [\n", "not valid TOML"),
])
def test_errors_name_file_table_and_key(example: Path, text: str, message: str) -> None:
    path = write_manifest(example, text)
    with pytest.raises(ManifestError, match=message) as info:
        load_manifest(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_models_as_a_list_and_property_models(example: Path) -> None:
    path = write_manifest(example, 'models = ["examples/tiny/classifier.onnx"]\n' + PROP + 'models = ["classifier"]\n')
    m = load_manifest(path)
    assert list(m.models) == ["classifier"] and m.properties[0].models == ("classifier",)


def _family(path: Path, **kw: object) -> FamilyEntry:
    return FamilyEntry("f", path, 0.1, ("tiny",), 1.0, "verified", **kw)  # type: ignore[arg-type]


def test_family_rows_npy_and_csv(tmp_path: Path) -> None:
    table = np.array([[0.1, 0.2, 0.3, 0.4, 2], [0.5, 0.6, 0.7, 0.8, 0]])
    np.save(tmp_path / "d.npy", table)
    centres, labels = read_family_rows(_family(tmp_path / "d.npy"), tmp_path / "verify.toml", 4, 3)
    assert centres.shape == (2, 4) and labels.tolist() == [2, 0] and centres[1, 3] == 0.8
    (tmp_path / "d.csv").write_text("label,a,b,c,d\n# a comment\n2,0.1,0.2,0.3,0.4\n0,0.5,0.6,0.7,0.8\n")
    centres, labels = read_family_rows(_family(tmp_path / "d.csv", label_column=0, limit=1),
                                       tmp_path / "verify.toml", 4, 3)
    assert centres.tolist() == [[0.1, 0.2, 0.3, 0.4]] and labels.tolist() == [2]


@pytest.mark.parametrize("table, message", [
    ([[0.1, 0.2, 0.3, 0.4, 3]], r"row 0 of .* has label 3; expected a class index 0..2"),
    ([[0.1, 0.2, 0.3, 0.4, 0.5]], r"has label 0.5"),
    ([[0.1, 0.2, 0.3, 1]], r"has 4 columns; expected 5 \(the model's 4 inputs plus the label column\)"),
    ([[0.1, np.nan, 0.3, 0.4, 1]], "row 0 .* NaN"),
])
def test_family_rows_errors(tmp_path: Path, table: list, message: str) -> None:
    np.save(tmp_path / "d.npy", np.array(table))
    with pytest.raises(ManifestError, match=message):
        read_family_rows(_family(tmp_path / "d.npy"), tmp_path / "verify.toml", 4, 3)


def test_family_csv_with_a_ragged_line(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("0.1,0.2,0.3,0.4,1\n0.1,0.2,1\n")
    with pytest.raises(ManifestError, match="data line 2 has 3 values"):
        read_family_rows(_family(tmp_path / "d.csv"), tmp_path / "verify.toml", 4, 3)
