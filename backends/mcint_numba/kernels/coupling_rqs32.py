"""Float32 spline coupling for the numba backend, vectorised across rows (SIMD).

The scalar kernel of :mod:`.spline` spends most of its time in libm calls (``exp``/``log`` per
bin and value) and in a data-dependent bin search. Here the spline parameters come out of the
conditioner's last layer transposed, ``(parameters, rows)``, so that every step is a loop over
contiguous rows that LLVM turns into 16-lane float32 vector code:

* ``exp`` and ``log`` are the inlined float32 polynomials of :mod:`.numerics` (Cephes'
  ``expf``/``logf``, a few ulp), since numba's ``math.exp`` is a scalar libm call that blocks
  vectorisation (no SVML here);
* the bin search is a branch-free pass over the bins with selects;
* the log-det is one ``log`` per value of ``dy/dx`` (bounded: bin sizes and knot derivatives
  are bounded below), summed in float64.

Only float32 goes this way (float32 results are good to ~1e-6 relative anyway); float64 keeps
the scalar kernel with libm accuracy. The oracle is the same as for ``"rqs-coupling"``:
:func:`mcint.flows.couplings.rqs_coupling` (``.reference``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .numerics import FM as _FM
from .numerics import fexp, flog, fsoftplus

_F = np.float32
#: rows per block: the conditioner runs transposed, (features, rows), on blocks this wide
BLOCK_ROWS = 512
#: rows per inner pass of the spline: the per-bin scratch rows (~30 of them) stay in L1
CHUNK = 256

_LN2 = _F(math.log(2.0))
_ZERO = _F(0.0)
_HALF = _F(0.5)
_ONE = _F(1.0)
_TWO = _F(2.0)
_FOUR = _F(4.0)
_NAN = _F(np.nan)


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FM)
def spline_block(x, y, ld, ut, bias, tidx, nb, inverse, min_w, min_h, min_d):  # pragma: no cover
    """Splines on the columns ``tidx`` of the float32 rows ``x`` (m, d) into ``y``.

    ``ut`` (k * (3 nb + 1), m): the conditioner's last layer without its bias ``bias``, one
    row per parameter, spline ``j`` at rows ``j * (3 nb + 1) + [widths | heights | derivs]``.
    ``ld`` (m,) float64 receives the sum of ``log dy/dx`` over the splines (negated for
    ``inverse``, which solves the quadratic: the latent -> data direction).
    """
    m = x.shape[0]
    k = tidx.shape[0]
    p = 3 * nb + 1
    c = min(CHUNK, m)
    ew = np.empty((nb, c), dtype=_F)
    eh = np.empty((nb, c), dtype=_F)
    mw = np.empty(c, dtype=_F)
    mh = np.empty(c, dtype=_F)
    sw = np.empty(c, dtype=np.float64)
    sh = np.empty(c, dtype=np.float64)
    v = np.empty(c, dtype=_F)
    cx = np.empty(c, dtype=np.float64)
    cy = np.empty(c, dtype=np.float64)
    x0 = np.empty(c, dtype=np.float64)
    y0 = np.empty(c, dtype=np.float64)
    x1 = np.empty(c, dtype=_F)
    y1 = np.empty(c, dtype=_F)
    u0 = np.empty(c, dtype=_F)
    u1 = np.empty(c, dtype=_F)
    yo = np.empty(c, dtype=_F)
    chk = np.empty(c, dtype=_F)
    acc = np.empty(c, dtype=np.float64)
    fw64 = 1.0 - min_w * nb
    fh64 = 1.0 - min_h * nb
    fmw = _F(min_w)
    fmh = _F(min_h)
    fmd = _F(min_d)
    dnorm = _ONE / (fmd + _LN2)
    for i0 in range(0, m, c):
        n = min(c, m - i0)
        # row slices: an index like i0 + i would defeat vectorisation (wraparound checks)
        ldc = ld[i0:i0 + n]
        for i in range(n):
            acc[i] = 0.0
        for j in range(k):
            col = tidx[j]
            bw = j * p
            bh = bw + nb
            bd = bw + 2 * nb
            xc = x[i0:i0 + n, col]
            yc = y[i0:i0 + n, col]
            # softmax of widths and heights (shifted by their maxima)
            uw = ut[bw, i0:i0 + n]
            uh = ut[bh, i0:i0 + n]
            cw = bias[bw]
            ch = bias[bh]
            for i in range(n):
                mw[i] = uw[i] + cw
                mh[i] = uh[i] + ch
                chk[i] = mw[i] + mh[i]
                sw[i] = 0.0
                sh[i] = 0.0
            for b in range(1, nb):
                uw = ut[bw + b, i0:i0 + n]
                uh = ut[bh + b, i0:i0 + n]
                cw = bias[bw + b]
                ch = bias[bh + b]
                for i in range(n):
                    a = uw[i] + cw
                    e = uh[i] + ch
                    mw[i] = max(mw[i], a)
                    mh[i] = max(mh[i], e)
                    chk[i] += a + e
            for b in range(nb):
                uw = ut[bw + b, i0:i0 + n]
                uh = ut[bh + b, i0:i0 + n]
                cw = bias[bw + b]
                ch = bias[bh + b]
                ewb = ew[b]
                ehb = eh[b]
                for i in range(n):
                    a = fexp(uw[i] + cw - mw[i])
                    ewb[i] = a
                    sw[i] += a
                for i in range(n):
                    a = fexp(uh[i] + ch - mh[i])
                    ehb[i] = a
                    sh[i] += a
            ud = ut[bd, i0:i0 + n]
            cd = bias[bd]
            ue = ut[bd + 1, i0:i0 + n]
            ce = bias[bd + 1]
            for i in range(n):
                sw[i] = fw64 / sw[i]
                sh[i] = fh64 / sh[i]
                v[i] = min(max(xc[i], _ZERO), _ONE)
                cx[i] = 0.0
                cy[i] = 0.0
                x0[i] = 0.0
                y0[i] = 0.0
                # bin widths and heights directly, not as differences of knots (cancellation)
                x1[i] = fmw + _F(sw[i] * ew[0, i])
                y1[i] = fmh + _F(sh[i] * eh[0, i])
                u0[i] = ud[i] + cd
                u1[i] = ue[i] + ce
                chk[i] += xc[i] + u0[i] + u1[i]
            # bin b holds v when v >= its left knot (the last such b wins): selects, no search
            for b in range(nb - 1):
                ud = ut[bd + b + 1, i0:i0 + n]
                cd = bias[bd + b + 1]
                ue = ut[bd + b + 2, i0:i0 + n]
                ce = bias[bd + b + 2]
                for i in range(n):
                    # knots summed in float64: v - x0 near a knot is what float32 would lose
                    nx = cx[i] + (min_w + sw[i] * ew[b, i])
                    ny = cy[i] + (min_h + sh[i] * eh[b, i])
                    cx[i] = nx
                    cy[i] = ny
                    ua = ud[i] + cd
                    ub = ue[i] + ce
                    sel = v[i] >= (ny if inverse else nx)
                    x0[i] = nx if sel else x0[i]
                    y0[i] = ny if sel else y0[i]
                    x1[i] = fmw + _F(sw[i] * ew[b + 1, i]) if sel else x1[i]
                    y1[i] = fmh + _F(sh[i] * eh[b + 1, i]) if sel else y1[i]
                    u0[i] = ua if sel else u0[i]
                    u1[i] = ub if sel else u1[i]
                    chk[i] += ub
            # the map itself in float64 (8 lanes): the quadratic's root and theta near a knot
            # lose several digits in float32
            for i in range(n):
                w = np.float64(x1[i])
                h = np.float64(y1[i])
                d0 = np.float64((fmd + fsoftplus(u0[i])) * dnorm)
                d1 = np.float64((fmd + fsoftplus(u1[i])) * dnorm)
                s = h / w
                dsum = d0 + d1 - 2.0 * s
                if inverse:
                    dy = v[i] - y0[i]
                    qa = dy * dsum + h * (s - d0)
                    qb = h * d0 - dy * dsum
                    qc = -s * dy
                    disc = max(qb * qb - 4.0 * qa * qc, 0.0)
                    theta = min(max((2.0 * qc) / (-qb - math.sqrt(disc)), 0.0), 1.0)
                    out = theta * w + x0[i]
                else:
                    theta = min(max((v[i] - x0[i]) / w, 0.0), 1.0)
                    t1 = 1.0 - theta
                    out = y0[i] + h * (s * theta * theta + d0 * theta * t1) / (
                        s + dsum * theta * t1)
                t1 = 1.0 - theta
                tt = theta * t1
                denom = s + dsum * tt
                dnum = d1 * theta * theta + 2.0 * s * tt + d0 * t1 * t1
                lg = flog(_F(s * s * dnum / (denom * denom)))
                # a nan/inf among this value's inputs (the sum chk of them all is then not
                # finite) must not vanish in the clamps and integer casts above
                ok = chk[i] - chk[i] == _ZERO
                yo[i] = _F(min(max(out, 0.0), 1.0)) if ok else _NAN
                acc[i] += lg if ok else _NAN
            for i in range(n):  # strided: a separate loop, so the one above vectorises
                yc[i] = yo[i]
        for i in range(n):
            ldc[i] = -acc[i] if inverse else acc[i]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def gather_t(x, cidx, cond, out):  # pragma: no cover - compiled
    """``out = [x[:, cidx] | cond].T``: the conditioner's input, transposed."""
    nc = cidx.shape[0]
    for j in range(nc):
        c = cidx[j]
        for i in range(x.shape[0]):
            out[j, i] = x[i, c]
    for j in range(cond.shape[1]):
        for i in range(x.shape[0]):
            out[nc + j, i] = cond[i, j]


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FM)
def bias_act_t(h, b, act):  # pragma: no cover - compiled
    """``h[j, :] += b[j]`` then the activation, in place, on a transposed (features, rows)
    float32 layer; codes and formulas as :data:`.spline.ACTIVATIONS` / mcint.flows.mlp."""
    m = h.shape[1]
    for j in range(h.shape[0]):
        row = h[j]
        bj = b[j]
        if act == 0:
            for i in range(m):
                row[i] = max(row[i] + bj, _ZERO)
        elif act == 1:
            for i in range(m):
                v = row[i] + bj
                row[i] = v if v > _ZERO else _F(0.01) * v
        else:
            for i in range(m):
                v = row[i] + bj
                if act == 2:
                    v = math.tanh(v)
                elif act == 3:
                    v = _ONE / (_ONE + math.exp(-v))
                elif act == 4:
                    v = v / (_ONE + math.exp(-v))
                elif act == 5:
                    v = _HALF * v * (_ONE + math.tanh(_F(0.7978845608028654)
                                                      * (v + _F(0.044715) * v * v * v)))
                elif act == 6:
                    v = v if v > _ZERO else math.expm1(min(v, _ZERO))
                elif act == 7:
                    v = max(v, _ZERO) + math.log1p(math.exp(-abs(v)))
                row[i] = v


