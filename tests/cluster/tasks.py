"""Functions the pool tests run on the cluster's workers (importable there by name)."""

from __future__ import annotations

import os
import time


def square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def fail(message: str) -> None:
    raise ValueError(message)


def sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"
