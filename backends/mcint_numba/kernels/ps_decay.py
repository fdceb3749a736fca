"""Fused two-body decay (reference: :func:`mcint.phasespace.twobody.decay`).

Blocks of events: the momenta (:func:`.ps_math.decay_block`, a loop LLVM vectorises) on the
block's columns, then ``p2 = p - p1`` and the weights, instead of ~40 array temporaries.
numpy float64 only; anything else (torch, strict, float32, shapes the reference broadcasts)
returns ``NotImplemented`` and runs the reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import kernel
from . import ps_math as M


@M.jit
def _decay(r, p, m1, st1, m2, st2, s, sts, has_s, p1, p2, lw):  # pragma: no cover - compiled
    nb_max = M.BLOCK
    # one array per quantity (so that LLVM sees them disjoint and vectorises the block loop)
    ra, rb, q0, q1, q2, q3 = np.empty(nb_max), np.empty(nb_max), np.empty(nb_max), \
        np.empty(nb_max), np.empty(nb_max), np.empty(nb_max)
    ss, a1, a2 = np.empty(nb_max), np.empty(nb_max), np.empty(nb_max)
    e, x, y, z = np.empty(nb_max), np.empty(nb_max), np.empty(nb_max), np.empty(nb_max)
    for i0 in range(0, r.shape[0], nb_max):
        nb = min(nb_max, r.shape[0] - i0)
        for i in range(nb):  # gather the block's columns
            ev = i0 + i
            ra[i], rb[i] = r[ev, 0], r[ev, 1]
            c0, c1, c2, c3 = p[ev, 0], p[ev, 1], p[ev, 2], p[ev, 3]
            q0[i], q1[i], q2[i], q3[i] = c0, c1, c2, c3
            ss[i] = s[ev * sts] if has_s else c0 * c0 - c1 * c1 - c2 * c2 - c3 * c3
            a1[i], a2[i] = m1[ev * st1], m2[ev * st2]
        M.decay_block(nb, ra, rb, q0, q1, q2, q3, ss, a1, a2, e, x, y, z)
        for i in range(nb):  # scatter, p2 = p - p1, and the weights (one libm log each)
            ev = i0 + i
            p1[ev, 0], p1[ev, 1], p1[ev, 2], p1[ev, 3] = e[i], x[i], y[i], z[i]
            p2[ev, 0], p2[ev, 1] = q0[i] - e[i], q1[i] - x[i]
            p2[ev, 2], p2[ev, 3] = q2[i] - y[i], q3[i] - z[i]
            lw[ev] = M.decay_log_weight(ss[i], a1[i], a2[i])


@kernel("phasespace-decay-forward")
def decay(r: Any, p: Any, m1sq: Any, m2sq: Any, s: Any = None) -> Any:
    if not (M.is_f64(p, None, 4) and M.is_f64(r, p.shape[0], None) and r.shape[1] >= 2):
        return NotImplemented
    n = p.shape[0]
    c1, c2 = M.column(m1sq, n), M.column(m2sq, n)
    cs = M.column(0.0 if s is None else s, n)
    if c1 is None or c2 is None or cs is None:
        return NotImplemented
    p1, p2, lw = np.empty((n, 4)), np.empty((n, 4)), np.empty(n)
    _decay(r, p, *c1, *c2, *cs, s is not None, p1, p2, lw)
    return p1, p2, lw
