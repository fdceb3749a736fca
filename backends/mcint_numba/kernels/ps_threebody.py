"""Fused three-body decay (reference: :func:`mcint.phasespace.threebody.three_body_decay`).

Blocks of events held as columns: the pair invariant by the built-in sampler, then the two
two-body decays ``P -> (ij) k`` and ``(ij) -> i j`` by :func:`.ps_math.decay_block` (loops LLVM
vectorises), the momenta scattered straight into the ``(n, 3, 4)`` output; ``p_k = P - p_ij``
and ``p_j = p_ij - p_i`` as in the reference; the weight in one log per event. numpy float64 and the built-in samplers only,
else ``NotImplemented``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import kernel
from . import ps_math as M


@M.jit
def _three_body(r, p, s_in, sts, has_s, mi2, mj2, mk2, mk, lo, kind, c0, c1, i_, j_, k_, out,
                lw):  # pragma: no cover - compiled
    nb_max = M.BLOCK
    # one array per quantity, allocated apart (LLVM sees them disjoint and vectorises)
    q0, q1, q2, q3 = np.empty(nb_max), np.empty(nb_max), np.empty(nb_max), np.empty(nb_max)
    ra, rb, rc, rd = np.empty(nb_max), np.empty(nb_max), np.empty(nb_max), np.empty(nb_max)
    ss, sij, mk2c, mi2c, mj2c = np.empty(nb_max), np.empty(nb_max), np.empty(nb_max), \
        np.empty(nb_max), np.empty(nb_max)
    e, x, y, z = np.empty(nb_max), np.empty(nb_max), np.empty(nb_max), np.empty(nb_max)
    f, g, h, w = np.empty(nb_max), np.empty(nb_max), np.empty(nb_max), np.empty(nb_max)
    ld = np.empty(nb_max)
    for b in range(nb_max):
        mk2c[b], mi2c[b], mj2c[b] = mk2, mi2, mj2
    for i0 in range(0, r.shape[0], nb_max):
        nb = min(nb_max, r.shape[0] - i0)
        for b in range(nb):  # gather, and the pair invariant (libm for non-uniform samplers)
            ev = i0 + b
            c0_, c1_, c2_, c3_ = p[ev, 0], p[ev, 1], p[ev, 2], p[ev, 3]
            q0[b], q1[b], q2[b], q3[b] = c0_, c1_, c2_, c3_
            sv = s_in[ev * sts] if has_s else c0_ * c0_ - c1_ * c1_ - c2_ * c2_ - c3_ * c3_
            ss[b] = sv
            d = math.sqrt(sv) - mk
            if kind == M.UNIFORM:  # ld holds the width: its log joins the weight's one log
                width = d * d - lo
                sij[b], ld[b] = lo + width * r[ev, 0], width
            else:
                sij[b], ld[b] = M.sample_invariant(kind, c0, c1, r[ev, 0], lo, d * d)
            ra[b], rb[b], rc[b], rd[b] = r[ev, 1], r[ev, 2], r[ev, 3], r[ev, 4]
        M.decay_block(nb, ra, rb, q0, q1, q2, q3, ss, sij, mk2c, e, x, y, z)
        M.decay_block(nb, rc, rd, e, x, y, z, sij, mi2c, mj2c, f, g, h, w)
        for b in range(nb):  # scatter: p_k = P - p_ij, p_j = p_ij - p_i; the weights
            ev = i0 + b
            out[ev, k_, 0], out[ev, k_, 1] = q0[b] - e[b], q1[b] - x[b]
            out[ev, k_, 2], out[ev, k_, 3] = q2[b] - y[b], q3[b] - z[b]
            out[ev, i_, 0], out[ev, i_, 1], out[ev, i_, 2], out[ev, i_, 3] = f[b], g[b], h[b], w[b]
            out[ev, j_, 0], out[ev, j_, 1] = e[b] - f[b], x[b] - g[b]
            out[ev, j_, 2], out[ev, j_, 3] = y[b] - h[b], z[b] - w[b]
            # both two-body factors |p| / sqrt(s) (and a flat sampler's width) in one log
            f2 = (M.two_body_momentum(ss[b], sij[b], mk2) / math.sqrt(ss[b])
                  * (M.two_body_momentum(sij[b], mi2, mj2) / math.sqrt(sij[b])))
            if kind == M.UNIFORM:
                lw[ev] = math.log(ld[b] * f2) - M.LOG_2PI - 2.0 * M.LOG_4PI
            else:
                lw[ev] = ld[b] + math.log(f2) - M.LOG_2PI - 2.0 * M.LOG_4PI


@kernel("phasespace-three-body-forward")
def three_body_decay(r: Any, p: Any, masses: Any, pair: Any = (0, 1), sampler: Any = None,
                     s: Any = None) -> Any:
    from mcint.phasespace.invariants import Uniform
    from mcint.phasespace.threebody import _order

    code = M.sampler_code(sampler or Uniform())
    if code is None or not (M.is_f64(p, None, 4) and M.is_f64(r, p.shape[0], None)
                            and r.shape[1] >= 5):
        return NotImplemented
    n = p.shape[0]
    cs = M.column(0.0 if s is None else s, n)
    if cs is None:
        return NotImplemented
    i, j, k = _order(pair)
    m = [float(a) for a in masses]
    out, lw = np.empty((n, 3, 4)), np.empty(n)
    _three_body(r, p, *cs, s is not None, m[i] ** 2, m[j] ** 2, m[k] ** 2, m[k],
                (m[i] + m[j]) ** 2, *code, i, j, k, out, lw)
    return out, lw
