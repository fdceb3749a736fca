"""Fused numba loops for VEGAS (references: :mod:`mcint.vegas.kernels`).

Each wrapper handles numpy arrays only and returns ``NotImplemented`` otherwise (torch tensors
during training, strict arrays), so dispatch falls back to the pure array-API reference. The
loops touch every point once (per axis) without temporaries, as vegas' Cython does.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from mcint_numba import kernel

_jit = numba.njit(cache=True, nogil=True, fastmath=False)


def _all_numpy(*arrays) -> bool:
    return all(isinstance(a, np.ndarray) for a in arrays)


# -- map forward / inverse -----------------------------------------------------------------
@_jit
def _map_forward(grid, y, x, jac):
    n, dims = y.shape
    ninc = grid.shape[1] - 1
    for i in range(n):
        j = 1.0
        for d in range(dims):
            t = y[i, d] * ninc
            k = int(t)  # truncation == floor after the clip below
            if k < 0:
                k = 0
            elif k > ninc - 1:
                k = ninc - 1
            g0 = grid[d, k]
            inc = grid[d, k + 1] - g0
            x[i, d] = g0 + inc * (t - k)
            j *= inc * ninc
        jac[i] = j


@kernel("vegas-map-forward")
def map_forward(grid, y):
    if not _all_numpy(grid, y) or grid.dtype != y.dtype:
        return NotImplemented
    y = np.ascontiguousarray(y)
    x = np.empty_like(y)
    jac = np.empty(y.shape[0], dtype=y.dtype)
    _map_forward(np.ascontiguousarray(grid), y, x, jac)
    return x, jac


@_jit
def _map_inverse(grid, x, y, jac):
    n, dims = x.shape
    ninc = grid.shape[1] - 1
    for i in range(n):
        j = 1.0
        for d in range(dims):
            xi = x[i, d]
            # last k with grid[d, k] <= xi (searchsorted side='right' minus one), clipped
            lo, hi = 0, ninc + 1
            while lo < hi:
                mid = (lo + hi) >> 1
                if grid[d, mid] <= xi:
                    lo = mid + 1
                else:
                    hi = mid
            k = lo - 1
            if k < 0:
                k = 0
            elif k > ninc - 1:
                k = ninc - 1
            g0 = grid[d, k]
            inc = grid[d, k + 1] - g0
            y[i, d] = (k + (xi - g0) / inc) / ninc
            j *= inc * ninc
        jac[i] = j


@kernel("vegas-map-inverse")
def map_inverse(grid, x):
    if not _all_numpy(grid, x) or grid.dtype != x.dtype:
        return NotImplemented
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    jac = np.empty(x.shape[0], dtype=x.dtype)
    _map_inverse(np.ascontiguousarray(grid), x, y, jac)
    return y, jac


# -- training data and regridding ----------------------------------------------------------
@_jit
def _training(y, f2, ninc, sum_f, n_f):
    n, dims = y.shape
    for i in range(n):
        w = f2[i]
        for d in range(dims):
            k = int(y[i, d] * ninc)
            if k < 0:
                k = 0
            elif k > ninc - 1:
                k = ninc - 1
            sum_f[d, k] += w
            n_f[d, k] += 1.0


@kernel("vegas-training")
def training_data(y, f2, ninc, be):
    if not _all_numpy(y, f2):
        return NotImplemented
    dims = y.shape[1]
    sum_f = np.zeros((dims, ninc))
    n_f = np.zeros((dims, ninc))
    _training(np.ascontiguousarray(y), np.ascontiguousarray(f2, dtype=np.float64), ninc,
              sum_f, n_f)
    return sum_f, n_f


@_jit
def _adapt(grid, w, new_ninc, out):
    dims, nedges = grid.shape
    ninc = nedges - 1
    for d in range(dims):
        total = 0.0
        for i in range(ninc):
            total += w[d, i]
        out[d, 0] = grid[d, 0]
        out[d, new_ninc] = grid[d, ninc]
        acc = 0.0
        j = -1
        for k in range(1, new_ninc):
            target = (k / new_ninc) * total
            while acc < target and j < ninc - 1:
                j += 1
                acc += w[d, j]
            # acc = cum[j] >= target: step back from the right edge of increment j
            v = grid[d, j + 1] - (acc - target) / w[d, j] * (grid[d, j + 1] - grid[d, j])
            out[d, k] = min(max(v, 0.0), 1.0)


@_jit
def _damped(sum_f, n_f, alpha, tiny, w):
    dims, ninc = sum_f.shape
    avg = np.empty(ninc)
    for d in range(dims):
        for i in range(ninc):
            avg[i] = sum_f[d, i] / n_f[d, i] if n_f[d, i] > 0 else 0.0
        total = 0.0
        for i in range(ninc):
            left = avg[i - 1] if i > 0 else avg[0]
            right = avg[i + 1] if i < ninc - 1 else avg[ninc - 1]
            s = abs(6.0 * avg[i] + left + right) / 8.0
            w[d, i] = s
            total += s
        for i in range(ninc):
            r = w[d, i] / total + tiny if total > 0 else tiny
            if r > 0 and r <= 0.99999999:
                r = ((1.0 - r) / -math.log(r)) ** alpha
            w[d, i] = r


@kernel("vegas-adapt")
def adapt_grid(grid, sum_f, n_f, alpha, new_ninc):
    if not _all_numpy(grid) or (sum_f is not None and not _all_numpy(sum_f, n_f)):
        return NotImplemented
    from mcint.vegas.kernels import TINY

    g = np.ascontiguousarray(grid, dtype=np.float64)
    dims, nedges = g.shape
    ninc = nedges - 1
    if sum_f is None or alpha == 0 or ninc < 2:
        w = np.ones((dims, ninc))
    else:
        w = np.empty((dims, ninc))
        _damped(np.ascontiguousarray(sum_f, dtype=np.float64),
                np.ascontiguousarray(n_f, dtype=np.float64), float(alpha), TINY, w)
    out = np.empty((dims, new_ninc + 1))
    _adapt(g, w, int(new_ninc), out)
    return out.astype(grid.dtype, copy=False)


# -- stratified sampling -------------------------------------------------------------------
@_jit
def _stratify(hcube, u, nstrat, y):
    n, dims = u.shape
    digits = np.zeros(dims, np.int64)
    last = -1
    for i in range(n):
        h = hcube[i]
        if h != last:
            # points come grouped by cube: decode the mixed-radix digits once per run
            rem = h
            for d in range(dims):
                digits[d] = rem % nstrat[d]
                rem = rem // nstrat[d]
            last = h
        for d in range(dims):
            y[i, d] = (digits[d] + u[i, d]) / nstrat[d]


@kernel("vegas-stratify")
def stratified_y(hcube, u, nstrat):
    if not _all_numpy(hcube, u):
        return NotImplemented
    u = np.ascontiguousarray(u)
    y = np.empty_like(u)
    _stratify(np.ascontiguousarray(hcube, dtype=np.int64), u, np.asarray(nstrat, np.int64), y)
    return y


@_jit
def _cube_stats(hloc, wf, nh, eps, s1, var):
    # points of one cube are contiguous (hloc sorted): two passes per cube, like vegas
    n = wf.shape[0]
    ncube = nh.shape[0]
    for c in range(ncube):
        s1[c] = 0.0
        var[c] = 0.0
    i = 0
    while i < n:
        c = hloc[i]
        j = i
        s = 0.0
        while j < n and hloc[j] == c:
            s += wf[j]
            j += 1
        m = s / (j - i)
        floor2 = (eps * m) ** 2
        s2 = 0.0
        for k in range(i, j):
            dv = (wf[k] - m) ** 2
            s2 += dv if dv > floor2 else floor2
        s1[c] += s
        var[c] += s2
        i = j
    for c in range(ncube):
        var[c] = var[c] * nh[c] / (nh[c] - 1.0)


@kernel("vegas-cube-stats")
def cube_stats(hloc, wf, neval_hcube, eps, be):
    if not _all_numpy(hloc, wf, neval_hcube):
        return NotImplemented
    ncube = neval_hcube.shape[0]
    s1 = np.empty(ncube)
    var = np.empty(ncube)
    hl = np.ascontiguousarray(hloc, dtype=np.int64)
    if hl.size > 1 and np.any(hl[1:] < hl[:-1]):
        return NotImplemented
    _cube_stats(hl, np.ascontiguousarray(wf, dtype=np.float64),
                np.ascontiguousarray(neval_hcube, dtype=np.float64), float(eps), s1, var)
    return s1, var
