"""The scalar numerics every fused spline/coupling kernel shares, in one place.

* vectorisable ``exp``/``log``: numba's ``math.exp`` is a scalar libm call that blocks SIMD
  (no SVML here), so the row-vectorised kernels inline polynomials built from float/int bit
  casts -- one pair per precision: :func:`fexp`/:func:`flog` in float32 (Cephes ``expf``/
  ``logf``, a few ulp) for the float32 couplings, :func:`dexp`/:func:`dlog` in float64 (to
  ~1e-11 / 1e-15) for the float32 training kernels, whose lanes compute in float64;
* the spline parametrisation of :func:`mcint.flows.splines.rq_spline` (the oracle): the
  softmax shift (:func:`shift`, :func:`exps`), the knots (:func:`knots`, :func:`search`), the
  knot derivatives with their softplus slope (:func:`knot_deriv` with libm,
  :func:`knot_deriv_poly` with the polynomials), the position in a bin in either direction
  (:func:`bin_position`) and the per-bin gradients of the training kernels (:func:`bin_grads`).

Knots are ``K_m = m min + a E_m / S`` (``E_m`` the sum of the shifted exponentials below bin
``m``, ``S`` all of them, ``a = 1 - B min``), the reference's formula, so that every kernel and
the reference put a value on a knot into the same bin.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

_F = np.float32
LOG2 = math.log(2.0)
#: FMA contraction only: no nnan/ninf, so non-finite values still propagate
FM = {"contract"}
JIT = dict(cache=True, nogil=True, error_model="numpy", inline="always", fastmath=FM)
_SCALAR = dict(cache=True, nogil=True, error_model="numpy", inline="always")


# -- float/int bit casts ---------------------------------------------------------------------
@intrinsic
def f2i(typingctx, x):
    """The bits of a float32 as an int32."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def i2f(typingctx, x):
    """The float32 with the bits of an integer's low 32 bits."""
    # numba widens int32 arithmetic to int64: take the low 32 bits
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        v = args[0]
        if v.type.width > 32:
            v = builder.trunc(v, ir.IntType(32))
        return builder.bitcast(v, ir.FloatType())

    return types.float32(x), codegen


# -- float32 polynomials (Cephes) -----------------------------------------------------------
_LOG2E_F = _F(1.4426950408889634)
_C1 = _F(0.693359375)  # ln 2 = C1 - C2, C1 exact in a few bits (Cephes)
_C2 = _F(-2.12194440e-4)
_SQRTH = _F(0.70710678118654752440)
_EXP_MIN = _F(-87.0)
_ZERO = _F(0.0)
_HALF = _F(0.5)
_ONE = _F(1.0)


@numba.njit(**JIT)
def fexp(x):  # pragma: no cover - compiled
    """``exp(x)`` for float32 ``x <= 0`` (Cephes ``expf``); below -87 it returns ~1e-38."""
    x = max(x, _EXP_MIN)
    n = np.int32(x * _LOG2E_F - _HALF)  # rounds to nearest for x <= 0 (truncation toward zero)
    fn = _F(n)
    r = x - fn * _C1
    r = r - fn * _C2
    p = _F(1.9875691500e-4)
    p = p * r + _F(1.3981999507e-3)
    p = p * r + _F(8.3334519073e-3)
    p = p * r + _F(4.1665795894e-2)
    p = p * r + _F(1.6666665459e-1)
    p = p * r + _F(5.0000001201e-1)
    p = p * r * r + r + _ONE
    return p * i2f((n + np.int32(127)) << np.int32(23))


@numba.njit(**JIT)
def flog(x):  # pragma: no cover - compiled
    """``log(x)`` for positive normal float32 ``x`` (Cephes ``logf``)."""
    bits = f2i(x)
    e = (bits >> np.int32(23)) - np.int32(126)
    m = i2f((bits & np.int32(0x007FFFFF)) | np.int32(0x3F000000))  # in [0.5, 1)
    small = m < _SQRTH
    e = e - np.int32(1) if small else e
    m = m + m - _ONE if small else m - _ONE
    z = m * m
    p = _F(7.0376836292e-2)
    p = p * m + _F(-1.1514610310e-1)
    p = p * m + _F(1.1676998740e-1)
    p = p * m + _F(-1.2420140846e-1)
    p = p * m + _F(1.4249322787e-1)
    p = p * m + _F(-1.6668057665e-1)
    p = p * m + _F(2.0000714765e-1)
    p = p * m + _F(-2.4999993993e-1)
    p = p * m + _F(3.3333331174e-1)
    fe = _F(e)
    y = m * z * p + fe * _C2 - _HALF * z
    return m + y + fe * _C1


