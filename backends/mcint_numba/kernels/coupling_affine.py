"""Fused float32 affine coupling for the numba backend, vectorised across rows.

Same layout and tools as :mod:`.coupling_rqs32`: the conditioner runs transposed, and the
logit-space affine map (:func:`mcint.flows.couplings.affine_transform`) is evaluated in
16-lane float32 vector loops with the inlined ``exp``/``log`` polynomials. The oracle is
:func:`mcint.flows.couplings.affine_coupling` (``.reference``). Other dtypes and non-numpy
arrays are declined (the array-API code, whose numpy ufuncs are vectorised already, runs).
"""

from __future__ import annotations

import numba
import numpy as np

from .. import kernel
from .coupling_rqs32 import _F, conditioner_blocks
from .numerics import FM as _FM
from .numerics import fexp, flog
from .spline import ACTIVATIONS, _numpy_float

_ZERO = _F(0.0)
_ONE = _F(1.0)
_TWO = _F(2.0)
_NAN = _F(np.nan)
_TINY = _F(np.finfo(np.float32).tiny)
_TOP = _F(1.0 - np.finfo(np.float32).eps / 2)


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FM)
def affine_block(x, y, ld, ut, bias, tidx, inverse, clamp):  # pragma: no cover - compiled
    """Affine maps of the columns ``tidx`` of ``x`` (m, d) into ``y``; ``ut`` (2k, m) holds the
    raw ``(s, t)`` rows of each value without the bias ``bias``; ``ld`` (m,) float64 gets the
    log-det summed over the values."""
    m = x.shape[0]
    k = tidx.shape[0]
    q = np.empty(m, dtype=_F)
    yo = np.empty(m, dtype=_F)
    acc = np.zeros(m, dtype=np.float64)
    cl = _F(clamp)
    icl = _ONE / cl
    for j in range(k):
        col = tidx[j]
        xc = x[:, col]
        yc = y[:, col]
        for i in range(m):  # strided: separate loops, so that the main one vectorises
            q[i] = xc[i]
        rs = ut[2 * j]
        rt = ut[2 * j + 1]
        bs = bias[2 * j]
        bt = bias[2 * j + 1]
        for i in range(m):
            qi = min(max(q[i], _TINY), _TOP)
            a = (rs[i] + bs) * icl
            ea = fexp(-_TWO * abs(a))
            th = (_ONE - ea) / (_ONE + ea)  # tanh |a|
            sv = cl * (th if a >= _ZERO else -th)
            tv = rt[i] + bt
            lq = flog(qi)
            l1q = flog(_ONE - qi)  # log1p(-q): 1 - q is exact for q >= 1/2, ~eps off below
            u = lq - l1q
            es = fexp(-abs(sv))
            if inverse:  # exp(-s) = es for s > 0
                v = (u - tv) * (es if sv > _ZERO else _ONE / es)
            else:
                v = u * (es if sv < _ZERO else _ONE / es) + tv
            e = fexp(-abs(v))
            r = _ONE / (_ONE + e)
            out = r if v >= _ZERO else e * r
            se = _ONE + e
            lp = e if se == _ONE else flog(se) * (e / (se - _ONE))  # log1p(e), Goldberg
            # log sigmoid'(v) - log sigmoid'(u) +- s
            lg = -(abs(v) + _TWO * lp) - (lq + l1q) + (-sv if inverse else sv)
            chk = q[i] + (rs[i] + bs) + tv  # nan/inf must not vanish in the clamps above
            ok = chk - chk == _ZERO
            yo[i] = out if ok else _NAN
            acc[i] += lg if ok else _NAN
        for i in range(m):
            yc[i] = yo[i]
    for i in range(m):
        ld[i] = acc[i]


@kernel("affine-coupling")
def affine_coupling(x, condition, mlp, cond_idx, trafo_idx, activation="relu", inverse=False,
                    clamp=2.0):
    """Fused float32 version of :func:`mcint.flows.couplings.affine_coupling`."""
    arrays = [x] + [a for wb in mlp for a in wb] + ([] if condition is None else [condition])
    if not _numpy_float(*arrays) or x.dtype != np.float32 or activation not in ACTIVATIONS \
            or x.ndim != 2:
        return NotImplemented
    n = x.shape[0]
    cidx = np.asarray(cond_idx, dtype=np.int64)
    tidx = np.asarray(trafo_idx, dtype=np.int64)
    cond = np.empty((n, 0), dtype=x.dtype) if condition is None else condition
    n_in = cidx.shape[0] + cond.shape[1]
    if tidx.shape[0] == 0 or mlp[-1][0].shape[1] != 2 * tidx.shape[0] \
            or mlp[0][0].shape[0] != max(n_in, 1):
        return NotImplemented
    mlp = [(np.ascontiguousarray(w), np.ascontiguousarray(b)) for w, b in mlp]
    y = np.array(x, dtype=x.dtype, order="C", copy=True)  # conditioning columns pass unchanged
    ld = np.empty(n, dtype=np.float64)
    b_last = mlp[-1][1]
    for s, m, u in conditioner_blocks(x, cond, mlp, cidx, ACTIVATIONS[activation]):
        affine_block(x[s:s + m], y[s:s + m], ld[s:s + m], u, b_last, tidx, bool(inverse),
                     float(clamp))
    return y, ld.astype(np.float32)
