"""Fused 2 -> 3 block in ``(t, s~)`` (reference: :func:`mcint.phasespace.twotothree.two_to_three`).

One pass per event: the rest frame of ``P = p_a + p_b - p_3``, the ``t`` limits and sampler,
``p_3``'s polar coordinates about ``p_a`` there, the ``s~`` limits and sampler (after the
arcsine fold), the azimuth, the rotation and the boost back; ``p_2 = P - p_1``. Deliberate
differences from the reference, all at the ulp level: ``p_3``'s azimuth enters as
``(x, y) / rho`` instead of ``cos``/``sin`` of its ``atan2``, the fold's ``sin``/``cos`` come from
:func:`.ps_math.sincos_pi`, and the weight takes fewer logs. Built-in samplers and numpy float64
only, else ``NotImplemented``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mcint.phasespace.twotothree import _NEAR_LIMIT

from .. import kernel
from . import ps_math as M

_LOG_16PI2 = math.log(16 * math.pi ** 2)
_LOG_2PI_ = math.log(2.0 * math.pi)  # log(pi) + log(2): the fold's du'/du * du/dr_s / sin cos


@M.jit
def _block(r, pa, pb, p3, m1, st1, m2, st2, kt, t0, t1, prop_m2, ks, s0, s1, arcsine, p1, p2,
           lw):  # pragma: no cover - compiled
    for i in range(r.shape[0]):
        a0, a1, a2, a3 = pa[i, 0], pa[i, 1], pa[i, 2], pa[i, 3]
        c0, c1, c2, c3 = p3[i, 0], p3[i, 1], p3[i, 2], p3[i, 3]
        q0, q1, q2, q3 = (a0 + pb[i, 0]) - c0, (a1 + pb[i, 1]) - c1, (a2 + pb[i, 2]) - c2, \
            (a3 + pb[i, 3]) - c3
        m1sq, m2sq = m1[i * st1], m2[i * st2]
        rs, b0, b1, b2, b3, ka, k, e1, base, span, x_lo, x_hi = M.t_channel_frame(
            a0, a1, a2, a3, q0, q1, q2, q3, m1sq, m2sq, prop_m2, 0.0)
        g0, g1, g2, g3 = M.boost(c0, c1, c2, c3, q0, -q1, -q2, -q3, rs)
        v30, v31, v32 = M.rotate_to_z(g1, g2, g3, b1, b2, b3)
        rho3 = math.sqrt(v30 * v30 + v31 * v31)
        if rho3 > 0.0:
            cf3, sf3 = v30 / rho3, v31 / rho3
        else:  # atan2(0, +-0): 0 or pi
            cf3, sf3 = (1.0 if math.copysign(1.0, v30) > 0 else -1.0), 0.0
        s_const = m2sq + (c0 * c0 - c1 * c1 - c2 * c2 - c3 * c3) + 2.0 * g0 * (rs - e1)
        x, ld_t = M.sample_invariant(kt, t0, t1, r[i, 0], x_lo, x_hi)
        span_ok = span if span > 0 else 1.0
        cos_t = (prop_m2 - x - base) / span_ok
        cos_t = -1.0 if cos_t < -1.0 else (1.0 if cos_t > 1.0 else cos_t)
        sin2 = 1.0 - cos_t * cos_t
        sin_t = math.sqrt(0.0 if sin2 < 0.0 else sin2)
        a = s_const + 2.0 * k * cos_t * v32
        b = 2.0 * k * sin_t * rho3
        w = 2.0 * r[i, 1] - 1.0
        u = abs(w)
        if arcsine:
            su, cu = M.sincos_pi(0.5 * u)
            up, up_c, fold = su * su, cu * cu, su * cu  # du'/dr_s = 2 pi sin cos
        else:
            up, up_c, fold = u, 1.0 - u, 1.0 / math.pi
        s_lo, s_hi = a - b, a + b
        st, ld_s = M.sample_invariant(ks, s0, s1, up, s_lo, s_hi)
        # the reference's _distances: near a limit ds~/du' times the distance in u'
        if up_c < _NEAR_LIMIT:
            d_hi = math.exp(ld_s) * up_c
        else:
            d_hi = s_hi - st
            d_hi = 0.0 if d_hi < 0.0 else d_hi
        if up < _NEAR_LIMIT:
            d_lo = math.exp(ld_s) * up
        else:
            d_lo = st - s_lo
            d_lo = 0.0 if d_lo < 0.0 else d_lo
        tot = d_lo + d_hi
        tot = tot if tot > 0 else 1.0
        cos_p = (d_lo - d_hi) / tot
        cos_p = -1.0 if cos_p < -1.0 else (1.0 if cos_p > 1.0 else cos_p)
        sin_p = 2.0 * math.sqrt(d_hi * d_lo) / tot
        sin_p = sin_p if w >= 0 else -sin_p
        cph, sph = cos_p * cf3 - sin_p * sf3, sin_p * cf3 + cos_p * sf3
        kst = k * sin_t
        v0, v1, v2 = M.rotate_from_z(kst * cph, kst * sph, k * cos_t, b1, b2, b3)
        e, x1, y1, z1 = M.boost(e1, v0, v1, v2, q0, q1, q2, q3, rs)
        p1[i, 0], p1[i, 1], p1[i, 2], p1[i, 3] = e, x1, y1, z1
        p2[i, 0], p2[i, 1], p2[i, 2], p2[i, 3] = q0 - e, q1 - x1, q2 - y1, q3 - z1
        dist = d_hi * d_lo
        if arcsine and dist == 0.0:  # on a limit: the weight's limit, not 0/0
            far = d_hi if d_hi > d_lo else d_lo
            lw[i] = (math.log(k / (rs * span_ok)) - _LOG_16PI2 + ld_t + _LOG_2PI_ + 0.5 * ld_s
                     - 0.5 * math.log(far))
        else:
            lw[i] = (math.log(k / rs * fold / (span_ok * math.sqrt(dist))) - _LOG_16PI2
                     + _LOG_2PI_ + ld_t + ld_s)


@kernel("phasespace-two-to-three-forward")
def two_to_three(r: Any, pa: Any, pb: Any, p3: Any, m1sq: Any, m2sq: Any, t_sampler: Any = None,
                 s_sampler: Any = None, prop_m2: float = 0.0, arcsine: bool = True) -> Any:
    from mcint.phasespace.invariants import Uniform

    ct = M.sampler_code(t_sampler or Uniform())
    cs = M.sampler_code(s_sampler or Uniform())
    if ct is None or cs is None or not (
            M.is_f64(pa, None, 4) and M.is_f64(pb, pa.shape[0], 4)
            and M.is_f64(p3, pa.shape[0], 4) and M.is_f64(r, pa.shape[0], None)
            and r.shape[1] >= 2):
        return NotImplemented
    n = r.shape[0]
    c1, c2, cp = M.column(m1sq, n), M.column(m2sq, n), M.column(prop_m2, n)
    if c1 is None or c2 is None or cp is None or cp[1] != 0:
        return NotImplemented
    p1, p2, lw = np.empty((n, 4)), np.empty((n, 4)), np.empty(n)
    _block(r, pa, pb, p3, *c1, *c2, *ct, float(cp[0][0]), *cs, bool(arcsine), p1, p2, lw)
    return p1, p2, lw
