"""Fused 2 -> 2 t-channel block (reference: :func:`mcint.phasespace.tchannel.t_channel`).

Blocks of events (:func:`.ps_math.t_channel_block`): the c.m. frame of ``p_a + p_b`` and the
``t`` limits, the invariant sampler (the built-in ``Uniform``, ``BreitWigner`` and
``PowerLaw``; any other sampler runs the reference), the rotation about ``p_a`` and the boost
back, each a loop over the block's columns; ``p2 = p_a + p_b - p1``. A whole 2 -> 2 t-channel
diagram (:mod:`.ps_diagram`) runs the same rows. numpy float64 only; anything else returns
``NotImplemented``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import kernel
from . import ps_math as M


@M.jit
def rows(r0, r1, pa, pb, m1, st1, m2, st2, kind, c0, c1, prop_m2, p1, p2, lw
         ):  # pragma: no cover - compiled
    """The block over every event: ``r0, r1 (n,)`` (may be strided views), ``pa, pb, p1, p2
    (n, 4)`` (views of a momenta array too), ``m1[i * st1]``, ``m2[i * st2]`` the masses
    squared, ``lw (n,)``."""
    nb_max = M.BLOCK
    # one array per quantity, allocated apart, so that LLVM sees them disjoint and vectorises
    ra, rb = np.empty(nb_max), np.empty(nb_max)
    a0, a1, a2, a3 = np.empty(nb_max), np.empty(nb_max), np.empty(nb_max), np.empty(nb_max)
    b0, b1, b2, b3 = np.empty(nb_max), np.empty(nb_max), np.empty(nb_max), np.empty(nb_max)
    ma, mb = np.empty(nb_max), np.empty(nb_max)
    lo, hi, jac, xs = np.empty(nb_max), np.empty(nb_max), np.empty(nb_max), np.empty(nb_max)
    e, x, y, z, w = np.empty(nb_max), np.empty(nb_max), np.empty(nb_max), np.empty(nb_max), \
        np.empty(nb_max)
    for i0 in range(0, r0.shape[0], nb_max):
        nb = min(nb_max, r0.shape[0] - i0)
        for i in range(nb):  # gather the block's columns
            ev = i0 + i
            ra[i], rb[i] = r0[ev], r1[ev]
            a0[i], a1[i], a2[i], a3[i] = pa[ev, 0], pa[ev, 1], pa[ev, 2], pa[ev, 3]
            b0[i], b1[i], b2[i], b3[i] = pb[ev, 0], pb[ev, 1], pb[ev, 2], pb[ev, 3]
            ma[i], mb[i] = m1[ev * st1], m2[ev * st2]
        M.t_channel_block(nb, ra, rb, a0, a1, a2, a3, b0, b1, b2, b3, ma, mb, kind, c0, c1,
                          prop_m2, lo, hi, jac, xs, e, x, y, z, w)
        for i in range(nb):  # scatter, p2 = (p_a + p_b) - p1 as the reference
            ev = i0 + i
            p1[ev, 0], p1[ev, 1], p1[ev, 2], p1[ev, 3] = e[i], x[i], y[i], z[i]
            p2[ev, 0], p2[ev, 1] = (a0[i] + b0[i]) - e[i], (a1[i] + b1[i]) - x[i]
            p2[ev, 2], p2[ev, 3] = (a2[i] + b2[i]) - y[i], (a3[i] + b3[i]) - z[i]
            lw[ev] = w[i]


@kernel("phasespace-tchannel-forward")
def t_channel(r: Any, pa: Any, pb: Any, m1sq: Any, m2sq: Any, sampler: Any,
              prop_m2: float = 0.0, pt_min: float | None = None) -> Any:
    code = M.sampler_code(sampler)
    if pt_min or code is None or not (M.is_f64(pa, None, 4) and M.is_f64(pb, pa.shape[0], 4)
                            and M.is_f64(r, pa.shape[0], None) and r.shape[1] >= 2):
        return NotImplemented
    n = r.shape[0]
    c1, c2, cp = M.column(m1sq, n), M.column(m2sq, n), M.column(prop_m2, n)
    if c1 is None or c2 is None or cp is None or cp[1] != 0:
        return NotImplemented
    p1, p2, lw = np.empty((n, 4)), np.empty((n, 4)), np.empty(n)
    rows(r[:, 0], r[:, 1], pa, pb, *c1, *c2, *code, float(cp[0][0]), p1, p2, lw)
    return p1, p2, lw
