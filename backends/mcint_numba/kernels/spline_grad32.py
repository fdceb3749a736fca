"""Float32 rational-quadratic spline, density direction (forward and backward), vectorised
across rows (SIMD): the one float32 density-direction spline kernel (torch training and the
numba backend's ``"rq-spline"``; :func:`.spline_grad.forward` picks it).

Same maths and gradient conventions as :mod:`.spline_grad` (whose docstring states them; the
oracle is :func:`mcint.flows.splines.rq_spline` ``.reference``), laid out like
:mod:`.coupling_rqs32`: the width/height parameters are transposed in blocks of ``_C`` rows to
``(parameters, rows)``, so every step is a loop over contiguous rows that LLVM vectorises:

* ``exp``/``log`` are the inlined float64 polynomials of :mod:`.numerics` (``dexp``,
  ``dlog``; libm calls block vectorisation, and the float32 ``fexp`` of the couplings moves the
  knots of a steep bin enough to cost 1e-5 relative in ``y`` and the gradients). Knots, the map
  and the gradients are float64 in the lanes, so results agree with the float64 reference to
  float32 output rounding;
* the bin search is a branch-free pass over the bins; the bin's own values are then gathered;
* all scratch lives in local ``(rows, _C)`` arrays indexed ``t[ROW, i]`` with constant rows,
  and each loop touches only a few rows: otherwise LLVM's loop-access analysis wants a runtime
  alias check per pair of rows and gives up ("too many memory checks").

The forward stores what the backward needs (``NSAVE`` float64 numbers per value and the
``2 * bins`` exponentials in float32), so the backward neither transposes the parameters nor
searches again. Measured (2 shared cores, side by side with the float64-scratch kernels of
:mod:`.spline_grad`, 256-1024 rows x 1-8 splines x 10 bins): ~0.5x the time forward and
backward; the transposes in and out are now about a third of it.
"""

from __future__ import annotations

import numba
import numpy as np

from .numerics import FM as _FM
from .numerics import LOG2 as _LOG2
from .numerics import bin_grads, dexp, dlog, knot_deriv_poly

_F = np.float32
#: rows per block: the ~60 scratch rows stay in L1 (64 and 128 measured alike, within noise)
_C = 64

# saved per-value state: one (NSAVE, _C) float64 block per (block of rows, spline), flat;
# the first NSAVE rows of the forward's scratch. C0W/C0H: sums of the exponentials below the bin
_TH, _W, _H, _D0, _D1, _SG0, _SG1, _IN, _IDX, _ISW, _C0W, _ISH, _C0H = range(13)
NSAVE = 13


