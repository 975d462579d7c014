"""The independent checker accepts the certificates of verified runs and rejects mutated ones."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tests import nets
from verify.certcheck import check_certificate
from verify.certcheck.encoding import decode_array, encode_array
from verify.check import CheckOptions, check
from verify.model.network import load_model
from verify.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = """(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const X_2 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (>= X_0 -1)) (assert (<= X_0 1))
(assert (>= X_1 -1)) (assert (<= X_1 1))
(assert (>= X_2 -1)) (assert (<= X_2 1))
(assert (>= Y_0 {bound}))
"""


def _instance(tmp_path: Path) -> tuple[Path, Path, dict]:
    """A 3-16-16-2 net and a property (y0 < bound) that needs input splitting to verify."""
    model_path = nets.mlp(tmp_path / "net.onnx", [3, 16, 16, 2], seed=4)
    model = load_model(model_path)
    x = np.random.default_rng(0).uniform(-1, 1, (20000, 3)).astype(np.float32)
    top = float(model.evaluate(x)[:, 0].max())
    spec_path = tmp_path / "prop.vnnlib"
    spec_path.write_text(SPEC.format(bound=f"{top + 0.05:.6f}"))
    result = check(model, load_spec(spec_path), CheckOptions(timeout=60, falsify=False))
    assert result.verdict == "verified", result.reason
    assert result.certificate is not None
    return model_path, spec_path, result.certificate


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    return _instance(tmp_path_factory.mktemp("cert"))


def _split(cert: dict) -> dict:
    return cert["cases"][0]["input-split"]


def test_certificate_of_a_verified_run_is_valid(instance: tuple[Path, Path, dict]) -> None:
    model_path, spec_path, cert = instance
    assert _split(cert)["tree"]["parent"]["shape"][0] > 1, "the instance should need splitting"
    report = check_certificate(model_path, spec_path, cert)
    assert report.valid, report.message
    assert report.claims_checked >= 2


def test_certificates_are_deterministic(instance: tuple[Path, Path, dict]) -> None:
    model_path, spec_path, cert = instance
    again = check(load_model(model_path), load_spec(spec_path), CheckOptions(timeout=60, falsify=False))
    assert json.dumps(again.certificate, sort_keys=True) == json.dumps(cert, sort_keys=True)


def test_alpha_closures_need_their_slopes(instance: tuple[Path, Path, dict]) -> None:
    """Boxes CROWN left open and alpha-CROWN closed carry their slopes; without them the
    checker's default slopes cannot confirm those closures."""
    model_path, spec_path, cert = instance
    entries = _split(cert).get("alphas", [])
    assert entries, "this instance should have boxes closed by alpha-CROWN"
    bare = copy.deepcopy(cert)
    del _split(bare)["alphas"]
    report = check_certificate(model_path, spec_path, bare)
    assert not report.valid and "recomputed bound" in report.message


def test_a_margin_moved_toward_unsafe_fails(instance: tuple[Path, Path, dict]) -> None:
    model_path, spec_path, cert = instance
    bad = copy.deepcopy(cert)
    closures = _split(bad)["closures"]
    margins = decode_array(closures["margin"])
    margins[0] += 1e-3  # claims the output is 1e-3 farther from the unsafe set than it is
    closures["margin"] = encode_array(margins)
    report = check_certificate(model_path, spec_path, bad)
    assert not report.valid and "claims margin" in report.message


def test_a_split_moved_fails(instance: tuple[Path, Path, dict]) -> None:
    model_path, spec_path, cert = instance
    bad = copy.deepcopy(cert)
    tree = _split(bad)["tree"]
    values = decode_array(tree["value"])
    values[1] -= 1e-3  # one half moves: the two halves no longer tile their parent
    tree["value"] = encode_array(values)
    report = check_certificate(model_path, spec_path, bad)
    assert not report.valid and "two halves" in report.message


def test_a_dropped_closure_fails(instance: tuple[Path, Path, dict]) -> None:
    model_path, spec_path, cert = instance
    bad = copy.deepcopy(cert)
    closures = _split(bad)["closures"]
    for key in ("node", "polytope", "margin"):
        closures[key] = encode_array(decode_array(closures[key])[1:], closures[key]["dtype"])
    report = check_certificate(model_path, spec_path, bad)
    assert not report.valid and "not closed" in report.message


