"""Re-check a ``modules`` proof: module claims and their assume-guarantee composition.

A modules proof cuts the network (as this checker reads it: ``blocks`` of linear
operations between ReLU layers) into consecutive modules ``[s, e]`` of blocks.  Each
claim says: every input in the box ``A`` (on the network input, or on ReLU layer
``s-1``'s output) gives outputs in the box ``B`` (on ReLU layer ``e``'s pre-activation)
or, for the last module, gives every unsafe polytope ``p`` a row with
``C_r y - d_r >= margin_p > 0``.  What is checked:

* structure: the modules cover blocks ``0 .. K-1`` in order, and the composition lists
  exactly the links between consecutive modules;
* composition: ``A`` of the first module contains the case's box, and for every link
  ``relu(B_i)`` lies in ``A_{i+1}`` coordinate by coordinate (exact float comparisons;
  ReLU is monotone, so a box maps into the box of its ends);
* coverage: the last claim gives every unsafe polytope of the case a margin > 0;
* every claim, re-derived from its input box and the model file alone:

  - bound propagation (any method but ``z3``): the recorded intermediate bounds of the
    module's ReLU layers are confirmed in order, each by rigorous back-substitution
    (:class:`verify.certcheck.bounds.RigorousBounder`) from the input box and the bounds
    already confirmed (without recorded bounds the checker computes its own); the claim
    is then re-derived by rigorous back-substitution with the recorded lower slopes
    (alphas, any value is clipped into [0, 1], so they can only make the bound fail);
  - ``z3``: the module is encoded exactly (rational values of the model's float weights,
    each ReLU either linear where the checker's own rigorous bounds fix its phase, or
    ``If``), with the claim's negation; Z3 must answer unsat.  The SMT-LIB2 text in the
    evidence is not read: the query is built here from the model file.

Trusted in addition to the rest of the checker (see :mod:`verify.certcheck`): Z3's
decision procedure for linear real arithmetic (for ``z3`` claims only) and Python's
``fractions`` for the exact weights.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from verify.certcheck.bounds import RigorousBounder
from verify.certcheck.encoding import decode_array
from verify.certcheck.network import CheckerNetwork, Op
from verify.certcheck.rigorous import down

#: A z3 claim whose module has more ReLUs of open phase (by the checker's bounds) is refused.
Z3_MAX_OPEN = 24
#: Time Z3 gets per claim (milliseconds); no answer in time refuses the claim.
Z3_TIMEOUT_MS = 120_000


def check_modules(net: CheckerNetwork, case: Any, proof: dict[str, Any], where: str) -> int:
    """Check one case's modules proof (raises ``ClaimFailed``); returns the number of claims."""
    from verify.certcheck.checker import ClaimFailed, _polytope_rows

    body = proof["modules"]
    claims = body["claims"]
    links = body["composition"]
    if not isinstance(claims, list) or not claims or not isinstance(links, list):
        raise ClaimFailed(f"{where}: malformed modules proof")
    K = len(net.blocks)
    in_sizes = [net.n_inputs] + net.layer_sizes[:-1]
    C, d_out, groups = _polytope_rows(case)
    spans: list[tuple[int, int]] = []
    boxes: list[tuple[np.ndarray, np.ndarray]] = []
    nxt = 0
    for i, c in enumerate(claims):
        s, e = (int(v) for v in c["blocks"])
        if len(c["blocks"]) != 2 or s != nxt or not s <= e < K:
            raise ClaimFailed(f"{where}: module {i} covers blocks {c['blocks']}, expected to start at block {nxt} "
                              f"(the modules must cover the {K} blocks in order; is a module missing?)")
        nxt = e + 1
        lo = _vector(c["input"]["lower"], in_sizes[s], f"{where}: module {i} input")
        hi = _vector(c["input"]["upper"], in_sizes[s], f"{where}: module {i} input")
        if not np.all(lo <= hi):
            raise ClaimFailed(f"{where}: module {i} has an empty or malformed input box")
        spans.append((s, e))
        boxes.append((lo, hi))
    if nxt != K:
        raise ClaimFailed(f"{where}: the modules end at block {nxt - 1}, the network has {K} blocks")
    if len(links) != len(claims) - 1:
        raise ClaimFailed(f"{where}: {len(links)} composition link(s) for {len(claims)} modules")
    for i, link in enumerate(links):
        if link.get("from") != claims[i]["name"] or link.get("to") != claims[i + 1]["name"] or \
                link.get("layer") != spans[i][1] or link.get("rule") != "relu-box":
            raise ClaimFailed(f"{where}: composition link {i} does not join module {i} to module {i + 1} "
                              f"at ReLU layer {spans[i][1]} by the relu-box rule")
    lo0, hi0 = boxes[0]
    if not (np.all(lo0 <= case.box.lower) and np.all(hi0 >= case.box.upper)):
        raise ClaimFailed(f"{where}: the first module's input box does not contain the case's box")
    outs: list[tuple[np.ndarray, np.ndarray]] = []
    for i, c in enumerate(claims[:-1]):
        n = net.layer_sizes[spans[i][1]]
        olo = _vector(c["output"]["lower"], n, f"{where}: module {i} output")
        ohi = _vector(c["output"]["upper"], n, f"{where}: module {i} output")
        nlo, nhi = boxes[i + 1]
        if not (np.all(nlo <= np.maximum(olo, 0.0)) and np.all(nhi >= np.maximum(ohi, 0.0))):
            raise ClaimFailed(f"{where}: relu of module {i}'s output box is not inside module {i + 1}'s input box")
        outs.append((olo, ohi))
    margins = _vector(claims[-1]["polytopes"]["margin"], len(groups), f"{where}: last module margins")
    if not np.all(margins > 0) or any(g.size == 0 for g in groups):
        raise ClaimFailed(f"{where}: the last module does not refute every unsafe polytope (margins must be > 0)")
    for i, c in enumerate(claims):
        s, e = spans[i]
        sub = CheckerNetwork(in_sizes[s], list(net.blocks[s:e + 1]), list(net.relu_names[s:e]))
        lo, hi = boxes[i]
        what = f"{where}: module {i} ({c.get('name', '?')}, blocks {s}-{e})"
        last = i == len(claims) - 1
        evidence = c["evidence"]
        if evidence.get("method") == "z3":
            ok = _z3_refutes(sub, lo, hi, None if last else outs[i], (C, d_out, groups, margins) if last else None,
                             what, ClaimFailed)
            if not ok:
                raise ClaimFailed(f"{what}: Z3 finds an input of the box that breaks the claim")
            continue
        lb = _propagate(sub, lo, hi, evidence, C if last else None, what, ClaimFailed)
        if last:
            got = np.array([np.max(down(lb[g] - d_out[g])) for g in groups])
            if not np.all(got >= margins):
                p = int(np.argmin(got - margins))
                raise ClaimFailed(f"{what}: claims margin {margins[p]:.6g} for unsafe polytope {p}, the recomputed "
                                  f"bound gives {got[p]:.6g}")
        else:
            n = lb.shape[0] // 2
            olo, ohi = outs[i]
            if not (np.all(lb[:n] >= olo) and np.all(-lb[n:] <= ohi)):
                k = int(np.argmax(np.maximum(olo - lb[:n], -lb[n:] - ohi)))
                raise ClaimFailed(f"{what}: claims output {k} in [{olo[k]:.9g}, {ohi[k]:.9g}], the recomputed bounds "
                                  f"give [{lb[k]:.9g}, {-lb[n + k]:.9g}]")
    return len(claims)


