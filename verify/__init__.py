"""verify: behavioural guarantees for neural networks.

Public API (flat, like hypothesis's)::

    import verify
    model = verify.load_model("net.onnx")          # or a torch.nn.Module
    prop = verify.load_spec("prop.vnnlib")         # or verify.spec.make_property(...)
    result = verify.check(model, prop, verify.CheckOptions(timeout=30))
    result.verdict                                 # "verified" / "falsified" / "unknown"

Names are imported on first use, so that ``import verify`` (and the CLI's start-up) stays
cheap until torch is actually needed.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "CheckOptions": "verify.check",
    "CheckResult": "verify.check",
    "check": "verify.check",
    "VerifyError": "verify.errors",
    "Model": "verify.model.network",
    "load_model": "verify.model.network",
    "Property": "verify.spec",
    "load_spec": "verify.spec",
    "check_certificate": "verify.certcheck",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'verify' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
