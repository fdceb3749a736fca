"""AdaptiveMap: bijection, log-det, training, regridding, bad input -- on every backend."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mcint
from mcint.vegas import AdaptiveMap


def _np(be, a):
    return be.to_numpy(a)


def _trained_map(be, dims=3, ninc=40, seed=0):
    """A map adapted to a peaked function (so its increments really differ)."""
    m = AdaptiveMap(dims, ninc, backend=be)
    rng = np.random.default_rng(seed)
    for _ in range(4):
        y = be.asarray(rng.random((4000, dims)))
        x, jac = m.forward_jac(y)
        xn = _np(be, x)
        f = np.exp(-40 * np.sum((xn - 0.3) ** 2, axis=1)) + 0.01
        m.add_training_data(y, (be.asarray(f) * jac) ** 2)
        m.adapt(alpha=1.0)
    return m


def test_grid_shape_and_identity(backend):
    m = AdaptiveMap(2, 10, backend=backend)
    g = _np(backend, m.grid)
    assert g.shape == (2, 11)
    np.testing.assert_allclose(g[0], np.linspace(0, 1, 11))
    y = backend.asarray(np.random.default_rng(1).random((50, 2)))
    x, ld = m.forward(y)
    np.testing.assert_allclose(_np(backend, x), _np(backend, y), atol=1e-15)
    np.testing.assert_allclose(_np(backend, ld), 0.0, atol=1e-13)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 2e-5)])
def test_round_trip_after_adaptation(backend, dtype, tol):
    m = _trained_map(backend)
    g = _np(backend, m.grid)
    assert np.all(np.diff(g, axis=1) > 0) and np.allclose(g[:, [0, -1]], [0, 1])
    assert np.ptp(np.diff(g, axis=1)) > 0.01  # it really adapted
    y = backend.asarray(np.random.default_rng(2).random((500, 3)), dtype=dtype)
    x, ld = m.forward(y)
    assert str(x.dtype).endswith(dtype)
    y2, ld2 = m.inverse(x)
    np.testing.assert_allclose(_np(backend, y2), _np(backend, y), atol=tol)
    np.testing.assert_allclose(_np(backend, ld2), -_np(backend, ld), rtol=tol, atol=tol)
    x2, _ = m.forward(m.inverse(x)[0])
    np.testing.assert_allclose(_np(backend, x2), _np(backend, x), atol=tol)


def test_log_det_matches_numerical_jacobian(backend, num_log_det):
    m = _trained_map(backend, dims=3, ninc=20)
    rng = np.random.default_rng(3)
    y = rng.random((300, 3))
    # central differences straddling a knot measure a mean slope; keep points away from knots
    frac = y * m.ninc - np.round(y * m.ninc)
    y = y[np.all(np.abs(frac) > 1e-3, axis=1)]

    def fwd(a):
        return _np(backend, m.forward(backend.asarray(a))[0])

    _, ld = m.forward(backend.asarray(y))
    np.testing.assert_allclose(_np(backend, ld), num_log_det(fwd, y, eps=1e-7), atol=1e-5)
    # the inverse's log-det at x is minus the forward one
    x = fwd(y)

    def inv(a):
        return _np(backend, m.inverse(backend.asarray(a))[0])

    xs = x[np.all(np.abs(y * m.ninc - np.round(y * m.ninc)) > 1e-3, axis=1)]
    _, ldi = m.inverse(backend.asarray(xs))
    np.testing.assert_allclose(_np(backend, ldi), num_log_det(inv, xs, eps=1e-9), atol=1e-4)


def test_map_converges_to_inverse_cdf(backend):
    """Lepage's fixed point is f*J = const: for f(x) = 2x that is x(y) = sqrt(y)."""
    m = AdaptiveMap(1, 50, backend=backend)
    rng = np.random.default_rng(4)
    xs = rng.random((20000, 1))
    m.adapt_to_samples(backend.asarray(xs), 2 * xs[:, 0], nitn=30, alpha=1.0)
    yq = np.linspace(0.05, 0.95, 19)[:, None]
    x = _np(backend, m.forward(backend.asarray(yq))[0])[:, 0]
    np.testing.assert_allclose(x, np.sqrt(yq[:, 0]), atol=0.02)