def conditioner_blocks(x, cond, mlp, cidx, act):
    """Yield ``(start, rows, out)`` over blocks of rows of ``x``: ``out`` (params, rows) is the
    conditioner's last layer *without its bias*, run transposed (``W.T @ a`` on contiguous
    (features, rows) float32 blocks: the layout the row-vectorised kernels read)."""
    n = x.shape[0]
    r = min(n, BLOCK_ROWS)
    n_in = cidx.shape[0] + cond.shape[1]
    wts = [np.ascontiguousarray(w.T) for w, _ in mlp]
    last = len(mlp) - 1

    def buffers(m):
        # ones: the input of a 1-d flow without condition
        return (np.ones((max(n_in, 1), m), dtype=_F),
                [np.empty((wt.shape[0], m), dtype=_F) for wt in wts])

    full = buffers(r)
    for s in range(0, n, r):
        m = min(r, n - s)
        inp, hs = full if m == r else buffers(m)
        if n_in:
            gather_t(x[s:s + m], cidx, cond[s:s + m], inp)
        a = inp
        for li, wt in enumerate(wts):
            np.matmul(wt, a, out=hs[li])
            a = hs[li]
            if li != last:
                bias_act_t(a, mlp[li][1], act)
        yield s, m, a


def coupling(x, y, cond, mlp, cidx, tidx, nb, act, inverse, min_w, min_h, min_d):
    """The float32 ``"rqs-coupling"``: ``y`` (a copy of ``x``) gets the transformed columns;
    returns ``(y, log_det)``."""
    ld = np.empty(x.shape[0], dtype=np.float64)
    b_last = mlp[-1][1]
    for s, m, u in conditioner_blocks(x, cond, mlp, cidx, act):
        spline_block(x[s:s + m], y[s:s + m], ld[s:s + m], u, b_last, tidx, nb, inverse, min_w,
                     min_h, min_d)
    return y, ld.astype(_F)
