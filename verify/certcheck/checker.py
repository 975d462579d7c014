"""Re-check a certificate against the model and spec files, trusting none of the producer's numbers.

What is checked, per case of the property:

* the files: sha256 of the model and spec files equal the certificate's;
* the proof structure: for ``input-split`` proofs, the split tree cuts each box into two
  halves along one dimension at a value inside it, so the leaves tile the case's box;
  every leaf, for every unsafe polytope, has a node on its path to the root whose bound
  refutes that polytope (a *closure*); ``dag`` proofs (general ONNX graphs, read by
  :mod:`verify.certcheck.dag_network`) split input coordinates or inputs of non-linear
  operations (docs/relaxations.md), with closures checked the same way by
  :mod:`verify.certcheck.dag_bounds`;
* every closure: the bounds of its box are recomputed from scratch with rigorous
  float64 arithmetic (:mod:`verify.certcheck.bounds`); some row ``C_r y <= d_r`` of the
  polytope must have ``C_r y - d_r`` bounded below by the claimed margin (> 0), with
  ``d_r`` the spec's right-hand side rounded up.

The producer's choices (split values, lower slopes alpha, split multipliers beta >= 0) are used
as given: a bad choice can only make the recomputed bound fail, never make a false claim pass.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from verify.certcheck.bounds import RigorousBounder
from verify.certcheck.dag_bounds import DagBounder, SplitTerms
from verify.certcheck.dag_network import DagNetwork, read_dag
from verify.certcheck.encoding import decode_array
from verify.certcheck.network import CheckerNetwork, UnsupportedModel, read_network
from verify.certcheck.relational import RelationalClaimFailed, check_difference_proof, check_jacobian_proof
from verify.certcheck.rigorous import down
from verify.certcheck.schema import validate
from verify.errors import CertificateError, InputFileError

FORMAT = "verify-certificate"
VERSION = 1
CHUNK = 32


class ClaimFailed(Exception):
    """A claim of the certificate does not hold; the message names it."""


class OutOfTime(Exception):
    """The check did not finish before its deadline (nothing was found wrong so far)."""


_deadline: list[float | None] = [None]


def _tick() -> None:
    """Called between batches of work: stop when the caller's deadline has passed."""
    if _deadline[0] is not None and time.monotonic() > _deadline[0]:
        raise OutOfTime


@dataclass
class CertReport:
    valid: bool
    message: str
    claims_checked: int = 0
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    complete: bool = True  # False: stopped at the deadline before every claim was re-checked


#: Default limit on the size of a certificate file; ``VERIFY_MAX_CERT_BYTES`` overrides it.
DEFAULT_MAX_CERT_BYTES = 1024**3
MAX_CERT_BYTES_ENV = "VERIFY_MAX_CERT_BYTES"
#: Default limit on a model or spec file read by the checker (as verify's model reader).
DEFAULT_MAX_MODEL_BYTES = 2 * 1024**3
#: Deepest nesting of JSON objects and lists accepted (real certificates nest about 8 deep).
MAX_JSON_DEPTH = 64
#: Longest integer literal accepted in certificate JSON (digits).
MAX_INT_DIGITS = 20
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _limit(env: str, default: int) -> int:
    text = os.environ.get(env, "").strip()
    if not text:
        return default
    try:
        value = int(text.replace("_", "")) if len(text) <= 30 else 0
    except ValueError:
        value = 0
    if value <= 0:
        raise CertificateError(f"{env}={text[:40]!r} is not a positive whole number of bytes")
    return value


def _shown(path: Any) -> str:
    text = str(path)
    if not text.isprintable():
        text = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= 160 else f"{text[:80]}...({len(text) - 160} characters)...{text[-80:]}"


def read_regular_file(path: str | Path, what: str, limit: int) -> bytes:
    """The bytes of the regular file at ``path`` (at most ``limit``), one-line errors for
    anything else; opened non-blocking, so a FIFO or device never hangs the checker."""
    shown = _shown(path)
    text = os.fspath(path)
    if not text or "\x00" in text:
        raise InputFileError(f"{what} path is empty or contains a NUL character: {shown}")
    fd = -1
    try:
        fd = os.open(text, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a named pipe (FIFO)" \
                if stat.S_ISFIFO(info.st_mode) else "not a regular file"
            raise InputFileError(f"{what} is {kind}, not a regular file: {shown}")
        if info.st_size > limit:
            raise InputFileError(f"{what} {shown} has {info.st_size} bytes, more than the limit of {limit}")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise InputFileError(f"{what} not found: {shown}") from None
    except OSError as exc:
        reason = "the path is too long" if exc.errno == errno.ENAMETOOLONG else (exc.strerror or type(exc).__name__)
        raise InputFileError(f"{what} not readable: {shown} ({reason})") from None
    except ValueError as exc:  # a path the OS cannot represent
        raise InputFileError(f"{what} path is not valid: {shown} ({exc})") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > limit:
        raise InputFileError(f"{what} {shown} has more than the limit of {limit} bytes")
    return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; a certificate holds finite numbers only")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer literal of {len(text)} digits (a certificate has at most {MAX_INT_DIGITS})")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:30]} is out of the range of float64")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"duplicate key {dup[:40]!r} in an object")
    return out


