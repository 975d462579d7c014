"""Python spec files: a file that defines ``PROPERTY``, run as code (like a ``conftest.py``).

The file is compiled and run in a fresh module namespace, in a daemon thread, for at
most :data:`DEFAULT_SECONDS` seconds (or the caller's timeout, when smaller).  Whatever
it raises, ``SystemExit`` (``sys.exit(0)`` included), ``KeyboardInterrupt`` and other
``BaseException`` subclasses too, becomes a one-line :class:`SpecError` naming the file
(and the line, where the traceback has it): a spec never ends the process, and never
makes it exit 0.  ``PROPERTY`` is then checked and copied into a fresh
:class:`Property` (a half-built object or one of another type is an error), so nothing
the spec's code defined runs afterwards.

The standard streams, ``sys.argv``, the working directory, the recursion limit and the
warning filters are restored after the spec has run.  Limits: the code runs in this
process.  A spec that overruns its time is abandoned (its thread keeps running until the
process ends); one that blocks inside a single native call without releasing the
interpreter lock (``10**10**10``), calls ``os._exit`` or exhausts memory cannot be
stopped this way.  Check only spec files you trust.
"""

from __future__ import annotations

import builtins
import itertools
import os
import sys
import threading
import types
import warnings
from pathlib import Path
from typing import Any

from verify.errors import SpecError, SpecSyntaxError, VerifyError
from verify.spec.property import Box, Case, Polytope, Property
from verify.spec.templates import TEMPLATES, Template

#: Seconds a Python spec file may take to define PROPERTY (less when the caller's timeout is).
DEFAULT_SECONDS = 30.0

_MISSING = object()
_counter = itertools.count()


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def load_python_spec(path: Path, source: bytes, timeout: float | None = None) -> Property | Template:
    """The property the Python spec file ``path`` (contents ``source``) defines."""
    seconds = DEFAULT_SECONDS if timeout is None else max(0.01, min(DEFAULT_SECONDS, float(timeout)))
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["property"] = _run(path, source)
        except BaseException as exc:  # noqa: B036 - the spec's code may raise anything, SystemExit included
            try:
                box["error"] = _message(path, exc)
            except BaseException:  # noqa: B036 - an exception whose str() itself fails
                box["error"] = SpecError(f"{path}: the Python spec raised {type(exc).__name__}")

    state = _State()
    thread = threading.Thread(target=target, name=f"verify-spec:{path.name}", daemon=True)
    thread.start()
    try:
        thread.join(seconds)
    finally:
        state.restore()
    if thread.is_alive():
        raise SpecError(f"{path}: the Python spec did not define PROPERTY within {seconds:g} s (it runs as "
                        "code; it was abandoned)")
    if "error" in box:
        raise box["error"]
    if "property" not in box:
        raise SpecError(f"{path}: the Python spec stopped without defining PROPERTY")
    return box["property"]


class _State:
    """What of the process a spec's code is most likely to change by accident, restored after it:
    the standard streams, ``sys.argv``, the working directory, the recursion limit and the
    warning filters."""

    def __init__(self) -> None:
        self.streams = (sys.stdin, sys.stdout, sys.stderr)
        self.argv = list(sys.argv)
        self.recursion = sys.getrecursionlimit()
        self.filters = list(warnings.filters)
        try:
            self.cwd: str | None = os.getcwd()
        except OSError:
            self.cwd = None

    def restore(self) -> None:
        sys.stdin, sys.stdout, sys.stderr = self.streams
        sys.argv[:] = self.argv
        sys.setrecursionlimit(self.recursion)
        warnings.filters[:] = self.filters
        if self.cwd is not None:
            try:
                os.chdir(self.cwd)
            except OSError:  # the directory is gone: nothing to go back to
                pass


def _run(path: Path, source: bytes) -> Property | Template:
    try:
        code = compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise SpecSyntaxError(str(path), exc.lineno or 1, exc.offset or 1,
                              f"Python syntax error: {_one_line(exc.msg)}") from None
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        raise SpecError(f"{path}: the Python spec cannot be compiled: {type(exc).__name__}: "
                        f"{_one_line(str(exc))}") from None
    name = f"_verify_spec_{next(_counter)}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules[name] = module  # as runpy does: dataclasses and pickling look the module up
    try:
        exec(code, module.__dict__)
        value = module.__dict__.get("PROPERTY", _MISSING)
        return _copy(value, path)
    finally:
        sys.modules.pop(name, None)


def _message(path: Path, exc: BaseException) -> SpecError:
    """The one-line error for what the spec raised."""
    if isinstance(exc, VerifyError):
        text = _one_line(str(exc))
        return exc if isinstance(exc, SpecError) and text.startswith(str(path)) and text == str(exc) else \
            SpecError(text if text.startswith(str(path)) else f"{path}: {text}")
    where = str(path)
    tb = exc.__traceback__
    while tb is not None:  # the innermost line of the spec file itself
        if tb.tb_frame.f_code.co_filename == str(path):
            where = f"{path}:{tb.tb_lineno}"
        tb = tb.tb_next
    if isinstance(exc, SystemExit):
        return SpecError(f"{where}: the Python spec called sys.exit({_one_line(repr(exc.code), 60)}); a spec file "
                         "must define PROPERTY, not exit")
    if not isinstance(exc, Exception):
        return SpecError(f"{where}: the Python spec raised {type(exc).__name__} (a BaseException): "
                         f"{_one_line(str(exc)) or 'no message'}")
    return SpecError(f"{where}: error while running the Python spec: {type(exc).__name__}: {_one_line(str(exc))}")


