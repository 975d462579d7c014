"""Reader for VNN-LIB 2.0 files through the PyPI ``vnnlib`` package.

The package parses and type-checks the file (declarations, shapes, types), and its
errors carry line numbers.  We then print each assertion back in the package's own
s-expression form, rename the indexed variables ``X[i, j]`` to flat ``X_k`` (C order)
and hand the result to the 1.0 reader's formula semantics.  That keeps one
implementation of normal forms, strict comparisons and exact decimal bounds, where
``vnnlib.compat.transform`` loses strictness, rounds constants to float and treats
separate ``assert`` commands as alternatives rather than conjuncts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from verify.errors import SpecError, SpecSyntaxError
from verify.spec.property import Property
from verify.spec.vnnlib import _read_text, parse_vnnlib

_INDEXED = re.compile(r"\b([A-Za-z_]\w*)\s*\[([\d,\s]+)\]")


def is_vnnlib2(text: str) -> bool:
    """Whether the text declares itself VNN-LIB 2.0."""
    stripped = "\n".join(line.split(";", 1)[0] for line in text.splitlines())
    return re.search(r"\(\s*vnnlib-version\s+<\s*2", stripped) is not None


def parse_vnnlib2(text: str, path: str = "<string>") -> Property:
    import vnnlib

    try:
        query = vnnlib.parse_query_string(text)
    except vnnlib.VNNLibException as exc:
        raise _syntax_error(str(exc), path) from None
    if len(query.networks) != 1:
        raise SpecError(f"{path}: expected exactly one declare-network, found {len(query.networks)}")
    net = query.networks[0]
    if len(net.inputs) != 1 or len(net.outputs) != 1:
        raise SpecError(f"{path}: expected one input and one output tensor per network, found "
                        f"{len(net.inputs)} and {len(net.outputs)}")
    if len(net.hidden):
        raise SpecError(f"{path}: declare-hidden (constraints on inner nodes) is not supported")
    x, y = net.inputs[0], net.outputs[0]
    shapes = {x.name: (list(x.shape), "X"), y.name: (list(y.shape), "Y")}

    def rename(match: re.Match) -> str:
        name = match.group(1)
        if name not in shapes:
            return match.group(0)
        shape, prefix = shapes[name]
        index = [int(v) for v in match.group(2).split(",")]
        flat = int(np.ravel_multi_index(index, shape)) if shape else 0
        return f"{prefix}_{flat}"

    n_in = int(np.prod(x.shape)) if len(x.shape) else 1
    n_out = int(np.prod(y.shape)) if len(y.shape) else 1
    lines = [f"(declare-const X_{i} Real)" for i in range(n_in)]
    lines += [f"(declare-const Y_{i} Real)" for i in range(n_out)]
    for assertion in query.assertions:
        lines.append(_INDEXED.sub(rename, str(assertion)))
    prop = parse_vnnlib("\n".join(lines), path)
    prop.name = Path(path).stem
    return prop


def _syntax_error(message: str, path: str) -> SpecError:
    try:
        payload = json.loads(message)
        first = payload["errors"][0]
        text = first.get("message", "invalid VNN-LIB 2.0")
        if first.get("offendingSymbol"):
            text += f" {first['offendingSymbol']!r}"
        if first.get("hint"):
            text += f" ({first['hint']})"
        return SpecSyntaxError(path, int(first.get("line", 0)), int(first.get("column", 0)) or 1, text)
    except (ValueError, KeyError, IndexError, TypeError):
        match = re.search(r"line (\d+), column (\d+): (.*)", message)
        if match:
            return SpecSyntaxError(path, int(match.group(1)), int(match.group(2)) + 1,
                                   f"syntax error at {match.group(3)}")
        return SpecError(f"{path}: {message.strip().splitlines()[0]}")


def read_vnnlib2(path: str | Path) -> Property:
    path = Path(path)
    return parse_vnnlib2(_read_text(path), str(path))
