"""Gate model releases: run a manifest of properties, decide pass or fail, and report.

:func:`~verify.gate.runner.run_gate` runs what a manifest (:mod:`verify.gate.manifest`)
lists, re-checking cached answers (:mod:`verify.gate.cache`), compares with a baseline
(:mod:`verify.gate.baseline`) and writes the reports (:mod:`verify.gate.reports`).
The command line is ``verify gate`` (:mod:`verify.commands.gate`); docs/gate.md
describes the manifest and the report schema.
"""

from verify.gate.runner import GateOptions, GateRun, run_gate

__all__ = ["GateOptions", "GateRun", "run_gate"]