def parse_certificate(data: bytes, name: str) -> dict[str, Any]:
    """The certificate in ``data`` (the bytes of file ``name``), checked as JSON with limits
    (UTF-8, nesting at most :data:`MAX_JSON_DEPTH`, integers of at most
    :data:`MAX_INT_DIGITS` digits, finite numbers, no duplicate keys) and then against the
    schema (:mod:`verify.certcheck.schema`); one-line :class:`CertificateError` otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CertificateError(f"{name}: not a JSON certificate (not UTF-8 text: byte {exc.start})") from None
    brackets = np.frombuffer(_JSON_STRING.sub(b'""', data).translate(None, _NOT_BRACKETS), dtype=np.uint8)
    if brackets.size:
        depth = np.cumsum(np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1), dtype=np.int64)
        if depth.max() > MAX_JSON_DEPTH:
            raise CertificateError(f"{name}: not a JSON certificate (objects and lists nested more than "
                                   f"{MAX_JSON_DEPTH} deep)")
    try:
        cert = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_refuse_constant,
                          object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise CertificateError(f"{name}: not a JSON certificate (line {exc.lineno} column {exc.colno}: "
                               f"{exc.msg})") from None
    except ValueError as exc:  # raised by the hooks above, with their messages
        raise CertificateError(f"{name}: not a JSON certificate ({exc})") from None
    if not isinstance(cert, dict) or cert.get("format") != FORMAT:
        raise CertificateError(f"{name}: not a verify certificate (missing \"format\": \"{FORMAT}\")")
    if cert.get("version") != VERSION or isinstance(cert.get("version"), bool):
        raise CertificateError(f"{name}: certificate version {cert.get('version')!r:.40}; this checker reads {VERSION}")
    validate(cert, name)
    return cert


def load_certificate(path: str | Path) -> dict[str, Any]:
    """Read and check a certificate file (see :func:`parse_certificate`); a path that is not
    a regular file, or a file that is not a well-formed certificate, is a one-line
    :class:`CertificateError` or :class:`InputFileError`."""
    data = read_regular_file(path, "certificate file", _limit(MAX_CERT_BYTES_ENV, DEFAULT_MAX_CERT_BYTES))
    return parse_certificate(data, _shown(path))


def check_certificate(model_path: str | Path, spec: str | Path | Any, cert: dict[str, Any],
                      deadline: float | None = None) -> CertReport:
    """Check ``cert`` against the model file and the spec (a file, or an in-memory
    :class:`~verify.spec.property.Property`, identified by its fingerprint); never raises
    for a false claim (returns invalid).  With ``deadline`` (``time.monotonic()``), a check
    still running then stops and returns ``valid=False, complete=False``."""
    from verify.spec import Property, Template, load_spec

    start = time.monotonic()
    _deadline[0] = deadline
    try:
        validate(cert)
    except CertificateError as exc:
        return CertReport(False, f"malformed certificate: {exc}", seconds=time.monotonic() - start)
    limit = _limit("VERIFY_MAX_MODEL_BYTES", DEFAULT_MAX_MODEL_BYTES)
    try:
        # hashed and read as one: the network checked is the one hashed
        model_bytes = read_regular_file(model_path, "model file", limit)
        if cert["model"]["sha256"] != hashlib.sha256(model_bytes).hexdigest():
            raise ClaimFailed("model: the file's sha256 differs from the certificate's (the model changed)")
        if isinstance(spec, Property):
            prop, spec_hash, what = spec, spec.fingerprint(), "property's fingerprint"
        else:
            spec_bytes = read_regular_file(spec, "spec file", limit)
            prop, spec_hash, what = None, hashlib.sha256(spec_bytes).hexdigest(), "file's sha256"
        if cert["spec"]["sha256"] != spec_hash:
            raise ClaimFailed(f"spec: the {what} differs from the certificate's (the spec changed)")
        if cert.get("verdict") != "verified":
            raise ClaimFailed(f"verdict: the certificate claims {cert.get('verdict')!r}, not 'verified'")
        prop = prop or load_spec(spec, templates=True)
        if isinstance(prop, Template):
            claims = _check_template(model_bytes, prop, cert, Path(spec), limit)
            return CertReport(True, f"valid: {claims} claim(s) re-checked", claims, time.monotonic() - start)
        kinds = [c.get("kind") for c in cert.get("cases", []) if isinstance(c, dict)]
        net = dag = None
        if not kinds or any(k != "dag" for k in kinds):
            try:
                net = read_network(model_bytes)
            except UnsupportedModel as exc:
                raise ClaimFailed(f"model: the checker cannot read it ({exc})") from None
            if net.n_inputs != prop.n_inputs or net.layer_sizes[-1] != prop.n_outputs:
                raise ClaimFailed("model/spec: input or output sizes differ")
        if "dag" in kinds:
            try:
                dag = read_dag(model_bytes)
            except UnsupportedModel as exc:
                raise ClaimFailed(f"model: the checker cannot read it as a graph ({exc})") from None
            if dag.n_inputs != prop.n_inputs or dag.n_outputs != prop.n_outputs:
                raise ClaimFailed("model/spec: input or output sizes differ")
        cases = cert.get("cases")
        if not isinstance(cases, list) or len(cases) != len(prop.cases):
            raise ClaimFailed(f"cases: the spec has {len(prop.cases)} case(s), the certificate "
                              f"{len(cases) if isinstance(cases, list) else 'none'}")
        claims = 0
        for index, (case, proof) in enumerate(zip(prop.cases, cases)):
            if proof.get("case") != index:
                raise ClaimFailed(f"case {index}: proofs out of order")
            kind = proof.get("kind")
            if kind == "dag":
                assert dag is not None
                claims += check_dag(dag, case, proof, f"case {index}")
            elif kind == "input-split":
                assert net is not None
                claims += _check_input_split(net, case, proof, f"case {index}")
            elif kind == "relu-split":
                assert net is not None
                claims += _check_relu_split(net, case, proof, f"case {index}")
            elif kind == "modules":
                from verify.certcheck.modules import check_modules

                assert net is not None
                claims += check_modules(net, case, proof, f"case {index}")
            else:
                raise ClaimFailed(f"case {index}: unknown proof kind {kind!r}")
    except (ClaimFailed, RelationalClaimFailed) as exc:
        return CertReport(False, str(exc), seconds=time.monotonic() - start)
    except OutOfTime:
        return CertReport(False, "not finished before the deadline (no claim found wrong so far)",
                          seconds=time.monotonic() - start, complete=False)
    return CertReport(True, f"valid: {claims} claim(s) re-checked", claims, time.monotonic() - start)


def _check_template(model_bytes: bytes, template: Any, cert: dict[str, Any], spec_path: Path, limit: int) -> int:
    """A templated property's certificate (:mod:`verify.certcheck.relational`): one ``jacobian`` proof, or for
    ``equivalent`` one ``difference`` proof about the model and the spec's other model file (relative to the
    spec file's folder, hashed as the certificate says)."""
    try:
        dag = read_dag(model_bytes)
    except UnsupportedModel as exc:
        raise ClaimFailed(f"model: the checker cannot read it as a graph ({exc})") from None
    if dag.n_inputs != template.region.n:
        raise ClaimFailed("model/spec: the template's region and the model's input differ in size")
    template.check_fits(dag.n_inputs, dag.n_outputs)
    kind = "difference" if template.KIND == "equivalent" else "jacobian"
    cases = cert.get("cases")
    if not isinstance(cases, list) or len(cases) != 1 or cases[0].get("kind") != kind:
        raise ClaimFailed(f"cases: a {template.KIND} template needs exactly one {kind} proof")

    def boxes(tree: dict[str, Any], lo: np.ndarray, hi: np.ndarray) -> tuple[Any, Any, list[int], list[int]]:
        blo, bhi, parent, children, dim = _split_boxes(tree, lo, hi, "case 0")
        leaves = [i for i in range(parent.shape[0]) if i not in children]
        return blo, bhi, leaves, [int(dim[kids[0]]) for kids in children.values()]

    if kind == "jacobian":
        return check_jacobian_proof(dag, template, cases[0], boxes, "case 0")
    other_path = Path(template.other) if Path(template.other).is_absolute() else spec_path.parent / template.other
    other_bytes = read_regular_file(other_path, "other model file", limit)
    if not isinstance(cert.get("other_model"), dict) or \
            cert["other_model"].get("sha256") != hashlib.sha256(other_bytes).hexdigest():
        raise ClaimFailed("other_model: the second model file's sha256 differs from the certificate's")
    try:
        other = read_dag(other_bytes)
    except UnsupportedModel as exc:
        raise ClaimFailed(f"other model: the checker cannot read it as a graph ({exc})") from None
    return check_difference_proof(dag, other, template, cases[0], boxes, "case 0")


