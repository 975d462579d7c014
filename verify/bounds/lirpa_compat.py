"""The one place where auto_LiRPA 0.3 is made to work with torch 2.13 and numpy 2.

PyPI only has ``auto-lirpa==0.3`` (2022).  It is installed with ``--no-deps`` (its
metadata pins torch<1.13) and needs five small patches applied before it is imported.
Each patch is guarded, so this module is a no-op where a later release fixes the cause:

1. numpy 2 removed ``numpy.lib.arraysetops``; auto_LiRPA imports ``isin`` from it.
2. torch 2 removed ``torch._six`` (``string_classes``, ``inf``).
3. ``torch.onnx.symbolic_helper._set_opset_version`` is gone; we set the exporter's
   global opset version instead.
4. ``torch._C.Node`` is no longer subscriptable (``n[k]`` in the graph parser).
5. torch 2 calls ``Module._named_members(..., remove_duplicate=...)``, which auto_LiRPA's
   override does not accept.

Everything else in verify imports auto_LiRPA through :func:`auto_lirpa`, never directly.
"""

from __future__ import annotations

import math
import sys
import types
import warnings
from functools import lru_cache
from typing import Any

import numpy
import torch

#: Options that avoid known alpha-CROWN crashes of 0.3 (see the project notes).
SAFE_BOUND_OPTS: dict[str, Any] = {
    "sparse_spec_alpha": False,
    "sparse_features_alpha": False,
    "conv_mode": "matrix",
}


def _patch_numpy() -> None:
    name = "numpy.lib.arraysetops"
    try:
        __import__(name)
    except ImportError:
        stand_in = types.ModuleType(name)
        stand_in.isin = numpy.isin  # type: ignore[attr-defined]
        stand_in.unique = numpy.unique  # type: ignore[attr-defined]
        sys.modules[name] = stand_in


def _patch_torch_six() -> None:
    if "torch._six" in sys.modules or hasattr(torch, "_six"):
        return
    six = types.ModuleType("torch._six")
    six.string_classes = (str,)  # type: ignore[attr-defined]
    six.inf = math.inf  # type: ignore[attr-defined]
    sys.modules["torch._six"] = six
    torch._six = six  # type: ignore[attr-defined]


def _patch_opset_version() -> None:
    import torch.onnx.symbolic_helper as helper

    if hasattr(helper, "_set_opset_version"):
        return

    def _set_opset_version(version: int) -> None:
        from torch.onnx._internal.torchscript_exporter import _globals

        _globals.GLOBALS.export_onnx_opset_version = version

    helper._set_opset_version = _set_opset_version  # type: ignore[attr-defined]


def _patch_node_getitem() -> None:
    node_cls = torch._C.Node
    if hasattr(node_cls, "__getitem__"):
        return
    import torch.onnx.symbolic_helper as helper

    def _getitem(node: Any, key: str) -> Any:
        return helper._node_get(node, key)

    node_cls.__getitem__ = _getitem  # type: ignore[attr-defined]


def _patch_named_members(bounded_module_cls: type) -> None:
    original = bounded_module_cls._named_members
    if getattr(original, "_verify_patched", False):
        return

    def _named_members(self: Any, get_members_fn: Any, prefix: str = "", recurse: bool = True,
                       **_ignored: Any) -> Any:
        return original(self, get_members_fn, prefix, recurse)

    _named_members._verify_patched = True  # type: ignore[attr-defined]
    bounded_module_cls._named_members = _named_members


@lru_cache(maxsize=1)
def auto_lirpa() -> types.ModuleType:
    """Return the patched ``auto_LiRPA`` module (patching on first use)."""
    _patch_numpy()
    _patch_torch_six()
    _patch_opset_version()
    _patch_node_getitem()
    shown = warnings.showwarning
    warnings.showwarning = lambda *args, **kwargs: None  # torch.jit.script deprecation at import
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import auto_LiRPA
    finally:
        warnings.showwarning = shown
    _patch_named_members(auto_LiRPA.BoundedModule)
    return auto_LiRPA
