"""The shape of a certificate, checked before any of its numbers is used.

A certificate is user input.  :func:`validate` checks the type of every field the checker
reads (objects, lists, strings, whole numbers in range, finite numbers, encoded arrays of
the right kind and rank, with finite values), and nothing else: extra keys (``producer``,
``semantics``, evidence the checker does not read) are allowed.  A mistake is a
:class:`~verify.errors.CertificateError` naming the file and the JSON path
(``cert.json: cases[0].input-split.tree.parent: expected ...``).  Whether the claims hold
is for :mod:`verify.certcheck.checker` to say, on a certificate that passed this.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from verify.certcheck.encoding import inspect_array
from verify.errors import CertificateError

#: Largest whole number accepted in a JSON field (indices, sizes).
MAX_INT = 2**62
INTEGER_DTYPES = {"<i8", "<i4", "<i2", "|i1", "|u1"}
KINDS = ("input-split", "relu-split", "modules", "dag", "jacobian", "difference")


class _Checker:
    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, path: str, message: str) -> CertificateError:
        return CertificateError(f"{self.name}: {path or 'top level'}: {message}")

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {_kind(value)}")
        return value

    def get(self, parent: dict[str, Any], key: str, path: str, required: bool = True) -> Any:
        if key not in parent:
            if required:
                raise self.fail(path, f"missing key {key!r}")
            return None
        return parent[key]

    def list(self, value: Any, path: str, nonempty: bool = False) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {_kind(value)}")
        if nonempty and not value:
            raise self.fail(path, "expected a non-empty list")
        return value

    def int(self, value: Any, path: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not -MAX_INT <= value <= MAX_INT:
            raise self.fail(path, f"expected a whole number of at most 2**62, got {_kind(value)}")
        return value

    def number(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (isinstance(value, int) and not -MAX_INT <= value <= MAX_INT) or not np.isfinite(float(value)):
            raise self.fail(path, f"expected a finite number, got {_kind(value)}")
        return float(value)

    def str(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, got {_kind(value)}")
        return value

    def array(self, value: Any, path: str, ndim: int, integer: bool = False, nonnegative: bool = False) -> None:
        """An encoded array of rank ``ndim``: of an integer dtype (``integer``), or else of finite values
        where it is ``<f8``; ``nonnegative``: ``<f8`` with every value finite and >= 0."""
        try:
            dtype, shape, values, _ = inspect_array(value, path)
        except ValueError as exc:  # inspect_array's own one-line messages, prefixed by the path
            raise CertificateError(f"{self.name}: {exc}") from None
        if len(shape) != ndim:
            raise self.fail(path, f"expected a {ndim}-dimensional array, got shape {shape}")
        if integer and dtype not in INTEGER_DTYPES:
            raise self.fail(path, f"expected an integer array, got dtype {dtype}")
        if not integer and dtype == "<f8" and not np.all(np.isfinite(values)):
            raise self.fail(path, "expected finite values (NaN or infinity found)")
        if nonnegative:
            if dtype != "<f8":
                raise self.fail(path, f"expected a <f8 array, got dtype {dtype}")
            if np.any(values < 0):
                raise self.fail(path, "expected values >= 0 (a negative value found)")

    def arrays(self, value: Any, path: str, ndim: int) -> None:
        for i, a in enumerate(self.list(value, path)):
            self.array(a, f"{path}[{i}]", ndim)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
             float: "a number", int: "a number"}
    shown = names.get(type(value), type(value).__name__)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = repr(value)
        shown += f" ({text if len(text) <= 30 else text[:12] + '...'})"
    return shown


def validate(cert: Any, name: str = "certificate") -> None:
    """Check the types and sizes of every field the checker reads; raises
    :class:`CertificateError` naming ``name`` and the JSON path."""
    v = _Checker(name)
    top = v.obj(cert, "")
    for key in ("model", "spec"):
        part = v.obj(v.get(top, key, ""), key)
        v.str(v.get(part, "sha256", key), f"{key}.sha256")
    v.str(v.get(top, "verdict", ""), "verdict")
    for i, case in enumerate(v.list(v.get(top, "cases", ""), "cases")):
        path = f"cases[{i}]"
        case = v.obj(case, path)
        v.int(v.get(case, "case", path), f"{path}.case")
        kind = v.str(v.get(case, "kind", path), f"{path}.kind")
        if kind not in KINDS:
            raise v.fail(f"{path}.kind", f"expected one of {', '.join(KINDS)}, got {kind!r:.40}")
        body = v.obj(v.get(case, kind, path), f"{path}.{kind}")
        {"input-split": _input_split, "relu-split": _relu_split, "modules": _modules,
         "dag": _dag, "jacobian": _jacobian, "difference": _jacobian}[kind](v, body, f"{path}.{kind}")
    if "other_model" in top:
        other = v.obj(top["other_model"], "other_model")
        v.str(v.get(other, "sha256", "other_model"), "other_model.sha256")


def _tree(v: _Checker, value: Any, path: str, int_columns: tuple[str, ...], float_columns: tuple[str, ...]) -> None:
    tree = v.obj(value, path)
    for col in int_columns + float_columns:
        v.array(v.get(tree, col, path), f"{path}.{col}", 1, integer=col in int_columns)


def _jacobian(v: _Checker, body: dict[str, Any], path: str) -> None:
    _tree(v, v.get(body, "tree", path), f"{path}.tree", ("parent", "dim", "side"), ("value",))
    _tree(v, v.get(body, "closures", path), f"{path}.closures", ("node",), ("value",))


def _input_split(v: _Checker, body: dict[str, Any], path: str) -> None:
    _tree(v, v.get(body, "tree", path), f"{path}.tree", ("parent", "dim", "side"), ("value",))
    _tree(v, v.get(body, "closures", path), f"{path}.closures", ("node", "polytope"), ("margin",))
    for i, entry in enumerate(v.list(body.get("alphas", []), f"{path}.alphas")):
        where = f"{path}.alphas[{i}]"
        entry = v.obj(entry, where)
        v.int(v.get(entry, "node", where), f"{where}.node")
        v.int(v.get(entry, "polytope", where), f"{where}.polytope")
        v.arrays(v.get(entry, "layers", where), f"{where}.layers", 2)


def _dag(v: _Checker, body: dict[str, Any], path: str) -> None:
    for i, name in enumerate(v.list(v.get(body, "neurons", path), f"{path}.neurons")):
        v.str(name, f"{path}.neurons[{i}]")
    _tree(v, v.get(body, "tree", path), f"{path}.tree", ("parent", "what", "index", "side"), ("value",))
    _tree(v, v.get(body, "closures", path), f"{path}.closures", ("node", "polytope"), ("margin",))
    seen: set[int] = set()
    for i, entry in enumerate(v.list(body.get("betas", []), f"{path}.betas")):
        # the split multipliers of one closure: f8[m_p, k] (the shape is the checker's to compare)
        where = f"{path}.betas[{i}]"
        entry = v.obj(entry, where)
        closure = v.int(v.get(entry, "closure", where), f"{where}.closure")
        if closure < 0:
            raise v.fail(f"{where}.closure", f"expected a closure's index (>= 0), got {closure}")
        if closure in seen:
            raise v.fail(f"{where}.closure", f"a second entry for closure {closure}")
        seen.add(closure)
        v.array(v.get(entry, "values", where), f"{where}.values", 2, nonnegative=True)


def _relu_split(v: _Checker, body: dict[str, Any], path: str) -> None:
    children = v.get(body, "children_bounds", path, required=False)
    if children is not None:
        v.str(children, f"{path}.children_bounds")
    for i, entry in enumerate(v.list(body.get("root_slopes", []), f"{path}.root_slopes")):
        where = f"{path}.root_slopes[{i}]"
        entry = v.obj(entry, where)
        v.int(v.get(entry, "layer", where), f"{where}.layer")
        v.array(v.get(entry, "neurons", where), f"{where}.neurons", 1, integer=True)
        v.arrays(v.get(entry, "alphas", where), f"{where}.alphas", 2)
    for t, item in enumerate(v.list(v.get(body, "trees", path), f"{path}.trees")):
        where = f"{path}.trees[{t}]"
        item = v.obj(item, where)
        for k, p in enumerate(v.list(v.get(item, "polytopes", where), f"{where}.polytopes")):
            v.int(p, f"{where}.polytopes[{k}]")
        _tree(v, v.get(item, "tree", where), f"{where}.tree", ("parent", "layer", "neuron", "phase"), ())
        for c, e in enumerate(v.list(v.get(item, "closures", where), f"{where}.closures")):
            at = f"{where}.closures[{c}]"
            e = v.obj(e, at)
            v.int(v.get(e, "node", at), f"{at}.node")
            v.int(v.get(e, "polytope", at), f"{at}.polytope")
            v.number(v.get(e, "margin", at), f"{at}.margin")
            v.arrays(v.get(e, "alphas", at), f"{at}.alphas", 2)
            if "betas" in e:
                v.arrays(e["betas"], f"{at}.betas", 2)


def _box(v: _Checker, value: Any, path: str) -> None:
    box = v.obj(value, path)
    for side in ("lower", "upper"):
        v.array(v.get(box, side, path), f"{path}.{side}", 1)


def _modules(v: _Checker, body: dict[str, Any], path: str) -> None:
    claims = v.list(v.get(body, "claims", path), f"{path}.claims", nonempty=True)
    for i, c in enumerate(claims):
        where = f"{path}.claims[{i}]"
        c = v.obj(c, where)
        v.str(v.get(c, "name", where), f"{where}.name")
        blocks = v.list(v.get(c, "blocks", where), f"{where}.blocks")
        if len(blocks) != 2:
            raise v.fail(f"{where}.blocks", f"expected [first, last], got a list of {len(blocks)}")
        for k, b in enumerate(blocks):
            v.int(b, f"{where}.blocks[{k}]")
        _box(v, v.get(c, "input", where), f"{where}.input")
        if i < len(claims) - 1:
            _box(v, v.get(c, "output", where), f"{where}.output")
        else:
            polys = v.obj(v.get(c, "polytopes", where), f"{where}.polytopes")
            v.array(v.get(polys, "margin", f"{where}.polytopes"), f"{where}.polytopes.margin", 1)
        evidence = v.obj(v.get(c, "evidence", where), f"{where}.evidence")
        if "method" in evidence:
            v.str(evidence["method"], f"{where}.evidence.method")
        if evidence.get("intermediate") is not None:
            for k, r in enumerate(v.list(evidence["intermediate"], f"{where}.evidence.intermediate")):
                _box(v, r, f"{where}.evidence.intermediate[{k}]")
        if "alphas" in evidence:
            v.arrays(evidence["alphas"], f"{where}.evidence.alphas", 2)
    for i, link in enumerate(v.list(v.get(body, "composition", path), f"{path}.composition")):
        v.obj(link, f"{path}.composition[{i}]")
