"""``verify check`` as a user runs it: exit codes, JSON, witnesses, and one-line input errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from tests import nets
from tests.conftest import SHARED

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "tiny" / "classifier.onnx"
HOLDS = ROOT / "specs" / "tiny_robust_class0.vnnlib"
FAILS = ROOT / "specs" / "tiny_robust_class0_wide.vnnlib"
VERIFY = [sys.executable, "-m", "verify.cli"]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "VERIFY_EXAMPLES_DIR": "off"}
    return subprocess.run([*VERIFY, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)


def test_verified_exits_0_with_json() -> None:
    proc = run("check", MODEL, HOLDS, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["verdict"] == "verified" and out["counterexample"] is None
    assert out["margin"] > 0 and out["seconds"] > 0 and out["method"]
    # the incomplete pass closed it: its proof is the root's bound, nothing was compressed
    assert out["incomplete"]["open_cases"] == 0 and "compression" not in out


def test_falsified_exits_1_with_a_replayed_witness(tmp_path: Path) -> None:
    witness = tmp_path / "cex.txt"
    proc = run("check", MODEL, FAILS, "--json", "--witness", witness)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    cex = out["counterexample"]
    assert out["verdict"] == "falsified" and len(cex["x"]) == 4 and len(cex["y"]) == 3
    text = witness.read_text()
    assert text.startswith("((X_0 ") and "(Y_2 " in text
    # the witness values round-trip and really violate the property on onnxruntime
    from verify.model.network import load_model
    from verify.spec import load_spec

    xs = [float(line.split()[1].rstrip(")")) for line in text.split("\n") if "(X_" in line]
    model = load_model(MODEL)
    y = model.evaluate(np.array([xs], dtype=np.float32))[0]
    assert load_spec(FAILS).is_counterexample(np.array(xs, dtype=np.float32), y)


def test_certificate_file_is_written_and_checkable(tmp_path: Path) -> None:
    cert = tmp_path / "cert.json"
    proc = run("check", MODEL, HOLDS, "--certificate", cert)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(cert.read_text())["format"] == "verify-certificate"
    proc = run("certcheck", MODEL, HOLDS, cert)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_text_output_says_the_verdict() -> None:
    proc = run("check", MODEL, HOLDS)
    assert proc.returncode == 0 and proc.stdout.startswith("VERIFIED")


def test_timeout_is_honoured_and_exits_3() -> None:
    folder = SHARED / "acasxu"
    if not folder.exists():
        pytest.skip("../shared/benchmarks/acasxu is missing")
    start = time.monotonic()
    proc = run("check", folder / "onnx" / "ACASXU_run2a_4_2_batch_2000.onnx", folder / "vnnlib" / "prop_2.vnnlib",
               "--timeout", "4", "--json", "--no-falsify")
    elapsed = time.monotonic() - start
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["verdict"] == "unknown"
    assert elapsed <= 4 * 1.1 + 0.3, elapsed  # the process, start-up included


def input_error(proc: subprocess.CompletedProcess) -> str:
    """The single stderr line of an input error (exit 2, no traceback), or a description of what came instead."""
    lines = proc.stderr.strip().splitlines()
    if proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr:
        return lines[0]
    print(proc.stdout, proc.stderr)  # shown by pytest when the assertion fails
    return f"<not a one-line input error: exit {proc.returncode}>"


def spec_file(tmp_path: Path, body: str, n_in: int = 4, n_out: int = 3) -> Path:
    lines = [f"(declare-const X_{i} Real)" for i in range(n_in)] + [f"(declare-const Y_{i} Real)" for i in range(n_out)]
    path = tmp_path / "spec.vnnlib"
    path.write_text("\n".join(lines) + "\n" + body)
    return path


BOX = "".join(f"(assert (>= X_{i} 0.1))\n(assert (<= X_{i} 0.2))\n" for i in range(4))


def test_malformed_vnnlib_names_file_line_column(tmp_path: Path) -> None:
    path = spec_file(tmp_path, BOX + "(assert (<= Y_0 Y_1)\n")
    line = input_error(run("check", MODEL, path))
    assert f"{path}:16:" in line and "expected ')'" in line, line


def test_undeclared_variable(tmp_path: Path) -> None:
    path = spec_file(tmp_path, BOX + "(assert (<= Y_7 Y_1))\n")
    line = input_error(run("check", MODEL, path))
    assert "undeclared variable 'Y_7'" in line and ":16:13:" in line, line


def test_spec_sizes_must_match_the_model(tmp_path: Path) -> None:
    path = spec_file(tmp_path, BOX.replace("X_3", "X_2") + "(assert (<= Y_0 Y_1))\n", n_in=3)
    line = input_error(run("check", MODEL, path))
    assert "declares 3 inputs" in line and "has 4" in line, line
    path = spec_file(tmp_path, BOX + "(assert (<= Y_0 Y_1))\n", n_out=5)
    line = input_error(run("check", MODEL, path))
    assert "declares 5 outputs" in line and "has 3" in line, line


def test_lower_greater_than_upper(tmp_path: Path) -> None:
    path = spec_file(tmp_path, BOX.replace("(>= X_2 0.1)", "(>= X_2 0.9)") + "(assert (<= Y_0 Y_1))\n")
    line = input_error(run("check", MODEL, path))
    assert "X_2" in line and "greater than" in line, line


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    assert "not found" in input_error(run("check", tmp_path / "none.onnx", HOLDS))
    assert "not found" in input_error(run("check", MODEL, tmp_path / "none.vnnlib"))
    assert "directory" in input_error(run("check", MODEL, tmp_path))
    binary = tmp_path / "binary.vnnlib"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert "not a text file" in input_error(run("check", MODEL, binary))


def test_corrupt_onnx(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x0a\x05hello\x12\xff\xffnot a model")
    assert str(bad) in input_error(run("check", bad, HOLDS))


def test_nan_weights(tmp_path: Path) -> None:
    w = np.ones((4, 3))
    w[2, 1] = np.nan
    path = nets.save([helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")], {"w": w}, [1, 4], [1, 3],
                     tmp_path / "nan.onnx")
    assert "NaN or infinite" in input_error(run("check", path, HOLDS))


def test_unsupported_operator(tmp_path: Path) -> None:
    path = nets.save([helper.make_node("Hardmax", ["x"], ["y"], name="probabilities")], {}, [1, 4], [1, 4],
                     tmp_path / "hardmax.onnx")
    spec = spec_file(tmp_path, BOX + "(assert (<= Y_0 Y_1))\n", n_out=4)
    line = input_error(run("check", path, spec))
    assert "'Hardmax'" in line and "'probabilities'" in line, line


def test_usage_errors_exit_2() -> None:
    proc = run("check", MODEL)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = run("check", MODEL, HOLDS, "--timeout", "-3")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


# --- several specs: a directory, a pattern or a list, one model load, a summary table ---


def spec_dir(tmp_path: Path, *specs: Path) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    for spec in specs:
        shutil.copy(spec, folder / spec.name)
    return folder


def table(stdout: str) -> dict[str, list[str]]:
    """The summary table's rows by spec name (the cells split on runs of spaces), and its totals line."""
    lines = stdout.rstrip("\n").split("\n")
    start = max(i for i, line in enumerate(lines) if line.startswith("spec ") and "verdict" in line)
    rows = {Path(line.split()[0]).name: line.split(maxsplit=5) for line in lines[start + 1:-1]}
    return {**rows, "totals": [lines[-1]]}


