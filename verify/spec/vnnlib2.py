"""Reader for VNN-LIB 2.0 files through the PyPI ``vnnlib`` package.

The package parses and type-checks the file (declarations, shapes, types), and its
errors carry line numbers.  We then walk each assertion's syntax tree, name the indexed
variables ``X[i, j]`` by their flat C-order index (``X_k``, ``Y_k``) and hand the
formulas to the 1.0 reader's semantics.  That keeps one implementation of normal forms,
strict comparisons and exact decimal bounds, where ``vnnlib.compat.transform`` loses
strictness, rounds constants to float and treats separate ``assert`` commands as
alternatives rather than conjuncts.

The package is native code that trusts its input, so the text is checked first
(:func:`prescan`): ASCII outside comments, no control characters (a NUL byte would end
the text the package sees), parentheses nested at most
:data:`~verify.spec.vnnlib.MAX_DEPTH` deep, and numbers that its conversions accept
(integers within 64 bits, version numbers within 32 bits, decimals within float64's
normal range): otherwise it raises ``IndexError: stoll`` or ``UnicodeDecodeError``.
Declared shapes are multiplied in Python integers and compared with the model's sizes,
and with the inputs the assertions bound, before anything of that size is built.  What
the package prints on the process's stderr (warnings such as a minor version mismatch,
32 lines of JSON) is captured and dropped.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

from verify.errors import SpecError, SpecSyntaxError
from verify.spec.property import Property, literal_problem, literal_value
from verify.spec.vnnlib import (
    MAX_DEPTH,
    SExpr,
    _Interpreter,
    _read_text,
    _Reader,
    _Terms,
    build_property,
    check_sizes,
    shown,
)

#: The smallest nonzero magnitude the package's decimal conversion (``std::stod``) accepts.
MIN_NORMAL = Fraction(2) ** -1022

_SCAN = re.compile(r"""
    (?P<comment>;[^\n]*)
  | (?P<string>"[^"\n]*"?)
  | (?P<newline>\n+)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<name>[A-Za-z_]+)
  | (?P<version><\d+\.\d+>)
  | (?P<decimal>-?\d+\.\d+)
  | (?P<integer>-?\d+)
  | (?P<bad>[^\t\n\v\f\r\x20-\x7e])
