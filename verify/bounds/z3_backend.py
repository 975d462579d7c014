"""The exact backend: a module's claim from Z3, for modules with few unstable ReLUs.

The module is encoded exactly in linear real arithmetic: every weight is the rational
value of its float (``fractions.Fraction``: exact), a ReLU whose phase the recorded CROWN
bounds leave open is ``If(z >= 0, z, 0)``, the others are linear.  ``z3.Optimize``
(independent objectives) gives the exact minimum and maximum of every output over the
input box, or, for the last module, per unsafe polytope the exact minimum over the box
of its best row ``max_r (C_r y - d_r)`` — the property itself, not a per-row bound.  The
claim rounds these outward; the evidence is the SMT-LIB2 text of the query that refutes
the claim's negation ("some input in A gives an output outside B": unsat), which the
checker builds again from the model file and re-solves.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any

import numpy as np
import z3

from verify.bounds.backend import (
    BackendFailed,
    ChainModule,
    ModuleClaim,
    RowSpec,
    check_rows,
    push_down,
    push_up,
    sequential_crown,
)
from verify.spec.property import round_down, round_up


def rational(v: float, ctx: z3.Context | None = None) -> z3.ArithRef:
    """The exact rational value of a float as a Z3 constant."""
    f = Fraction(float(v))
    return z3.Q(f.numerator, f.denominator, ctx)


def _affine(W: np.ndarray, b: np.ndarray, v: list[z3.ArithRef], ctx: z3.Context) -> list[z3.ArithRef]:
    out = []
    for k in range(W.shape[0]):
        terms = [rational(W[k, i], ctx) * v[i] for i in np.flatnonzero(W[k])]
        out.append(z3.Sum(terms) + rational(b[k], ctx) if terms else rational(b[k], ctx))
    return out


def encode_module(module: ChainModule, lower: np.ndarray, upper: np.ndarray, phases: list[np.ndarray],
                  ctx: z3.Context) -> tuple[list[Any], list[z3.ArithRef], int]:
    """Constraints of the module on the box, and its output variables (in the Z3 context ``ctx``).

    ``phases[j]`` per neuron of internal ReLU layer ``j``: +1 active, -1 inactive, 0 open
    (encoded with ``If``).  Returns the constraints, the outputs and the open count.
    """
    xs = [z3.Real(f"x_{i}", ctx) for i in range(module.n_inputs)]
    cons: list[Any] = []
    for x, lo, hi in zip(xs, lower, upper):
        cons += [x >= rational(lo, ctx), x <= rational(hi, ctx)]
    v: list[z3.ArithRef] = list(xs)
    n_open = 0
    for j, (W, b) in enumerate(zip(module.weights, module.biases)):
        zs = [z3.Real(f"z{j}_{k}", ctx) for k in range(W.shape[0])]
        cons += [z == e for z, e in zip(zs, _affine(W, b, v, ctx))]
        if j == len(module.weights) - 1:
            return cons, zs, n_open
        v = []
        for k, z in enumerate(zs):
            if phases[j][k] > 0:
                v.append(z)
            elif phases[j][k] < 0:
                v.append(z3.RealVal(0, ctx))
            else:
                a = z3.Real(f"a{j}_{k}", ctx)
                cons.append(a == z3.If(z >= 0, z, z3.RealVal(0, ctx), ctx))
                v.append(a)
                n_open += 1
    raise AssertionError("unreachable")


def phases_of(pre: list[tuple[Any, Any]]) -> list[np.ndarray]:
    """+1 / -1 for neurons whose bounds fix the phase, 0 for the open ones."""
    out = []
    for l, u in pre:
        l, u = np.asarray(l).reshape(-1), np.asarray(u).reshape(-1)
        out.append(np.where(l >= 0, 1, np.where(u <= 0, -1, 0)).astype(np.int8))
    return out


def row_values(rows: RowSpec, ys: list[z3.ArithRef], ctx: z3.Context) -> list[z3.ArithRef]:
    """``C_r y - d_r`` for every row, exactly."""
    return [z3.Sum([rational(c, ctx) * ys[i] for i, c in enumerate(rows.C[r]) if c != 0] or [z3.RealVal(0, ctx)])
            - rational(rows.d[r], ctx) for r in range(rows.C.shape[0])]


def violation(claim_out: tuple[np.ndarray, np.ndarray] | None, margins: np.ndarray | None, rows: RowSpec | None,
              ys: list[z3.ArithRef], ctx: z3.Context) -> Any:
    """The negation of a claim: some output outside the box, or some polytope's rows all below its margin."""
    if margins is None:
        assert claim_out is not None
        lo, hi = claim_out
        return z3.Or([c for y, a, b in zip(ys, lo, hi) for c in (y < rational(a, ctx), y > rational(b, ctx))])
    assert rows is not None
    vals = row_values(rows, ys, ctx)
    return z3.Or([z3.And([vals[r] < rational(m, ctx) for r in g]) for g, m in zip(rows.groups, margins) if g.size])