@pytest.mark.parametrize("c", [1e-200, 1e200])
def test_adapt_to_samples_does_not_depend_on_the_scale_of_f(backend, c):
    """(f * J)**2 of 1e200 overflowed (map left as it was, with a warning), of 1e-200 it
    underflowed to 0 (map silently not adapted)."""
    xs = np.random.default_rng(4).random((5000, 1))
    grids = []
    for k in (1.0, c):
        m = AdaptiveMap(1, 50, backend=backend)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            m.adapt_to_samples(backend.asarray(xs), k * 2 * xs[:, 0], nitn=5, alpha=1.0)
        grids.append(_np(backend, m.grid))
    np.testing.assert_allclose(grids[1], grids[0], rtol=1e-10)
    assert np.ptp(np.diff(grids[0][0])) > 1e-3          # it did adapt


def test_zero_training_data_keeps_grid(backend):
    m = _trained_map(backend)
    before = _np(backend, m.grid).copy()
    y = backend.asarray(np.random.default_rng(5).random((100, 3)))
    m.add_training_data(y, backend.asarray(np.zeros(100)))
    assert m.adapt(alpha=0.5) is False
    np.testing.assert_array_equal(_np(backend, m.grid), before)


def test_resize_keeps_density(backend):
    m = _trained_map(backend, dims=2, ninc=40)
    y = backend.asarray(np.random.default_rng(6).random((200, 2)))
    x_before = _np(backend, m.forward(y)[0])
    m.adapt(alpha=0.0, ninc=400)
    assert m.ninc == 400 and _np(backend, m.grid).shape == (2, 401)
    # refining a piecewise-linear map by equal-probability cuts reproduces it exactly
    np.testing.assert_allclose(_np(backend, m.forward(y)[0]), x_before, atol=1e-12)


def test_torch_autograd_through_grid():
    torch = pytest.importorskip("torch")
    m = AdaptiveMap(2, 8, backend="torch")
    g = m.grid.clone().requires_grad_(True)
    m2 = m.map_arrays(lambda a: g)
    y = torch.rand(16, 2, dtype=torch.float64)
    x, ld = m2.forward(y)
    (x.sum() + ld.sum()).backward()
    assert g.grad is not None and torch.isfinite(g.grad).all() and g.grad.abs().sum() > 0


def test_to_other_backend_and_namespace_error():
    m = _trained_map(mcint.get_backend("numpy"))
    with pytest.raises(ValueError):
        AdaptiveMap(3, 40, grid=np.zeros((3, 41)))
    m2 = AdaptiveMap(3, grid=m.grid)
    np.testing.assert_array_equal(m2.grid, m.grid)
    torch = pytest.importorskip("torch")
    mt = m.to("torch")
    y = np.random.default_rng(7).random((10, 3))
    np.testing.assert_allclose(mt.forward(torch.as_tensor(y))[0].numpy(), m.forward(y)[0])
    with pytest.raises(TypeError, match="map.to"):
        mt.forward(y)


@pytest.mark.parametrize("kwargs,match", [
    ({"dims": 0}, "dims"), ({"dims": 2, "ninc": 1}, "ninc"), ({"dims": 1.5}, "dims"),
    ({"dims": 2, "grid": [[0, 0.5, 0.4, 1], [0, 0.2, 0.3, 1]]}, "increasing"),
    ({"dims": 2, "grid": [[0, 0.5, 2.0], [0, 0.2, 1]]}, "0 to 1"),
    ({"dims": 2, "grid": [[0, 0.5, 1.0]]}, "shape"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdaptiveMap(**kwargs)


def test_bad_alpha_and_batch():
    m = AdaptiveMap(2, 10)
    with pytest.raises(ValueError, match="alpha"):
        m.adapt(alpha=-1)
    with pytest.raises(ValueError, match="columns"):
        m.forward(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="at least 20"):
        m.adapt_to_samples(np.random.random((5, 2)), np.ones(5))


def test_row_blocked_reference_equals_one_block(backend, monkeypatch):
    """The CPU path works in row blocks; blocks must not change any number."""
    from mcint.vegas import kernels as K

    m = _trained_map(backend, dims=2, ninc=30)
    rng = np.random.default_rng(8)
    y = backend.asarray(rng.random((5000, 2)))
    f2 = backend.asarray(rng.random(5000))
    h = backend.asarray(np.repeat(np.arange(25), 200))
    g = m.grid
    outs = []
    for block in (10**9, 700):
        monkeypatch.setattr(K, "CPU_BLOCK", block)
        x, j = K.map_forward.reference(g, y)
        yi, ji = K.map_inverse.reference(g, x)
        s, c = K.training_data.reference(y, f2, 30, backend)
        ys = K.stratified_y.reference(h, y, (5, 5))
        outs.append([backend.to_numpy(a) for a in (x, j, yi, ji, s, c, ys)])
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
