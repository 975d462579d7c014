"""Shared fixtures: small canonical networks and the shared benchmark folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests import nets

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "benchmarks"


def benchmark_dir(name: str) -> Path:
    """A folder of ../shared/benchmarks, or skip the test with the reason."""
    path = SHARED / name
    if not (path / "instances.csv").exists():
        pytest.skip(f"benchmark folder {path} is missing (it lives in ../shared, outside the repository)")
    return path


@pytest.fixture
def acasxu() -> Path:
    return benchmark_dir("acasxu")


@pytest.fixture
def tiny_model_path() -> Path:
    path = ROOT / "examples" / "tiny" / "classifier.onnx"
    assert path.exists(), "examples/tiny/classifier.onnx is part of the repository"
    return path


@pytest.fixture
def abs_net_path(tmp_path: Path) -> Path:
    """y0 = relu(x0) + relu(-x0) = |x0|, y1 = x0 (hand-checkable)."""
    return nets.abs_net(tmp_path / "abs.onnx")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
