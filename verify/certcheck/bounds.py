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


def _back_block(block: list[Op], op_mags: list[np.ndarray], lam: np.ndarray,
                const: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Back-substitute through a block's linear operations (last to first).

    ``op_mags[i]`` bounds ``|v|`` for the input vector ``v`` of operation ``i`` (``[N, n]``).
    """
    for op, vmag in zip(reversed(block), reversed(op_mags)):
        absl = np.abs(lam)
        if op.kind == "dense":
            W, b = op.W, op.b
            n = W.shape[0]
            flat = lam.reshape(-1, n)
            const = const + (flat @ b).reshape(const.shape)  # type: ignore[operator]
            # rounding of lam @ b and of the sum; of lam @ W, times the largest |v| (via |W| |v|max)
            wv = vmag @ op.absW.T  # [N, n_out]
            err = err + gamma(n) * _rows_dot(absl, op.absb[None, :] + wv * (1 + gamma(W.shape[1])))
            err = err + 2 * U * np.abs(const)
            lam = (flat @ W).reshape(*lam.shape[:2], W.shape[1])
        else:
            s, c = op.s, op.c
            const = const + (lam.reshape(-1, c.shape[0]) @ c).reshape(const.shape)  # type: ignore[operator]
            coef = op.c_err[None, :] + gamma(c.shape[0]) * np.abs(c)[None, :] + \
                (op.s_err + 2 * U * np.abs(s))[None, :] * vmag  # type: ignore[operator]
            err = err + _rows_dot(absl, coef) + 2 * U * np.abs(const)
            lam = lam * s
    return lam, const, err


def _rows_dot(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``sum_i a[n, m, i] * v[n, i]`` as a batched matrix-vector product (``[N, m]``)."""
    return np.matmul(a, v[:, :, None])[..., 0]


def _relu_back(lam: np.ndarray, l: np.ndarray, u: np.ndarray, alpha: np.ndarray | None,
               beta: np.ndarray | None, phase: np.ndarray | None,
               const: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Back-substitute through ``a = relu(z)`` with rigorous pre-activation bounds ``l, u``.

    Per neuron: active (``l >= 0``) exact with slope 1, inactive (``u <= 0``) exact with 0;
    unstable: ``a >= alpha z`` where the coefficient is >= 0, ``a <= s (z - l)`` where it is
    negative, ``s`` the chord slope rounded up (any slope >= the chord's is valid).
    """
    unstable = (l < 0) & (u > 0)
    active = l >= 0
    zmag = magnitude(l, u)
    denom = np.where(unstable, down(u - l), 1.0)
    s_up = np.where(unstable, up(up(np.where(unstable, u, 0.0) / denom) * (1 + 4 * U)), 0.0)
    upper_slope = np.where(active, 1.0, s_up)[:, None, :]  # exactly 0 on inactive neurons
    lower_rng = np.where(unstable, zmag, 0.0)[:, None, :]
    upper_rng = np.where(unstable, u - l, 0.0)[:, None, :]
    lsel = np.where(unstable, l, 0.0)[:, None, :]
    if alpha is None:
        lower_slope = (active | (unstable & (u > -l))).astype(np.float64)[:, None, :]
    else:
        a = np.clip(np.nan_to_num(alpha, nan=0.0), 0.0, 1.0)
        lower_slope = np.where(active[:, None, :], 1.0, np.where(unstable[:, None, :], a, 0.0))
    pos = lam >= 0
    new = lam * np.where(pos, lower_slope, upper_slope)
    absn = np.abs(new)
    # rounding of the products on unstable neurons, times the range they multiply
    err = err + 2 * U * (absn * np.where(pos, lower_rng, upper_rng)).sum(-1)
    shift = new * np.where(pos, 0.0, lsel)  # the line's constant part is -s l per coefficient
    const = const - shift.sum(-1)
    err = err + gamma(lam.shape[-1]) * np.abs(shift).sum(-1) + 2 * U * np.abs(const)
    if beta is not None and phase is not None:
        # phase * z >= 0 holds in the domain: subtracting beta * phase * z (beta >= 0) is a lower bound
        b = np.clip(np.nan_to_num(beta, nan=0.0), 0.0, None)
        new = new - b * phase[:, None, :]
        err = err + 2 * U * (np.abs(new) * zmag[:, None, :]).sum(-1)
    return new, const, err + TINY


def _concretize(lam: np.ndarray, const: np.ndarray, err: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Rigorous ``min over the box of lam . x + const - err``."""
    low = np.minimum(lam * lo[:, None, :], lam * hi[:, None, :]).sum(-1)
    e = gamma(lam.shape[-1]) * (np.abs(lam) * magnitude(lo, hi)[:, None, :]).sum(-1)
    value = low + const
    total = (err + e + 2 * U * (np.abs(low) + np.abs(const))) * (1 + 1e-10) + TINY
    return down(value - total)


#: Inputs up to this many dimensions get symbolic bounds (as in the producer's engine).
SYMBOLIC_MAX_INPUTS = 64


class Symbolic:
    """Linear bounds of a vector in the input: ``A_L [x; 1] - e_L <= v <= A_U [x; 1] + e_U``.

    ``AL``/``AU`` are ``[n, N, n0 + 1]`` (neuron, domain, input coefficients then constant),
    ``eL``/``eU`` ``[n, N]`` collect proven rounding errors.
    """

    def __init__(self, AL: np.ndarray, AU: np.ndarray, eL: np.ndarray, eU: np.ndarray,
                 xmag: np.ndarray) -> None:
        self.AL, self.AU, self.eL, self.eU = AL, AU, eL, eU
        self.xmag = xmag  # [N, n0 + 1]: max |x_d| per domain, and 1 for the constant

    @classmethod
    def identity(cls, lo: np.ndarray, hi: np.ndarray) -> Symbolic:
        N, n0 = lo.shape
        A = np.zeros((n0, N, n0 + 1))
        A[np.arange(n0), :, np.arange(n0)] = 1.0
        xmag = np.concatenate([magnitude(lo, hi), np.ones((N, 1))], axis=1)
        zeros = np.zeros((n0, N))
        return cls(A, A.copy(), zeros, zeros.copy(), xmag)

    def _rounding(self, coeff_abs: np.ndarray, n: int) -> np.ndarray:
        """Error bound of computed coefficients ``|A| <= coeff_abs`` (length-n sums), times |x|."""
        return gamma(n) * np.einsum("jnd,nd->jn", coeff_abs, self.xmag)

    def dense(self, W: np.ndarray, b: np.ndarray) -> Symbolic:
        n_out, n_in = W.shape
        N, d = self.AL.shape[1], self.AL.shape[2]
        Wp, Wn = np.clip(W, 0, None), np.clip(W, None, 0)
        L2, U2 = self.AL.reshape(n_in, -1), self.AU.reshape(n_in, -1)
        AL = (Wp @ L2 + Wn @ U2).reshape(n_out, N, d)
        AU = (Wp @ U2 + Wn @ L2).reshape(n_out, N, d)
        AL[:, :, -1] += b[:, None]
        AU[:, :, -1] += b[:, None]
        absW = np.abs(W)
        mag = (absW @ (np.abs(L2) + np.abs(U2))).reshape(n_out, N, d)
        mag[:, :, -1] += np.abs(b)[:, None]
        rnd = self._rounding(mag, n_in + 1)
        eL = Wp @ self.eL - Wn @ self.eU + rnd
        eU = Wp @ self.eU - Wn @ self.eL + rnd
        return Symbolic(AL, AU, eL * (1 + gamma(n_in)) + TINY, eU * (1 + gamma(n_in)) + TINY, self.xmag)

    def diag(self, s: np.ndarray, s_err: np.ndarray, c: np.ndarray, c_err: np.ndarray,
             vmag: np.ndarray) -> Symbolic:
        sp, sn = np.clip(s, 0, None)[:, None, None], np.clip(s, None, 0)[:, None, None]
        AL = sp * self.AL + sn * self.AU
        AU = sp * self.AU + sn * self.AL
        AL[:, :, -1] += c[:, None]
        AU[:, :, -1] += c[:, None]
        mag = np.abs(s)[:, None, None] * (np.abs(self.AL) + np.abs(self.AU))
        mag[:, :, -1] += np.abs(c)[:, None]
        rnd = self._rounding(mag, 2)
        extra = (s_err[:, None] * vmag.T) + c_err[:, None]  # uncertainty of s times |v|, of c
        eL = sp[:, :, 0] * self.eL - sn[:, :, 0] * self.eU + rnd + extra
        eU = sp[:, :, 0] * self.eU - sn[:, :, 0] * self.eL + rnd + extra
        return Symbolic(AL, AU, eL * (1 + 4 * U) + TINY, eU * (1 + 4 * U) + TINY, self.xmag)

    def relu(self, l: np.ndarray, u: np.ndarray) -> Symbolic:
        """Relax ``a = relu(v)`` with rigorous bounds ``l <= v <= u`` (``[N, n]``)."""
        lt, ut = l.T, u.T  # [n, N]
        unstable = (lt < 0) & (ut > 0)
        active = lt >= 0
        a = (active | (unstable & (ut > -lt))).astype(np.float64)  # adaptive lower slope, 0 or 1
        denom = np.where(unstable, down(ut - lt), 1.0)
        s_up = np.where(unstable, up(up(np.where(unstable, ut, 0.0) / denom) * (1 + 4 * U)), active * 1.0)
        AL = self.AL * a[:, :, None]
        eL = self.eL * a
        AU = self.AU * s_up[:, :, None]
        shift = np.where(unstable, -s_up * lt, 0.0)
        AU[:, :, -1] += shift
        rnd = 2 * U * (np.einsum("jnd,nd->jn", np.abs(AU), self.xmag) + np.abs(shift))
        eU = self.eU * s_up + rnd
        return Symbolic(AL, AU, eL, eU * (1 + 4 * U) + TINY, self.xmag)

    def concretize(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rigorous ``[min, max]`` over the box, ``[N, n]``."""
        n0 = lo.shape[1]
        AL, AU = self.AL[:, :, :n0], self.AU[:, :, :n0]
        low = np.minimum(AL * lo[None], AL * hi[None]).sum(-1) + self.AL[:, :, n0]
        high = np.maximum(AU * lo[None], AU * hi[None]).sum(-1) + self.AU[:, :, n0]
        e = gamma(n0 + 1) * (np.einsum("jnd,nd->jn", np.abs(self.AL) + np.abs(self.AU), self.xmag))
        return down(low - self.eL - e).T, up(high + self.eU + e).T


class RigorousBounder:
    """Rigorous bounds on one network for batches of input boxes."""

    def __init__(self, net: CheckerNetwork) -> None:
        self.net = net

    def intermediate(self, lo: np.ndarray, hi: np.ndarray, phases: list[np.ndarray] | None = None,
                     given: Bounds | None = None, parent: Bounds | None = None,
                     start: int = 0, slopes: dict[int, tuple[np.ndarray, list[np.ndarray]]] | None = None,
                     ) -> tuple[Bounds, list[list[np.ndarray]]]:
        """Pre-activation bounds of every ReLU layer, and the bounds of every operation input.

        Per layer: interval bounds from the previous layer's bounds, intersected (for
        low-dimensional inputs) with symbolic bounds; then back-substitution for each
        (domain, neuron) pair still unstable; then the split phases clamp them.  With
        ``given`` (rigorous bounds of an enclosing domain) those are used instead; with
        ``parent`` (rigorous bounds of an enclosing domain) they are intersected in first,
        and layers before ``start`` are taken from ``parent`` (clamped by the phases).  With
        ``slopes`` (per layer: neurons and, per earlier layer, the lower slopes of the rows
        ``+z``/``-z``), those neurons' bounds are also back-substituted with those slopes.
        """
        net = self.net
        pre: Bounds = []
        op_inputs: list[list[np.ndarray]] = []  # |v| bounds of every operation's input, per block
        symbolic = given is None and lo.shape[1] <= SYMBOLIC_MAX_INPUTS
        if symbolic:
            start = 0  # symbolic bounds are carried through every layer (as in the producer)
        sym = Symbolic.identity(lo, hi) if symbolic else None
        vlo, vhi = lo, hi
        for k, block in enumerate(net.blocks[:-1]):
            intervals = _forward_block(block, vlo, vhi)
            ins = [(vlo, vhi)] + intervals[:-1]
            op_inputs.append([magnitude(a, b) for a, b in ins])
            if given is not None:
                l, u = given[k]
            elif parent is not None and k < start:
                l, u = parent[k]
            else:
                l, u = intervals[-1]
                if sym is not None:
                    for op, vmag in zip(block, op_inputs[-1]):
                        sym = sym.dense(op.W, op.b) if op.kind == "dense" else \
                            sym.diag(op.s, op.s_err, op.c, op.c_err, vmag)
                    fl, fu = sym.concretize(lo, hi)
                    l, u = np.maximum(l, fl), np.minimum(u, fu)
                if parent is not None:
                    l, u = np.maximum(l, parent[k][0]), np.minimum(u, parent[k][1])
                # the first layer's interval bounds are exact unless its block chains dense maps
                exact_first = sum(op.kind == "dense" for op in block) <= 1
                if k > 0 or (sym is None and not exact_first):
                    mask = (l < 0) & (u > 0) if k > 0 else np.ones_like(l, dtype=bool)
                    if phases is not None:
                        mask &= phases[k] == 0
                    dom, neu = np.nonzero(mask)
                    if dom.size:
                        eye = np.zeros((dom.size, 2, l.shape[1]))
                        eye[np.arange(dom.size), 0, neu] = 1.0
                        eye[np.arange(dom.size), 1, neu] = -1.0
                        cl = self._backward(k, eye, lo[dom], hi[dom], [(a[dom], b[dom]) for a, b in pre],
                                            [[m[dom] for m in layer] for layer in op_inputs])
                        l = l.copy()
                        u = u.copy()
                        l[dom, neu] = np.maximum(l[dom, neu], cl[:, 0])
                        u[dom, neu] = np.minimum(u[dom, neu], -cl[:, 1])
            if slopes is not None and k in slopes and given is None:
                neurons, alphas = slopes[k]
                n = neurons.size
                eye = np.zeros((2 * n, l.shape[1]))
                eye[np.arange(n), neurons] = 1.0
                eye[n + np.arange(n), neurons] = -1.0
                N = lo.shape[0]
                cl = self._backward(k, eye, lo, hi, pre, op_inputs,
                                    alphas=[np.broadcast_to(a, (N, *a.shape)) for a in alphas])
                l = l.copy()
                u = u.copy()
                l[:, neurons] = np.maximum(l[:, neurons], cl[:, :n])
                u[:, neurons] = np.minimum(u[:, neurons], -cl[:, n:])
            if phases is not None:
                l = np.where(phases[k] > 0, np.maximum(l, 0.0), l)
                u = np.where(phases[k] < 0, np.minimum(u, 0.0), u)
            pre.append((l, u))
            if sym is not None:
                sym = sym.relu(l, u)
            vlo, vhi = np.maximum(l, 0.0), np.maximum(u, 0.0)
        last = net.blocks[-1]
        op_inputs.append([magnitude(a, b) for a, b in [(vlo, vhi)] + _forward_block(last, vlo, vhi)[:-1]])
        return pre, op_inputs

    def _backward(self, k: int, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray, pre: Bounds,
                  op_inputs: list[list[np.ndarray]],
                  alphas: list[np.ndarray | None] | None = None, betas: list[np.ndarray | None] | None = None,
                  phases: list[np.ndarray] | None = None) -> np.ndarray:
        """Rigorous lower bounds of ``rows @ v_k`` (v_k: output of block k) per domain: ``[N, m]``.

        ``rows`` is ``[m, n]`` (the same for every domain) or ``[N, m, n]``."""
        N = lo.shape[0]
        lam = rows.astype(np.float64) if rows.ndim == 3 else np.broadcast_to(rows, (N, *rows.shape)).astype(np.float64)
        const = np.zeros(lam.shape[:2])
        err = np.zeros(lam.shape[:2])
        interval = None
        for j in range(k, -1, -1):
            lam, const, err = _back_block(self.net.blocks[j], op_inputs[j], lam, const, err)
            if j == k and j > 0:
                # the interval bound over the previous ReLU layer's outputs (as the producer keeps it)
                l, u = pre[j - 1]
                interval = _concretize(lam, const, err, np.maximum(l, 0.0), np.maximum(u, 0.0))
            if j > 0:
                l, u = pre[j - 1]
                a = None if alphas is None else alphas[j - 1]
                be = None if betas is None else betas[j - 1]
                ph = None if phases is None else phases[j - 1]
                lam, const, err = _relu_back(lam, l, u, a, be, ph, const, err)
        result = _concretize(lam, const, err, lo, hi)
        return result if interval is None else np.maximum(result, interval)

    def output_lower(self, C: np.ndarray, lo: np.ndarray, hi: np.ndarray, pre: Bounds,
                     op_inputs: list[list[np.ndarray]],
                     alphas: list[np.ndarray | None] | None = None, betas: list[np.ndarray | None] | None = None,
                     phases: list[np.ndarray] | None = None) -> np.ndarray:
        """Rigorous lower bounds of ``C y`` (``C``: ``[m, n_out]``) per domain: ``[N, m]``."""
        return self._backward(len(self.net.blocks) - 1, C, lo, hi, pre, op_inputs, alphas, betas, phases)
