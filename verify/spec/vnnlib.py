"""Reader for VNN-LIB 1.0 files, as used by VNN-COMP 2021-2023.

Why our own reader: the PyPI ``vnnlib`` package parses only VNN-LIB 2.0 and rejects
1.0 files at line 1.  The 1.0 subset in use is small: ``declare-const`` of ``X_i`` /
``Y_i`` reals, and ``assert`` of formulas built from ``and``, ``or`` and linear
comparisons (``<=``, ``>=``, ``<``, ``>``, ``=``) over ``+``, ``-`` and ``*``.

The asserts are conjoined and brought into disjunctive normal form; each term splits
into bounds on single inputs (the box) and linear constraints on outputs (a polytope).
Terms with the same box share one :class:`~verify.spec.property.Case`.  Errors say the
file, line and column and what was expected.

Hostile input is refused up front, with the same kind of message: the reader is
iterative and refuses nesting deeper than :data:`MAX_DEPTH`; numbers are checked
(:func:`~verify.spec.property.literal_problem`) before any exact conversion, and exact
arithmetic stays within float64's range and :data:`~verify.spec.property.MAX_EXACT_BITS`;
the normal form and the output constraint matrices have size limits.  A variable-free
constraint is evaluated: a true one is dropped from its conjunction (``(assert (<= 0 1))``
as the only output constraint makes every output unsafe), a false one empties its term.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from verify.errors import SpecError, SpecMismatchError, SpecSyntaxError
from verify.spec.files import read_spec_bytes, spec_text
from verify.spec.property import Box, Case, Polytope, Property, literal_problem, literal_value, value_problem

#: Refuse to expand formulas whose normal form has more terms than this.
MAX_DNF_TERMS = 200_000
#: ... or more atoms (comparisons), counted over all its terms.
MAX_DNF_ATOMS = 10_000_000
#: Refuse parentheses nested deeper than this (VNN-COMP files nest fewer than 10).
MAX_DEPTH = 100
#: Refuse output constraints with more coefficients than this in all (rows times outputs).
MAX_CONSTRAINT_CELLS = 5_000_000
#: Refuse input regions with more bounds than this in all (distinct boxes times inputs).
MAX_REGION_CELLS = 1_000_000

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_VAR = re.compile(r"([XY])_(0|[1-9]\d{0,8})", re.ASCII)
_NAME = re.compile(r"[A-Za-z_][\w.]*", re.ASCII)
#: Newlines, comments, parentheses and atoms (blanks match nothing and are skipped).
_TOKEN = re.compile(r"\n+|;[^\n]*|[()]|[^ \t\r\n\f\v();]+")
ZERO, ONE, MINUS_ONE = Fraction(0), Fraction(1), Fraction(-1)


def shown(text: str, limit: int = 40) -> str:
    """``text`` quoted for a one-line message, shortened when long."""
    return repr(text if len(text) <= limit else text[:limit - 3] + "...")


@dataclass(slots=True)
class Pos:
    """A place in the file: line and column (column 0: unknown)."""

    line: int
    col: int


@dataclass(slots=True)
class SExpr:
    """A parenthesised list or an atom, with the position where it starts."""

    items: list[SExpr] | None
    text: str
    line: int
    col: int

    @property
    def is_atom(self) -> bool:
        return self.items is None


class _Reader:
    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.text = text
        body = text[:-1] if text.endswith("\n") else text
        last = body.rfind("\n")
        self.end = (body.count("\n") + 1, len(body) - last)
        self.names: Callable[[str, int], str] | None = None

    def name(self, prefix: str, index: int) -> str:
        """How messages name variable ``index`` of ``X`` or ``Y`` (``X_3``; the 2.0 reader: ``X[0, 3]``)."""
        return f"{prefix}_{index}" if self.names is None else self.names(prefix, index)

    def error(self, where: SExpr | Pos | None, message: str) -> SpecError:
        line, col = (where.line, where.col) if where is not None else self.end
        if col <= 0:  # a place known by its line only (VNN-LIB 2.0)
            return SpecError(f"{self.path}:{line}: {message}" if line > 0 else f"{self.path}: {message}")
        return SpecSyntaxError(self.path, line, col, message)

    def commands(self) -> Iterator[SExpr]:
        """The top-level expressions, one at a time (iterative: no recursion on nesting)."""
        stack: list[SExpr] = []
        line, line_start = 1, 0
        seen: dict[str, str] = {}  # one string object per distinct atom text
        for m in _TOKEN.finditer(self.text):
            tok = m.group()
            first = tok[0]
            if first == "\n":
                line += len(tok)
                line_start = m.end()
            elif first == ";":
                continue
            elif first == "(":
                if len(stack) >= MAX_DEPTH:
                    raise self.error(Pos(line, m.start() - line_start + 1),
                                     f"parentheses nested more than {MAX_DEPTH} deep: flatten the formula "
                                     "(and/or take any number of arguments)")
                stack.append(SExpr([], "(", line, m.start() - line_start + 1))
            elif first == ")":
                if not stack:
                    raise self.error(Pos(line, m.start() - line_start + 1),
                                     "unexpected ')': expected '(' to start a command")
                done = stack.pop()
                if stack:
                    stack[-1].items.append(done)  # type: ignore[union-attr]
                else:
                    yield done
            else:
                atom = SExpr(None, seen.setdefault(tok, tok), line, m.start() - line_start + 1)
                if stack:
                    stack[-1].items.append(atom)  # type: ignore[union-attr]
                else:
                    yield atom
        if stack:
            raise self.error(None, f"unexpected end of file: expected ')' to close the '(' "
                                   f"opened at line {stack[-1].line}, column {stack[-1].col}")


# A linear expression: (coefficients by variable name, constant)
Linear = tuple[dict[str, Fraction], Fraction]
# An atom: linear expression `expr <= 0` (or `< 0` when strict), and where it was written
Atom = tuple[dict[str, Fraction], Fraction, bool, Pos]


class _Interpreter:
    """Formula semantics; ``declared`` maps each declared variable to where it was declared."""

    def __init__(self, reader: _Reader, implicit: tuple[int, int] | None = None) -> None:
        self.r = reader
        self.declared: dict[str, SExpr] = {}
        self.implicit = implicit  # VNN-LIB 2.0: X_0..X_{n-1} and Y_0..Y_{m-1}, generated by its reader
        self.numbers: dict[str, Fraction] = {}  # literal text -> exact value

    def is_declared(self, name: str) -> bool:
        if self.implicit is None:
            return name in self.declared
        m = _VAR.fullmatch(name)
        return m is not None and int(m.group(2)) < self.implicit[0 if m.group(1) == "X" else 1]

    def number(self, e: SExpr) -> Fraction:
        value = self.numbers.get(e.text)
        if value is None:
            problem = literal_problem(e.text)
            if problem is not None:
                raise self.r.error(e, f"number {shown(e.text)} {problem}")
            if len(self.numbers) > 100_000:
                self.numbers.clear()
            value = self.numbers[e.text] = literal_value(e.text)
        return value

    def checked(self, value: Linear, e: SExpr) -> Linear:
        """``value``, unless a coefficient or the constant is out of range (or too precise)."""
        for v in (value[1], *value[0].values()):
            problem = value_problem(v)
            if problem is not None:
                raise self.r.error(e, f"the value of this expression {problem}")
        return value

    def linear(self, e: SExpr) -> Linear:
        if e.is_atom:
            if _NUMBER.fullmatch(e.text):
                return {}, self.number(e)
            if self.is_declared(e.text):
                return {e.text: ONE}, ZERO
            if _VAR.fullmatch(e.text) or _NAME.fullmatch(e.text):
                raise self.r.error(e, f"undeclared variable {shown(e.text)}: declare it first with "
                                      f"(declare-const {e.text[:40]} Real)")
            raise self.r.error(e, f"expected a number or a declared variable, found {shown(e.text)}")
        if not e.items:
            raise self.r.error(e, "expected an arithmetic expression, found '()'")
        head = e.items[0]
        args = e.items[1:]
        op = head.text if head.is_atom else None
        if op == "+":
            if not args:
                raise self.r.error(e, "'+' needs at least one argument")
            return self.checked(self._sum([self.linear(a) for a in args]), e)
        if op == "-":
            if not args:
                raise self.r.error(e, "'-' needs at least one argument")
            parts = [self.linear(a) for a in args]
            if len(parts) == 1:
                return self._scale(parts[0], MINUS_ONE)
            return self.checked(self._sum([parts[0]] + [self._scale(p, MINUS_ONE) for p in parts[1:]]), e)
        if op == "*":
            if len(args) < 2:
                raise self.r.error(e, "'*' needs at least two arguments")
            parts = [self.linear(a) for a in args]
            result: Linear = ({}, ONE)
            for part, arg in zip(parts, args):
                if result[0] and part[0]:
                    raise self.r.error(arg, "product of two variables: only linear constraints are supported")
                if part[0]:
                    result = self._scale(part, result[1])
                else:
                    result = self._scale(result, part[1])
                self.checked(result, e)
            return result
        raise self.r.error(head, f"expected an arithmetic operator '+', '-' or '*', or a number or "
                                 f"variable, found {shown(head.text) if head.is_atom else repr('(')}")

    @staticmethod
    def _sum(parts: list[Linear]) -> Linear:
        coeffs: dict[str, Fraction] = {}
        const = ZERO
        for c, k in parts:
            for name, v in c.items():
                coeffs[name] = coeffs.get(name, ZERO) + v
            const += k
        return {k: v for k, v in coeffs.items() if v != 0}, const

    @staticmethod
    def _scale(part: Linear, factor: Fraction) -> Linear:
        c, k = part
        if factor is MINUS_ONE:
            return {n: -v for n, v in c.items()}, -k
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
                terms = conjoin(terms, self.formula(a), self.r, e)
            return terms
        if op == "or":
            if not args:
                raise self.r.error(e, "'or' needs at least one argument")
            out: list[list[Atom]] = []
            atoms = 0
            for a in args:
                sub = self.formula(a)
                out.extend(sub)
                atoms += sum(len(t) for t in sub)
                _check_size(len(out), atoms, self.r, e)
            return out
        if op in ("<=", ">=", "<", ">", "="):
            if len(args) != 2:
                raise self.r.error(e, f"'{op}' expects two arguments, found {len(args)}")
            lhs, rhs = self.linear(args[0]), self.linear(args[1])
            if len(lhs[0]) + len(rhs[0]) == 1 and not (lhs[1] and rhs[1]):  # a bound: no arithmetic needed
                diff = ({**lhs[0], **{n: -v for n, v in rhs[0].items()}}, lhs[1] or -rhs[1])
            else:
                diff = self.checked(self._sum([lhs, self._scale(rhs, MINUS_ONE)]), e)  # lhs - rhs
            strict = op in ("<", ">")
            where = Pos(e.line, e.col)
            if op in ("<=", "<"):
                return [[(diff[0], diff[1], strict, where)]]
            neg = self._scale(diff, MINUS_ONE)
            if op in (">=", ">"):
                return [[(neg[0], neg[1], strict, where)]]
            return [[(diff[0], diff[1], False, where), (neg[0], neg[1], False, where)]]
        if op == "not":
            raise self.r.error(head, "'not' is not supported: rewrite the constraint with the opposite comparison")
        raise self.r.error(head, f"expected 'and', 'or' or a comparison (<=, >=, <, >, =), found "
                                 f"{shown(head.text) if head.is_atom else repr('(')}")


def _check_size(n_terms: int, n_atoms: int, reader: _Reader, where: SExpr) -> None:
    if n_terms > MAX_DNF_TERMS:
        raise reader.error(where, f"formula too large: its normal form has more than {MAX_DNF_TERMS} terms")
    if n_atoms > MAX_DNF_ATOMS:
        raise reader.error(where, f"formula too large: its normal form has more than {MAX_DNF_ATOMS} "
                                  "comparisons in all")


def conjoin(terms: list[list[Atom]], sub: list[list[Atom]], reader: _Reader, where: SExpr) -> list[list[Atom]]:
    """The normal form of ``terms and sub`` (sizes checked before anything is built)."""
    if len(sub) == 1:  # the common case (one bound per assert): extend in place
        _check_size(len(terms), sum(len(t) for t in terms) + len(terms) * len(sub[0]), reader, where)
        for t in terms:
            t.extend(sub[0])
        return terms
    atoms = len(sub) * sum(len(t) for t in terms) + len(terms) * sum(len(s) for s in sub)
    _check_size(len(terms) * len(sub), atoms, reader, where)
    return [t + s for t in terms for s in sub]


class _Terms:
    """The normal form of the asserts read so far (their conjunction)."""

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader
        self.terms: list[list[Atom]] = [[]]
        self.atoms = 0
        self.count = 0

    def add(self, sub: list[list[Atom]], where: SExpr) -> None:
        self.count += 1
        if len(sub) == 1 and len(self.terms) == 1:  # the common case: cheap size bookkeeping
            self.atoms += len(sub[0])
            _check_size(1, self.atoms, self.reader, where)
            self.terms[0].extend(sub[0])
            return
        self.terms = conjoin(self.terms, sub, self.reader, where)
        self.atoms = sum(len(t) for t in self.terms)


def parse_vnnlib(text: str, path: str = "<string>", *, n_inputs: int | None = None,
                 n_outputs: int | None = None, model_name: str = "the model") -> Property:
    """Parse VNN-LIB 1.0 text into a :class:`Property`.

    With ``n_inputs`` / ``n_outputs`` (the model's sizes), a spec that declares other
    sizes is refused (:class:`SpecMismatchError`) before its box and constraints are built.
    """
    reader = _Reader(text, path)
    interp = _Interpreter(reader)
    terms = _Terms(reader)
    for e in reader.commands():
        if e.is_atom or not e.items or not e.items[0].is_atom:
            raise reader.error(e, "expected a command such as (declare-const X_0 Real) or (assert ...)")
        cmd = e.items[0].text
        if cmd == "declare-const":
            if len(e.items) != 3 or not e.items[1].is_atom or not e.items[2].is_atom:
                raise reader.error(e, "expected (declare-const NAME Real)")
            name, sort = e.items[1], e.items[2]
            if sort.text != "Real":
                raise reader.error(sort, f"expected sort 'Real', found {shown(sort.text)}")
            if not _VAR.fullmatch(name.text):
                raise reader.error(name, f"expected a variable named X_<i> (input) or Y_<i> (output), with i "
                                         f"written without leading zeros and below 10**9, found {shown(name.text)}")
            if name.text in interp.declared:
                prev = interp.declared[name.text]
                raise reader.error(name, f"variable {name.text!r} declared twice (first at line {prev.line})")
            interp.declared[name.text] = SExpr(None, name.text, name.line, name.col)
        elif cmd == "assert":
            if len(e.items) != 2:
                raise reader.error(e, "expected (assert FORMULA) with exactly one formula")
            terms.add(interp.formula(e.items[1]), e)
        elif cmd in ("vnnlib-version", "declare-network"):
            raise reader.error(e, "this is a VNN-LIB 2.0 file; it is read by the 2.0 reader "
                                  "(start the file with (vnnlib-version <2.0>))")
        else:
            raise reader.error(e.items[0], f"unknown command {shown(cmd)}: expected 'declare-const' or 'assert'")

    n_in = _count(interp.declared, "X", reader)
    n_out = _count(interp.declared, "Y", reader)
    if n_in == 0:
        raise reader.error(None, "no input variables declared: expected (declare-const X_0 Real) ...")
    if n_out == 0:
        raise reader.error(None, "no output variables declared: expected (declare-const Y_0 Real) ...")
    if not terms.count:
        raise reader.error(None, "no assert: the file must constrain the inputs and outputs")
    check_sizes(path, n_in, n_out, n_inputs, n_outputs, model_name)
    return build_property(terms.terms, n_in, n_out, reader)


def check_sizes(path: str, n_in: int, n_out: int, n_inputs: int | None, n_outputs: int | None,
                model_name: str = "the model") -> None:
    """Refuse a spec whose declared sizes differ from the model's (same words as
    :meth:`Property.check_fits`)."""
    if n_inputs is not None and n_in != n_inputs:
        raise SpecMismatchError(f"spec ({path}) declares {n_in} inputs but {model_name} has {n_inputs}")
    if n_outputs is not None and n_out != n_outputs:
        raise SpecMismatchError(f"spec ({path}) declares {n_out} outputs but {model_name} has {n_outputs}")


def build_property(terms: list[list[Atom]], n_in: int, n_out: int, reader: _Reader) -> Property:
    """The property of a normal form: one case per distinct input box."""
    path = reader.path
    split = []
    boxes: dict[tuple, list[Atom]] = {}  # the input atoms of each distinct box (by atom identity)
    for term in terms:
        x_atoms = [a for a in term if any(n.startswith("X") for n in a[0])]
        y_atoms = [a for a in term if not any(n.startswith("X") for n in a[0])]
        key = tuple(id(a) for a in x_atoms)
        if key not in boxes:
            boxes[key] = term
            if len(boxes) * n_in > MAX_REGION_CELLS:  # before any box is built
                raise reader.error(term[0][3] if term else None,
                                   f"input region too large: more than {MAX_REGION_CELLS} bounds in all "
                                   f"(more than {len(boxes) - 1} distinct boxes of {n_in} inputs)")
        split.append((key, x_atoms, y_atoms, term))
    cases: dict[tuple, tuple[Box, list[Polytope]]] = {}
    cells = 0

    def count(rows: int) -> None:
        nonlocal cells
        cells += rows * n_out
        if cells > MAX_CONSTRAINT_CELLS:
            raise reader.error(None, f"output constraints too large: more than {MAX_CONSTRAINT_CELLS} "
                                     f"coefficients in all ({n_out} outputs per row)")

    for key, x_atoms, y_atoms, term in split:
        poly = _polytope(y_atoms, n_out, reader)
        if key not in cases:
            cases[key] = (_box(x_atoms, term, n_in, reader), [])
        if poly is not None:  # None: a constant-false term, which reaches no output
            count(max(1, poly.n_rows))
            # no output constraint left (all constant true): every output is unsafe
            cases[key][1].append(poly if poly.n_rows else Polytope.everything(n_out))
    for _, polys in cases.values():
        if not polys:  # every term of the box constant false: no output is unsafe
            count(1)
            polys.append(Polytope.nothing(n_out))
    return Property(tuple(Case(b, tuple(p)) for b, p in cases.values()), n_in, n_out,
                    name=Path(path).stem, source=path)


def _count(declared: dict[str, SExpr], prefix: str, reader: _Reader) -> int:
    idx = sorted(int(n[2:]) for n in declared if n.startswith(prefix + "_"))
    for expected, got in enumerate(idx):
        if got != expected:
            raise reader.error(None, f"{prefix} variables must be numbered from 0 without gaps: "
                                     f"{prefix}_{expected} is not declared")
    return len(idx)


def _polytope(term: list[Atom], n_out: int, reader: _Reader) -> Polytope | None:
    """The output constraints of a term; None when one of them is constant false.

    A constant-true constraint (no variables, e.g. ``(<= 0 1)``) is dropped; a term
    with no constraint left is a polytope without rows: every output.
    """
    rows: list[tuple[Fraction, ...]] = []
    rhs: list[Fraction] = []
    strict: list[bool] = []
    zero = ZERO
    for coeffs, const, is_strict, where in term:
        if not coeffs:
            if const > 0 or (is_strict and const == 0):
                return None  # constant false: empty term
            continue
        if any(n.startswith("X") for n in coeffs):
            raise reader.error(where, "a constraint mixes inputs and outputs; only input bounds and "
                                      "output constraints are supported")
        if (len(rows) + 1) * n_out > MAX_CONSTRAINT_CELLS:  # checked before the row is built
            raise reader.error(where, f"output constraints too large: more than {MAX_CONSTRAINT_CELLS} "
                                      f"coefficients ({n_out} outputs per row)")
        row = [zero] * n_out
        for name, v in coeffs.items():
            row[int(name[2:])] = v
        rows.append(tuple(row))
        rhs.append(-const)
        strict.append(is_strict)
    return Polytope(tuple(rows), tuple(rhs), tuple(strict))


def _box(x_atoms: list[Atom], term: list[Atom], n_in: int, reader: _Reader) -> Box:
    lower: list[Fraction | None] = [None] * n_in
    upper: list[Fraction | None] = [None] * n_in
    lower_at: list[Pos | None] = [None] * n_in
    for coeffs, const, _strict, where in x_atoms:
        names = list(coeffs)
        if any(n.startswith("Y") for n in names):
            raise reader.error(where, "a constraint mixes inputs and outputs; only input bounds and "
                                      "output constraints are supported")
        if len(names) != 1:
            raise reader.error(where, "input constraints must bound a single variable, like (<= X_0 0.5)")
        i = int(names[0][2:])
        a = coeffs[names[0]]
        bound = -const if a == ONE else const if a == MINUS_ONE else -const / a  # a*x + const <= 0
        problem = value_problem(bound)
        if problem is not None:
            raise reader.error(where, f"the bound this gives on {reader.name('X', i)} {problem}")
        if a > 0:
            upper[i] = bound if upper[i] is None else min(upper[i], bound)
        else:
            lower[i] = bound if lower[i] is None else max(lower[i], bound)
            lower_at[i] = where
    for i in range(n_in):
        if lower[i] is None or upper[i] is None:
            side = "lower" if lower[i] is None else "upper"
            x = reader.name("X", i)
            raise reader.error(term[0][3] if term else None,
                               f"input {x} has no {side} bound: every input needs (>= {x} a) and (<= {x} b)")
        if lower[i] > upper[i]:
            raise reader.error(lower_at[i], f"input {reader.name('X', i)}: lower bound {float(lower[i]):.9g} is "
                                            f"greater than upper bound {float(upper[i]):.9g}")
    return Box(tuple(lower), tuple(upper))  # type: ignore[arg-type]


def read_vnnlib(path: str | Path) -> Property:
    """Read a VNN-LIB 1.0 file."""
    path = Path(path)
    text = _read_text(path)
    return parse_vnnlib(text, str(path))


def _read_text(path: Path) -> str:
    return spec_text(read_spec_bytes(path), str(path))