def _polytope_rows(case: Any) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """All rows of the case's polytopes stacked, the outer right-hand sides, and row groups."""
    C, d, groups, k = [], [], [], 0
    for poly in case.unsafe:
        if np.any(poly.coef_err > 0):
            raise ClaimFailed("spec: a coefficient is not a float; the checker cannot use that row")
        C.append(poly.C)
        d.append(poly.d)
        groups.append(np.arange(k, k + poly.n_rows))
        k += poly.n_rows
    return np.concatenate(C), np.concatenate(d), groups


def _tree_columns(tree: dict[str, Any], where: str, **dtypes: Any) -> list[np.ndarray]:
    """The split tree's columns (``parent`` first), decoded with the given dtypes; the tree
    must be non-empty, its columns of one length, and node 0 its root."""
    columns = [decode_array(tree[name], f"{where}: tree.{name}").astype(dtype) for name, dtype in dtypes.items()]
    n = columns[0].shape[0]
    if n == 0 or any(c.shape[0] != n for c in columns) or columns[0][0] != -1:
        raise ClaimFailed(f"{where}: malformed split tree")
    return columns


def _paths_and_depths(parent: np.ndarray, targets: Any) -> tuple[np.ndarray, np.ndarray]:
    """Which nodes lie on a path from the root to one of ``targets``, and every node's depth
    (each parent comes before its children; the callers check that first)."""
    n = parent.shape[0]
    needed = np.zeros(n, dtype=bool)
    needed[targets] = True
    for i in range(n - 1, 0, -1):
        if needed[i]:
            needed[parent[i]] = True
    depth = np.zeros(n, dtype=np.int64)
    for i in range(1, n):
        depth[i] = depth[parent[i]] + 1
    return needed, depth


