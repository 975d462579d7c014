"""verify: behavioural guarantees for neural networks.

Public API (flat, like hypothesis's)::

    import verify
    model = verify.load_model("net.onnx")          # or a torch.nn.Module
    prop = verify.load_spec("prop.vnnlib")         # or verify.spec.make_property(...)
    result = verify.check(model, prop, verify.CheckOptions(timeout=30))
    result.verdict                                 # "verified" / "falsified" / "unknown"
"""

from __future__ import annotations

__version__ = "0.1.0"

from verify.check import CheckOptions, CheckResult, check
from verify.errors import VerifyError
from verify.model.network import Model, load_model
from verify.spec import Property, load_spec

__all__ = ["CheckOptions", "CheckResult", "Model", "Property", "VerifyError", "__version__", "check",
           "load_model", "load_spec"]
