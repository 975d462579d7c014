"""The pytest plugin (entry point ``pytest11: verify``): options, a marker and a fixture for property tests.

Installed with verify, so in any test suite::

    pytest --verify-budget 10 --verify-seed 3 --verify-examples-dir .verify-cache/examples

sets the defaults of :func:`verify.testing.assert_property`; ``@pytest.mark.verify(budget=2, seed=1)``
overrides them for one test; the ``verify_property`` fixture is ``assert_property`` with
those defaults.  ``verify.strategies.inputs(spec)`` works with ``@given`` with or without
the plugin.  The same settings can go in the ini file (``verify_budget``, ``verify_seed``,
``verify_examples_dir``); ``off`` as the directory disables the example database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from verify import testing
from verify.falsify.database import database_dir

_OFF = ("off", "none", "0", "false")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("verify", "verify: counterexample search in tests")
    group.addoption("--verify-budget", type=float, default=None, metavar="S",
                    help="seconds of counterexample search per assert_property (default 5)")
    group.addoption("--verify-seed", type=int, default=None, metavar="N", help="seed of the searches (default 0)")
    group.addoption("--verify-examples-dir", default=None, metavar="DIR",
                    help="example database of found witnesses ('off' for none; default "
                         "$VERIFY_EXAMPLES_DIR or .verify-cache/examples)")
    parser.addini("verify_budget", "seconds of counterexample search per assert_property", default="")
    parser.addini("verify_seed", "seed of verify's counterexample searches", default="")
    parser.addini("verify_examples_dir", "example database of found witnesses ('off' for none)", default="")


def _setting(config: pytest.Config, option: str, ini: str) -> Any:
    value = config.getoption(option)
    if value is None:
        text = config.getini(ini)
        value = text if text != "" else None
    return value


def _database(value: str | None) -> Any:
    if value is None:
        return "default"
    return None if value.lower() in _OFF else value


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "verify(budget=None, seed=None): counterexample search settings "
                                       "for verify.testing.assert_property in this test")
    budget = _setting(config, "--verify-budget", "verify_budget")
    seed = _setting(config, "--verify-seed", "verify_seed")
    changes: dict[str, Any] = {"database": _database(_setting(config, "--verify-examples-dir", "verify_examples_dir"))}
    if budget is not None:
        changes["budget"] = float(budget)
    if seed is not None:
        changes["seed"] = int(seed)
    testing.push_defaults(**changes)
    config._verify_configured = True  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    if getattr(config, "_verify_configured", False):
        testing.pop_defaults()


def pytest_report_header(config: pytest.Config) -> str:
    d = testing.defaults()
    where = d.database if d.database != "default" else database_dir()
    return f"verify: assert_property budget {d.budget:g} s, seed {d.seed}, example database {where or 'off'}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    marker = item.get_closest_marker("verify")
    if marker is None:
        yield
        return
    changes = {k: v for k, v in marker.kwargs.items() if k in ("budget", "seed") and v is not None}
    testing.push_defaults(**changes)
    try:
        yield
    finally:
        testing.pop_defaults()


@pytest.fixture
def verify_property() -> Callable[..., None]:
    """:func:`verify.testing.assert_property` with the session's (and the test's marker's) defaults."""
    return testing.assert_property
