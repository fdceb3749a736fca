"""The fused numba VEGAS kernels agree with their pure array-API references."""

from __future__ import annotations

import numpy as np
import pytest

import mcint.backends as B
from mcint.vegas import kernels as K

pytest.importorskip("numba")


def _grid(dims, ninc, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.random((dims, ninc)) ** 3 + 1e-3
    c = np.cumsum(w, axis=1)
    g = np.concatenate([np.zeros((dims, 1)), c / c[:, -1:]], axis=1)
    g[:, -1] = 1.0
    return g


def _both(numba_be, fn, *args):
    with B.use(numba_be):
        fused = fn(*args)
    ref = fn.reference(*args)
    fused = fused if isinstance(fused, tuple) else (fused,)
    ref = ref if isinstance(ref, tuple) else (ref,)
    assert len(fused) == len(ref)
    return fused, ref


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_map_forward_and_inverse(numba_be, dtype):
    g = _grid(4, 37).astype(dtype)
    y = np.random.default_rng(1).random((2000, 4)).astype(dtype)
    # edges and points outside [0, 1] (linear extension) are part of the contract
    y[:4] = np.array([[0, 1, -0.1, 1.1]] * 4, dtype=dtype)
    fused, ref = _both(numba_be, K.map_forward, g, y)
    for a, b in zip(fused, ref):
        assert a.dtype == b.dtype == np.dtype(dtype)
        # numba computes in float64 before storing float32: round-off level differences
        np.testing.assert_allclose(a, b, rtol=1e-5 if dtype == "float32" else 1e-14,
                                   atol=1e-6 if dtype == "float32" else 0)
    x = ref[0]
    fused, ref = _both(numba_be, K.map_inverse, g, x)
    for a, b in zip(fused, ref):
        np.testing.assert_allclose(a, b, rtol=1e-5 if dtype == "float32" else 1e-12,
                                   atol=1e-6 if dtype == "float32" else 1e-13)


def test_training_data(numba_be):
    y = np.random.default_rng(2).random((3000, 3))
    y[0] = [0.0, 1.0, 0.5]
    f2 = np.random.default_rng(3).random(3000)
    fused, ref = _both(numba_be, K.training_data, y, f2, 25, numba_be)
    for a, b in zip(fused, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert fused[1].sum() == 3 * 3000


@pytest.mark.parametrize("alpha,new_ninc", [(0.5, 30), (0.0, 45), (1.5, 30), (0.5, 7)])
def test_adapt_grid(numba_be, alpha, new_ninc):
    g = _grid(3, 30, seed=4)
    y = np.random.default_rng(5).random((5000, 3))
    s, n = K.training_data.reference(y, np.exp(-20 * (y[:, 0] - 0.4) ** 2), 30, numba_be)
    fused, ref = _both(numba_be, K.adapt_grid, g, s, n, alpha, new_ninc)
    assert fused[0].shape == (3, new_ninc + 1)
    np.testing.assert_allclose(fused[0], ref[0], atol=1e-14)
    assert np.all(np.diff(fused[0], axis=1) > 0)


def test_stratify_and_cube_stats(numba_be):
    rng = np.random.default_rng(6)
    nstrat = (3, 4, 2)
    nh = rng.integers(2, 9, size=24)
    h = np.repeat(np.arange(24), nh)
    u = rng.random((h.size, 3))
    fused, ref = _both(numba_be, K.stratified_y, h, u, nstrat)
    np.testing.assert_array_equal(fused[0], ref[0])
    wf = rng.random(h.size)
    wf[h == 5] = 0.25  # constant cube: variance floor, not round-off
    fused, ref = _both(numba_be, K.cube_stats, h, wf, nh, 1e-12, numba_be)
    for a, b in zip(fused, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-300)
    # per-cube variance of the sum equals n/(n-1) * sum of squared deviations
    c = 7
    w = wf[h == c]
    np.testing.assert_allclose(ref[1][c], np.var(w) * len(w) ** 2 / (len(w) - 1), rtol=1e-12)


def test_kernels_decline_foreign_arrays(numba_be):
    torch = pytest.importorskip("torch")
    g = torch.as_tensor(_grid(2, 5))
    y = torch.rand(10, 2, dtype=torch.float64)
    with B.use(numba_be):
        x, jac = K.map_forward(g, y)
    assert isinstance(x, torch.Tensor)


def test_cube_index_without_repeat():
    """The searchsorted route (for cupy, whose repeat takes no array of counts) == repeat."""
    counts = np.array([2, 0, 3, 1, 5, 0, 0, 2])
    a = K.cube_index(counts, int(counts.sum()), use_repeat=True)
    b = K.cube_index(counts, int(counts.sum()), use_repeat=False)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, np.repeat(np.arange(8), counts))


def test_stratified_y_both_routes_against_digits(numba_be):
    """Few points (per-point digits) and many points (digit table) give the same y."""
    nstrat = (3, 4, 2)
    rng = np.random.default_rng(9)
    for n in (3, 500):
        h = np.sort(rng.integers(0, 24, n))
        u = rng.random((n, 3))
        digits = np.stack([h % 3, (h // 3) % 4, h // 12], axis=1)
        expect = (digits + u) / np.array(nstrat)
        fused, ref = _both(numba_be, K.stratified_y, h, u, nstrat)
        np.testing.assert_array_equal(ref[0], expect)
        np.testing.assert_array_equal(fused[0], expect)
