"""The float64-scratch rational-quadratic spline kernels, and the host API of the spline.

The maths is :func:`mcint.flows.splines.rq_spline` (its ``.reference`` is the oracle), written
per value with the shared numerics of :mod:`.numerics`: knots, bin search, the map and its
log-det in either direction (:func:`rqs_forward`, the one float64 forward kernel: the numba
backend's ``"rq-spline"`` and float64 ``"rqs-coupling"``, and the torch plugin's fused node all
run it), and for training the gradients with respect to ``x`` and to the *raw* parameters
``(widths | heights | derivatives)`` in closed form (:func:`rqs_backward`, which recomputes
the few per-value quantities instead of storing them: ``O(bins)`` work per value).

Which kernel runs for which (dtype, direction) is decided here, once: :func:`forward` (density
direction; float32 -> the row-vectorised :mod:`.spline_grad32`, float64 -> :func:`rqs_forward`)
with the state :func:`backward` needs, and :func:`inverse` (sampling direction, no gradient:
:func:`rqs_forward` for both dtypes, with float64 scratch). Callers validate the arguments with
:func:`mcint.flows.splines.check_spline_args` first. Nothing here imports torch.

Gradient conventions match autograd through the reference: the input clip to [0, 1] passes the
gradient where ``0 <= x <= 1``; the end knots are constants; the softmax shift carries none.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from . import spline_grad32
from .numerics import LOG2, bin_grads, bin_position, exps, knot_deriv, knots, search

#: "no state to save" for :func:`rqs_forward`
NO_AUX = np.empty((0, 0, 4))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def rqs_forward(x, tidx, params, ex, inverse, min_w, min_h, min_d, y, ld, aux):  # pragma: no cover
    """Splines on the columns ``tidx`` of ``x`` (n, d) into the same columns of ``y``, and
    ``ld[i] = sum_j log|dy/dx|`` (negated for ``inverse``, which solves the quadratic).

    ``params`` (n, k, 3B + 1) raw parameters of the k splines per row, ``ex`` their
    :func:`.numerics.exps`; ``aux`` (n, k, 4) receives the two knot derivatives used and their
    softplus slopes for :func:`rqs_backward`, unless it is empty (:data:`NO_AUX`).
    """
    n = x.shape[0]
    k = tidx.shape[0]
    nb = ex.shape[3]
    save = aux.shape[0] > 0
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
            scw = (1.0 - nb * min_w) / sw
            sch = (1.0 - nb * min_h) / sh
            v = min(max(np.float64(x[i, col]), 0.0), 1.0)
            # walk the knots (the formula of numerics.knots) only up to the bin holding v
            ew = 0.0
            eh = 0.0
            x0 = 0.0
            y0 = 0.0
            x1 = 1.0
            y1 = 1.0
            idx = 0
            for b in range(1, nb):
                ew += ex[i, j, 0, b - 1]
                eh += ex[i, j, 1, b - 1]
                kx = ew * scw + min_w * b
                ky = eh * sch + min_h * b
                if v < (ky if inverse else kx):
                    x1 = kx
                    y1 = ky
                    break
                x0 = kx
                y0 = ky
                idx = b
            w = x1 - x0
            h = y1 - y0
            d0, sg0 = knot_deriv(np.float64(params[i, j, 2 * nb + idx]), min_d)
            d1, sg1 = knot_deriv(np.float64(params[i, j, 2 * nb + idx + 1]), min_d)
            if save:
                aux[i, j, 0] = d0
                aux[i, j, 1] = d1
                aux[i, j, 2] = sg0
                aux[i, j, 3] = sg1
            s = h / w
            dsum = d0 + d1 - 2.0 * s
            th = bin_position(v, x0, y0, w, h, d0, s, dsum, inverse)
            t1 = 1.0 - th
            tt = th * t1
            iden = 1.0 / (s + dsum * tt)
            if inverse:
                y[i, col] = th * w + x0
            else:
                y[i, col] = y0 + h * (s * th * th + d0 * tt) * iden
            dnum = d1 * th * th + 2.0 * s * tt + d0 * t1 * t1
            # dy/dx = s^2 dnum / denom^2 > 0; multiply, and take one log per row (logs are
            # the slow part), flushing long before the product could leave the float range
            prod *= s * s * dnum * iden * iden
            if prod > 1e150 or prod < 1e-150:
                acc += math.log(prod)
                prod = 1.0
        acc += math.log(prod)
        ld[i] = -acc if inverse else acc


@numba.njit(cache=True, nogil=True, error_model="numpy")
def rqs_backward(x, params, ex, aux, gy, gld, min_w, min_h, min_d, gx, gp):  # pragma: no cover
    """Gradients of ``sum(gy * y) + sum(gld * ld)`` (density direction) w.r.t. ``x`` and the
    raw ``params``; ``ex`` and ``aux`` as left by :func:`rqs_forward`; ``gx`` (n, k) and
    ``gp`` (n, k, 3B + 1) are overwritten."""
    n, k = x.shape
    nb = (params.shape[2] - 1) // 3
    Kx = np.empty(nb + 1)
    Ky = np.empty(nb + 1)
    aw = 1.0 - nb * min_w
    ah = 1.0 - nb * min_h
    cd = 1.0 / (min_d + LOG2)
    for i in range(n):
        gl = np.float64(gld[i])
        for j in range(k):
            Sw = knots(ex, i, j, 0, nb, min_w, Kx)
            Sh = knots(ex, i, j, 1, nb, min_h, Ky)
            xv = np.float64(x[i, j])
            v = min(max(xv, 0.0), 1.0)
            idx = search(Kx, nb, v)
            x0 = Kx[idx]
            w = Kx[idx + 1] - x0
            y0 = Ky[idx]
            h = Ky[idx + 1] - y0
            d0 = aux[i, j, 0]
            d1 = aux[i, j, 1]
            iw = 1.0 / w
            th = (v - x0) * iw
            g = np.float64(gy[i, j])
            Gth, Gh, Gw, Gd0, Gd1 = bin_grads(th, w, h, d0, d1, g, gl)
            gx[i, j] = Gth * iw if (xv >= 0.0 and xv <= 1.0) else 0.0
            # knots: x_idx, x_idx+1, y_idx, y_idx+1 (the end knots 0 and 1 are constants)
            _knot_grad(gp, i, j, 0, nb, aw, ex, 0, Sw, idx, -Gth * iw - Gw, Gw)
            _knot_grad(gp, i, j, nb, nb, ah, ex, 1, Sh, idx, g - Gh, Gh)
            for b in range(2 * nb, 3 * nb + 1):
                gp[i, j, b] = 0.0
            gp[i, j, 2 * nb + idx] = Gd0 * aux[i, j, 2] * cd
            gp[i, j, 2 * nb + idx + 1] = Gd1 * aux[i, j, 3] * cd


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _knot_grad(gp, i, j, off, nb, a, ex, g, S, idx, g0, g1):  # pragma: no cover - compiled
    # K_m = m*min + a E_m / S (0 < m < B), E_m = sum_{b<m} e_b:
    # dK_m/du_b = a p_b ([b < m] - E_m / S) with p_b = e_b / S
    if idx < 1:
        g0 = 0.0
    if idx + 1 > nb - 1:
        g1 = 0.0
    E0 = 0.0
    for b in range(idx):
        E0 += ex[i, j, g, b]
    E1 = E0 + ex[i, j, g, idx]
    base = -(g0 * E0 + g1 * E1) / S
    aS = a / S
    for b in range(nb):
        t = base
        if b < idx:
            t += g0 + g1
        elif b == idx:
            t += g1
        gp[i, j, off + b] = aS * ex[i, j, g, b] * t


def forward(x: np.ndarray, params: np.ndarray, mins: tuple[float, float, float], y: np.ndarray,
            ld: np.ndarray, save: bool = True) -> tuple:
    """The density direction of ``x`` (n, k) into ``y`` and ``ld``; returns the state
    :func:`backward` needs (empty unless ``save``). float32 runs the row-vectorised kernels of
    :mod:`.spline_grad32`, float64 :func:`rqs_forward`."""
    n, k = x.shape
    if x.dtype == np.float32:
        state = spline_grad32.saves(n, k, (params.shape[2] - 1) // 3) if save \
            else spline_grad32.NO_SAVES
        spline_grad32.forward(x, params, *mins, y, ld, save, *state)
        return state
    ex = exps(params)
    aux = np.empty((n, k, 4)) if save else NO_AUX
    rqs_forward(x, np.arange(k), params, ex, False, *mins, y, ld, aux)
    return ex, aux


def inverse(x: np.ndarray, params: np.ndarray, mins: tuple[float, float, float], y: np.ndarray,
            ld: np.ndarray) -> None:
    """The sampling direction of ``x`` (n, k) into ``y`` and ``ld`` (no gradient)."""
    rqs_forward(x, np.arange(x.shape[1]), params, exps(params), True, *mins, y, ld, NO_AUX)


def backward(state: tuple, x: np.ndarray, params: np.ndarray, gy: np.ndarray, gld: np.ndarray,
             mins: tuple[float, float, float], gx: np.ndarray, gp: np.ndarray) -> None:
    """Gradients into ``gx`` and ``gp`` (overwritten) from :func:`forward`'s ``state``."""
    if x.dtype == np.float32:
        spline_grad32.backward(*state, gy, gld, *mins, gx, gp)
    else:
        rqs_backward(x, params, *state, gy, gld, *mins, gx, gp)
