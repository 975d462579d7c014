"""Properties: the internal type, readers for VNN-LIB 1.0 / 2.0 and Python spec files,
and builders for writing properties in Python."""

from __future__ import annotations

import hashlib
from pathlib import Path

from verify.errors import SpecError
from verify.spec.builders import argmax_is, box, linear_holds, linf_ball, make_property, output_between
from verify.spec.files import file_sha256, read_spec_bytes, spec_text
from verify.spec.property import Box, Case, Polytope, Property
from verify.spec.pyspec import load_python_spec
from verify.spec.templates import Template, equivalent, fair, lipschitz, monotone, output_range
from verify.spec.vnnlib import parse_vnnlib, read_vnnlib
from verify.spec.vnnlib2 import is_vnnlib2, parse_vnnlib2

__all__ = [
    "Box", "Case", "Polytope", "Property", "Template", "argmax_is", "box", "equivalent", "fair", "file_sha256",
    "linear_holds", "linf_ball", "lipschitz", "load_spec", "make_property", "monotone", "output_between",
    "output_range", "parse_vnnlib", "parse_vnnlib2", "read_vnnlib",
]


def load_spec(path: str | Path, *, n_inputs: int | None = None, n_outputs: int | None = None,
              model_name: str = "the model", timeout: float | None = None,
              templates: bool = False) -> Property | Template:
    """Read a property from a ``.vnnlib`` file (1.0 or 2.0) or a Python spec file.

    A Python spec file defines ``PROPERTY`` (a :class:`Property`), e.g. built with
    :func:`make_property`, or, where the caller takes them (``templates=True``), a template of
    :mod:`verify.spec.templates` (:func:`monotone`, :func:`fair`, :func:`lipschitz`,
    :func:`output_range`, :func:`equivalent`), returned as it is; it runs as code (see
    :mod:`verify.spec.pyspec`), for at most 30 s or ``timeout`` seconds when that is smaller.

    With ``n_inputs`` and ``n_outputs`` (the model's sizes) a spec whose sizes differ is
    refused with :class:`~verify.errors.SpecMismatchError` as soon as its declarations are
    read, before anything of the declared size is built, and the property returned fits.

    Every problem with the file is a one-line :class:`~verify.errors.VerifyError` naming
    the file (and line and column where known): not a regular file, larger than the
    limit (20 MiB; ``VERIFY_MAX_SPEC_BYTES``), not UTF-8, malformed, out-of-range numbers.
    """
    path = Path(path)
    data = read_spec_bytes(path)
    if path.suffix == ".py":
        prop = load_python_spec(path, data, timeout)
        if isinstance(prop, Template):
            if not templates:
                raise SpecError(f"{path}: PROPERTY is a {prop.KIND} template; templates are checked with "
                                "verify check MODEL SPEC (this command does not take them yet)")
            if n_inputs is not None and n_outputs is not None:
                prop.check_fits(n_inputs, n_outputs, model_name)
            return prop
    else:
        text = spec_text(data, str(path))
        parse = parse_vnnlib2 if is_vnnlib2(text) else parse_vnnlib
        prop = parse(text, str(path), n_inputs=n_inputs, n_outputs=n_outputs, model_name=model_name)
    prop.source = str(path)
    if prop.name in ("property", ""):
        prop.name = path.stem
    prop.sha256 = hashlib.sha256(data).hexdigest()
    if n_inputs is not None and n_outputs is not None:
        prop.check_fits(n_inputs, n_outputs, model_name)
    return prop
