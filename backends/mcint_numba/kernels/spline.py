"""The numba backend's rational-quadratic spline kernels (registration and coupling).

* ``"rq-spline"``: the spline alone, by :func:`.spline_grad.forward`/``inverse`` (float32
  density direction: the row-vectorised :mod:`.spline_grad32`; otherwise the per-value
  :func:`.spline_grad.rqs_forward`), instead of the reference's ``(n, k, bins)`` temporaries;
* ``"rqs-coupling"``: a whole spline coupling block (gather, MLP, spline, scatter), processed in
  blocks of rows with preallocated buffers that stay in cache; the matrix products are numpy's
  (BLAS), the rest numba. float32 goes to the row-vectorised kernel of :mod:`.coupling_rqs32`
  (several times faster); float64 to :func:`.spline_grad.rqs_forward`, with libm accuracy.

Oracles: :func:`mcint.flows.splines.rq_spline` and :func:`mcint.flows.couplings.rqs_coupling`
(``.reference``). Both check their arguments with the reference's own validator
(:func:`mcint.flows.splines.check_spline_args`) and decline (``NotImplemented``) anything but
numpy arrays of one float dtype.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from mcint.flows.splines import check_spline_args

from .. import kernel
from . import coupling_rqs32, spline_grad
from .numerics import exps
from .spline_grad import NO_AUX, rqs_forward

#: rows per block in the coupling kernel (buffers of ~rows * 3 * bins * k floats stay in L2)
BLOCK_ROWS = 1024
ACTIVATIONS = {"relu": 0, "leaky_relu": 1, "tanh": 2, "sigmoid": 3, "silu": 4, "gelu": 5,
               "elu": 6, "softplus": 7}


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


def _numpy_float(*arrays) -> bool:
    dt = arrays[0].dtype
    return all(type(a) is np.ndarray and a.dtype == dt for a in arrays) and \
        dt in (np.float64, np.float32)


@kernel("rq-spline", dtypes=("float32", "float64"))
def rq_spline(x, params, inverse=False, min_width=1e-3, min_height=1e-3, min_derivative=1e-3):
    """Fused version of :func:`mcint.flows.splines.rq_spline` for numpy inputs."""
    if not _numpy_float(x, params):
        return NotImplemented
    check_spline_args(x.shape, params.shape, min_width, min_height, min_derivative)
    mins = (float(min_width), float(min_height), float(min_derivative))
    params = np.ascontiguousarray(params)
    out = np.empty_like(x, order="C")
    ld = np.empty(x.shape[0], dtype=x.dtype)
    if inverse:
        spline_grad.inverse(x, params, mins, out, ld)
    else:
        spline_grad.forward(x, params, mins, out, ld, save=False)
    return out, ld


@kernel("rqs-coupling", dtypes=("float32", "float64"))
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
    if k == 0 or p_out % k or mlp[0][0].shape[0] != max(n_in, 1):
        return NotImplemented  # the reference raises the descriptive error
    nb = check_spline_args((n, k), (n, k, p_out // k), min_width, min_height, min_derivative)
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
    ex = np.empty((r, k, 2, nb))
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
        rqs_forward(xs, tidx, params, exps(params, ex[:m]), bool(inverse), float(min_width),
                    float(min_height), float(min_derivative), y[s:s + m], ld[s:s + m], NO_AUX)
    return y, ld

