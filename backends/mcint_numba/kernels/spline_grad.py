"""Differentiable fused rational-quadratic spline: forward and backward as numba kernels.

The maths is :func:`mcint.flows.splines.rq_spline` (its ``.reference`` is the oracle), written
per value: normalisation of the raw width/height parameters (softmax + minimum), knots, bin
search, the map and its log-det, and for the backward pass the gradients with respect to ``x``
and to the *raw* parameters ``(widths | heights | derivatives)`` in closed form. The backward
recomputes the few per-value quantities instead of storing them (``O(bins)`` work per value).

Used by the torch plugin (``mcint_torch.fused``) inside a ``torch.autograd.Function`` on CPU
tensors (zero-copy through ``.numpy()``) through :func:`forward` / :func:`backward`; nothing
here imports torch. float32 goes to the row-vectorised kernels of :mod:`.spline_grad32` (about
twice as fast, same results to float32 rounding); float64 runs the per-value kernels here, with
float64 scratch and libm accuracy: the ``2 * bins`` exponentials per value are computed once,
vectorised by numpy, between :func:`shift` and the forward kernel, and kept for the backward.

Gradient conventions match autograd through the reference: the input clip to [0, 1] passes the
gradient where ``0 <= x <= 1``; the end knots are constants; the softmax shift carries none.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from . import spline_grad32
from .spline import bin_grads, bin_position

_LOG2 = math.log(2.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def shift(params, ex):  # pragma: no cover - compiled
    """``ex[i, j, g, b] = u - max(u)`` of the widths (g=0) and heights (g=1) of each spline,
    in float64; exponentiate it in place with numpy's vectorised ``exp`` (several times faster
    than numba's scalar one without SVML)."""
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


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _prep(ex, i, j, g, nb, m, K):  # pragma: no cover - compiled
    # knots K (0, ..., 1) from e = ex[i, j, g] = exp(u - max u); returns the sum of e
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


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _search(K, nb, v):  # pragma: no cover - compiled
    # number of interior knots <= v (the reference's count over the edges)
    idx = 0
    for b in range(1, nb):
        if v >= K[b]:
            idx += 1
    return idx


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _deriv(u, min_d, aux, i, j, slot):  # pragma: no cover - compiled
    # knot derivative (min_d + softplus(u)) / (min_d + log 2); its d/du factor sigmoid(u) goes
    # to aux for the backward (the same exp(-|u|) serves both)
    e = math.exp(-abs(u))
    aux[i, j, 2 + slot] = (1.0 if u >= 0.0 else e) / (1.0 + e)
    d = (min_d + max(u, 0.0) + math.log1p(e)) / (min_d + _LOG2)
    aux[i, j, slot] = d
    return d


@numba.njit(cache=True, nogil=True, error_model="numpy")
def rqs_forward(x, params, ex, inverse, min_w, min_h, min_d, y, ld, aux):  # pragma: no cover
    """``y[i, j]`` and ``ld[i] = sum_j log|dy/dx|`` (negated for ``inverse``); ``ex`` from
    :func:`shift`, exponentiated; ``aux`` (n, k, 4) receives the two knot derivatives used and
    their softplus slopes, for :func:`rqs_backward`."""
    n, k = x.shape
    nb = (params.shape[2] - 1) // 3
    Kx = np.empty(nb + 1)
    Ky = np.empty(nb + 1)
    for i in range(n):
        acc = 0.0
        prod = 1.0
        for j in range(k):
            _prep(ex, i, j, 0, nb, min_w, Kx)
            _prep(ex, i, j, 1, nb, min_h, Ky)
            v = min(max(np.float64(x[i, j]), 0.0), 1.0)
            idx = _search(Ky if inverse else Kx, nb, v)
            x0 = Kx[idx]
            w = Kx[idx + 1] - x0
            y0 = Ky[idx]
            h = Ky[idx + 1] - y0
            d0 = _deriv(np.float64(params[i, j, 2 * nb + idx]), min_d, aux, i, j, 0)
            d1 = _deriv(np.float64(params[i, j, 2 * nb + idx + 1]), min_d, aux, i, j, 1)
            s = h / w
            dsum = d0 + d1 - 2.0 * s
            th = bin_position(v, x0, y0, w, h, d0, s, dsum, inverse)
            t1 = 1.0 - th
            tt = th * t1
            den = s + dsum * tt
            iden = 1.0 / den
            if inverse:
                y[i, j] = th * w + x0
            else:
                y[i, j] = y0 + h * (s * th * th + d0 * tt) * iden
            dnum = d1 * th * th + 2.0 * s * tt + d0 * t1 * t1
            # one log per 4 values (a factor stays far inside float64's range)
            prod *= s * s * dnum * iden * iden
            if (j & 3) == 3:
                acc += math.log(prod)
                prod = 1.0
        if prod != 1.0:
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
    cd = 1.0 / (min_d + _LOG2)
    for i in range(n):
        gl = np.float64(gld[i])
        for j in range(k):
            Sw = _prep(ex, i, j, 0, nb, min_w, Kx)
            Sh = _prep(ex, i, j, 1, nb, min_h, Ky)
            xv = np.float64(x[i, j])
            v = min(max(xv, 0.0), 1.0)
            idx = _search(Kx, nb, v)
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
            ld: np.ndarray) -> tuple:
    """The density direction into ``y`` and ``ld``; returns the state :func:`backward` needs.
    float32 runs the row-vectorised kernels of :mod:`.spline_grad32`, float64 the ones here."""
    if x.dtype == np.float32:
        state = spline_grad32.saves(x.shape[0], x.shape[1], (params.shape[2] - 1) // 3)
        spline_grad32.forward(x, params, *mins, y, ld, *state)
        return state
    ex = exps(params)
    aux = aux_like(x)
    rqs_forward(x, params, ex, False, *mins, y, ld, aux)
    return ex, aux


def backward(state: tuple, x: np.ndarray, params: np.ndarray, gy: np.ndarray, gld: np.ndarray,
             mins: tuple[float, float, float], gx: np.ndarray, gp: np.ndarray) -> None:
    """Gradients into ``gx`` and ``gp`` (overwritten) from :func:`forward`'s ``state``."""
    if x.dtype == np.float32:
        spline_grad32.backward(*state, gy, gld, *mins, gx, gp)
    else:
        rqs_backward(x, params, *state, gy, gld, *mins, gx, gp)


def aux_like(x: np.ndarray) -> np.ndarray:
    """Scratch (n, k, 4) for :func:`rqs_forward` -> :func:`rqs_backward`."""
    return np.empty((x.shape[0], x.shape[1], 4))


def exps(params: np.ndarray) -> np.ndarray:
    """``exp(u - max u)`` (n, k, 2, B) float64 of the width/height parameters."""
    n, k, p = params.shape
    ex = np.empty((n, k, 2, (p - 1) // 3))
    shift(params, ex)
    np.exp(ex, out=ex)
    return ex


def supported(x: np.ndarray, params: np.ndarray) -> bool:
    """Whether the kernels take these arrays (C-contiguous float32/float64 of one dtype)."""
    return (x.dtype == params.dtype and x.dtype in (np.float32, np.float64) and x.ndim == 2
            and params.ndim == 3 and x.flags.c_contiguous and params.flags.c_contiguous)
