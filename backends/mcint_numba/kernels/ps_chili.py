"""Fused Chili map (reference: :func:`mcint.phasespace.chili.chili_forward`).

One pass per event, writing straight into the ``(n_ev, 2 + n, 4)`` momenta array: per particle
the ``pT`` map, ``mT``, the rapidity range, ``exp(+-y)``, the
azimuth by :func:`.ps_math.sincos_pi`, and one log of the product of its weight factors
(``pT dpT/dr 2 y_lim``) instead of four; then the last particle and the beams. Exactly
``Chili`` (no subclass) and numpy float64 only, else ``NotImplemented``; the batch was checked
by :meth:`Chili.map`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mcint.phasespace.chili import Chili

from .. import kernel
from . import ps_math as M


@M.jit
def _chili(r, pmin, c, k_pt, m2, ymax, mn, ymax_n, e, log_const, out, x1, x2, lw
           ):  # pragma: no cover - compiled
    nf = pmin.shape[0] + 1
    pmax = 0.5 * e
    for i in range(r.shape[0]):
        kp = km = pxj = pyj = 0.0
        prod = 1.0
        for j in range(nf - 1):
            rp = r[i, j]
            den = 2.0 * c[j] + pmax * (1.0 - rp)
            pt = pmin[j] + 2.0 * c[j] * (pmax - pmin[j]) * rp / den
            mt = math.sqrt(pt * pt + m2[j])
            ylim = math.log(e / mt)
            ylim = ymax[j] if ymax[j] < ylim else ylim
            ylim = 0.0 if ylim < 0.0 else ylim
            y = ylim * (2.0 * r[i, nf - 1 + j] - 1.0)
            sp, cp = M.sincos_pi(2.0 * r[i, 2 * nf - 1 + j] - 1.0)
            px, py = pt * cp, pt * sp
            ex = math.exp(y)
            ep, em = mt * ex, mt * math.exp(-y)
            out[i, 2 + j, 0], out[i, 2 + j, 1] = 0.5 * (ep + em), px
            out[i, 2 + j, 2], out[i, 2 + j, 3] = py, 0.5 * (ep - em)
            kp += ep
            km += em
            pxj += px
            pyj += py
            prod *= pt * k_pt[j] / (den * den) * (2.0 * ylim)
        qt = math.sqrt(pxj * pxj + pyj * pyj + mn * mn)
        wp, wm = e - kp, e - km
        ok = wp > 0.0 and wm > 0.0
        hi = math.log((wp if ok else 1.0) / qt)
        lo = -math.log((wm if ok else 1.0) / qt)
        hi = ymax_n if ymax_n < hi else hi
        lo = -ymax_n if lo < -ymax_n else lo
        valid = ok and hi > lo
        width = hi - lo if valid else 1.0
        yn = (lo if valid else 0.0) + width * r[i, 2 * nf - 2]
        ex = math.exp(yn)
        epn, emn = qt * ex, qt * math.exp(-yn)
        out[i, nf + 1, 0], out[i, nf + 1, 1] = 0.5 * (epn + emn), -pxj
        out[i, nf + 1, 2], out[i, nf + 1, 3] = -pyj, 0.5 * (epn - emn)
        a, b = (kp + epn) / e, (km + emn) / e
        x1[i], x2[i] = a, b
        ha, hb = 0.5 * e * a, 0.5 * e * b
        out[i, 0, 0], out[i, 0, 1], out[i, 0, 2], out[i, 0, 3] = ha, 0.0, 0.0, ha
        out[i, 1, 0], out[i, 1, 1], out[i, 1, 2], out[i, 1, 3] = hb, 0.0, 0.0, -hb
        lw[i] = log_const + math.log(prod * width) if valid else -math.inf


@kernel("phasespace-chili-forward")
def chili_forward(r: Any, ps: Any) -> Any:
    if type(ps) is not Chili or not M.is_f64(r, None, ps.dims):
        return NotImplemented
    n = r.shape[0]
    nf = ps.n_final
    c = np.array(ps._c, dtype=np.float64)
    pmin = np.array(ps.pt_min[:-1], dtype=np.float64)
    pmax = 0.5 * ps.sqrt_s
    k_pt = 2.0 * c * (pmax - pmin) * (2.0 * c + pmax)
    m2 = np.array([m * m for m in ps.masses[:-1]], dtype=np.float64)
    ymax = np.array(ps.y_max[:-1], dtype=np.float64)
    out, x1, x2, lw = np.empty((n, 2 + nf, 4)), np.empty(n), np.empty(n), np.empty(n)
    _chili(r, pmin, c, k_pt, m2, ymax, float(ps.masses[-1]), float(ps.y_max[-1]),
           float(ps.sqrt_s), float(ps._log_const), out, x1, x2, lw)
    return out, x1, x2, lw
