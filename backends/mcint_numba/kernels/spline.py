"""Fused rational-quadratic spline kernels for the numba backend.

* ``"rq-spline"``: normalisation, bin search, map and log-det in one pass per value, instead of
  the reference's ``(n, k, bins)`` temporaries;
* ``"rqs-coupling"``: a whole spline coupling block (gather, MLP, spline, scatter), processed in
  blocks of rows with preallocated buffers that stay in cache; the matrix products are numpy's
  (BLAS), the rest numba. float32 goes to the row-vectorised kernel of :mod:`.coupling_rqs32`
  (several times faster); float64 stays here, with libm accuracy.

Oracles: :func:`mcint.flows.splines.rq_spline` and :func:`mcint.flows.couplings.rqs_coupling`
(``.reference``): the same formulas, evaluated in float64 scratch for both input dtypes. Both
decline (``NotImplemented``) anything but numpy arrays of one float dtype, e.g. torch tensors
during training. The ``2 * bins`` exponentials per value go through numpy's vectorised ``exp``
on a buffer: several times faster than numba's scalar ``exp`` without SVML.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .. import kernel
from . import coupling_rqs32

_LOG2 = math.log(2.0)
#: rows per block in the coupling kernel (buffers of ~rows * 3 * bins * k floats stay in L2)
BLOCK_ROWS = 1024
ACTIVATIONS = {"relu": 0, "leaky_relu": 1, "tanh": 2, "sigmoid": 3, "silu": 4, "gelu": 5,
               "elu": 6, "softplus": 7}


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _shift(params, out):  # pragma: no cover - compiled
    # out[i, j, g, :] = u - max(u) for the widths (g=0) and heights (g=1) of each spline
    n, k, _, nb = out.shape
    for i in range(n):
        for j in range(k):
            for g in range(2):
                off = g * nb
                m = params[i, j, off]
                for b in range(1, nb):
                    m = max(m, params[i, j, off + b])
                for b in range(nb):
                    out[i, j, g, b] = params[i, j, off + b] - m


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _deriv(u, min_d):  # pragma: no cover - compiled
    # softplus(u) = max(u, 0) + log(1 + exp(-|u|)); log instead of log1p costs at most ~1e-16
    # absolute, and log1p is three times slower here
    sp = max(u, 0.0) + math.log(1.0 + math.exp(-abs(u)))
    return (min_d + sp) / (min_d + _LOG2)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
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


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
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


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rqs(x, tidx, ex, params, inverse, min_w, min_h, min_d, out, ld):  # pragma: no cover
    # splines on the columns tidx of x (m, d), written to the same columns of out; ex holds
    # exp(u - max u) of the width/height parameters, params the raw ones (for derivatives)
    n = x.shape[0]
    k = tidx.shape[0]
    nb = ex.shape[3]
    for i in range(n):
        acc = 0.0
        prod = 1.0
        for j in range(k):
            col = tidx[j]
            sw = 0.0
            sh = 0.0
            for b in range(nb):
                sw += ex[i, j, 0, b]
                sh += ex[i, j, 1, b]
            scw = (1.0 - min_w * nb) / sw
            sch = (1.0 - min_h * nb) / sh
            v = min(max(float(x[i, col]), 0.0), 1.0)
            # walk the knots (cumulative sums) only up to the bin holding v
            x0 = 0.0
            y0 = 0.0
            x1 = 0.0
            y1 = 0.0
            idx = 0
            for b in range(nb):
                if b == nb - 1:
                    x1 = 1.0
                    y1 = 1.0
                else:
                    x1 = x0 + (min_w + scw * ex[i, j, 0, b])
                    y1 = y0 + (min_h + sch * ex[i, j, 1, b])
                idx = b
                if b == nb - 1 or v < (y1 if inverse else x1):
                    break
                x0 = x1
                y0 = y1
            w = x1 - x0
            h = y1 - y0
            d0 = _deriv(params[i, j, 2 * nb + idx], min_d)
            d1 = _deriv(params[i, j, 2 * nb + idx + 1], min_d)
            s = h / w
            dsum = d0 + d1 - 2.0 * s
            theta = bin_position(v, x0, y0, w, h, d0, s, dsum, inverse)
            tt = theta * (1.0 - theta)
            denom = s + dsum * tt
            if inverse:
                out[i, col] = theta * w + x0
            else:
                out[i, col] = y0 + h * (s * theta * theta + d0 * tt) / denom
            dnum = d1 * theta * theta + 2.0 * s * tt + d0 * (1.0 - theta) * (1.0 - theta)
            # dy/dx = s^2 dnum / denom^2 > 0; multiply, and take one log per row (logs are
            # the slow part), flushing long before the product could leave the float range
            prod *= s * s * dnum / (denom * denom)
            if prod > 1e150 or prod < 1e-150:
                acc += math.log(prod)
                prod = 1.0
        acc += math.log(prod)
        ld[i] = -acc if inverse else acc


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _gather(x, cidx, cond, out):  # pragma: no cover - compiled
    n = x.shape[0]
    nc = cidx.shape[0]
    for i in range(n):
        for j in range(nc):
            out[i, j] = x[i, cidx[j]]
        for j in range(cond.shape[1]):
            out[i, nc + j] = cond[i, j]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _bias_act(h, b, act):  # pragma: no cover - compiled
    # h += b, then the activation (act < 0: none), in place; formulas as mcint.flows.mlp. The
    # activation is chosen outside the loops so that LLVM can vectorise them.
    n, m = h.shape
    if act < 0:
        for i in range(n):
            for j in range(m):
                h[i, j] = h[i, j] + b[j]
    elif act == 0:
        for i in range(n):
            for j in range(m):
                h[i, j] = max(h[i, j] + b[j], 0.0)
    elif act == 1:
        for i in range(n):
            for j in range(m):
                v = h[i, j] + b[j]
                h[i, j] = v if v > 0 else 0.01 * v
    else:
        for i in range(n):
            for j in range(m):
                v = h[i, j] + b[j]
                if act == 2:
                    v = math.tanh(v)
                elif act == 3:
                    v = 1.0 / (1.0 + math.exp(-v))
                elif act == 4:
                    v = v / (1.0 + math.exp(-v))
                elif act == 5:
                    v = 0.5 * v * (1.0 + math.tanh(0.7978845608028654
                                                   * (v + 0.044715 * v * v * v)))
                elif act == 6:
                    v = v if v > 0 else math.expm1(min(v, 0.0))
                elif act == 7:
                    v = max(v, 0.0) + math.log1p(math.exp(-abs(v)))
                h[i, j] = v


def _exp_shifted(params, ex) -> None:
    """``ex[..., g, :] = exp(u - max u)`` for the width/height parameters ``u`` of each spline:
    a numba pass for the shift, then numpy's vectorised exp on the contiguous buffer."""
    _shift(params, ex)
    np.exp(ex, out=ex)


