"""The combined falsifier: deterministic for a seed, remembers its witnesses, shrinks what it finds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import benchmark_dir
from verify.falsify.base import Budget
from verify.falsify.combined import CombinedFalsifier, default_falsifier
from verify.falsify.database import DEFAULT_DIR, ENV_VAR, database_dir, open_database
from verify.falsify.region import Region
from verify.model.network import Model, load_model
from verify.spec import Property, load_spec


@pytest.mark.parametrize("methods", [("hypothesis", "pgd"), ("hypothesis",), ("pgd",)])
def test_same_seed_same_witness(methods: tuple[str, ...], tiny_model: Model, tiny_false_spec: Path) -> None:
    prop = load_spec(tiny_false_spec)
    runs = [CombinedFalsifier(methods, database=None).search(tiny_model, prop, Budget.seconds(20), seed=5)
            for _ in range(2)]
    assert runs[0] is not None and runs[1] is not None
    np.testing.assert_array_equal(runs[0].x, runs[1].x)
    np.testing.assert_array_equal(runs[0].raw_x, runs[1].raw_x)
    assert runs[0].method == runs[1].method


@pytest.mark.parametrize("methods", [("hypothesis",), ("pgd",)])
def test_each_method_alone(methods: tuple[str, ...], first_input_model: Model, first_input_prop: Property) -> None:
    falsifier = CombinedFalsifier(methods=methods, database=None)
    cex = falsifier.search(first_input_model, first_input_prop, Budget.seconds(10), seed=0)
    assert cex is not None and cex.method == methods[0]
    # shrunk: only x_0 is away from the centre
    assert np.count_nonzero(Region.of(first_input_prop.cases[0]).away(cex.x)) == 1
    assert cex.raw_x is not None


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="methods"):
        CombinedFalsifier(methods=("random",))


def test_rerun_finds_the_stored_witness_first(tiny_model: Model, tiny_false_spec: Path, tmp_path: Path) -> None:
    prop = load_spec(tiny_false_spec)
    first = default_falsifier(database=tmp_path / "db").search(tiny_model, prop, Budget.seconds(20), seed=1)
    assert first is not None and not first.from_database
    assert any((tmp_path / "db").iterdir())
    # another seed, same database: the witness comes back at once, without searching
    again = default_falsifier(database=tmp_path / "db")
    second = again.search(tiny_model, prop, Budget.seconds(20), seed=99)
    assert second is not None and second.from_database and second.method == first.method
    np.testing.assert_array_equal(second.x, first.x)
    assert again.stats.examples == 0 and again.stats.candidates == 1
    # a different model (same spec) does not see it
    other = load_model(tiny_model.net)
    third = default_falsifier(database=tmp_path / "db").search(other, prop, Budget.seconds(20), seed=1)
    assert third is not None and not third.from_database


def test_database_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert database_dir() == DEFAULT_DIR == Path(".verify-cache/examples")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert database_dir() == tmp_path
    monkeypatch.setenv(ENV_VAR, "off")
    assert database_dir() is None and open_database() is None


@pytest.mark.benchmarks
@pytest.mark.parametrize("network,prop", [("1_9", "prop_7"), ("1_5", "prop_2")])
def test_hard_acasxu_instances(network: str, prop: str) -> None:
    """Two of the hardest sat ACAS Xu instances (unsafe slivers on faces of the box): found in 10 s."""
    folder = benchmark_dir("acasxu")
    model = load_model(folder / "onnx" / f"ACASXU_run2a_{network}_batch_2000.onnx")
    spec = load_spec(folder / "vnnlib" / f"{prop}.vnnlib")
    cex = CombinedFalsifier(database=None).search(model, spec, Budget.seconds(10), seed=0)
    assert cex is not None
    assert spec.is_counterexample(cex.x, model.evaluate(cex.x[None])[0])