def _split_boxes(tree: dict[str, Any], root_lo: np.ndarray, root_hi: np.ndarray, where: str
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, list[int]], np.ndarray]:
    """The boxes of an input split tree (node 0: the root box; node ``i``: the ``side`` half of
    ``parent[i]`` cut at ``value[i]`` along ``dim[i]``), checked: every parent earlier, every cut inside
    its parent's box, every split node cut into exactly two halves of one cut.  Returns ``lo``, ``hi``
    ``[n, n_inputs]``, ``parent``, the children of each split node and ``dim``."""
    parent, dim, value, side = _tree_columns(tree, where, parent=np.int64, dim=np.int64,
                                             value=np.float64, side=np.int64)
    n = parent.shape[0]
    n_in = root_lo.shape[0]
    lo = np.empty((n, n_in))
    hi = np.empty((n, n_in))
    lo[0], hi[0] = root_lo, root_hi
    children: dict[int, list[int]] = {}
    for i in range(1, n):
        p = int(parent[i])
        if not 0 <= p < i or not 0 <= dim[i] < n_in or side[i] not in (0, 1):
            raise ClaimFailed(f"{where}: split node {i} is malformed")
        children.setdefault(p, []).append(i)
        lo[i], hi[i] = lo[p], hi[p]
        d, v = int(dim[i]), float(value[i])
        if not lo[p, d] <= v <= hi[p, d]:
            raise ClaimFailed(f"{where}: split node {i} cuts outside its parent's box")
        if side[i] == 0:
            hi[i, d] = v
        else:
            lo[i, d] = v
    for p, kids in children.items():
        if len(kids) != 2 or {int(side[k]) for k in kids} != {0, 1} or dim[kids[0]] != dim[kids[1]] or \
                value[kids[0]] != value[kids[1]]:
            raise ClaimFailed(f"{where}: node {p} is not split into exactly two halves of one cut")
    return lo, hi, parent, children, dim


def _check_input_split(net: CheckerNetwork, case: Any, proof: dict[str, Any], where: str) -> int:
    body = proof["input-split"]
    lo, hi, parent, children, _ = _split_boxes(body["tree"], case.box.lower, case.box.upper, where)
    n = parent.shape[0]
    C, d_out, groups = _polytope_rows(case)
    closures = body["closures"]
    c_node = decode_array(closures["node"], f"{where}: closures.node").astype(np.int64)
    c_poly = decode_array(closures["polytope"], f"{where}: closures.polytope").astype(np.int64)
    c_margin = decode_array(closures["margin"], f"{where}: closures.margin").astype(np.float64)
    if c_node.shape != c_poly.shape or c_margin.shape != c_node.shape or not np.all(c_margin > 0) or \
            np.any((c_node < 0) | (c_node >= n)) or \
            np.any((c_poly < 0) | (c_poly >= len(groups))):
        raise ClaimFailed(f"{where}: malformed closures")
    # coverage: every leaf, every polytope, closed on the path to the root
    closed = np.zeros((n, len(groups)), dtype=bool)
    closed[c_node, c_poly] = True
    for i in range(1, n):
        closed[i] |= closed[parent[i]]
    leaves = np.array([i for i in range(n) if i not in children])
    missing = np.nonzero(~closed[leaves].all(axis=1))[0]
    if missing.size:
        leaf = int(leaves[missing[0]])
        p = int(np.nonzero(~closed[leaf])[0][0])
        raise ClaimFailed(f"{where}: leaf {leaf} is not closed for unsafe polytope {p}")
    # every closure: recompute its box's bounds rigorously, top-down: a box inherits its
    # parent's (rigorous) pre-activation bounds, exactly as the producer's children do
    alpha_for = _alphas(body, where, net)
    bounder = RigorousBounder(net)
    needed, depth = _paths_and_depths(parent, c_node)  # nodes on a path from the root to a closure
    by_node = {int(node): np.nonzero(c_node == node)[0].tolist() for node in np.unique(c_node)}
    stored: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for level in range(int(depth.max()) + 1):
        nodes = np.nonzero(needed & (depth == level))[0]
        fresh: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        for start in range(0, nodes.size, CHUNK):
            _tick()
            chunk = nodes[start:start + CHUNK]
            par = None
            if level > 0:
                rows = [stored[int(parent[i])] for i in chunk]
                par = [(np.stack([r[k][0] for r in rows]), np.stack([r[k][1] for r in rows]))
                       for k in range(len(rows[0]))]
            pre, op_inputs = bounder.intermediate(lo[chunk], hi[chunk], parent=par)
            closing = [j for j, node in enumerate(chunk.tolist()) if node in by_node]
            if closing:
                sel = np.asarray(closing)
                lb = bounder.output_lower(C, lo[chunk[sel]], hi[chunk[sel]], [(a[sel], b[sel]) for a, b in pre],
                                          [[m[sel] for m in layer] for layer in op_inputs])
                for row, j in enumerate(closing):
                    node = int(chunk[j])
                    for c in by_node[node]:
                        p = int(c_poly[c])
                        g = groups[p]
                        b = lb[row, g]
                        if (node, p) in alpha_for:
                            b = _with_alphas(bounder, C[g], lo[node:node + 1], hi[node:node + 1],
                                             alpha_for[node, p], [(a[j:j + 1], u[j:j + 1]) for a, u in pre])[0]
                        got = float(np.max(down(b - d_out[g])))  # rigorous margin of the best row
                        if not got >= c_margin[c]:
                            raise ClaimFailed(f"{where}: closure of node {node} for unsafe polytope {p} claims "
                                              f"margin {c_margin[c]:.6g}, the recomputed bound gives {got:.6g}")
            for j, node in enumerate(chunk.tolist()):
                fresh[node] = [(a[j], u[j]) for a, u in pre]
        stored = fresh
    return int(c_node.size)


