"""``verify falsify``: exit codes, JSON, witness file, determinism, the example database."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from verify.cli import main
from verify.model.network import load_model
from verify.spec import load_spec


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["falsify", *args])
    return code, capsys.readouterr().out


def _witness_x(path: Path) -> np.ndarray:
    values = {}
    for line in path.read_text().split("\n"):
        if not line.strip():
            continue
        name, value = line.strip(" ()").split()
        values[name] = float(value)
    return np.array([values[f"X_{i}"] for i in range(sum(k.startswith("X_") for k in values))], dtype=np.float32)


def test_found_exits_1_with_a_valid_witness(capsys: pytest.CaptureFixture[str], tiny_model_path: Path,
                                            tmp_path: Path) -> None:
    spec = Path(__file__).resolve().parents[2] / "specs" / "tiny_robust_class0_wide.vnnlib"
    witness = tmp_path / "w.txt"
    code, out = _run(capsys, str(tiny_model_path), str(spec), "--json", "--witness", str(witness),
                     "--database", str(tmp_path / "db"))
    assert code == 1
    result = json.loads(out)
    assert result["result"] == "falsified" and result["rejected_by_replay"] == 0
    x = _witness_x(witness)
    np.testing.assert_array_equal(x, np.array(result["counterexample"]["x"], dtype=np.float32))
    model, prop = load_model(tiny_model_path), load_spec(spec)
    assert prop.is_counterexample(x, model.evaluate(x[None])[0])  # the file alone reproduces it
    # the rerun takes it from the database
    code, out = _run(capsys, str(tiny_model_path), str(spec), "--json", "--database", str(tmp_path / "db"))
    assert code == 1 and json.loads(out)["counterexample"].get("from_database") is True


def test_text_output_names_the_method_and_both_witnesses(capsys: pytest.CaptureFixture[str],
                                                         tiny_model_path: Path) -> None:
    spec = Path(__file__).resolve().parents[2] / "specs" / "tiny_robust_class0_wide.vnnlib"
    code, out = _run(capsys, str(tiny_model_path), str(spec), "--no-database", "--methods", "pgd")
    assert code == 1
    assert out.startswith("FALSIFIED") and "found by pgd" in out and "(X_0 " in out and "(Y_2 " in out


def test_not_found_exits_3(capsys: pytest.CaptureFixture[str], tiny_model_path: Path) -> None:
    spec = Path(__file__).resolve().parents[2] / "specs" / "tiny_robust_class0.vnnlib"
    code, out = _run(capsys, str(tiny_model_path), str(spec), "--budget", "0.5", "--no-database", "--json")
    assert code == 3
    result = json.loads(out)
    assert result["result"] == "not_found" and "counterexample" not in result and result["seconds"] < 3


def test_deterministic_for_a_seed(capsys: pytest.CaptureFixture[str], tiny_model_path: Path) -> None:
    spec = Path(__file__).resolve().parents[2] / "specs" / "tiny_robust_class0_wide.vnnlib"
    outs = []
    for _ in range(2):
        code, out = _run(capsys, str(tiny_model_path), str(spec), "--seed", "7", "--no-database", "--json")
        assert code == 1
        outs.append(json.loads(out)["counterexample"])
    assert outs[0] == outs[1]


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str], tiny_model_path: Path, tmp_path: Path) -> None:
    spec = Path(__file__).resolve().parents[2] / "specs" / "tiny_robust_class0.vnnlib"
    with pytest.raises(SystemExit) as info:
        main(["falsify", str(tiny_model_path), str(spec), "--methods", "bogus"])
    assert info.value.code == 2
    assert main(["falsify", str(tmp_path / "missing.onnx"), str(spec)]) == 2
    assert "model file not found" in capsys.readouterr().err