@numba.njit(**JIT)
def fsoftplus(u):  # pragma: no cover - compiled
    """``log(1 + exp(u))`` in float32, with ``log1p`` accurate for tiny ``exp(-|u|)``."""
    e = fexp(-abs(u))
    s = _ONE + e
    # log1p(e) = log(1 + e) * e / ((1 + e) - 1), exact where 1 + e rounds (Goldberg)
    lp = e if s == _ONE else flog(s) * (e / (s - _ONE))
    return max(u, _ZERO) + lp


# -- float64 polynomials --------------------------------------------------------------------
_SQRT2 = math.sqrt(2.0)
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 = HI + LO, HI with trailing zero bits (fdlibm)
_LN2_LO = 1.90821492927058770002e-10


@numba.njit(**JIT)
def dexp(x):  # pragma: no cover - compiled
    """``exp(x)`` in float64 for ``x <= 0`` to ~1e-11 relative, vectorisable (Cephes-style
    range reduction, Taylor polynomial); below -87 it returns ~1e-38; nan gives nan."""
    x = -87.0 if x < -87.0 else x  # a select (numba's max() is not vectorised); nan stays
    n = np.int32(x * _LOG2E - 0.5)  # rounds to nearest for x <= 0 (truncation toward zero)
    fn = np.float64(n)
    r = x - fn * _LN2_HI - fn * _LN2_LO
    p = 1.0 / 362880.0  # |r| <= ln(2)/2: the next term is below 1e-11
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    return p * np.float64(i2f((n + np.int32(127)) << np.int32(23)))


@numba.njit(**JIT)
def dlog(x):  # pragma: no cover - compiled
    """``log(x)`` in float64 to ~1e-15 for positive ``x`` within float32's normal range,
    vectorisable: ``x = 2^e m`` (exponent from float32 bits), ``log m = 2 atanh((m-1)/(m+1))``."""
    # int32 throughout: numba widens to int64, whose conversion to float is not vectorised
    e = np.int32((f2i(_F(x)) >> np.int32(23)) - np.int32(127))
    m = x * np.float64(i2f(np.int32(np.int32(127) - e) << np.int32(23)))
    big = m > _SQRT2
    m = 0.5 * m if big else m
    fe = np.float64(e) + (1.0 if big else 0.0)
    z = (m - 1.0) / (m + 1.0)  # |z| <= 0.172: the series below ends at ~3e-16
    z2 = z * z
    p = 1.0 / 17.0
    p = p * z2 + 1.0 / 15.0
    p = p * z2 + 1.0 / 13.0
    p = p * z2 + 1.0 / 11.0
    p = p * z2 + 1.0 / 9.0
    p = p * z2 + 1.0 / 7.0
    p = p * z2 + 1.0 / 5.0
    p = p * z2 + 1.0 / 3.0
    p = p * z2 + 1.0
    return fe * _LN2_HI + (2.0 * z * p + fe * _LN2_LO)


# -- the spline parametrisation -------------------------------------------------------------
@numba.njit(cache=True, nogil=True, error_model="numpy")
def shift(params, ex):  # pragma: no cover - compiled
    """``ex[i, j, g, b] = u - max(u)`` of the widths (g=0) and heights (g=1) of each spline
    ``params[i, j]`` (computed in float64, stored in ``ex``'s dtype: the same bits as a
    float32 subtraction for float32 ``ex``)."""
    n, k, _, nb = ex.shape
    for i in range(n):
        for j in range(k):
            for g in range(2):
                off = g * nb
                m = np.float64(params[i, j, off])
                for b in range(1, nb):
                    m = max(m, np.float64(params[i, j, off + b]))
                for b in range(nb):
                    ex[i, j, g, b] = np.float64(params[i, j, off + b]) - m


