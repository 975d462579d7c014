"""Reader for VNN-LIB 1.0 files, as used by VNN-COMP 2021-2023.

Why our own reader: the PyPI ``vnnlib`` package parses only VNN-LIB 2.0 and rejects
1.0 files at line 1.  The 1.0 subset in use is small: ``declare-const`` of ``X_i`` /
``Y_i`` reals, and ``assert`` of formulas built from ``and``, ``or`` and linear
comparisons (``<=``, ``>=``, ``<``, ``>``, ``=``) over ``+``, ``-`` and ``*``.

The asserts are conjoined and brought into disjunctive normal form; each term splits
into bounds on single inputs (the box) and linear constraints on outputs (a polytope).
Terms with the same box share one :class:`~verify.spec.property.Case`.  Errors say the
file, line and column and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from verify.errors import InputFileError, SpecError, SpecSyntaxError
from verify.spec.property import Box, Case, Polytope, Property

#: Refuse to expand formulas whose normal form has more terms than this.
MAX_DNF_TERMS = 200_000

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_VAR = re.compile(r"^([XY])_(\d+)$")


@dataclass
class Token:
    text: str
    line: int
    col: int


@dataclass
class SExpr:
    """A parenthesised list or an atom, with the position where it starts."""

    items: list[SExpr] | None
    text: str
    line: int
    col: int

    @property
    def is_atom(self) -> bool:
        return self.items is None


def _tokens(text: str) -> list[Token]:
    out: list[Token] = []
    line, col, i, n = 1, 1, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line, col, i = line + 1, 1, i + 1
        elif ch in " \t\r\f\v":
            i, col = i + 1, col + 1
        elif ch == ";":
            while i < n and text[i] != "\n":
                i += 1
        elif ch in "()":
            out.append(Token(ch, line, col))
            i, col = i + 1, col + 1
        else:
            j = i
            while j < n and text[j] not in " \t\r\n\f\v();":
                j += 1
            out.append(Token(text[i:j], line, col))
            col += j - i
            i = j
    return out


class _Reader:
    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.tokens = _tokens(text)
        self.pos = 0
        lines = text.splitlines() or [""]
        self.end = (len(lines), len(lines[-1]) + 1)

    def error(self, where: Token | SExpr | None, message: str) -> SpecSyntaxError:
        line, col = (where.line, where.col) if where is not None else self.end
        return SpecSyntaxError(self.path, line, col, message)

    def read_all(self) -> list[SExpr]:
        exprs = []
        while self.pos < len(self.tokens):
            exprs.append(self.read())
        return exprs

    def read(self) -> SExpr:
        tok = self.tokens[self.pos]
        self.pos += 1
        if tok.text == ")":
            raise self.error(tok, "unexpected ')': expected '(' to start a command")
        if tok.text != "(":
            return SExpr(None, tok.text, tok.line, tok.col)
        items = []
        while True:
            if self.pos >= len(self.tokens):
                raise self.error(None, f"unexpected end of file: expected ')' to close the '(' "
                                       f"opened at line {tok.line}, column {tok.col}")
            nxt = self.tokens[self.pos]
            if nxt.text == ")":
                self.pos += 1
                return SExpr(items, "(", tok.line, tok.col)
            items.append(self.read())


# A linear expression: (coefficients by variable name, constant)
Linear = tuple[dict[str, Fraction], Fraction]
# An atom: linear expression `expr <= 0` (or `< 0` when strict)
Atom = tuple[dict[str, Fraction], Fraction, bool, SExpr]


class _Interpreter:
    def __init__(self, reader: _Reader) -> None:
        self.r = reader
        self.declared: dict[str, SExpr] = {}

    def linear(self, e: SExpr) -> Linear:
        if e.is_atom:
            if _NUMBER.match(e.text):
                return {}, Fraction(e.text)
            if e.text in self.declared:
                return {e.text: Fraction(1)}, Fraction(0)
            if _VAR.match(e.text) or re.match(r"^[A-Za-z_][\w.]*$", e.text):
                raise self.r.error(e, f"undeclared variable {e.text!r}: declare it first with "
                                      f"(declare-const {e.text} Real)")
            raise self.r.error(e, f"expected a number or a declared variable, found {e.text!r}")
        if not e.items:
            raise self.r.error(e, "expected an arithmetic expression, found '()'")
        head = e.items[0]
        args = e.items[1:]
        op = head.text if head.is_atom else None
        if op == "+":
            if not args:
                raise self.r.error(e, "'+' needs at least one argument")
            return self._sum([self.linear(a) for a in args])
        if op == "-":
            if not args:
                raise self.r.error(e, "'-' needs at least one argument")
            parts = [self.linear(a) for a in args]
            if len(parts) == 1:
                return self._scale(parts[0], Fraction(-1))
            return self._sum([parts[0]] + [self._scale(p, Fraction(-1)) for p in parts[1:]])
        if op == "*":
            if len(args) < 2:
                raise self.r.error(e, "'*' needs at least two arguments")
            parts = [self.linear(a) for a in args]
            result: Linear = ({}, Fraction(1))
            for part, arg in zip(parts, args):
                if result[0] and part[0]:
                    raise self.r.error(arg, "product of two variables: only linear constraints are supported")
                if part[0]:
                    result = self._scale(part, result[1])
                else:
                    result = self._scale(result, part[1])
            return result
        raise self.r.error(head, f"expected an arithmetic operator '+', '-' or '*', or a number or "
                                 f"variable, found {head.text if head.is_atom else '('!r}")

    @staticmethod
    def _sum(parts: list[Linear]) -> Linear:
        coeffs: dict[str, Fraction] = {}
        const = Fraction(0)
        for c, k in parts:
            for name, v in c.items():
                coeffs[name] = coeffs.get(name, Fraction(0)) + v
            const += k
        return {k: v for k, v in coeffs.items() if v != 0}, const

    @staticmethod
    def _scale(part: Linear, factor: Fraction) -> Linear:
        c, k = part
        return {n: v * factor for n, v in c.items() if v * factor != 0}, k * factor

    def formula(self, e: SExpr) -> list[list[Atom]]:
        """Disjunctive normal form: a list of terms, each a list of atoms."""
        if e.is_atom or not e.items:
            raise self.r.error(e, "expected a formula such as (<= X_0 1.0), (and ...) or (or ...)")
        head = e.items[0]
        args = e.items[1:]
        op = head.text if head.is_atom else None
        if op == "and":
            terms: list[list[Atom]] = [[]]
            for a in args:
                sub = self.formula(a)
                if len(terms) * len(sub) > MAX_DNF_TERMS:
                    raise self.r.error(e, f"formula too large: its normal form has more than "
                                          f"{MAX_DNF_TERMS} terms")
                terms = [t + s for t in terms for s in sub]
            return terms
        if op == "or":
            if not args:
                raise self.r.error(e, "'or' needs at least one argument")
            out: list[list[Atom]] = []
            for a in args:
                out.extend(self.formula(a))
            return out
        if op in ("<=", ">=", "<", ">", "="):
            if len(args) != 2:
                raise self.r.error(e, f"'{op}' expects two arguments, found {len(args)}")
            lhs, rhs = self.linear(args[0]), self.linear(args[1])
            diff = self._sum([lhs, self._scale(rhs, Fraction(-1))])  # lhs - rhs
            neg = self._scale(diff, Fraction(-1))
            strict = op in ("<", ">")
            if op in ("<=", "<"):
                return [[(diff[0], diff[1], strict, e)]]
            if op in (">=", ">"):
                return [[(neg[0], neg[1], strict, e)]]
            return [[(diff[0], diff[1], False, e), (neg[0], neg[1], False, e)]]
        if op == "not":
            raise self.r.error(head, "'not' is not supported: rewrite the constraint with the opposite comparison")
        raise self.r.error(head, f"expected 'and', 'or' or a comparison (<=, >=, <, >, =), found "
                                 f"{head.text if head.is_atom else '('!r}")


def parse_vnnlib(text: str, path: str = "<string>") -> Property:
    """Parse VNN-LIB 1.0 text into a :class:`Property`."""
    reader = _Reader(text, path)
    exprs = reader.read_all()
    interp = _Interpreter(reader)
    asserts: list[SExpr] = []
    for e in exprs:
        if e.is_atom or not e.items or not e.items[0].is_atom:
            raise reader.error(e, "expected a command such as (declare-const X_0 Real) or (assert ...)")
        cmd = e.items[0].text
        if cmd == "declare-const":
            if len(e.items) != 3 or not e.items[1].is_atom or not e.items[2].is_atom:
                raise reader.error(e, "expected (declare-const NAME Real)")
            name, sort = e.items[1], e.items[2]
            if sort.text != "Real":
                raise reader.error(sort, f"expected sort 'Real', found {sort.text!r}")
            if not _VAR.match(name.text):
                raise reader.error(name, f"expected a variable named X_<i> (input) or Y_<i> (output), "
                                         f"found {name.text!r}")
            if name.text in interp.declared:
                prev = interp.declared[name.text]
                raise reader.error(name, f"variable {name.text!r} declared twice (first at line {prev.line})")
            interp.declared[name.text] = name
        elif cmd == "assert":
            if len(e.items) != 2:
                raise reader.error(e, "expected (assert FORMULA) with exactly one formula")
            asserts.append(e.items[1])
        elif cmd in ("vnnlib-version", "declare-network"):
            raise reader.error(e, "this is a VNN-LIB 2.0 file; it is read by the 2.0 reader "
                                  "(start the file with (vnnlib-version <2.0>))")
        else:
            raise reader.error(e.items[0], f"unknown command {cmd!r}: expected 'declare-const' or 'assert'")

    n_in = _count(interp.declared, "X", reader)
    n_out = _count(interp.declared, "Y", reader)
    if n_in == 0:
        raise reader.error(None, "no input variables declared: expected (declare-const X_0 Real) ...")
    if n_out == 0:
        raise reader.error(None, "no output variables declared: expected (declare-const Y_0 Real) ...")
    if not asserts:
        raise reader.error(None, "no assert: the file must constrain the inputs and outputs")

    terms: list[list[Atom]] = [[]]
    for a in asserts:
        sub = interp.formula(a)
        if len(sub) == 1:  # the common case (one bound per assert): extend in place
            for t in terms:
                t.extend(sub[0])
            continue
        if len(terms) * len(sub) > MAX_DNF_TERMS:
            raise reader.error(a, f"formula too large: its normal form has more than {MAX_DNF_TERMS} terms")
        terms = [t + s for t in terms for s in sub]

    cases: dict[tuple, tuple[Box, list[Polytope]]] = {}
    box_cache: dict[tuple, Box | None] = {}
    for term in terms:
        box, poly = _split_term(term, n_in, n_out, reader, box_cache)
        if box is None:
            continue  # an input bound contradicts another: the term describes an empty set
        key = (id(box),)  # boxes come from box_cache: one object per distinct input part
        if key not in cases:
            cases[key] = (box, [])
        cases[key][1].append(poly)
    if not cases:
        raise SpecError(f"{path}: every disjunct has an empty input region (lower > upper)")
    return Property(tuple(Case(b, tuple(p)) for b, p in cases.values()), n_in, n_out,
                    name=Path(path).stem, source=path)


def _count(declared: dict[str, SExpr], prefix: str, reader: _Reader) -> int:
    idx = sorted(int(_VAR.match(n).group(2)) for n in declared if n.startswith(prefix + "_"))
    for expected, got in enumerate(idx):
        if got != expected:
            raise reader.error(None, f"{prefix} variables must be numbered from 0 without gaps: "
                                     f"{prefix}_{expected} is not declared")
    return len(idx)


def _split_term(term: list[Atom], n_in: int, n_out: int, reader: _Reader,
                box_cache: dict[tuple, Box | None]) -> tuple[Box | None, Polytope]:
    x_atoms = [a for a in term if any(n.startswith("X") for n in a[0])]
    y_atoms = [a for a in term if not any(n.startswith("X") for n in a[0])]
    key = tuple(id(a) for a in x_atoms)
    if key in box_cache:
        box = box_cache[key]
        if box is None:
            return None, Polytope((), (), ())
        poly = _polytope(y_atoms, n_out, reader)
        return (None, poly) if poly is None else (box, poly)
    poly = _polytope(y_atoms, n_out, reader)
    box = _box(x_atoms, term, n_in, reader)
    box_cache[key] = box
    if poly is None or box is None:
        return None, Polytope((), (), ())
    return box, poly


def _polytope(term: list[Atom], n_out: int, reader: _Reader) -> Polytope | None:
    rows: list[tuple[Fraction, ...]] = []
    rhs: list[Fraction] = []
    strict: list[bool] = []
    for coeffs, const, is_strict, where in term:
        if not coeffs:
            if const > 0 or (is_strict and const == 0):
                return None  # constant false: empty term
            continue
        if any(n.startswith("X") for n in coeffs):
            raise reader.error(where, "a constraint mixes inputs and outputs; only input bounds and "
                                      "output constraints are supported")
        row = [Fraction(0)] * n_out
        for name, v in coeffs.items():
            row[int(name[2:])] = v
        rows.append(tuple(row))
        rhs.append(-const)
        strict.append(is_strict)
    return Polytope(tuple(rows), tuple(rhs), tuple(strict))


def _box(x_atoms: list[Atom], term: list[Atom], n_in: int, reader: _Reader) -> Box | None:
    lower: list[Fraction | None] = [None] * n_in
    upper: list[Fraction | None] = [None] * n_in
    lower_at: list[SExpr | None] = [None] * n_in
    for coeffs, const, _strict, where in x_atoms:
        names = list(coeffs)
        if any(n.startswith("Y") for n in names):
            raise reader.error(where, "a constraint mixes inputs and outputs; only input bounds and "
                                      "output constraints are supported")
        if len(names) != 1:
            raise reader.error(where, "input constraints must bound a single variable, like (<= X_0 0.5)")
        i = int(names[0][2:])
        a = coeffs[names[0]]
        bound = -const / a  # a*x + const <= 0
        if a > 0:
            upper[i] = bound if upper[i] is None else min(upper[i], bound)
        else:
            lower[i] = bound if lower[i] is None else max(lower[i], bound)
            lower_at[i] = where
    for i in range(n_in):
        if lower[i] is None or upper[i] is None:
            side = "lower" if lower[i] is None else "upper"
            raise reader.error(term[0][3] if term else None,
                               f"input X_{i} has no {side} bound: every input needs (>= X_{i} a) and (<= X_{i} b)")
        if lower[i] > upper[i]:
            raise reader.error(lower_at[i], f"input X_{i}: lower bound {float(lower[i]):.9g} is greater than "
                                            f"upper bound {float(upper[i]):.9g}")
    return Box(tuple(lower), tuple(upper))  # type: ignore[arg-type]


def read_vnnlib(path: str | Path) -> Property:
    """Read a VNN-LIB 1.0 file."""
    path = Path(path)
    text = _read_text(path)
    return parse_vnnlib(text, str(path))


def _read_text(path: Path) -> str:
    if not path.exists():
        raise InputFileError(f"spec file not found: {path}")
    if path.is_dir():
        raise InputFileError(f"spec path is a directory, not a file: {path}")
    try:
        return path.read_text()
    except PermissionError:
        raise InputFileError(f"spec file not readable: {path}") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}: not a text file ({exc.reason} at byte {exc.start})") from None
