"""The :class:`~verify.check.CheckOptions` a gate checks every property with, as plain data.

They are part of the cache key, and a fully cached gate must compute its keys without
importing :mod:`verify.check` (which imports torch).  So the defaults are copied here;
``tests/gate/test_cached_startup.py`` checks that the copy has exactly CheckOptions'
fields (all but ``timeout`` and ``progress``), in order, with the same defaults, and
:func:`verify.gate.worker.run_task` refuses to check with options that do not name every
field, so the key always describes what was run.
"""

from __future__ import annotations

from typing import Any

#: CheckOptions fields that are not part of the key: the timeout is added per property,
#: progress is a callback, and where branch and bound runs does not change what it proves.
NOT_IN_KEY = ("timeout", "progress", "cluster")

#: CheckOptions' defaults of every other field, in the dataclass's order.
CHECK_DEFAULTS: dict[str, Any] = {
    "methods": ("IBP", "CROWN", "alpha-CROWN"),
    "falsify": True,
    "refine": True,
    "compress": True,
    "modular": True,
    "recheck": True,
    "seed": 0,
    "alpha_iterations": 20,
}


def check_options(seed: int) -> dict[str, Any]:
    """The options of every gate check (all but the timeout and the progress callback);
    part of the cache key."""
    return {**CHECK_DEFAULTS, "seed": seed}