def _value(handle: Any) -> Fraction:
    v = handle.value()
    if z3.is_int_value(v):
        return Fraction(v.as_long())
    if not z3.is_rational_value(v):
        raise BackendFailed(f"z3: the optimum is not a finite rational ({v})")
    return v.as_fraction()


class Z3Backend:
    """Exact claims by Z3 (see the module docstring); ``timeout`` in seconds per module."""

    name = "z3"

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def bound(self, module: ChainModule, lower: np.ndarray, upper: np.ndarray,
              rows: RowSpec | None = None) -> ModuleClaim:
        start = time.monotonic()
        check_rows(module, rows)
        pre = sequential_crown(module, lower, upper)
        phases = phases_of([(l.numpy(), u.numpy()) for l, u in pre])
        ctx = z3.Context()
        cons, ys, n_open = encode_module(module, lower, upper, phases, ctx)
        opt = z3.Optimize(ctx=ctx)
        opt.set(priority="box")
        opt.set("timeout", max(1, int(self.timeout * 1000)))
        opt.add(cons)
        if rows is None:
            handles = [(opt.minimize(y), opt.maximize(y)) for y in ys]
        else:
            vals = row_values(rows, ys, ctx)
            handles = []
            for p, g in enumerate(rows.groups):
                t = z3.Real(f"t_{p}", ctx)
                opt.add([t >= vals[r] for r in g])
                handles.append((opt.minimize(t), None))
        result = opt.check()
        if result != z3.sat:
            why = opt.reason_unknown() if result == z3.unknown else "empty box"
            raise BackendFailed(f"z3 on module {module.name}: {result} ({why})")
        claim = ModuleClaim(module.name, (module.start, module.end), self.name, np.asarray(lower, dtype=np.float64),
                            np.asarray(upper, dtype=np.float64))
        if rows is None:
            claim.out_lower = push_down(np.array([round_down(_value(h)) for h, _ in handles]))
            claim.out_upper = push_up(np.array([round_up(_value(h)) for _, h in handles]))
        else:
            claim.margins = push_down(np.array([round_down(_value(h)) for h, _ in handles]))
        # the evidence: the claim's negation, in a fresh context (so the text does not depend
        # on what Z3 built before: deterministic certificates)
        ctx = z3.Context()
        cons, ys, _ = encode_module(module, lower, upper, phases, ctx)
        solver = z3.Solver(ctx=ctx)
        solver.add(cons)
        solver.add(violation(None if rows is not None else (claim.out_lower, claim.out_upper), claim.margins, rows,
                             ys, ctx))
        claim.evidence = {"method": "z3", "open_relus": n_open, "solver": f"z3 {z3.get_version_string()}",
                          "smtlib": solver.to_smt2()}
        claim.seconds = time.monotonic() - start
        return claim
