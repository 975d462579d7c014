"""A real local Ray cluster for the ``ray`` tests: a head and two worker nodes on this
machine (tests/cluster/holder.py), started once per test session, with token
authentication (the default of `ray start`) on both sides."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

#: Environment of the cluster and of every process the tests connect from.  Set before Ray
#: is imported here: Ray reads its authentication mode once, at import.
RAY_ENV = {"RAY_AUTH_MODE": "token", "PYTHONPATH": str(ROOT), "RAY_DEDUP_LOGS": "0"}
os.environ.update(RAY_ENV)


@pytest.fixture(scope="session")
def cluster() -> Iterator[str]:
    """The address (HOST:PORT) of the running cluster."""
    env = {**os.environ, **RAY_ENV}
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("holder.py"))], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    address = proc.stdout.readline().strip() if ready else ""
    if not address:
        proc.kill()
        pytest.fail("the test Ray cluster did not start within 120 s")
    try:
        yield address
    finally:
        proc.stdin.close()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
