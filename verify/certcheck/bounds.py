"""Rigorous linear-relaxation bounds on a :class:`CheckerNetwork` (numpy, float64).

The same algorithm as the producer's engine (interval bounds, then back-substitution
for the neurons intervals leave unstable; adaptive lower slopes unless the certificate
gives alphas; split phases clamp bounds and enter through their multipliers beta), but
every floating-point step carries a bound on its rounding error, so the final numbers
are proven lower bounds of the real-valued network.

Back-substitution keeps ``(lam, const, err)`` per domain and row, with the invariant:
for every input in the box, ``row value >= lam . v + const - err`` where ``v`` is the
vector at the current position of the pass.
"""

from __future__ import annotations

import numpy as np

from verify.certcheck.network import CheckerNetwork, Op
from verify.certcheck.rigorous import TINY, U, affine_interval, diag_interval, down, gamma, magnitude, up

Bounds = list[tuple[np.ndarray, np.ndarray]]


def _forward_block(block: list[Op], lo: np.ndarray, hi: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rigorous intervals after each operation of a block (batch first)."""
    out = []
    for op in block:
        if op.kind == "dense":
            lo, hi = affine_interval(op.W, op.b, lo, hi)  # type: ignore[arg-type]
        else:
            lo, hi = diag_interval(op.s, op.s_err, op.c, op.c_err, lo, hi)  # type: ignore[arg-type]
        out.append((lo, hi))
    return out


def _back_block(block: list[Op], op_inputs: list[tuple[np.ndarray, np.ndarray]], lam: np.ndarray,
                const: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Back-substitute through a block's linear operations (last to first).

    ``op_inputs[i]`` bounds the input vector of operation ``i`` (``[N, n]``).
    """
    for op, (vlo, vhi) in zip(reversed(block), reversed(op_inputs)):
        vmag = magnitude(vlo, vhi)  # [N, n_in]
        absl = np.abs(lam)
        if op.kind == "dense":
            W, b = op.W, op.b
            n = W.shape[0]
            const = const + lam @ b  # type: ignore[operator]
            err = err + gamma(n) * (absl @ np.abs(b)) + 2 * U * np.abs(const)
            # coefficient error of lam @ W, times the largest |v|: bounded through |W| @ |v|max
            wv = np.einsum("oi,ni->no", np.abs(W), vmag)  # [N, n_out]
            err = err + gamma(n) * np.einsum("nmo,no->nm", absl, wv) * (1 + gamma(W.shape[1]))
            lam = lam @ W
        else:
            s, s_err, c, c_err = op.s, op.s_err, op.c, op.c_err
            const = const + lam @ c  # type: ignore[operator]
            err = err + absl @ c_err + gamma(c.shape[0]) * (absl @ np.abs(c)) + 2 * U * np.abs(const)  # type: ignore
            err = err + np.einsum("nmi,i,ni->nm", absl, s_err + 2 * U * np.abs(s), vmag)  # type: ignore
            lam = lam * s
    return lam, const, err


def _relu_back(lam: np.ndarray, l: np.ndarray, u: np.ndarray, alpha: np.ndarray | None,
               beta: np.ndarray | None, phase: np.ndarray | None,
               const: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Back-substitute through ``a = relu(z)`` with rigorous pre-activation bounds ``l, u``."""
    L, Uu = l[:, None, :], u[:, None, :]
    unstable = (L < 0) & (Uu > 0)
    active = L >= 0
    zmag = magnitude(L, Uu)
    # lower slopes: the certificate's alphas (clipped to [0, 1]) or the adaptive default
    default_a = ((Uu > -L) & unstable).astype(np.float64)
    a = default_a if alpha is None else np.clip(np.nan_to_num(alpha, nan=0.0), 0.0, 1.0)
    # upper line through (l, 0) with a slope rounded up: relu(z) <= s (z - l) on [l, u]
    denom = np.where(unstable, down(Uu - L), 1.0)
    s_up = up(up(np.where(unstable, Uu, 0.0) / denom) * (1 + 4 * U))
    pos = lam >= 0
    use_lower = unstable & pos
    use_upper = unstable & ~pos
    slope = np.where(active, 1.0, np.where(use_lower, a, np.where(use_upper, s_up, 0.0)))
    new = lam * slope
    absn = np.abs(new)
    # rounding of the products on unstable neurons, times the range they multiply
    err = err + 2 * U * (np.where(use_lower, absn * zmag, 0.0).sum(-1)
                         + np.where(use_upper, absn * (Uu - L), 0.0).sum(-1))
    shift = np.where(use_upper, -new * L, 0.0)  # the line's constant part: -s l per coefficient
    const = const + shift.sum(-1)
    err = err + gamma(lam.shape[-1]) * np.abs(shift).sum(-1) + 2 * U * np.abs(const)
    if beta is not None and phase is not None:
        # phase * z >= 0 holds in the domain: subtracting beta * phase * z (beta >= 0) is a lower bound
        b = np.clip(np.nan_to_num(beta, nan=0.0), 0.0, None)
        term = b * phase[:, None, :]
        new = new - term
        err = err + 2 * U * (np.abs(new) * zmag).sum(-1)
    return new, const, err + TINY


def _concretize(lam: np.ndarray, const: np.ndarray, err: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Rigorous ``min over the box of lam . x + const - err``."""
    low = np.minimum(lam * lo[:, None, :], lam * hi[:, None, :]).sum(-1)
    e = gamma(lam.shape[-1]) * (np.abs(lam) * magnitude(lo, hi)[:, None, :]).sum(-1)
    value = low + const
    total = (err + e + 2 * U * (np.abs(low) + np.abs(const))) * (1 + 1e-10) + TINY
    return down(value - total)


class RigorousBounder:
    """Rigorous bounds on one network for batches of input boxes."""

    def __init__(self, net: CheckerNetwork) -> None:
        self.net = net

    def intermediate(self, lo: np.ndarray, hi: np.ndarray, phases: list[np.ndarray] | None = None,
                     given: Bounds | None = None) -> tuple[Bounds, list[list[tuple[np.ndarray, np.ndarray]]]]:
        """Pre-activation bounds of every ReLU layer (interval, then back-substitution for the
        neurons intervals leave unstable in a domain), and the bounds of every operation input.

        With ``given`` (bounds computed for an enclosing domain), those are used instead of
        being recomputed (only clamped by ``phases``); they must be rigorous for this domain.
        """
        net = self.net
        pre: Bounds = []
        op_inputs: list[list[tuple[np.ndarray, np.ndarray]]] = []
        vlo, vhi = lo, hi
        for k, block in enumerate(net.blocks[:-1]):
            ins = [(vlo, vhi)] + _forward_block(block, vlo, vhi)[:-1]
            op_inputs.append(ins)
            if given is not None:
                l, u = given[k]
            else:
                l, u = _forward_block(block, vlo, vhi)[-1]
                need = np.ones(l.shape[1], dtype=bool) if k == 0 else ((l < 0) & (u > 0)).any(axis=0)
                rows = np.nonzero(need)[0]
                if rows.size:
                    eye = np.eye(l.shape[1])[rows]
                    cl = self._backward(k, np.concatenate([eye, -eye]), lo, hi, pre, op_inputs)
                    n = rows.size
                    lr, ur = l[:, rows], u[:, rows]
                    open_ = np.ones_like(lr, dtype=bool) if k == 0 else (lr < 0) & (ur > 0)
                    l = l.copy()
                    u = u.copy()
                    l[:, rows] = np.where(open_, np.maximum(lr, cl[:, :n]), lr)
                    u[:, rows] = np.where(open_, np.minimum(ur, -cl[:, n:]), ur)
            if phases is not None:
                l = np.where(phases[k] > 0, np.maximum(l, 0.0), l)
                u = np.where(phases[k] < 0, np.minimum(u, 0.0), u)
            pre.append((l, u))
            vlo, vhi = np.maximum(l, 0.0), np.maximum(u, 0.0)
        last = net.blocks[-1]
        op_inputs.append([(vlo, vhi)] + _forward_block(last, vlo, vhi)[:-1])
        return pre, op_inputs

    def _backward(self, k: int, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray, pre: Bounds,
                  op_inputs: list[list[tuple[np.ndarray, np.ndarray]]],
                  alphas: list[np.ndarray | None] | None = None, betas: list[np.ndarray | None] | None = None,
                  phases: list[np.ndarray] | None = None) -> np.ndarray:
        """Rigorous lower bounds of ``rows @ v_k`` (v_k: output of block k) per domain: ``[N, m]``."""
        N = lo.shape[0]
        lam = np.broadcast_to(rows, (N, *rows.shape)).astype(np.float64)
        const = np.zeros((N, rows.shape[0]))
        err = np.zeros((N, rows.shape[0]))
        for j in range(k, -1, -1):
            lam, const, err = _back_block(self.net.blocks[j], op_inputs[j], lam, const, err)
            if j > 0:
                l, u = pre[j - 1]
                a = None if alphas is None else alphas[j - 1]
                be = None if betas is None else betas[j - 1]
                ph = None if phases is None else phases[j - 1]
                lam, const, err = _relu_back(lam, l, u, a, be, ph, const, err)
        return _concretize(lam, const, err, lo, hi)

    def output_lower(self, C: np.ndarray, lo: np.ndarray, hi: np.ndarray, pre: Bounds,
                     op_inputs: list[list[tuple[np.ndarray, np.ndarray]]],
                     alphas: list[np.ndarray | None] | None = None, betas: list[np.ndarray | None] | None = None,
                     phases: list[np.ndarray] | None = None) -> np.ndarray:
        """Rigorous lower bounds of ``C y`` (``C``: ``[m, n_out]``) per domain: ``[N, m]``."""
        return self._backward(len(self.net.blocks) - 1, C, lo, hi, pre, op_inputs, alphas, betas, phases)
