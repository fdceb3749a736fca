"""The VEGAS map against an independent implementation: the ``vegas`` package (6.4.1).

Fed the same training points, both must regrid identically (to round-off): smoothing with the
neighbours, damping with ``alpha``, regridding to equal shares and changing ``ninc``. mcint's
array-API kernel and its fused numba kernel are each checked, so a change to the smoothing or
damping that is made in both copies still fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from mcint.vegas import AdaptiveMap

vegas = pytest.importorskip("vegas")


def _grid(vm: object, dims: int) -> np.ndarray:
    return np.array([[vm.grid[d, i] for i in range(int(vm.ninc[d]) + 1)] for d in range(dims)])


def _training(rng: np.random.Generator, n: int, dims: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.random((n, dims))
    # a narrow peak, a broad one and a floor: every smoothing weight matters
    f = (np.exp(-np.sum((y - 0.3) ** 2, axis=1) / 0.005)
         + 0.3 * np.exp(-np.sum((y - 0.8) ** 2, axis=1) / 0.05) + 1e-3)
    return y, f * f


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.5])
@pytest.mark.parametrize("new_ninc", [None, 37])
def test_adapt_matches_the_vegas_package(backend, alpha, new_ninc):
    rng = np.random.default_rng(1)
    dims, ninc = 3, 50
    m = AdaptiveMap(dims, ninc, backend=backend)
    vm = vegas.AdaptiveMap(dims * [[0.0, 1.0]], ninc=ninc)
    for step in range(3):                   # adapt from adapted grids too
        y, f2 = _training(rng, 20_000, dims)
        m.add_training_data(backend.asarray(y), backend.asarray(f2))
        m.adapt(alpha=alpha, ninc=new_ninc if step == 2 else None)
        vm.add_training_data(y, f2)
        vm.adapt(alpha=alpha, ninc=new_ninc if step == 2 else None)
        np.testing.assert_allclose(backend.to_numpy(m.grid), _grid(vm, dims), rtol=0,
                                   atol=1e-12, err_msg=f"step {step}")


def test_forward_map_and_jacobian_match_the_vegas_package(backend):
    rng = np.random.default_rng(2)
    vm = vegas.AdaptiveMap(2 * [[0.0, 1.0]], ninc=40)
    y, f2 = _training(rng, 20_000, 2)
    vm.add_training_data(y, f2)
    vm.adapt(alpha=1.0)
    m = AdaptiveMap(2, grid=backend.asarray(_grid(vm, 2)), backend=backend)
    yy = rng.random((1000, 2))
    x_ref = np.empty_like(yy)
    jac_ref = np.empty(1000)
    vm.map(yy, x_ref, jac_ref)
    x, log_jac = m.forward(backend.asarray(yy))
    np.testing.assert_allclose(backend.to_numpy(x), x_ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(np.exp(backend.to_numpy(log_jac)), jac_ref, rtol=1e-12)
