"""Properties: the internal type, readers for VNN-LIB 1.0 / 2.0 and Python spec files,
and builders for writing properties in Python."""

from __future__ import annotations

import runpy
from pathlib import Path

from verify.errors import InputFileError, SpecError
from verify.spec.builders import argmax_is, box, linear_holds, linf_ball, make_property, output_between
from verify.spec.property import Box, Case, Polytope, Property
from verify.spec.vnnlib import parse_vnnlib, read_vnnlib
from verify.spec.vnnlib2 import is_vnnlib2, parse_vnnlib2

__all__ = [
    "Box", "Case", "Polytope", "Property", "argmax_is", "box", "linear_holds", "linf_ball",
    "load_spec", "make_property", "output_between", "parse_vnnlib", "parse_vnnlib2", "read_vnnlib",
]


def load_spec(path: str | Path) -> Property:
    """Read a property from a ``.vnnlib`` file (1.0 or 2.0) or a Python spec file.

    A Python spec file defines ``PROPERTY`` (a :class:`Property`), e.g. built with
    :func:`make_property`.
    """
    from verify.model.network import file_sha256
    from verify.spec.vnnlib import _read_text

    path = Path(path)
    if path.suffix == ".py":
        if not path.is_file():
            raise InputFileError(f"spec file not found: {path}")
        try:
            namespace = runpy.run_path(str(path))
        except SpecError:
            raise
        except Exception as exc:
            raise SpecError(f"{path}: error while running the Python spec: {type(exc).__name__}: {exc}") from None
        prop = namespace.get("PROPERTY")
        if not isinstance(prop, Property):
            raise SpecError(f"{path}: a Python spec must define PROPERTY = make_property(...)")
    else:
        text = _read_text(path)
        prop = parse_vnnlib2(text, str(path)) if is_vnnlib2(text) else parse_vnnlib(text, str(path))
    prop.source = str(path)
    if prop.name in ("property", ""):
        prop.name = path.stem
    prop.sha256 = file_sha256(path)
    return prop