def test_a_directory_of_specs_gives_a_summary_table(tmp_path: Path) -> None:
    folder = spec_dir(tmp_path, HOLDS, FAILS)
    (folder / "notes.txt").write_text("not a spec")  # only *.vnnlib and *.py are taken
    proc = run("check", MODEL, folder)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = table(proc.stdout)
    assert set(rows) == {HOLDS.name, FAILS.name, "totals"}
    assert rows[HOLDS.name][1:3] == ["VERIFIED", "IBP"] and float(rows[HOLDS.name][3]) > 0
    assert rows[FAILS.name][1] == "FALSIFIED" and rows[FAILS.name][3] == "n/a"
    assert rows["totals"][0].startswith("verified 1, falsified 1, unknown 0, errors 0, total ")
    assert rows["totals"][0].endswith(" s")
    # each spec's own report comes first, in order (sorted by name), as for a single spec
    holds, fails = folder / HOLDS.name, folder / FAILS.name
    assert proc.stdout.index(f"VERIFIED  {holds}") < proc.stdout.index(f"FALSIFIED  {fails}")
    assert "counterexample (replayed on the original model):" in proc.stdout
    assert f"[1/2] {folder / HOLDS.name}" in proc.stderr and "Traceback" not in proc.stderr


def test_a_quoted_glob_is_expanded_by_verify_and_json_lists_the_results(tmp_path: Path) -> None:
    folder = spec_dir(tmp_path, HOLDS, FAILS)
    (folder / "other.py").write_text("not matched by the pattern")
    proc = run("check", MODEL, str(folder / "*.vnnlib"), "--json", "--quiet")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr == ""
    out = json.loads(proc.stdout)
    assert [r["spec"] for r in out["results"]] == [str(folder / HOLDS.name), str(folder / FAILS.name)]
    verified, falsified = out["results"]
    assert verified["verdict"] == "verified" and verified["margin"] > 0 and verified["counterexample"] is None
    assert falsified["verdict"] == "falsified" and len(falsified["counterexample"]["x"]) == 4
    # each result is the object a single-spec --json prints
    single = json.loads(run("check", MODEL, HOLDS, "--json").stdout)
    assert set(verified) == set(single)
    summary = out["summary"]
    assert {k: summary[k] for k in ("verified", "falsified", "unknown", "errors", "specs")} == \
        {"verified": 1, "falsified": 1, "unknown": 0, "errors": 0, "specs": 2}
    assert summary["seconds"] > 0