def _numpy_float(*arrays) -> bool:
    dt = arrays[0].dtype
    return all(type(a) is np.ndarray and a.dtype == dt for a in arrays) and \
        dt in (np.float64, np.float32)


@kernel("rq-spline")
def rq_spline(x, params, inverse=False, min_width=1e-3, min_height=1e-3, min_derivative=1e-3):
    """Fused version of :func:`mcint.flows.splines.rq_spline` for numpy inputs."""
    if not _numpy_float(x, params):
        return NotImplemented
    if x.ndim != 2 or params.ndim != 3 or params.shape[:2] != x.shape \
            or (params.shape[2] - 1) % 3 or params.shape[2] < 4:
        return NotImplemented  # the reference raises the descriptive error
    n, k, p = params.shape
    nb = (p - 1) // 3
    params = np.ascontiguousarray(params)
    ex = np.empty((n, k, 2, nb), dtype=params.dtype)
    _exp_shifted(params, ex)
    out = np.empty_like(x)
    ld = np.empty(n, dtype=x.dtype)
    _rqs(x, np.arange(k), ex, params, bool(inverse), float(min_width), float(min_height),
         float(min_derivative), out, ld)
    return out, ld


@kernel("rqs-coupling")
def rqs_coupling(x, condition, mlp, cond_idx, trafo_idx, activation="relu", inverse=False,
                 min_width=1e-3, min_height=1e-3, min_derivative=1e-3):
    """Fused version of :func:`mcint.flows.couplings.rqs_coupling` for numpy inputs."""
    arrays = [x] + [a for wb in mlp for a in wb] + ([] if condition is None else [condition])
    if not _numpy_float(*arrays) or activation not in ACTIVATIONS or x.ndim != 2:
        return NotImplemented
    n, d = x.shape
    dt = x.dtype
    cidx = np.asarray(cond_idx, dtype=np.int64)
    tidx = np.asarray(trafo_idx, dtype=np.int64)
    k = tidx.shape[0]
    cond = np.empty((n, 0), dtype=dt) if condition is None else condition
    n_in = cidx.shape[0] + cond.shape[1]
    p_out = mlp[-1][0].shape[1]
    if k == 0 or p_out % k or (p_out // k - 1) % 3 or mlp[0][0].shape[0] != max(n_in, 1):
        return NotImplemented
    nb = (p_out // k - 1) // 3
    act = ACTIVATIONS[activation]
    y = np.array(x, dtype=dt, order="C", copy=True)  # conditioning columns pass unchanged
    r = min(n, BLOCK_ROWS)
    mlp = [(np.ascontiguousarray(w), np.ascontiguousarray(b)) for w, b in mlp]
    if dt == np.float32:
        return coupling_rqs32.coupling(x, y, cond, mlp, cidx, tidx, nb, act, bool(inverse),
                                       float(min_width), float(min_height),
                                       float(min_derivative))
    ld = np.empty(n, dtype=dt)
    inp = np.ones((r, max(n_in, 1)), dtype=dt)
    hs = [np.empty((r, w.shape[1]), dtype=dt) for w, _ in mlp]
    ex = np.empty((r, k, 2, nb), dtype=dt)
    last = len(mlp) - 1
    for s in range(0, n, r):
        m = min(r, n - s)
        xs = x[s:s + m]
        a = inp[:m]
        if n_in:
            _gather(xs, cidx, cond[s:s + m], a)
        for li, (w, b) in enumerate(mlp):
            h = hs[li][:m]
            np.matmul(a, w, out=h)
            _bias_act(h, b, -1 if li == last else act)
            a = h
        params = a.reshape(m, k, 3 * nb + 1)
        e = ex[:m]
        _exp_shifted(params, e)
        _rqs(xs, tidx, e, params, bool(inverse), float(min_width), float(min_height),
             float(min_derivative), y[s:s + m], ld[s:s + m])
    return y, ld

