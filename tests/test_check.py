"""``verify.check`` end to end: hand-checkable nets and ACAS Xu instances of each verdict."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests import nets
from tests.conftest import SHARED
from verify.check import CheckOptions, check, decision_threshold
from verify.model.network import load_model
from verify.spec import load_spec, parse_vnnlib

ABS_SPEC = """(declare-const X_0 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (>= X_0 -2))
(assert (<= X_0 3))
(assert (<= Y_0 {bound}))
"""


def test_abs_net_hand_checkable(abs_net_path: Path) -> None:
    """y0 = |x| on [-2, 3]: y0 <= -0.5 is unreachable; y0 <= 0.5 is reachable (x near 0)."""
    model = load_model(abs_net_path)
    holds = parse_vnnlib(ABS_SPEC.format(bound="-0.5"))
    result = check(model, holds, CheckOptions(timeout=20))
    assert result.verdict == "verified" and result.margin is not None and result.margin > 0.4
    fails = parse_vnnlib(ABS_SPEC.format(bound="0.5"))
    result = check(model, fails, CheckOptions(timeout=20))
    assert result.verdict == "falsified"
    assert abs(result.counterexample.x[0]) <= 0.5 and result.counterexample.y[0] <= 0.5


def test_boundary_case_is_not_verified(abs_net_path: Path) -> None:
    """y0 = |x| <= 0 is reachable exactly at x = 0: never 'verified' (margin 0 is not trusted)."""
    result = check(load_model(abs_net_path), parse_vnnlib(ABS_SPEC.format(bound="0")), CheckOptions(timeout=10))
    assert result.verdict == "falsified"
    result = check(load_model(abs_net_path), parse_vnnlib(ABS_SPEC.format(bound="0")),
                   CheckOptions(timeout=5, falsify=False))
    assert result.verdict == "unknown"


def test_decision_threshold_grows_with_scale() -> None:
    assert decision_threshold(0.0) == pytest.approx(1e-7)
    assert decision_threshold(1e6) > decision_threshold(1.0) > 1e-7


def test_random_mlps_never_contradict_sampling(tmp_path: Path) -> None:
    """Verified only where sampling finds nothing; falsified only with a real witness."""
    rng = np.random.default_rng(5)
    for seed in range(4):
        path = nets.mlp(tmp_path / f"m{seed}.onnx", [3, 10, 10, 2], seed=seed)
        model = load_model(path)
        xs = rng.uniform(-1, 1, (5000, 3)).astype(np.float32)
        ys = model.evaluate(xs)
        bound = float(np.quantile(ys[:, 0] - ys[:, 1], 0.02))
        lines = [f"(declare-const X_{i} Real)" for i in range(3)] + ["(declare-const Y_0 Real)",
                                                                     "(declare-const Y_1 Real)"]
        lines += [f"(assert (>= X_{i} -1)) (assert (<= X_{i} 1))" for i in range(3)]
        for b in (bound, bound - 1.0):
            prop = parse_vnnlib("\n".join(lines + [f"(assert (<= (- Y_0 Y_1) {b:.6f}))"]))
            result = check(model, prop, CheckOptions(timeout=20))
            sampled_unsafe = bool(np.any(ys[:, 0] - ys[:, 1] <= b))
            if sampled_unsafe:
                assert result.verdict != "verified"
            if result.verdict == "falsified":
                cex = result.counterexample
                assert prop.is_counterexample(cex.x, model.evaluate(cex.x[None])[0])


def _acas_rows() -> list[dict]:
    path = SHARED / "acasxu" / "expected.csv"
    if not path.exists():
        pytest.skip("../shared/benchmarks/acasxu is missing")
    return list(csv.DictReader(open(path)))


# fast instances of each kind: (index, expected verdict)
ACAS_CASES = [(150, "verified"), (8, "verified"), (185, "verified"), (60, "falsified"), (50, "falsified"),
              (183, "falsified")]


@pytest.mark.parametrize("index, verdict", ACAS_CASES)
def test_acasxu_instances(index: int, verdict: str) -> None:
    row = _acas_rows()[index]
    folder = SHARED / "acasxu"
    model = load_model(folder / row["onnx"])
    prop = load_spec(folder / row["vnnlib"])
    result = check(model, prop, CheckOptions(timeout=60))
    assert result.verdict == verdict, (row, result.reason)
    expected = row["expected"]
    assert not (result.verdict == "verified" and expected == "sat")
    assert not (result.verdict == "falsified" and expected == "unsat")
    if verdict == "verified":
        assert result.details["recheck"]["valid"]
    else:
        cex = result.counterexample
        assert prop.is_counterexample(cex.x, model.evaluate(cex.x[None])[0])


def test_acasxu_sat_instances_are_never_verified() -> None:
    """The sat instances with the smallest CROWN gap: a short check must not call them verified."""
    rows = [r for r in _acas_rows() if r["expected"] == "sat"][:6]
    folder = SHARED / "acasxu"
    for row in rows:
        result = check(load_model(folder / row["onnx"]), load_spec(folder / row["vnnlib"]),
                       CheckOptions(timeout=5, falsify=False))
        assert result.verdict != "verified", row


def _mlp_case(tmp_path: Path, shift: float) -> tuple:
    """A random 3-10-10-2 net and ``y0 - y1 <= q - shift`` on [-1, 1]^3 (q: a low sampled quantile)."""
    path = nets.mlp(tmp_path / "m.onnx", [3, 10, 10, 2], seed=1)
    model = load_model(path)
    xs = np.random.default_rng(0).uniform(-1, 1, (5000, 3)).astype(np.float32)
    ys = model.evaluate(xs)
    bound = float(np.quantile(ys[:, 0] - ys[:, 1], 0.02)) - shift
    lines = [f"(declare-const X_{i} Real)" for i in range(3)] + ["(declare-const Y_0 Real)",
                                                                 "(declare-const Y_1 Real)"]
    lines += [f"(assert (>= X_{i} -1)) (assert (<= X_{i} 1))" for i in range(3)]
    return model, parse_vnnlib("\n".join(lines + [f"(assert (<= (- Y_0 Y_1) {bound:.6f}))"]))


@pytest.mark.parametrize("first_try", [30.0, 0.0])
def test_input_split_goes_before_the_quick_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  first_try: float) -> None:
    """Low-dimensional inputs: a short input split first; the quick search only when it leaves a case open."""
    import verify.check as check_module

    quick_calls: list[bool] = []
    falsify = check_module._Pipeline.falsify

    def recording(self, seconds, prop=None, quick=False):  # type: ignore[no-untyped-def]
        quick_calls.append(quick)
        return falsify(self, seconds, prop, quick)

    monkeypatch.setattr(check_module._Pipeline, "falsify", recording)
    monkeypatch.setattr(check_module, "SPLIT_FIRST_SECONDS", first_try)
    model, prop = _mlp_case(tmp_path, 0.5)
    result = check(model, prop, CheckOptions(timeout=30))
    assert result.details["incomplete"]["open_cases"] == 1, "the example must need branch and bound"
    assert result.verdict == "verified" and result.method == "input-split"
    assert result.details["recheck"]["valid"]
    assert len(result.details["compression"]) == 1
    figures = result.details["compression"][0]
    assert figures["case"] == 0 and figures["relus_after"] <= figures["relus_before"]
    assert (True in quick_calls) == (first_try == 0.0)
