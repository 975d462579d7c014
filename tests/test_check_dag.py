"""End to end on networks that are not chains of dense layers: ``verify check`` then ``verify certcheck``.

For each fixture network of :mod:`tests.ir.nets` (a residual net, a conv net with pad and
average pooling, a max-pool net, tanh, sigmoid and leaky-ReLU MLPs, a 1-D CNN with Dropout)
two properties on a box around a point ``x0``: ``Y_0 >= t`` is the *unsafe* set, so

* ``holds``: ``t`` is the largest sampled ``Y_0`` plus twice the sampled spread and 0.05 (true
  for these small smooth nets; the certificate, re-derived by the independent checker from
  the ONNX file, is what shows it): the answer must be verified, and ``verify certcheck``
  must accept the certificate;
* ``fails``: ``t`` is the largest ``Y_0`` of a grid of sampled points, less a little: a sampled
  point is a counterexample, so the answer must be falsified, replayed by onnxruntime.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tests.ir import nets
from verify.cli import main
from verify.commands import check as check_command
from verify.ir.onnx_import import graph_from_onnx

NETWORKS = ["residual_net", "conv_pad_avgpool_net", "maxpool_net", "tanh_net", "sigmoid_net", "leaky_relu_net",
            "dropout_cnn1d_net"]
EPS = {"tanh_net": 0.3, "sigmoid_net": 0.5, "leaky_relu_net": 0.3}


def _session(model: object) -> tuple[ort.InferenceSession, list[int]]:
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]
    shape = [d if isinstance(d, int) else 1 for d in s.get_inputs()[0].shape]
    return s, shape


def _outputs(s: ort.InferenceSession, shape: list[int], xs: np.ndarray) -> np.ndarray:
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x.reshape(shape).astype(np.float32)})[0].reshape(1, -1) for x in xs])


def _write_spec(path: Path, x0: np.ndarray, eps: float, n_out: int, t: float) -> Path:
    lines = [f"(declare-const X_{i} Real)" for i in range(x0.size)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    for i, v in enumerate(x0):
        lines += [f"(assert (>= X_{i} {float(v) - eps!r}))", f"(assert (<= X_{i} {float(v) + eps!r}))"]
    lines.append(f"(assert (>= Y_0 {t!r}))")
    path.write_text("\n".join(lines) + "\n")
    return path


def _sampled_max(s: ort.InferenceSession, shape: list[int], x0: np.ndarray, eps: float) -> tuple[float, float]:
    rng = np.random.default_rng(1)
    corners = x0 + eps * rng.choice([-1.0, 1.0], size=(200, x0.size))
    inside = x0 + rng.uniform(-eps, eps, size=(200, x0.size))
    xs = np.concatenate([corners, inside, x0[None]]).astype(np.float32)
    y = _outputs(s, shape, xs)[:, 0]
    return float(y.max()), float(y.min())


def _check(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, dict]:
    """``verify check ARGS --json`` in this process; its --timeout clock starts now (not at the
    test process's start, as it would in a fresh process)."""
    monkeypatch.setattr(check_command, "PROCESS_START", time.monotonic())
    capsys.readouterr()
    code = main(["check", *args, "--json", "--quiet"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", NETWORKS)
def test_verified_with_certificate_and_falsified_with_replay(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    proto = getattr(nets, name)()
    onnx_path = nets.save(proto, tmp_path / f"{name}.onnx")
    s, shape = _session(proto)
    n = int(np.prod(shape))
    x0 = np.linspace(-0.5, 0.5, n).astype(np.float32).astype(np.float64)
    eps = EPS.get(name, 0.05)
    n_out = graph_from_onnx(onnx_path).n_outputs
    top, bottom = _sampled_max(s, shape, x0, eps)

    # fails: the best sampled point reaches the threshold
    fails = _write_spec(tmp_path / "fails.vnnlib", x0, eps, n_out, top - 0.25 * (top - bottom) - 1e-6)
    code, result = _check(monkeypatch, capsys, str(onnx_path), str(fails), "--timeout", "30")
    assert code == 1 and result["verdict"] == "falsified", result
    x = np.asarray(result["counterexample"]["x"], dtype=np.float32)
    assert np.all(x >= (x0 - eps).astype(np.float32) - 1e-7) and np.all(x <= (x0 + eps).astype(np.float32) + 1e-7)
    assert _outputs(s, shape, x[None])[0, 0] >= top - 0.25 * (top - bottom) - 1e-6  # replayed here too

    # holds: far enough above what the box can reach that bounds with splitting prove it
    holds = _write_spec(tmp_path / "holds.vnnlib", x0, eps, n_out, top + 2.0 * (top - bottom) + 0.05)
    cert = tmp_path / "holds.cert.json"
    code, result = _check(monkeypatch, capsys, str(onnx_path), str(holds), "--timeout", "60", "--certificate",
                          str(cert))
    assert code == 0, result
    assert result["verdict"] == "verified" and result["recheck"]["valid"], result
    assert json.loads(cert.read_text())["cases"][0]["kind"] == "dag"
    assert main(["certcheck", str(onnx_path), str(holds), str(cert)]) == 0
    capsys.readouterr()
