"""Fused RAMBO on diet (reference: :func:`mcint.phasespace.rambo.rambo_forward`).

Blocks of 256 events, each quantity a column, so that every step is a loop LLVM vectorises:
the intermediate masses (:func:`.ps_math.solve_u_block`, the reference's bracketed Halley
iteration step for step, bit for bit), then each two-body decay (:func:`.ps_math.decay_block`),
the momenta written straight into the ``(n, n_final, 4)`` output. ``Q_i = Q_{i-1} - p_{i-1}``
as in the reference, so momentum is conserved to round-off.

Weights: massless, the exact volume ``log V_n(s)`` (:func:`~mcint.phasespace.rambo.
massless_volume`, one log per event; the reference's sum of Jacobian factors equals it to
round-off, and the tests check both; NaN for an event whose momenta are NaN, at ``r`` exactly
0 or 1, as the reference); massive, each step's Jacobian factors multiplied and
logged once (the reference's separate logs where the product would under- or overflow).
numpy float64 only; anything else returns ``NotImplemented`` (the reference runs).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from mcint.phasespace import rambo as R

from .. import kernel
from . import ps_math as M

_TINY, _HUGE = 1e-290, 1e290


@functools.lru_cache(maxsize=32)
def _tables(masses: tuple[float, ...]) -> tuple[Any, ...]:
    """Per-mapping constants: masses, tail sums and the ``solve_u`` tables for k = 1..n-2."""
    n = len(masses)
    kmax = max(n - 2, 1)
    coef = np.zeros((kmax + 1, 2, kmax + 2))
    split, r_split = np.zeros(kmax + 1), np.zeros(kmax + 1)
    n_bisect = np.zeros(kmax + 1, dtype=np.int64)
    for k in range(1, kmax + 1):
        f, g = R._poly_coefficients(k)
        coef[k, 0, :k + 2], coef[k, 1, :k + 2] = f, g
        us = R._split_point(k)
        split[k], r_split[k] = us, us ** k * ((k + 1) - k * us)
        n_bisect[k] = R._n_bisect(k)
    m = np.array(masses, dtype=np.float64)
    msq = np.array([mi ** 2 for mi in masses], dtype=np.float64)
    tail = np.array(R._tail_sums(masses), dtype=np.float64)
    massless = all(mi == 0 for mi in masses)
    log_c = math.log(R.massless_volume(n, 1.0))
    for a in (coef, split, r_split, n_bisect, m, msq, tail):
        a.setflags(write=False)
    return m, msq, tail, coef, split, r_split, n_bisect, massless, log_c


@M.jit
def _step_log_weight(k_prev, u, kk, m_i, k_i, s, m1sq):  # pragma: no cover - compiled
    # 2 log K_{i-1} - log pdf(u) + log(M_i / K_i) + log(|p| / sqrt(s)): one log of the product
    rs = math.sqrt(s)
    qm = M.two_body_momentum(s, m1sq, m_i * m_i)
    upow = 1.0
    for _ in range(kk - 1):
        upow *= u
    f = (k_prev * k_prev) / (kk * (kk + 1) * upow * (1.0 - u)) * (m_i / k_i) * (qm / rs)
    if _TINY < f < _HUGE:
        return math.log(f) - M.LOG_2PI - M.LOG_4PI
    return (2 * math.log(k_prev) - (math.log(kk * (kk + 1)) + (kk - 1) * math.log(u)
                                    + math.log1p(-u)) - M.LOG_2PI + math.log(m_i)
            - math.log(k_i) + math.log(qm) - 0.5 * math.log(s) - M.LOG_4PI)


@M.jit
def _rambo(r, pa, pb, m, msq, tail, coef, split, r_split, n_bisect, massless, log_c,
           out, lw):  # pragma: no cover - compiled
    n, nf = r.shape[0], m.shape[0]
    # per-event state of a block: Q (4), K_{i-1}, M_{i-1}, s, log_w, u, r, and the decay's
    # inputs/outputs; one array each, allocated apart, so that LLVM sees them disjoint and
    # vectorises the loops over the block
    nb_max = M.BLOCK
    q0, q1, q2, q3 = np.empty(nb_max), np.empty(nb_max), np.empty(nb_max), np.empty(nb_max)
    kp, mp, s_tot, w = np.empty(nb_max), np.empty(nb_max), np.empty(nb_max), np.empty(nb_max)
    u, rv, ra, rb = np.empty(nb_max), np.empty(nb_max), np.empty(nb_max), np.empty(nb_max)
    kn, mn, ss, m1a, m2a = np.empty(nb_max), np.empty(nb_max), np.empty(nb_max), \
        np.empty(nb_max), np.empty(nb_max)
    e, x, y, z = np.empty(nb_max), np.empty(nb_max), np.empty(nb_max), np.empty(nb_max)
    t, hi, lo, acc, p1, p2, low = M.block_scratch(nb_max)
    for i0 in range(0, n, nb_max):
        nb = min(nb_max, n - i0)
        for i in range(nb):
            ev = i0 + i
            a0, a1 = pa[ev, 0] + pb[ev, 0], pa[ev, 1] + pb[ev, 1]
            a2, a3 = pa[ev, 2] + pb[ev, 2], pa[ev, 3] + pb[ev, 3]
            q0[i], q1[i], q2[i], q3[i] = a0, a1, a2, a3
            s_tot[i] = a0 * a0 - a1 * a1 - a2 * a2 - a3 * a3
            big_m = math.sqrt(s_tot[i])
            kp[i], mp[i], w[i] = big_m - tail[0], big_m, 0.0
        for j in range(1, nf):  # Q_{j-1} -> p_{j-1} + Q_j
            kk = nf - 1 - j
            last = j == nf - 1
            if not last:
                for i in range(nb):
                    rv[i] = r[i0 + i, j - 1]
                M.solve_u_block(rv[:nb], kk, coef[kk], split[kk], r_split[kk], n_bisect[kk],
                                u[:nb], t[:nb], hi[:nb], lo[:nb], acc[:nb], p1[:nb], p2[:nb],
                                low[:nb])
            m1sq, tail_j, m_last = msq[j - 1], tail[j], m[nf - 1]
            if not massless:  # before the decay loop overwrites K_{j-1}, M_{j-1}
                for i in range(nb):
                    s = mp[i] * mp[i]
                    if last:
                        w[i] += M.decay_log_weight(s, m1sq, m_last * m_last)
                    else:
                        k_i = math.sqrt(u[i]) * kp[i]
                        w[i] += _step_log_weight(kp[i], u[i], kk, k_i + tail_j, k_i, s, m1sq)
            c = nf - 2 + 2 * (j - 1)
            for i in range(nb):  # gather the decay's inputs
                ra[i], rb[i] = r[i0 + i, c], r[i0 + i, c + 1]
            for i in range(nb):  # vectorises
                k_i = 0.0 if last else math.sqrt(u[i]) * kp[i]
                m_i = m_last if last else k_i + tail_j
                kn[i], mn[i] = k_i, m_i
                ss[i], m1a[i], m2a[i] = mp[i] * mp[i], m1sq, m_i * m_i
            M.decay_block(nb, ra, rb, q0, q1, q2, q3, ss, m1a, m2a, e, x, y, z)
            for i in range(nb):  # vectorises
                q0[i], q1[i] = q0[i] - e[i], q1[i] - x[i]
                q2[i], q3[i] = q2[i] - y[i], q3[i] - z[i]
                kp[i], mp[i] = kn[i], mn[i]
            for i in range(nb):  # scatter
                ev = i0 + i
                out[ev, j - 1, 0], out[ev, j - 1, 1] = e[i], x[i]
                out[ev, j - 1, 2], out[ev, j - 1, 3] = y[i], z[i]
        for i in range(nb):
            ev = i0 + i
            out[ev, nf - 1, 0], out[ev, nf - 1, 1] = q0[i], q1[i]
            out[ev, nf - 1, 2], out[ev, nf - 1, 3] = q2[i], q3[i]
            if massless:  # NaN momenta (r exactly 0 or 1): NaN weight, as the reference's
                lw[ev] = log_c + (nf - 2) * math.log(s_tot[i]) + 0.0 * q0[i]
            else:
                lw[ev] = w[i]


@kernel("phasespace-rambo-forward")
def rambo_forward(r: Any, pa: Any, pb: Any, masses: tuple[float, ...]) -> Any:
    nf = len(masses)
    if nf < 2 or not (M.is_f64(pa, None, 4) and M.is_f64(pb, pa.shape[0], 4)
                      and M.is_f64(r, pa.shape[0], None) and r.shape[1] >= 3 * nf - 4):
        return NotImplemented
    tables = _tables(tuple(float(mi) for mi in masses))
    n = r.shape[0]
    out, lw = np.empty((n, nf, 4)), np.empty(n)
    _rambo(r, pa, pb, *tables, out, lw)
    return out, lw