def _field(obj: object, name: str, path: Path, what: str) -> Any:
    value = getattr(obj, name, _MISSING)
    if value is _MISSING:
        raise SpecError(f"{path}: PROPERTY is not fully built: {what} has no {name!r}")
    return value


def _sequence(value: object, path: Path, what: str) -> tuple:
    if not isinstance(value, (tuple, list)):
        raise SpecError(f"{path}: PROPERTY is malformed: {what} should be a tuple, found {type(value).__name__}")
    return tuple(value)


def _count(value: object, path: Path, what: str) -> int:
    if type(value) is not int or value < 0:
        raise SpecError(f"{path}: PROPERTY is malformed: {what} should be a non-negative int, found "
                        f"{_one_line(repr(value), 60) if type(value) in (int, float, str) else type(value).__name__}")
    return int(value)


def _copy(value: object, path: Path) -> Property | Template:
    """A fresh, fully validated Property (or template) with the contents of ``value``."""
    if value is _MISSING:
        raise SpecError(f"{path}: a Python spec must define PROPERTY = make_property(...); this one defines "
                        "no PROPERTY")
    if isinstance(value, Template):
        return _copy_template(value, path)
    if not isinstance(value, Property):
        raise SpecError(f"{path}: PROPERTY is a {type(value).__name__}, expected a Property: define "
                        "PROPERTY = make_property(...)")
    cases = []
    for ci, case in enumerate(_sequence(_field(value, "cases", path, "PROPERTY"), path, "PROPERTY.cases")):
        where = f"case {ci}"
        if not isinstance(case, Case):
            raise SpecError(f"{path}: PROPERTY is malformed: {where} is a {type(case).__name__}, expected a Case")
        box = _field(case, "box", path, where)
        if not isinstance(box, Box):
            raise SpecError(f"{path}: PROPERTY is malformed: the box of {where} is a {type(box).__name__}, "
                            "expected a Box")
        lower = _sequence(_field(box, "lower_exact", path, f"the box of {where}"), path, "a box's lower bounds")
        upper = _sequence(_field(box, "upper_exact", path, f"the box of {where}"), path, "a box's upper bounds")
        polys = []
        for poly in _sequence(_field(case, "unsafe", path, where), path, f"the unsafe polytopes of {where}"):
            if not isinstance(poly, Polytope):
                raise SpecError(f"{path}: PROPERTY is malformed: an unsafe set of {where} is a "
                                f"{type(poly).__name__}, expected a Polytope")
            rows = tuple(_sequence(r, path, "a polytope row")
                         for r in _sequence(_field(poly, "coeffs", path, "a polytope"), path, "a polytope's rows"))
            rhs = _sequence(_field(poly, "rhs", path, "a polytope"), path, "a polytope's right-hand sides")
            strict = _sequence(_field(poly, "strict", path, "a polytope"), path, "a polytope's strict flags")
            polys.append(_rebuilt(path, Polytope, rows, rhs, strict))
        cases.append(Case(_rebuilt(path, Box, lower, upper), tuple(polys)))
    n_in = _count(_field(value, "n_inputs", path, "PROPERTY"), path, "PROPERTY.n_inputs")
    n_out = _count(_field(value, "n_outputs", path, "PROPERTY"), path, "PROPERTY.n_outputs")
    name = getattr(value, "name", "property")
    name = str(name) if type(name) is str else "property"
    return _rebuilt(path, Property, tuple(cases), n_in, n_out, name=name)


def _copy_template(value: Template, path: Path) -> Template:
    """A template rebuilt by its own builder from its fields (so every parameter is validated again)."""
    region = getattr(value, "region", None)
    if not isinstance(region, Box):
        raise SpecError(f"{path}: PROPERTY is malformed: its region is not a Box")
    box = _rebuilt(path, Box, _sequence(region.lower_exact, path, "the region's lower bounds"),
                   _sequence(region.upper_exact, path, "the region's upper bounds"))
    params = {k: v for k, v in value.params().items()}
    if "sensitive" in params:
        params["sensitive"] = tuple(params["sensitive"])
    try:
        return TEMPLATES[value.KIND](box, **params)
    except SpecError as exc:
        raise SpecError(f"{path}: PROPERTY is malformed: {_one_line(str(exc))}") from None


def _rebuilt(path: Path, cls: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return cls(*args, **kwargs)
    except SpecError as exc:
        raise SpecError(f"{path}: PROPERTY is malformed: {_one_line(str(exc))}") from None