def test_a_changed_weight_fails(instance: tuple[Path, Path, dict], tmp_path: Path) -> None:
    model_path, spec_path, cert = instance
    changed = tmp_path / "changed.onnx"
    model = onnx.load(str(model_path))
    init = model.graph.initializer[-2]  # the last layer's weight
    w = numpy_helper.to_array(init).copy()
    w[0] += 1.0  # raise output 0: the property's margin is gone
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, str(changed))
    report = check_certificate(changed, spec_path, cert)
    assert not report.valid and "sha256" in report.message
    # even with the hash updated, the recomputed bounds refuse the claims
    from verify.model.network import file_sha256

    forged = copy.deepcopy(cert)
    forged["model"]["sha256"] = file_sha256(changed)
    report = check_certificate(changed, spec_path, forged)
    assert not report.valid and "closure" in report.message


def test_a_changed_spec_fails(instance: tuple[Path, Path, dict], tmp_path: Path) -> None:
    model_path, spec_path, cert = instance
    changed = tmp_path / "changed.vnnlib"
    shutil.copy(spec_path, changed)
    changed.write_text(changed.read_text().replace("(assert (<= X_0 1))", "(assert (<= X_0 2))"))
    report = check_certificate(model_path, changed, cert)
    assert not report.valid and "spec" in report.message


def test_relu_split_certificate_and_a_changed_slope(tmp_path: Path) -> None:
    """A 20-input net is verified by ReLU splitting / alpha-CROWN; changing its slopes breaks the claim."""
    model_path = nets.mlp(tmp_path / "wide.onnx", [20, 24, 24, 2], seed=7)
    model = load_model(model_path)
    # for this net (seed 7): PGD finds y0 up to about 0.22, alpha-CROWN bounds it by 0.83,
    # so "y0 >= 0.6 is unreachable" holds and needs ReLU splits
    lines = [f"(declare-const X_{i} Real)" for i in range(20)] + ["(declare-const Y_0 Real)",
                                                                  "(declare-const Y_1 Real)"]
    lines += [f"(assert (>= X_{i} -0.3)) (assert (<= X_{i} 0.3))" for i in range(20)]
    lines.append("(assert (>= Y_0 0.6))")
    spec_path = tmp_path / "wide.vnnlib"
    spec_path.write_text("\n".join(lines) + "\n")
    result = check(model, load_spec(spec_path), CheckOptions(timeout=60, falsify=False))
    assert result.verdict == "verified", result.reason
    cert = result.certificate
    assert cert is not None and cert["cases"][0]["kind"] == "relu-split"
    assert check_certificate(model_path, spec_path, cert).valid
    body = cert["cases"][0]["relu-split"]
    assert body["children_bounds"] == "parent"  # the children keep their parent's hidden bounds
    # betas are nonzero on split neurons only, so split closures store them sparse
    split_closures = [e for t in body["trees"] for e in t["closures"] if e["node"] > 0]
    assert split_closures and all("index" in b for e in split_closures for b in e["betas"])
    odd = copy.deepcopy(cert)
    odd["cases"][0]["relu-split"]["children_bounds"] = "guessed"
    report = check_certificate(model_path, spec_path, odd)
    assert not report.valid and "children_bounds" in report.message
    bad = copy.deepcopy(cert)
    closure = bad["cases"][0]["relu-split"]["trees"][-1]["closures"][0]
    closure["alphas"] = [encode_array(1.0 - decode_array(a)) for a in closure["alphas"]]
    closure["margin"] = float(closure["margin"])
    report = check_certificate(model_path, spec_path, bad)
    if report.valid:
        # the slopes did not matter for this closure: claim a larger margin instead
        closure["margin"] = float(closure["margin"]) + 1e-3
        report = check_certificate(model_path, spec_path, bad)
    assert not report.valid


def test_bundled_example_certificate(tmp_path: Path) -> None:
    model_path = ROOT / "examples" / "tiny" / "classifier.onnx"
    spec_path = ROOT / "specs" / "tiny_robust_class0.vnnlib"
    result = check(load_model(model_path), load_spec(spec_path), CheckOptions(timeout=30))
    assert result.verdict == "verified" and result.certificate is not None
    assert check_certificate(model_path, spec_path, result.certificate).valid