def saves(n: int, k: int, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """Scratch for :func:`forward` -> :func:`backward` (flat, per block of rows and spline):
    the saved state (NSAVE float64 numbers a value) and the 2 nb exponentials (float32: they
    only scale the parameter gradients)."""
    blocks = -(-n // _C) * k
    return np.empty(blocks * NSAVE * _C), np.empty(blocks * 2 * nb * _C, dtype=_F)


#: the state of a :func:`forward` that saves nothing (no gradient wanted)
NO_SAVES = (np.empty(0), np.empty(0, dtype=_F))


# forward scratch rows after the saved ones (float64)
_V, _MW, _MH, _EWC, _EHC, _U0, _U1, _PW, _PH, _ACC = range(NSAVE, NSAVE + 10)
_NSCR = NSAVE + 10


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FM)
def forward(x, params, min_w, min_h, min_d, y, ld, save, sv, ex):  # pragma: no cover - compiled
    """``y`` (n, k) and ``ld`` (n,) ``= sum_j log dy/dx`` of float32 ``x`` (n, k) and raw
    ``params`` (n, k, 3 nb + 1) (density direction); fills ``sv``/``ex`` from :func:`saves`
    when ``save`` (else they may be empty: :data:`NO_SAVES`).
    A non-finite width/height parameter, knot-derivative parameter used, or a nan ``x`` gives
    nan for the value and its row's ``ld`` (an infinite ``x`` is clipped, as the reference)."""
    m_all, k = x.shape
    p = params.shape[2]
    nb = (p - 1) // 3
    # local (rows, _C) arrays indexed t[ROW, i] with constant rows: constant distances between
    # rows, so LLVM vectorises without runtime alias checks. Its loop-access analysis gives
    # up past ~100 dependences, hence loops that each touch only a few rows.
    t = np.empty((_NSCR, _C))
    ut = np.empty((2 * nb, _C), dtype=_F)
    el = np.empty((2 * nb, _C))
    aw = 1.0 - nb * min_w
    ah = 1.0 - nb * min_h
    cd = 1.0 / (min_d + _LOG2)
    nsv = NSAVE * _C
    nex = 2 * nb * _C
    for i0 in range(0, m_all, _C):
        n = min(_C, m_all - i0)
        ci = i0 // _C
        for i in range(n):
            t[_ACC, i] = 0.0
        for j in range(k):
            for i in range(n):  # the transpose: (rows, params) -> (params, rows)
                for b in range(2 * nb):  # the derivative parameters: only two are used
                    ut[b, i] = params[i0 + i, j, b]
                t[_V, i] = x[i0 + i, j]
            for i in range(n):
                t[_IN, i] = 1.0 if (t[_V, i] >= 0.0 and t[_V, i] <= 1.0) else 0.0
                t[_MW, i] = ut[0, i]
                t[_MH, i] = ut[nb, i]
            for b in range(1, nb):
                uw = ut[b]
                uh = ut[nb + b]
                for i in range(n):
                    a = np.float64(uw[i])
                    e = np.float64(uh[i])
                    t[_MW, i] = a if a > t[_MW, i] else t[_MW, i]
                    t[_MH, i] = e if e > t[_MH, i] else t[_MH, i]
            for i in range(n):
                t[_ISW, i] = 0.0
                t[_ISH, i] = 0.0
            for b in range(nb):
                ub = ut[b]
                exb = el[b]
                for i in range(n):
                    a = dexp(np.float64(ub[i]) - t[_MW, i])
                    exb[i] = a
                    t[_ISW, i] += a
                ub = ut[nb + b]
                exb = el[nb + b]
                for i in range(n):
                    a = dexp(np.float64(ub[i]) - t[_MH, i])
                    exb[i] = a
                    t[_ISH, i] += a
            for i in range(n):
                t[_ISW, i] = 1.0 / t[_ISW, i]
                t[_ISH, i] = 1.0 / t[_ISH, i]
                # the clip to [0, 1] as selects that keep nan
                vi = t[_V, i]
                vi = 0.0 if vi < 0.0 else vi
                t[_V, i] = 1.0 if vi > 1.0 else vi
            for i in range(n):
                t[_EWC, i] = 0.0
                t[_EHC, i] = 0.0
                t[_C0W, i] = 0.0
                t[_C0H, i] = 0.0
                t[_IDX, i] = 0.0
            # the bin: the last b + 1 whose left knot is <= v (selects, no search); knot
            # K_m = m min + a E_m / S with E_m the sum of the exponentials below m
            for b in range(nb - 1):
                ewb = el[b]
                ehb = el[nb + b]
                fb = np.float64(b + 1)
                kw = fb * min_w
                for i in range(n):
                    ea = t[_EWC, i] + ewb[i]
                    eh = t[_EHC, i] + ehb[i]
                    t[_EWC, i] = ea
                    t[_EHC, i] = eh
                    sel = t[_V, i] >= kw + aw * ea * t[_ISW, i]
                    t[_C0W, i] = ea if sel else t[_C0W, i]
                    t[_C0H, i] = eh if sel else t[_C0H, i]
                    t[_IDX, i] = fb if sel else t[_IDX, i]
            # what sits at the bin: its exponentials and its two knot-derivative parameters
            # (gathered: cheaper than selects over all bins and transposing all parameters)
            for i in range(n):
                ib = np.int64(t[_IDX, i])
                t[_PW, i] = el[ib, i]
                t[_PH, i] = el[nb + ib, i]
                t[_U0, i] = params[i0 + i, j, 2 * nb + ib]
                t[_U1, i] = params[i0 + i, j, 2 * nb + ib + 1]
            for i in range(n):
                d0, g0 = knot_deriv_poly(t[_U0, i], min_d, cd)
                d1, g1 = knot_deriv_poly(t[_U1, i], min_d, cd)
                t[_D0, i] = d0
                t[_D1, i] = d1
                t[_SG0, i] = g0
                t[_SG1, i] = g1
            for i in range(n):
                isw = t[_ISW, i]
                ish = t[_ISH, i]
                ix = t[_IDX, i]
                # bin widths and heights directly, not as differences of knots (cancellation)
                ww = min_w + aw * isw * t[_PW, i]
                hh = min_h + ah * ish * t[_PH, i]
                x0 = ix * min_w + aw * t[_C0W, i] * isw
                y0 = ix * min_h + ah * t[_C0H, i] * ish
                d0 = t[_D0, i]
                d1 = t[_D1, i]
                s = hh / ww
                dsum = d0 + d1 - 2.0 * s
                th = (t[_V, i] - x0) / ww
                t1 = 1.0 - th
                tt = th * t1
                iden = 1.0 / (s + dsum * tt)
                out = y0 + hh * (s * th * th + d0 * tt) * iden
                dnum = d1 * th * th + 2.0 * s * tt + d0 * t1 * t1
                lg = dlog(s * s * dnum * iden * iden)
                t[_V, i] = out  # v is free now: y, written strided below
                t[_ACC, i] += lg
                t[_TH, i] = th
                t[_W, i] = ww
                t[_H, i] = hh
            for i in range(n):  # strided: a separate loop, so the one above vectorises
                y[i0 + i, j] = t[_V, i]
            if not save:
                continue
            # the state for the backward: whole rows, contiguous copies
            q0 = (ci * k + j) * nsv
            for r in range(NSAVE):
                dst = sv[q0 + r * _C:q0 + (r + 1) * _C]
                for i in range(_C):
                    dst[i] = t[r, i]
            q0 = (ci * k + j) * nex
            for r in range(2 * nb):
                dst = ex[q0 + r * _C:q0 + (r + 1) * _C]
                for i in range(_C):
                    dst[i] = _F(el[r, i])
        for i in range(n):
            ld[i0 + i] = t[_ACC, i]


# backward scratch rows (float64) after the saved ones: gy, gld, gx; the gradients w.r.t.
# theta, the bin's width and height; the derivative gradients (before the softplus slope); per
# value the scale, base and [b < idx], [b == idx] terms of the width and height gradients
(_GY, _GL, _GX, _GTH, _GW, _GH, _GD0, _GD1, _AWS, _BWS, _G01W, _G1W, _AHS, _BHS, _G01H,
 _G1H) = range(NSAVE, NSAVE + 16)
_NBWD = NSAVE + 16


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FM)
def backward(sv, ex, gy, gld, min_w, min_h, min_d, gx, gp):  # pragma: no cover - compiled
    """Gradients of ``sum(gy * y) + sum(gld * ld)`` w.r.t. ``x`` and the raw parameters into
    ``gx`` (n, k) and ``gp`` (n, k, 3 nb + 1) (overwritten), from :func:`forward`'s state."""
    m_all, k = gy.shape
    p = gp.shape[2]
    nb = (p - 1) // 3
    t = np.empty((_NBWD, _C))
    gt = np.empty((2 * nb, _C), dtype=_F)
    aw = 1.0 - nb * min_w
    ah = 1.0 - nb * min_h
    cd = 1.0 / (min_d + _LOG2)
    top = np.float64(nb - 1)
    nsv = NSAVE * _C
    nex = 2 * nb * _C
    for i0 in range(0, m_all, _C):
        n = min(_C, m_all - i0)
        ci = i0 // _C
        for i in range(n):
            t[_GL, i] = gld[i0 + i]
        for j in range(k):
            q0 = (ci * k + j) * nsv
            for r in range(NSAVE):
                src = sv[q0 + r * _C:q0 + (r + 1) * _C]
                for i in range(_C):
                    t[r, i] = src[i]
            q0 = (ci * k + j) * nex
            eb = ex[q0:q0 + nex]
            for i in range(n):
                t[_GY, i] = gy[i0 + i, j]  # strided read, kept out of the loops below
            for i in range(n):
                th = t[_TH, i]
                w = t[_W, i]
                h = t[_H, i]
                d0 = t[_D0, i]
                d1 = t[_D1, i]
                Gth, Gh, Gw, Gd0, Gd1 = bin_grads(th, w, h, d0, d1, t[_GY, i], t[_GL, i])
                t[_GX, i] = Gth / w * t[_IN, i]
                t[_GTH, i] = Gth
                t[_GH, i] = Gh
                t[_GW, i] = Gw
                t[_GD0, i] = Gd0
                t[_GD1, i] = Gd1
            for i in range(n):
                gx[i0 + i, j] = t[_GX, i]
            # knots x_idx, x_idx+1 (widths) and y_idx, y_idx+1 (heights); the end knots
            # 0 and 1 are constants. K_m = m min + a C_m, C_m the softmax mass below m:
            # dK_m/du_b = a P_b ([b < m] - C_m)
            for i in range(n):
                ix = t[_IDX, i]
                gw = t[_GW, i]
                isw = t[_ISW, i]
                a0 = 0.0 if ix < 1.0 else -t[_GTH, i] / t[_W, i] - gw
                a1 = 0.0 if ix + 1.0 > top else gw
                c0 = t[_C0W, i] * isw
                t[_AWS, i] = aw * isw
                t[_BWS, i] = -(a0 * c0 + a1 * (c0 + (t[_W, i] - min_w) / aw))
                t[_G01W, i] = a0 + a1
                t[_G1W, i] = a1
            for i in range(n):
                ix = t[_IDX, i]
                gh = t[_GH, i]
                ish = t[_ISH, i]
                b0 = 0.0 if ix < 1.0 else t[_GY, i] - gh
                b1 = 0.0 if ix + 1.0 > top else gh
                c0 = t[_C0H, i] * ish
                t[_AHS, i] = ah * ish
                t[_BHS, i] = -(b0 * c0 + b1 * (c0 + (t[_H, i] - min_h) / ah))
                t[_G01H, i] = b0 + b1
                t[_G1H, i] = b1
            for b in range(nb):
                fb = np.float64(b)
                ewb = eb[b * _C:(b + 1) * _C]
                ehb = eb[(nb + b) * _C:(nb + b + 1) * _C]
                gw = gt[b]
                gh = gt[nb + b]
                for i in range(n):
                    lo = fb < t[_IDX, i]
                    at = fb == t[_IDX, i]
                    tw = t[_BWS, i] + (t[_G01W, i] if lo else (t[_G1W, i] if at else 0.0))
                    th = t[_BHS, i] + (t[_G01H, i] if lo else (t[_G1H, i] if at else 0.0))
                    gw[i] = _F(t[_AWS, i] * ewb[i] * tw)
                    gh[i] = _F(t[_AHS, i] * ehb[i] * th)
            for i in range(n):
                t[_GD0, i] *= t[_SG0, i] * cd
                t[_GD1, i] *= t[_SG1, i] * cd
            for i in range(n):  # the transpose back: (params, rows) -> (rows, params)
                gr = gp[i0 + i, j]  # a view: no negative-index fix-ups per element
                for b in range(2 * nb):
                    gr[b] = gt[b, i]
                # the knot-derivative parameters: two used, zero gradient for the others
                for b in range(2 * nb, p):
                    gr[b] = 0.0
                ib = np.int64(t[_IDX, i])
                gr[2 * nb + ib] = t[_GD0, i]
                gr[2 * nb + ib + 1] = t[_GD1, i]
