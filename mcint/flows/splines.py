"""Monotone rational-quadratic splines on [0, 1] (Durkan et al. 2019, arXiv:1906.04032).

A spline with ``B`` bins is given by ``3B + 1`` unconstrained numbers per transformed value,
laid out like MadNIS: ``[widths (B) | heights (B) | derivatives (B + 1)]``.

* widths/heights: ``softmax`` then ``min + (1 - B * min) * p``, so every bin is at least ``min``
  wide/high and the knots run exactly from 0 to 1;
* derivatives at the ``B + 1`` knots: ``(min_d + softplus(u)) / (min_d + log 2)``, which is 1 for
  ``u = 0``: zero parameters give the identity map.

``rq_spline(x, params)`` maps the knot x-positions (widths) to the knot y-positions (heights);
``inverse=True`` solves the quadratic for the way back. Written once against the array API: the
reference (``rq_spline.reference``, always this pure version). It is ``@fusable("rq-spline")``:
numpy arrays under the numba backend run the numba kernel, torch CPU tensors (under any
backend) a differentiable fused node, as :mod:`mcint.backends.dispatch` rules (off with
``MCINT_FUSED=0``). All of them validate with :func:`check_spline_args`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device

from ..backends import fusable

__all__ = ["rq_spline", "check_spline_args", "spline_params_per_dim", "knots", "unnormalise",
           "reduce_bins", "DEFAULT_MIN"]

#: default minimal bin width, bin height and knot derivative (as MadNIS)
DEFAULT_MIN = 1e-3


def spline_params_per_dim(bins: int) -> int:
    """Unconstrained numbers per transformed value for a ``bins``-bin spline."""
    return 3 * bins + 1


def _normalise(xp: Any, u: Any, min_size: float) -> tuple[Any, Any]:
    """Knot positions (..., B+1) from 0 to 1 and bin sizes (..., B) from unconstrained ``u``."""
    nb = u.shape[-1]
    e = xp.exp(u - xp.max(u, axis=-1, keepdims=True))
    p = e / xp.sum(e, axis=-1, keepdims=True)
    p = min_size + (1.0 - min_size * nb) * p
    c = xp.cumulative_sum(p, axis=-1, include_initial=True)
    # pin the end knots: the spline maps [0, 1] exactly onto [0, 1] whatever the rounding
    c = xp.concat([xp.zeros_like(c[..., :1]), c[..., 1:-1], xp.ones_like(c[..., :1])], axis=-1)
    return c, c[..., 1:] - c[..., :-1]


def knots(params: Any, min_width: float = DEFAULT_MIN, min_height: float = DEFAULT_MIN,
          min_derivative: float = DEFAULT_MIN) -> tuple[Any, Any, Any]:
    """``(x_knots, y_knots, derivatives)`` of the splines with unconstrained ``params``.

    ``params`` has shape ``(..., 3B + 1)``; the outputs have shape ``(..., B + 1)``.
    """
    xp = array_namespace(params)
    nb = (params.shape[-1] - 1) // 3
    cw, _ = _normalise(xp, params[..., :nb], min_width)
    ch, _ = _normalise(xp, params[..., nb:2 * nb], min_height)
    ud = params[..., 2 * nb:]
    d = (min_derivative + xp.logaddexp(ud, xp.zeros_like(ud))) / (min_derivative + math.log(2.0))
    return cw, ch, d


def _stop_gradient(a: Any) -> Any:
    # the one call outside the standard: no gradient through ``a`` (a no-op off torch)
    d = getattr(a, "detach", None)
    return d() if callable(d) else a


def check_spline_args(x_shape: tuple[int, ...], params_shape: tuple[int, ...],
                      min_width: float, min_height: float, min_derivative: float) -> int:
    """Validate the arguments of :func:`rq_spline` (shapes and minima); returns the bins.

    The one validator of the spline: the reference and every fused kernel call it, so all
    implementations reject the same inputs with the same ``ValueError``.
    """
    x_shape, params_shape = tuple(x_shape), tuple(params_shape)
    p = params_shape[-1] if params_shape else 0
    nb = (p - 1) // 3
    if len(x_shape) != 2 or len(params_shape) != 3 or params_shape[:-1] != x_shape \
            or p != 3 * nb + 1 or nb < 1:
        raise ValueError(f"spline parameters must have shape {x_shape} + (3*bins+1,) with x of "
                         f"shape (n, k), got {params_shape}")
    mins = (min_width, min_height, min_derivative)
    if not all(math.isfinite(m) and m >= 0 for m in mins):
        raise ValueError(f"minimal bin width, height and derivative must be finite and >= 0, "
                         f"got {mins}")
    if min_width * nb >= 1 or min_height * nb >= 1:
        raise ValueError(f"minimal bin width/height ({min_width}, {min_height}) times bins "
                         f"({nb}) must be below 1")
    return nb


_CONSTANTS: dict[tuple, tuple[Any, Any, Any, Any]] = {}


def _constants(xp: Any, nb: int, dt: Any, dev: Any, min_width: float,
               min_height: float) -> tuple[Any, Any, Any, Any]:
    """Per-layout constant arrays of :func:`rq_spline`, made once (each array creation is a
    few microseconds of fixed cost on torch, paid per call and per block otherwise)."""
    key = (getattr(xp, "__name__", id(xp)), nb, str(dt), str(dev), min_width, min_height)
    c = _CONSTANTS.get(key)
    if c is None:
        ar = xp.arange(nb, device=dev)
        # cumulative sums as a product with a triangular matrix (much faster than a cumulative
        # sum along a short axis, forward and backward)
        tri = xp.astype(ar[:, None] <= ar[None, :], dt)
        mins = xp.asarray([[min_width], [min_height]], dtype=dt, device=dev)
        steps = xp.arange(1, nb, dtype=dt, device=dev)
        offsets = xp.asarray([0, 1, nb + 1, nb + 2, 2 * nb + 2, 2 * nb + 3], dtype=xp.int64,
                             device=dev)
        c = (tri, 1.0 - nb * mins, mins * steps, offsets)
        if len(_CONSTANTS) < 256:
            _CONSTANTS[key] = c
    return c


@fusable("rq-spline")
def rq_spline(x: Any, params: Any, inverse: bool = False, min_width: float = DEFAULT_MIN,
              min_height: float = DEFAULT_MIN,
              min_derivative: float = DEFAULT_MIN) -> tuple[Any, Any]:
    """Apply elementwise RQ splines to ``x`` of shape ``(n, k)`` with values in [0, 1].

    ``params``: ``(n, k, 3B + 1)`` unconstrained spline parameters (one spline per value).
    Returns ``(y, log_det)`` with ``y`` of shape ``(n, k)`` and ``log_det`` (shape ``(n,)``) the
    sum over ``k`` of ``log|dy/dx|``. Inputs are clipped to [0, 1] (rounding at the edges).
    """
    xp = array_namespace(x, params)
    nb = check_spline_args(x.shape, params.shape, min_width, min_height, min_derivative)
    n, k = x.shape[0], x.shape[1]
    dt, dev = params.dtype, device(params)
    # Few operations on the (n, k, B) arrays (training time goes there, forward and backward):
    # widths and heights normalised together, knots from one cumulative sum, all six per-value
    # quantities fetched with a single gather, derivatives' softplus only at the two knots used.
    u = xp.reshape(params[..., :2 * nb], (n, k, 2, nb))
    # the shift cancels in the softmax: no gradient through it
    e = xp.exp(u - _stop_gradient(xp.max(u, axis=-1, keepdims=True)))
    tri, scale, shift, offsets = _constants(xp, nb, dt, dev, min_width, min_height)
    cum = e @ tri
    # interior knots c_j = j min + (1 - B min) E_j / E_B; the end knots are exactly 0 and 1
    inner = cum[..., :-1] * (scale / cum[..., -1:]) + shift
    x = xp.clip(x, 0.0, 1.0)
    edges = inner[:, :, 1, :] if inverse else inner[:, :, 0, :]
    idx = xp.sum(xp.astype(x[..., None] >= edges, xp.int64), axis=-1)
    zero = xp.zeros((n, k, 2, 1), dtype=dt, device=dev)
    table = xp.concat([xp.reshape(xp.concat([zero, inner, zero + 1.0], axis=-1),
                                  (n, k, 2 * nb + 2)), params[..., 2 * nb:]], axis=-1)
    g = xp.take_along_axis(table, idx[..., None] + offsets, axis=-1)
    x0, y0 = g[..., 0], g[..., 2]
    w = g[..., 1] - x0
    h = g[..., 3] - y0
    ud = g[..., 4:]
    # softplus, normalised to 1 at u = 0
    dd = (min_derivative + xp.maximum(ud, 0.0) + xp.log1p(xp.exp(-xp.abs(ud)))) \
        / (min_derivative + math.log(2.0))
    d0, d1 = dd[..., 0], dd[..., 1]
    s = h / w
    dsum = d0 + d1 - 2.0 * s
    if inverse:
        dy = x - y0
        a = dy * dsum + h * (s - d0)
        b = h * d0 - dy * dsum
        c = -s * dy
        disc = xp.clip(b * b - 4.0 * a * c, 0.0, None)
        # the stable root; clipped because rounding can push it just outside [0, 1]
        theta = xp.clip((2.0 * c) / (-b - xp.sqrt(disc)), 0.0, 1.0)
    else:
        theta = (x - x0) / w
    t1 = 1.0 - theta
    tt = theta * t1
    denom = s + dsum * tt
    if inverse:
        out = theta * w + x0
    else:
        out = y0 + h * (s * theta * theta + d0 * tt) / denom
    dnum = d1 * theta * theta + 2.0 * s * tt + d0 * t1 * t1
    # dy/dx = s^2 dnum / denom^2: one log per value (in range: s, d and denom are bounded)
    ld = xp.sum(xp.log(s * s * dnum / (denom * denom)), axis=-1)
    return out, (-ld if inverse else ld)



# -- host-side helpers (numpy): set spline parameters from given knots --------------------------

def unnormalise(widths: np.ndarray, heights: np.ndarray, derivatives: np.ndarray,
                min_width: float = DEFAULT_MIN, min_height: float = DEFAULT_MIN,
                min_derivative: float = DEFAULT_MIN) -> np.ndarray:
    """Unconstrained parameters ``(..., 3B + 1)`` whose spline has the given bins.

    ``widths``/``heights`` (..., B) are positive and sum to 1 (each at least the minimum);
    ``derivatives`` (..., B + 1) at the knots are clipped to what the parametrisation can reach.
    The inverse of the normalisation in :func:`knots`.
    """
    widths, heights, derivatives = (np.asarray(a, dtype=np.float64)
                                    for a in (widths, heights, derivatives))

    def inv_softmax(p: np.ndarray, m: float) -> np.ndarray:
        if np.any(p <= 0):
            raise ValueError(f"bin sizes must be positive, got min {p.min()}")
        # bins below the minimum size cannot be represented: take them just above it
        q = np.maximum(p - m, 1e-9 * p.sum(axis=-1, keepdims=True))
        u = np.log(q / q.sum(axis=-1, keepdims=True))
        return u - u.mean(axis=-1, keepdims=True)

    sp = derivatives * (min_derivative + math.log(2.0)) - min_derivative  # softplus(u)
    sp = np.maximum(sp, 1e-12)
    ud = np.where(sp > 30, sp, np.log(np.expm1(np.minimum(sp, 30.0))))
    return np.concatenate([inv_softmax(widths, min_width), inv_softmax(heights, min_height), ud],
                          axis=-1)


def reduce_bins(grid: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spline bins approximating an equal-probability (VEGAS) grid with fewer bins.

    ``grid``: ``(..., N + 1)`` increasing knots from 0 to 1, each bin holding probability 1/N.
    Returns ``(widths, heights, derivatives)`` of a ``bins``-bin spline from x (data) to the
    latent coordinate, merging the adjacent pair of bins with the most similar density until
    ``bins`` remain (the reduction of MadNIS, arXiv:2311.01548). The derivatives at the knots are
    the latent-per-data slope ``h / w`` averaged over the two neighbouring bins (harmonically).
    """
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim < 1 or g.shape[-1] < bins + 1:
        raise ValueError(f"grid must have at least bins + 1 = {bins + 1} knots on its last axis, "
                         f"got shape {g.shape}")
    if not np.all(np.isfinite(g)) or np.any(np.diff(g, axis=-1) <= 0):
        raise ValueError("grid knots must be finite and strictly increasing")
    if not (np.allclose(g[..., 0], 0.0) and np.allclose(g[..., -1], 1.0)):
        raise ValueError("grid must run from 0 to 1 (map it to the unit cube first)")
    flat = g.reshape(-1, g.shape[-1])
    ws, hs, ds = [], [], []
    for row in flat:
        w = list(np.diff(row))
        n = len(w)
        h = [1.0 / n] * n
        # knot slopes dy/dx: 1/(n * mean adjacent width) (ends: the single adjacent bin)
        wm = [w[0]] + [(w[i - 1] + w[i]) / 2 for i in range(1, n)] + [w[-1]]
        d = [1.0 / (n * v) for v in wm]
        while len(w) > bins:
            m = len(w)
            pairs = [i for i in range(m - 1) if w[i] + w[i + 1] < 2 / bins
                     and h[i] + h[i + 1] < 2 / bins] or list(range(m - 1))
            i = min(pairs, key=lambda i: abs(w[i + 1] / h[i + 1] - w[i] / h[i]))
            w[i:i + 2] = [w[i] + w[i + 1]]
            h[i:i + 2] = [h[i] + h[i + 1]]
            del d[i + 1]
        ws.append(w)
        hs.append(h)
        ds.append(d)
    shape = g.shape[:-1]
    return (np.asarray(ws).reshape(*shape, bins), np.asarray(hs).reshape(*shape, bins),
            np.asarray(ds).reshape(*shape, bins + 1))