def exps(params: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``exp(u - max u)`` (n, k, 2, B) of the width/height parameters of ``params``
    (n, k, 3B + 1), float64 unless ``out`` is given: a numba pass for the shift, then numpy's
    vectorised ``exp`` in place (several times faster than numba's scalar one)."""
    if out is None:
        n, k, p = params.shape
        out = np.empty((n, k, 2, (p - 1) // 3))
    shift(params, out)
    np.exp(out, out=out)
    return out


@numba.njit(**_SCALAR)
def knots(ex, i, j, g, nb, m, K):  # pragma: no cover - compiled
    """Knots ``K`` (0, ..., 1) of widths (g=0) or heights (g=1) of spline ``(i, j)`` from
    ``ex = exp(u - max u)`` and the minimal bin size ``m``; returns the sum ``S`` of ``ex``."""
    S = 0.0
    for b in range(nb):
        S += ex[i, j, g, b]
    sc = (1.0 - nb * m) / S
    K[0] = 0.0
    E = 0.0
    for b in range(1, nb):
        E += ex[i, j, g, b - 1]
        K[b] = E * sc + m * b
    K[nb] = 1.0
    return S


@numba.njit(**_SCALAR)
def search(K, nb, v):  # pragma: no cover - compiled
    """The bin of ``v``: the number of interior knots ``<= v`` (the reference's count)."""
    idx = 0
    for b in range(1, nb):
        if v >= K[b]:
            idx += 1
    return idx


@numba.njit(**_SCALAR)
def knot_deriv(u, min_d):  # pragma: no cover - compiled
    """Knot derivative ``(min_d + softplus(u)) / (min_d + log 2)`` and its slope factor
    ``sigmoid(u)``, from one libm ``exp(-|u|)``."""
    e = math.exp(-abs(u))
    # log instead of log1p costs at most ~1e-16 absolute, and log1p is three times slower
    d = (min_d + max(u, 0.0) + math.log(1.0 + e)) / (min_d + LOG2)
    return d, (1.0 if u >= 0.0 else e) / (1.0 + e)


@numba.njit(**JIT)
def knot_deriv_poly(u, min_d, cd):  # pragma: no cover - compiled
    """:func:`knot_deriv` with the vectorisable float64 polynomials (``cd = 1 / (min_d +
    log 2)``; ``log1p`` via Goldberg's ``log(1+e) e / ((1+e)-1)``)."""
    e = dexp(-abs(u))
    s = 1.0 + e
    lp = e if s == 1.0 else dlog(s) * (e / (s - 1.0))
    pos = u >= 0.0
    return (min_d + (u if pos else 0.0) + lp) * cd, (1.0 if pos else e) / s


@numba.njit(**_SCALAR)
def bin_position(v, x0, y0, w, h, d0, s, dsum, inverse):  # pragma: no cover - compiled
    """Position theta in [0, 1] of ``v`` inside its bin: linear in x (density direction), or the
    stable root of the spline's quadratic in y (sampling direction)."""
    if inverse:
        dy = v - y0
        a = dy * dsum + h * (s - d0)
        bq = h * d0 - dy * dsum
        c = -s * dy
        disc = max(bq * bq - 4.0 * a * c, 0.0)
        return min(max((2.0 * c) / (-bq - math.sqrt(disc)), 0.0), 1.0)
    return (v - x0) / w


@numba.njit(**_SCALAR)
def bin_grads(th, w, h, d0, d1, g, gl):  # pragma: no cover - compiled
    """Gradients of ``g * y + gl * log|dy/dx|`` in one bin (density direction; ``th`` the
    position in the bin, ``w``/``h`` its width/height, ``d0``/``d1`` the knot derivatives)
    w.r.t. ``th, h, w, d0, d1``, as ``(Gth, Gh, Gw, Gd0, Gd1)``: the per-value part of the
    training kernels' backward."""
    iw = 1.0 / w
    s = h * iw
    dsum = d0 + d1 - 2.0 * s
    t1 = 1.0 - th
    tt = th * t1
    den = s + dsum * tt
    A = s * th * th + d0 * tt
    dnum = d1 * th * th + 2.0 * s * tt + d0 * t1 * t1
    q = 1.0 - 2.0 * th
    r = 1.0 - 2.0 * tt
    iden = 1.0 / den
    idn = 1.0 / dnum
    id2 = iden * iden
    # partial derivatives of y and ld w.r.t. theta, s, d0, d1 (the others fixed)
    y_th = h * ((2.0 * s * th + d0 * q) * den - A * dsum * q) * id2
    y_s = h * (th * th * den - A * r) * id2
    y_d0 = h * tt * (den - A) * id2
    y_d1 = -h * A * tt * id2
    l_th = (2.0 * d1 * th - 2.0 * d0 * t1 + 2.0 * s * q) * idn - 2.0 * dsum * q * iden
    l_s = 2.0 * w / h + 2.0 * tt * idn - 2.0 * r * iden
    l_d0 = t1 * t1 * idn - 2.0 * tt * iden
    l_d1 = th * th * idn - 2.0 * tt * iden
    Gth = g * y_th + gl * l_th
    Gs = g * y_s + gl * l_s
    return (Gth, g * A * iden + Gs * iw, -(Gth * th + Gs * s) * iw,
            g * y_d0 + gl * l_d0, g * y_d1 + gl * l_d1)