def test_a_bad_spec_among_good_ones_is_an_error_row_and_the_others_are_checked(tmp_path: Path) -> None:
    folder = spec_dir(tmp_path, HOLDS)
    malformed = folder / "a_malformed.vnnlib"
    malformed.write_text(spec_file(tmp_path, BOX + "(assert (<= Y_0 Y_1)\n").read_text())
    too_small = folder / "b_three_inputs.vnnlib"
    too_small.write_text(spec_file(tmp_path, BOX.replace("X_3", "X_2") + "(assert (<= Y_0 Y_1))\n",
                                   n_in=3).read_text())
    proc = run("check", MODEL, folder, FAILS, tmp_path / "missing.vnnlib", "--quiet")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    rows = table(proc.stdout)
    assert rows[malformed.name][1:5] == ["ERROR", "-", "-", "-"]
    assert f"{malformed}:16:" in rows[malformed.name][5] and "expected ')'" in rows[malformed.name][5]
    assert rows[too_small.name][1] == "ERROR" and "declares 3 inputs" in rows[too_small.name][5]
    assert rows["missing.vnnlib"][1] == "ERROR" and "not found" in rows["missing.vnnlib"][5]
    assert rows[HOLDS.name][1] == "VERIFIED" and rows[FAILS.name][1] == "FALSIFIED"
    assert rows["totals"][0].startswith("verified 1, falsified 1, unknown 0, errors 3, total ")
    assert "Traceback" not in proc.stderr
    out = json.loads(run("check", MODEL, malformed, HOLDS, "--json", "--quiet").stdout)
    assert out["results"][0]["verdict"] == "error" and "expected ')'" in out["results"][0]["error"]
    assert out["results"][1]["verdict"] == "verified" and out["summary"]["errors"] == 1


def test_a_directory_or_pattern_without_specs_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    line = input_error(run("check", MODEL, tmp_path / "empty"))
    assert "no spec files" in line and str(tmp_path / "empty") in line, line
    line = input_error(run("check", MODEL, HOLDS, str(tmp_path / "*.vnnlib")))
    assert "no spec files match" in line and "*.vnnlib" in line, line


def test_witness_and_certificate_take_one_spec(tmp_path: Path) -> None:
    for flag in ("--witness", "--certificate"):
        line = input_error(run("check", MODEL, HOLDS, FAILS, flag, tmp_path / "out"))
        assert flag in line and "one spec" in line, line
    assert not (tmp_path / "out").exists()


def test_one_spec_file_gives_the_single_report_unchanged() -> None:
    proc = run("check", MODEL, HOLDS)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.rstrip("\n").split("\n")
    assert lines[0] == f"VERIFIED  {HOLDS} on {MODEL}"
    assert lines[1].startswith("  method: IBP   margin: 12.1581   time: ") and lines[1].endswith(" s")
    assert not any(line.startswith(("spec ", "verified ")) for line in lines)
    assert "[1/1]" not in proc.stderr
    assert "results" not in json.loads(run("check", MODEL, HOLDS, "--json").stdout)


def test_the_model_is_loaded_once_for_several_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import verify.commands.check as check_cmd
    import verify.model.network as network
    from verify.cli import main

    loads: list[str] = []
    real = network.load_model

    def counting_load_model(source: object, *args: object, **kwargs: object) -> object:
        loads.append(str(source))
        return real(source, *args, **kwargs)

    monkeypatch.setattr(network, "load_model", counting_load_model)
    monkeypatch.setattr(check_cmd, "PROCESS_START", time.monotonic())  # this process started long ago
    monkeypatch.setenv("VERIFY_EXAMPLES_DIR", "off")
    folder = spec_dir(tmp_path, HOLDS, FAILS, ROOT / "specs" / "tiny_output_range.py")
    assert main(["check", str(MODEL), str(folder), "--quiet", "--timeout", "300"]) == 1
    assert loads == [str(MODEL)]
    rows = table(capsys.readouterr().out)
    assert [rows[name][1] for name in (HOLDS.name, FAILS.name, "tiny_output_range.py")] == \
        ["VERIFIED", "FALSIFIED", "VERIFIED"]


def test_timeouts_in_a_batch_do_not_stop_the_next_specs() -> None:
    folder = SHARED / "acasxu"
    if not folder.exists():
        pytest.skip("../shared/benchmarks/acasxu is missing")
    specs = [folder / "vnnlib" / f"prop_{k}.vnnlib" for k in (2, 3)]
    start = time.monotonic()
    proc = run("check", folder / "onnx" / "ACASXU_run2a_4_2_batch_2000.onnx", *specs,
               "--timeout", "2", "--json", "--no-falsify", "--quiet")
    elapsed = time.monotonic() - start
    out = json.loads(proc.stdout)
    assert [r["spec"] for r in out["results"]] == [str(s) for s in specs], proc.stderr
    assert out["results"][0]["verdict"] == "unknown" and out["results"][0]["reason"] == "timeout"
    assert out["results"][1]["verdict"] in ("verified", "unknown")
    assert proc.returncode == (3 if "unknown" in {r["verdict"] for r in out["results"]} else 0)
    # the first spec's clock starts with the process, the second's when it starts; the
    # process does not wait for the abandoned computation at its end
    assert out["results"][1]["seconds"] <= 2 * 1.1 + 0.3
    assert elapsed <= out["summary"]["seconds"] + 5, (elapsed, out["summary"])