def _alphas(body: dict[str, Any], where: str, net: CheckerNetwork) -> dict[tuple[int, int], list[np.ndarray]]:
    out: dict[tuple[int, int], list[np.ndarray]] = {}
    for entry in body.get("alphas", []):
        layers = [decode_array(a, f"{where}: alphas") for a in entry["layers"]]
        if len(layers) != len(net.blocks) - 1:
            raise ClaimFailed(f"{where}: alphas for {len(layers)} ReLU layers, the model has {len(net.blocks) - 1}")
        out[int(entry["node"]), int(entry["polytope"])] = layers
    return out


def _with_alphas(bounder: RigorousBounder, C: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 alphas: list[np.ndarray], pre: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    pre, op_inputs = bounder.intermediate(lo, hi, given=pre)
    shaped = []
    for a, (l, _) in zip(alphas, pre):
        if a.shape != (C.shape[0], l.shape[1]):
            raise ClaimFailed(f"alphas of shape {a.shape}, expected {(C.shape[0], l.shape[1])}")
        shaped.append(a[None])
    return bounder.output_lower(C, lo, hi, pre, op_inputs, alphas=shaped)


def _check_relu_split(net: CheckerNetwork, case: Any, proof: dict[str, Any], where: str) -> int:
    """ReLU-split proof: one or more trees, each covering some of the unsafe polytopes;
    together they must cover all of them."""
    trees = proof["relu-split"]["trees"]
    slopes = _root_slopes(proof["relu-split"].get("root_slopes", []), net, where)
    children = proof["relu-split"].get("children_bounds", "recomputed")
    if children not in ("recomputed", "parent"):
        raise ClaimFailed(f"{where}: children_bounds must be 'recomputed' or 'parent', not {children!r:.40}")
    covered: set[int] = set()
    claims = 0
    for t, item in enumerate(trees):
        polys = [int(p) for p in item["polytopes"]]
        claims += _check_relu_tree(net, case, item, polys, f"{where}, tree {t}", slopes,
                                   recompute=children == "recomputed")
        covered.update(polys)
    missing = sorted(set(range(len(case.unsafe))) - covered)
    if missing:
        raise ClaimFailed(f"{where}: unsafe polytope {missing[0]} is covered by no tree")
    return claims


def _root_slopes(entries: list[dict[str, Any]], net: CheckerNetwork,
                 where: str) -> dict[int, tuple[np.ndarray, list[np.ndarray]]]:
    """The root's hidden-layer slopes: per ReLU layer, neurons and per earlier layer ``[2 n, n_j]``."""
    sizes = net.layer_sizes[:-1]
    out: dict[int, tuple[np.ndarray, list[np.ndarray]]] = {}
    for e in entries:
        k = int(e["layer"])
        neurons = decode_array(e["neurons"], f"{where}: root_slopes").astype(np.int64)
        alphas = [decode_array(a, f"{where}: root_slopes") for a in e["alphas"]]
        if not 0 < k < len(sizes) or np.any((neurons < 0) | (neurons >= sizes[k])) or len(alphas) != k or \
                any(a.shape != (2 * neurons.size, sizes[j]) for j, a in enumerate(alphas)):
            raise ClaimFailed(f"{where}: malformed root_slopes for layer {k}")
        out[k] = (neurons, alphas)
    return out


def _check_relu_tree(net: CheckerNetwork, case: Any, body: dict[str, Any], polys: list[int], where: str,
                     slopes: dict[int, tuple[np.ndarray, list[np.ndarray]]] | None = None,
                     recompute: bool = True) -> int:
    """One tree: it splits neurons into both phases; each leaf is closed for every polytope
    in ``polys``; every closure's bound (recomputed top-down: the path's phases, the
    parent's bounds, the recorded alphas and betas) holds.  With ``recompute`` a node's
    hidden-layer bounds from its split layer on are recomputed (and intersected with its
    parent's); without, they are its parent's, clamped by the split (as the producer chose)."""
    parent, layer, neuron, phase = _tree_columns(body["tree"], where, parent=np.int64, layer=np.int64,
                                                 neuron=np.int64, phase=np.int64)
    n = parent.shape[0]
    sizes = net.layer_sizes[:-1]
    children: dict[int, list[int]] = {}
    for i in range(1, n):
        p = int(parent[i])
        if not 0 <= p < i or not 0 <= layer[i] < len(sizes) or not 0 <= neuron[i] < sizes[layer[i]] or \
                phase[i] not in (1, -1):
            raise ClaimFailed(f"{where}: split node {i} is malformed")
        children.setdefault(p, []).append(i)
    for p, kids in children.items():
        if len(kids) != 2 or {int(phase[k]) for k in kids} != {1, -1} or layer[kids[0]] != layer[kids[1]] or \
                neuron[kids[0]] != neuron[kids[1]]:
            raise ClaimFailed(f"{where}: node {p} is not split into the two phases of one neuron")
    C, d_out, groups = _polytope_rows(case)
    entries = body["closures"]
    if not polys or any(not 0 <= p < len(groups) for p in polys):
        raise ClaimFailed(f"{where}: bad polytope list {polys}")
    closed = np.zeros((n, len(groups)), dtype=bool)
    for e in entries:
        node, poly = int(e["node"]), int(e["polytope"])
        if not 0 <= node < n or not 0 <= poly < len(groups):
            raise ClaimFailed(f"{where}: malformed closure {e!r:.80}")
        closed[node, poly] = True
    for i in range(1, n):
        closed[i] |= closed[parent[i]]
    leaves = [i for i in range(n) if i not in children]
    for leaf in leaves:
        for p in polys:
            if not closed[leaf, p]:
                raise ClaimFailed(f"{where}: leaf {leaf} is not closed for unsafe polytope {p}")
    # bounds of every node on a path to a closure, top-down: a node's bounds are recomputed
    # with its path's phases and intersected with its parent's (as the producer's children)
    bounder = RigorousBounder(net)
    by_node: dict[int, list[dict[str, Any]]] = {}
    for e in entries:
        by_node.setdefault(int(e["node"]), []).append(e)
    needed, depth = _paths_and_depths(parent, list(by_node))
    phases_of: dict[int, list[np.ndarray]] = {0: [np.zeros(s) for s in sizes]}
    stored: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for level in range(int(depth.max()) + 1):
        nodes = np.nonzero(needed & (depth == level))[0]
        fresh: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        for start in range(0, nodes.size, CHUNK):
            _tick()
            chunk = nodes[start:start + CHUNK].tolist()
            for i in chunk:
                if i > 0:
                    ph = [a.copy() for a in phases_of[int(parent[i])]]
                    ph[layer[i]][neuron[i]] = phase[i]
                    phases_of[i] = ph
            m = len(chunk)
            lo = np.repeat(case.box.lower[None], m, axis=0)
            hi = np.repeat(case.box.upper[None], m, axis=0)
            phases = [np.stack([phases_of[i][k] for i in chunk]) for k in range(len(sizes))]
            par = None
            if level > 0:
                rows = [stored[int(parent[i])] for i in chunk]
                par = [(np.stack([r[k][0] for r in rows]), np.stack([r[k][1] for r in rows]))
                       for k in range(len(sizes))]
            # layers before a node's own split are its parent's (the split cannot change them)
            first = (min(int(layer[i]) for i in chunk) if recompute else len(sizes)) if level > 0 else 0
            pre, op_inputs = bounder.intermediate(lo, hi, phases=phases, parent=par, start=first,
                                                  slopes=slopes if level == 0 else None)
            for j, node in enumerate(chunk):
                fresh[node] = [(a[j], u[j]) for a, u in pre]
                for e in by_node.get(node, []):
                    _check_relu_closure(bounder, e, node, C, d_out, groups, sizes, lo[j:j + 1], hi[j:j + 1],
                                        [(a[j:j + 1], u[j:j + 1]) for a, u in pre],
                                        [[mm[j:j + 1] for mm in blk] for blk in op_inputs],
                                        [p[j:j + 1] for p in phases], where)
        stored = fresh
    return len(entries)


def _check_relu_closure(bounder: RigorousBounder, e: dict[str, Any], node: int, C: np.ndarray, d_out: np.ndarray,
                        groups: list[np.ndarray], sizes: list[int], lo: np.ndarray, hi: np.ndarray,
                        pre: list[tuple[np.ndarray, np.ndarray]], op_inputs: list[list[np.ndarray]],
                        phases: list[np.ndarray], where: str) -> None:
    poly = int(e["polytope"])
    g = groups[poly]
    alphas = [decode_array(a, f"{where}: alphas")[None] for a in e["alphas"]]
    betas = [decode_array(b, f"{where}: betas")[None] for b in e["betas"]] if "betas" in e else None
    if len(alphas) != len(sizes) or any(a.shape != (1, g.size, s) for a, s in zip(alphas, sizes)):
        raise ClaimFailed(f"{where}: closure of node {node}: alphas have the wrong shape")
    if betas is not None and (len(betas) != len(sizes) or
                              any(b.shape != (1, g.size, s) for b, s in zip(betas, sizes))):
        raise ClaimFailed(f"{where}: closure of node {node}: betas have the wrong shape")
    lb = bounder.output_lower(C[g], lo, hi, pre, op_inputs, alphas=alphas, betas=betas, phases=phases)
    margin = float(e["margin"])
    got = float(np.max(down(lb[0] - d_out[g])))
    if not (margin > 0 and got >= margin):
        raise ClaimFailed(f"{where}: closure of node {node} for unsafe polytope {poly} claims margin "
                          f"{margin:.6g}, the recomputed bound gives {got:.6g}")


def check_dag(net: DagNetwork, case: Any, proof: dict[str, Any], where: str) -> int:
    """Check one case's ``dag`` proof (docs/relaxations.md); raises :class:`ClaimFailed`,
    returns the number of closures re-checked.

    Structure: node 0 is the case's box; every other node is the ``side`` half of its parent
    (``parent[i] < i``) for one input coordinate (``what = -1``, the cut inside the parent's
    box) or one element of the input of a non-linear operation (``neurons[what]``); the two
    children of a node cut the same variable at the same value.  Coverage: every leaf, for
    every unsafe polytope, has a closure on its path.  Every closure: the bounds of its node
    (the box, and the clamps of the neuron splits on its path) are recomputed from scratch
    by :class:`~verify.certcheck.dag_bounds.DagBounder`; an empty domain closes anything.
    Split multipliers (``betas``, optional): one entry per closure at most, of shape ``[m_p, k]``
    (the closure's polytope's rows, the neuron splits on its path, ``k >= 1``), finite and >= 0;
    that closure's bound is then the one with the betas' terms (docs/relaxations.md)."""
    body = proof["dag"]
    names = body["neurons"]
    vids = []
    for j, name in enumerate(names):
        if name not in net.neurons:
            raise ClaimFailed(f"{where}: neurons[{j}] ({_shown(name)[:60]!r}) is not the input of a non-linear "
                              "operation of the model")
        vids.append(net.neurons[name])
    parent, what, index, value, side = _tree_columns(body["tree"], where, parent=np.int64, what=np.int64,
                                                     index=np.int64, value=np.float64, side=np.int64)
    n = parent.shape[0]
    sizes = [net.n_inputs] + [net.sizes[v] for v in vids]  # what + 1 -> size of the split variable
    children: dict[int, list[int]] = {}
    for i in range(1, n):
        p, w = int(parent[i]), int(what[i])
        if not 0 <= p < i or side[i] not in (0, 1) or not -1 <= w < len(vids) or not 0 <= index[i] < sizes[w + 1]:
            raise ClaimFailed(f"{where}: split node {i} is malformed")
        children.setdefault(p, []).append(i)
    for p, kids in children.items():
        a, b = kids[0], kids[-1]
        if len(kids) != 2 or {int(side[a]), int(side[b])} != {0, 1} or what[a] != what[b] or \
                index[a] != index[b] or value[a] != value[b]:
            raise ClaimFailed(f"{where}: node {p} is not split into exactly two halves of one cut")
    C, d_out, groups = _polytope_rows(case)
    closures = body["closures"]
    c_node = decode_array(closures["node"], f"{where}: closures.node").astype(np.int64)
    c_poly = decode_array(closures["polytope"], f"{where}: closures.polytope").astype(np.int64)
    c_margin = decode_array(closures["margin"], f"{where}: closures.margin").astype(np.float64)
    if c_node.shape != c_poly.shape or c_margin.shape != c_node.shape or not np.all(c_margin > 0) or \
            np.any((c_node < 0) | (c_node >= n)) or np.any((c_poly < 0) | (c_poly >= len(groups))):
        raise ClaimFailed(f"{where}: malformed closures")
    n_splits = np.zeros(n, dtype=np.int64)  # neuron splits on the path from the root
    for i in range(1, n):
        n_splits[i] = n_splits[parent[i]] + (what[i] >= 0)
    betas = _dag_betas(body.get("betas", []), c_node, c_poly, groups, n_splits, where)
    closed = np.zeros((n, len(groups)), dtype=bool)
    closed[c_node, c_poly] = True
    for i in range(1, n):
        closed[i] |= closed[parent[i]]
    leaves = np.array([i for i in range(n) if i not in children])
    missing = np.nonzero(~closed[leaves].all(axis=1))[0]
    if missing.size:
        leaf = int(leaves[missing[0]])
        p = int(np.nonzero(~closed[leaf])[0][0])
        raise ClaimFailed(f"{where}: leaf {leaf} is not closed for unsafe polytope {p}")
    by_node: dict[int, list[int]] = {}
    for c, node in enumerate(c_node.tolist()):
        by_node.setdefault(node, []).append(c)
    bounder = DagBounder(net, tick=_tick)
    batch_size = max(1, min(CHUNK, 4096 // max(net.sizes)))
    batch: list[tuple[int, np.ndarray, np.ndarray, dict[tuple[int, int], tuple[float, float]],
                      list[tuple[int, int, float, int]]]] = []

    def flush() -> None:
        _tick()
        lo = np.stack([b[1] for b in batch])
        hi = np.stack([b[2] for b in batch])
        clamps: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for j, (_, _, _, cl, _) in enumerate(batch):
            for (vid, k), (a, b) in cl.items():
                if vid not in clamps:
                    m = net.sizes[vid]
                    clamps[vid] = (np.full((len(batch), m), -np.inf), np.full((len(batch), m), np.inf))
                clamps[vid][0][j, k], clamps[vid][1][j, k] = a, b
        try:
            st = bounder.bounds(lo, hi, clamps)
        except MemoryError:
            raise ClaimFailed(f"{where}: the bounds of node {batch[0][0]} need more memory than there is") from None
        # rounds of one closure per domain and polytope (more only where one node has several closures of one
        # polytope with different betas); the bound of each round's closures with their own betas
        rounds: list[dict[tuple[int, int], int]] = []
        for j, (node, _, _, _, _) in enumerate(batch):
            if st.empty[j] and not st.failed[j]:
                continue  # no input of the box satisfies the node's splits
            for c in by_node[node]:
                slot = (j, int(c_poly[c]))
                for r in rounds:
                    other = r.get(slot)
                    if other is None or _same_betas(betas.get(other), betas.get(c)):
                        r.setdefault(slot, c)
                        r.setdefault((j, -1 - c), c)  # every closure of the round, by its own key too
                        break
                else:
                    rounds.append({slot: c, (j, -1 - c): c})
        for r in rounds:
            splits = None
            with_betas = [(j, c) for (j, key), c in r.items() if key < 0 and c in betas]
            if with_betas:
                paths: list[list[tuple[int, int, float, int]]] = [[] for _ in batch]
                values = np.zeros((len(batch), C.shape[0], max(len(batch[j][4]) for j, _ in with_betas)))
                for j, c in with_betas:
                    paths[j] = batch[j][4]
                    values[j, groups[int(c_poly[c])], :betas[c].shape[1]] = betas[c]
                splits = SplitTerms.from_paths(paths, values)
            try:
                lb = bounder.lower(st, C, splits)
            except MemoryError:
                raise ClaimFailed(f"{where}: the bounds of node {batch[0][0]} need more memory than there is") \
                    from None
            for (j, key), c in r.items():
                if key >= 0:
                    continue
                node = batch[j][0]
                p = int(c_poly[c])
                g = groups[p]
                got = float(np.max(down(lb[j, g] - d_out[g]))) if g.size else -np.inf
                if not got >= c_margin[c]:
                    with_ = " with its betas" if c in betas else ""
                    raise ClaimFailed(f"{where}: closure of node {node} for unsafe polytope {p} claims margin "
                                      f"{c_margin[c]:.6g}, the recomputed bound{with_} gives {got:.6g}")
        batch.clear()

    # depth first, keeping the node's box and clamps (undone on the way back)
    lo, hi = case.box.lower.astype(np.float64).copy(), case.box.upper.astype(np.float64).copy()
    clamp: dict[tuple[int, int], tuple[float, float]] = {}
    path: list[tuple[int, int, float, int]] = []  # the neuron splits (value id, element, value, side) so far
    stack: list[tuple[int, Any]] = [(0, None)]
    visited = 0
    while stack:
        node, undo = stack.pop()
        if undo is not None:
            if undo[0] == "box":
                lo[undo[1]], hi[undo[1]] = undo[2], undo[3]
            elif undo[0] == "clamp":
                path.pop()
                if undo[2] is None:
                    del clamp[undo[1]]
                else:
                    clamp[undo[1]] = undo[2]
            continue
        visited += 1
        if visited % 4096 == 0:
            _tick()
        saved: tuple[Any, ...] = ("root",)
        if node > 0:
            d, v = int(index[node]), float(value[node])
            if what[node] < 0:
                saved = ("box", d, lo[d], hi[d])
                if side[node] == 0:
                    hi[d] = v
                else:
                    lo[d] = v
            else:
                key = (vids[int(what[node])], d)
                old = clamp.get(key)
                saved = ("clamp", key, old)
                cl, cu = old if old is not None else (-np.inf, np.inf)
                clamp[key] = (cl, min(cu, v)) if side[node] == 0 else (max(cl, v), cu)
                path.append((key[0], d, v, int(side[node])))
        kids = children.get(node, [])
        if kids and what[kids[0]] < 0:
            d, v = int(index[kids[0]]), float(value[kids[0]])
            if not lo[d] <= v <= hi[d]:
                raise ClaimFailed(f"{where}: the children of node {node} cut input {d} at {v!r}, outside "
                                  f"the node's box [{lo[d]!r}, {hi[d]!r}]")
        if node in by_node:
            batch.append((node, lo.copy(), hi.copy(), dict(clamp), list(path)))
            if len(batch) >= batch_size:
                flush()
        stack.append((node, saved))
        for c in reversed(kids):
            stack.append((c, None))
    if batch:
        flush()
    return int(c_node.size)


def _dag_betas(entries: list[Any], c_node: np.ndarray, c_poly: np.ndarray, groups: list[np.ndarray],
               n_splits: np.ndarray, where: str) -> dict[int, np.ndarray]:
    """The ``betas`` of a ``dag`` proof by closure, checked: an existing closure, at most once, whose path
    has neuron splits, of shape ``[m_p, k]``, finite and >= 0."""
    out: dict[int, np.ndarray] = {}
    for e, entry in enumerate(entries):
        at = f"{where}: betas[{e}]"
        c = entry["closure"]
        if not 0 <= c < c_node.size:
            raise ClaimFailed(f"{at}: closure {c} does not exist")
        if c in out:
            raise ClaimFailed(f"{at}: a second entry for closure {c}")
        values = decode_array(entry["values"], f"{at}.values").astype(np.float64)
        k = int(n_splits[c_node[c]])
        if k == 0:
            raise ClaimFailed(f"{at}: closure {c} (node {int(c_node[c])}) has no neuron split on its path")
        m = int(groups[int(c_poly[c])].size)
        if values.shape != (m, k):
            raise ClaimFailed(f"{at}: betas have the wrong shape {values.shape} (the closure needs ({m}, {k}))")
        if not (np.all(np.isfinite(values)) and np.all(values >= 0)):
            raise ClaimFailed(f"{at}: betas must be finite and >= 0")
        out[c] = values
    return out


def _same_betas(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
