"""Fused 2 -> 2 t-channel block (reference: :func:`mcint.phasespace.tchannel.t_channel`).

One pass per event (:func:`.ps_math.t_channel`): the c.m. frame of ``p_a + p_b``, the ``t``
limits, the invariant sampler (the built-in ``Uniform``, ``BreitWigner`` and ``PowerLaw``; any
other sampler runs the reference), the rotation about ``p_a`` and the boost back.
``p2 = p_a + p_b - p1``. numpy float64 only; anything else returns ``NotImplemented``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import kernel
from . import ps_math as M


@M.jit
def _tchannel(r, pa, pb, m1, st1, m2, st2, kind, c0, c1, prop_m2, p1, p2, lw
              ):  # pragma: no cover - compiled
    for i in range(r.shape[0]):
        a0, a1, a2, a3 = pa[i, 0], pa[i, 1], pa[i, 2], pa[i, 3]
        b0, b1, b2, b3 = pb[i, 0], pb[i, 1], pb[i, 2], pb[i, 3]
        e, x, y, z, lw[i] = M.t_channel(r[i, 0], r[i, 1], a0, a1, a2, a3, b0, b1, b2, b3,
                                        m1[i * st1], m2[i * st2], kind, c0, c1, prop_m2)
        p1[i, 0], p1[i, 1], p1[i, 2], p1[i, 3] = e, x, y, z
        p2[i, 0], p2[i, 1] = (a0 + b0) - e, (a1 + b1) - x
        p2[i, 2], p2[i, 3] = (a2 + b2) - y, (a3 + b3) - z


@kernel("phasespace-tchannel-forward")
def t_channel(r: Any, pa: Any, pb: Any, m1sq: Any, m2sq: Any, sampler: Any,
              prop_m2: float = 0.0) -> Any:
    code = M.sampler_code(sampler)
    if code is None or not (M.is_f64(pa, None, 4) and M.is_f64(pb, pa.shape[0], 4)
                            and M.is_f64(r, pa.shape[0], None) and r.shape[1] >= 2):
        return NotImplemented
    n = r.shape[0]
    c1, c2, cp = M.column(m1sq, n), M.column(m2sq, n), M.column(prop_m2, n)
    if c1 is None or c2 is None or cp is None or cp[1] != 0:
        return NotImplemented
    p1, p2, lw = np.empty((n, 4)), np.empty((n, 4)), np.empty(n)
    _tchannel(r, pa, pb, *c1, *c2, *code, float(cp[0][0]), p1, p2, lw)
    return p1, p2, lw