def _vector(obj: Any, n: int, what: str) -> np.ndarray:
    from verify.certcheck.checker import ClaimFailed

    v = decode_array(obj, what).astype(np.float64)
    if v.shape != (n,):
        raise ClaimFailed(f"{what}: shape {v.shape}, expected ({n},)")
    return v


def _propagate(sub: CheckerNetwork, lo: np.ndarray, hi: np.ndarray, evidence: dict[str, Any], C: np.ndarray | None,
               what: str, failed: type[Exception]) -> np.ndarray:
    """Rigorous lower bounds of the claimed rows (``C y``, or ``[z; -z]`` of the module output)."""
    bounder = RigorousBounder(sub)
    sizes = sub.layer_sizes
    n_int = len(sub.blocks) - 1
    lo2, hi2 = lo[None], hi[None]
    recorded = evidence.get("intermediate")
    if recorded is None:
        pre, op_inputs = bounder.intermediate(lo2, hi2)
    else:
        if not isinstance(recorded, list) or len(recorded) != n_int:
            raise failed(f"{what}: intermediate bounds for {len(recorded)} ReLU layers, the module has {n_int}")
        pre = [(_vector(r["lower"], sizes[j], f"{what}: intermediate")[None],
                _vector(r["upper"], sizes[j], f"{what}: intermediate")[None]) for j, r in enumerate(recorded)]
        _, op_inputs = bounder.intermediate(lo2, hi2, given=pre)
        for j in range(n_int):  # confirm layer j from the input box and the layers before it (confirmed)
            n = sizes[j]
            lb = bounder._backward(j, np.vstack([np.eye(n), -np.eye(n)]), lo2, hi2, pre, op_inputs)[0]
            if not (np.all(pre[j][0][0] <= lb[:n]) and np.all(pre[j][1][0] >= -lb[n:])):
                raise failed(f"{what}: the recorded bounds of its ReLU layer {j} are not confirmed by "
                             f"back-substitution")
    n_out = sizes[-1]
    rows = C if C is not None else np.vstack([np.eye(n_out), -np.eye(n_out)])
    alphas = None
    if "alphas" in evidence:
        alphas = [decode_array(a, f"{what}: alphas").astype(np.float64)[None] for a in evidence["alphas"]]
        if len(alphas) != n_int or any(a.shape != (1, rows.shape[0], sizes[j]) for j, a in enumerate(alphas)):
            raise failed(f"{what}: alphas have the wrong shape")
    return bounder._backward(n_int, rows, lo2, hi2, pre, op_inputs, alphas=alphas)[0]