""", re.VERBOSE)

_WARNING_HEADER = "Warning(s) during type checking:"


def is_vnnlib2(text: str) -> bool:
    """Whether the text declares itself VNN-LIB 2.0 (a ``(vnnlib-version <2...`` command)."""
    return re.search(r"^[^;\n]*\(\s*vnnlib-version\s+<\s*2", text, re.MULTILINE) is not None


def prescan(text: str, path: str) -> str:
    """The text without its comments, after checking what the package cannot take."""
    pieces: list[str] = []
    last = 0
    line, line_start, depth = 1, 0, 0

    def error(start: int, message: str) -> SpecSyntaxError:
        return SpecSyntaxError(path, line, start - line_start + 1, message)

    for m in _SCAN.finditer(text):
        kind = m.lastgroup
        if kind == "name":
            continue
        if kind == "comment":
            pieces.append(text[last:m.start()])
            last = m.end()
        elif kind == "newline":
            line, line_start = line + len(m.group()), m.end()
        elif kind == "open":
            depth += 1
            if depth > MAX_DEPTH:
                raise error(m.start(), f"parentheses nested more than {MAX_DEPTH} deep: flatten the formula "
                                       "(and/or take any number of arguments)")
        elif kind == "close":
            depth -= 1
        elif kind == "bad":
            ch = m.group()
            what = "control character" if ord(ch) < 0x80 else "non-ASCII character"
            raise error(m.start(), f"{what} {ch!r} (U+{ord(ch):04X}): VNN-LIB 2.0 text must be printable "
                                   "ASCII outside comments")
        elif kind == "string":
            bad = re.search(r"[^\t\x20-\x7e]", m.group())
            if bad:
                raise error(m.start() + bad.start(), f"character {bad.group()!r} (U+{ord(bad.group()):04X}) in a "
                                                     "string: VNN-LIB 2.0 text must be printable ASCII")
        else:
            problem = _number_problem(kind, m.group())  # type: ignore[arg-type]
            if problem is not None:
                raise error(m.start(), f"{'version' if kind == 'version' else 'number'} {shown(m.group())} "
                                       f"{problem}")
    pieces.append(text[last:])
    return "".join(pieces)


def _number_problem(kind: str, text: str) -> str | None:
    if kind == "integer" and len(text) <= 18 or kind == "decimal" and len(text) <= 300:
        return None  # within int64; zero or between 1e-299 and 1e299 in magnitude
    if kind == "version":
        parts = text[1:-1].split(".")
        if any(len(p) > 10 or int(p) > 2**31 - 1 for p in parts):
            return "is out of range: each part of a version must be at most 2147483647"
        return None
    problem = literal_problem(text)
    if problem is not None:
        return problem
    value = literal_value(text)
    if kind == "integer" and not -2**63 <= value <= 2**63 - 1:
        return ("is out of range: VNN-LIB 2.0 integers (indices, sizes, constants) must fit in 64 bits, "
                "from -9223372036854775808 to 9223372036854775807")
    if kind == "decimal" and value and abs(value) < MIN_NORMAL:
        return ("is out of range: a nonzero VNN-LIB 2.0 decimal must be at least 2.2250738585072014e-308 "
                "in magnitude (the smallest normal float64)")
    return None


@contextmanager
def _native_stderr_dropped() -> Iterator[None]:
    """Send what native code writes on file descriptor 2 to a temporary file meanwhile.

    The package's warnings (a JSON report of many lines) are dropped; anything else that
    reached the descriptor in the meantime (another thread's output) is written back.
    """
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to protect
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            rest = _without_warnings(capture.read().decode("utf-8", "replace"))
            if rest.strip():
                try:
                    os.write(2, rest.encode())
                except OSError:
                    pass


def _without_warnings(text: str) -> str:
    """``text`` less the package's warning reports (a header line and a JSON object)."""
    out = []
    while True:
        at = text.find(_WARNING_HEADER)
        if at < 0:
            out.append(text)
            return "".join(out)
        out.append(text[:at])
        rest = text[at + len(_WARNING_HEADER):].lstrip()
        try:
            _obj, end = json.JSONDecoder().raw_decode(rest)
        except ValueError:
            end = len(rest)
        text = rest[end:].lstrip("\n")


def parse_vnnlib2(text: str, path: str = "<string>", *, n_inputs: int | None = None,
                  n_outputs: int | None = None, model_name: str = "the model") -> Property:
    """Parse VNN-LIB 2.0 text into a :class:`Property` (sizes checked as in the 1.0 reader)."""
    import vnnlib

    clean = prescan(text, path)
    try:
        with _native_stderr_dropped():
            query = vnnlib.parse_query_string(clean)
    except vnnlib.VNNLibException as exc:
        raise _syntax_error(str(exc), path) from None
    except (IndexError, ValueError, OverflowError) as exc:
        # what the package's native conversions raise (std::out_of_range, std::invalid_argument)
        # on an input prescan() did not foresee: still the file's fault, said in one line
        raise SpecError(f"{path}: the VNN-LIB 2.0 parser (package vnnlib) failed on this file: "
                        f"{type(exc).__name__}: {shown(str(exc), 80)}") from None
    if len(query.networks) != 1:
        raise SpecError(f"{path}: expected exactly one declare-network, found {len(query.networks)}")
    net = query.networks[0]
    if len(net.inputs) != 1 or len(net.outputs) != 1:
        raise SpecError(f"{path}: expected one input and one output tensor per network, found "
                        f"{len(net.inputs)} and {len(net.outputs)}")
    if len(net.hidden):
        raise SpecError(f"{path}: declare-hidden (constraints on inner nodes) is not supported")
    x, y = net.inputs[0], net.outputs[0]
    shapes = {x.name: (tuple(int(d) for d in x.shape), "X"), y.name: (tuple(int(d) for d in y.shape), "Y")}
    if any(d <= 0 for shape, _ in shapes.values() for d in shape):
        raise SpecError(f"{path}: declared shapes must have positive sizes, found {list(x.shape)} and "
                        f"{list(y.shape)}")
    n_in, n_out = math.prod(shapes[x.name][0]), math.prod(shapes[y.name][0])
    check_sizes(path, n_in, n_out, n_inputs, n_outputs, model_name)

    reader = _Reader("", path)
    reader.end = (0, 0)  # no place in the file: "path: message"
    reader.names = lambda prefix, k: (x.name + _index(k, shapes[x.name][0]) if prefix == "X"
                                      else y.name + _index(k, shapes[y.name][0]))
    converter = _Converter(shapes, reader)
    interp = _Interpreter(reader, implicit=(n_in, n_out))
    terms = _Terms(reader)
    assertions = query.assertions
    del query, net, clean, text  # the package's tree is large: keep only the assertions, one at a time
    for i in range(len(assertions)):
        formula = converter.formula(assertions[i].expr)
        terms.add(interp.formula(formula), formula)
    del assertions
    if not terms.count:
        raise SpecError(f"{path}: no assert: the file must constrain the inputs and outputs")
    if len(converter.inputs) < n_in:  # before anything of the declared size is built
        k = next(i for i in range(len(converter.inputs) + 1) if i not in converter.inputs)
        raise SpecError(f"{path}: input {x.name}{_index(k, shapes[x.name][0])} is never bounded: the spec "
                        f"declares {n_in} inputs (shape {list(x.shape)}) and each needs a lower and an upper bound")
    prop = build_property(terms.terms, n_in, n_out, reader)
    prop.name = Path(path).stem
    return prop


def _index(flat: int, shape: tuple[int, ...]) -> str:
    """``[i, j, ...]`` of a flat C-order index."""
    if not shape:
        return ""
    index = []
    for d in reversed(shape):
        flat, r = divmod(flat, d)
        index.append(r)
    return "[" + ", ".join(map(str, reversed(index))) + "]"


_COMPARISONS = {"GreaterThan": ">", "LessThan": "<", "GreaterEqual": ">=", "LessEqual": "<=", "Equal": "="}


class _Converter:
    """The package's syntax trees as the 1.0 reader's s-expressions (line known, column not)."""

    def __init__(self, shapes: dict[str, tuple[tuple[int, ...], str]], reader: _Reader) -> None:
        self.shapes = shapes
        self.reader = reader
        self.inputs: set[int] = set()  # the flat indices of the inputs the assertions mention

    def node(self, items: list[SExpr]) -> SExpr:
        line = next((i.line for i in items if i.line > 0), 0)
        return SExpr(items, "(", line, 0)

    def formula(self, e: Any) -> SExpr:
        kind = type(e).__name__
        if kind in ("And", "Or"):
            return self.node([SExpr(None, kind.lower(), 0, 0)] + [self.formula(a) for a in e.args])
        if kind in _COMPARISONS:
            return self.node([SExpr(None, _COMPARISONS[kind], 0, 0), self.arith(e.lhs), self.arith(e.rhs)])
        if kind == "NotEqual":  # a != b: a < b or a > b
            lhs, rhs = self.arith(e.lhs), self.arith(e.rhs)
            return self.node([SExpr(None, "or", 0, 0), self.node([SExpr(None, "<", 0, 0), lhs, rhs]),
                              self.node([SExpr(None, ">", 0, 0), lhs, rhs])])
        raise self.reader.error(None, f"unsupported VNN-LIB 2.0 formula {kind!r}: expected and, or or a comparison")

    def arith(self, e: Any) -> SExpr:
        kind = type(e).__name__
        if kind == "Var":
            return self.var(e)
        if kind in ("Float", "Int", "Literal", "IntExpr"):
            return SExpr(None, str(e.lexeme), int(getattr(e, "line", 0) or 0), 0)
        if kind == "Negate":
            return self.node([SExpr(None, "-", 0, 0), self.arith(e.expr)])
        if kind == "Plus":
            return self.node([SExpr(None, "+", 0, 0)] + [self.arith(a) for a in e.args])
        if kind == "Minus":
            return self.node([SExpr(None, "-", 0, 0), self.arith(e.head)] + [self.arith(a) for a in e.rest])
        if kind == "Multiply":
            return self.node([SExpr(None, "*", 0, 0)] + [self.arith(a) for a in e.args])
        raise self.reader.error(None, f"unsupported VNN-LIB 2.0 expression {kind!r}: expected +, -, *, a number "
                                      "or a variable")

    def var(self, e: Any) -> SExpr:
        line = int(getattr(e, "line", 0) or 0)
        name = str(e.name)
        if name not in self.shapes:
            raise self.reader.error(SExpr(None, name, line, 0), f"variable {shown(name)} is neither the network's "
                                                                "input nor its output")
        shape, prefix = self.shapes[name]
        index = [int(i) for i in e.indices]
        if len(index) != len(shape) or any(not 0 <= i < d for i, d in zip(index, shape)):
            raise self.reader.error(SExpr(None, name, line, 0), f"index {index} out of range for {name} of shape "
                                                                f"{list(shape)}")
        flat = 0
        for i, d in zip(index, shape):
            flat = flat * d + i
        if prefix == "X":
            self.inputs.add(flat)
        return SExpr(None, f"{prefix}_{flat}", line, 0)


def _syntax_error(message: str, path: str) -> SpecError:
    try:
        payload = json.loads(message)
        first = payload["errors"][0]
        text = str(first.get("message", "invalid VNN-LIB 2.0"))
        if first.get("offendingSymbol"):
            text += f" {shown(str(first['offendingSymbol']))}"
        if first.get("hint"):
            text += f" ({first['hint']})"
        return SpecSyntaxError(path, int(first.get("line", 0)), int(first.get("column", 0)) or 1,
                               " ".join(text.split()))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        match = re.search(r"line (\d+), column (\d+): (.*)", message)
        if match:
            return SpecSyntaxError(path, int(match.group(1)), int(match.group(2)) + 1,
                                   f"syntax error at {' '.join(match.group(3).split())}")
        lines = message.strip().splitlines()
        return SpecError(f"{path}: {lines[0] if lines else 'invalid VNN-LIB 2.0'}")


def read_vnnlib2(path: str | Path) -> Property:
    path = Path(path)
    return parse_vnnlib2(_read_text(path), str(path))