def _q(v: float) -> Any:
    import z3

    f = Fraction(float(v))
    return z3.Q(f.numerator, f.denominator)


def _z3_refutes(sub: CheckerNetwork, lo: np.ndarray, hi: np.ndarray, out: tuple[np.ndarray, np.ndarray] | None,
                prop: tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray] | None, what: str,
                failed: type[Exception]) -> bool:
    """Whether Z3 proves that no input of the box breaks the claim (exact encoding)."""
    import z3

    pre, _ = RigorousBounder(sub).intermediate(lo[None], hi[None])
    phases = [np.where(l[0] >= 0, 1, np.where(u[0] <= 0, -1, 0)) for l, u in pre]
    n_open = int(sum((p == 0).sum() for p in phases))
    if n_open > Z3_MAX_OPEN:
        raise failed(f"{what}: {n_open} ReLUs of open phase; the checker re-solves z3 claims up to {Z3_MAX_OPEN}")
    solver = z3.Solver()
    solver.set("timeout", Z3_TIMEOUT_MS)
    v = [z3.Real(f"x_{i}") for i in range(sub.n_inputs)]
    for x, a, b in zip(v, lo, hi):
        solver.add(x >= _q(a), x <= _q(b))
    for k, block in enumerate(sub.blocks):
        for t, op in enumerate(block):
            v = _op(op, v, f"v{k}_{t}", solver, what, failed)
        if k < len(sub.blocks) - 1:
            acts = []
            for j, z in enumerate(v):
                if phases[k][j] > 0:
                    acts.append(z)
                elif phases[k][j] < 0:
                    acts.append(z3.RealVal(0))
                else:
                    a = z3.Real(f"a{k}_{j}")
                    solver.add(a == z3.If(z >= 0, z, z3.RealVal(0)))
                    acts.append(a)
            v = acts
    if prop is None:
        assert out is not None
        olo, ohi = out
        solver.add(z3.Or([c for y, a, b in zip(v, olo, ohi) for c in (y < _q(a), y > _q(b))]))
    else:
        C, d, groups, margins = prop
        vals = [z3.Sum([_q(c) * v[j] for j, c in enumerate(C[r]) if c != 0] or [z3.RealVal(0)]) - _q(d[r])
                for r in range(C.shape[0])]
        solver.add(z3.Or([z3.And([vals[r] < _q(m) for r in g]) for g, m in zip(groups, margins)]))
    result = solver.check()
    if result == z3.unknown:
        raise failed(f"{what}: Z3 gave no answer ({solver.reason_unknown()})")
    return result == z3.unsat


def _op(op: Op, v: list[Any], name: str, solver: Any, what: str, failed: type[Exception]) -> list[Any]:
    """The exact outputs of one linear operation (fresh variables, defined by equalities)."""
    import z3

    if op.kind == "dense":
        assert op.W is not None and op.b is not None
        exprs = []
        for k in range(op.W.shape[0]):
            cols = np.flatnonzero(op.W[k])
            exprs.append(z3.Sum([_q(op.W[k, i]) * v[i] for i in cols] + [_q(op.b[k])]))
    else:
        assert op.s is not None and op.c is not None and op.s_err is not None and op.c_err is not None
        if np.any(op.s_err != 0) or np.any(op.c_err != 0):
            raise failed(f"{what}: operation {op.name!r} has no exact rational form; z3 claims cannot use it")
        exprs = [_q(op.s[k]) * v[k] + _q(op.c[k]) for k in range(op.s.shape[0])]
    out = [z3.Real(f"{name}_{k}") for k in range(len(exprs))]
    solver.add([o == e for o, e in zip(out, exprs)])
    return out
