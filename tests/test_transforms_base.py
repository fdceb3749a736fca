"""Transform base: round trips, log-dets against numerical Jacobians, composition, backends."""

from __future__ import annotations

import numpy as np
import pytest

from mcint.transforms import Affine, Compose, Inverse, Logit, Sigmoid, Transform

RNG = np.random.default_rng(0)


def _np_fn(t: Transform, backend):
    def f(x):
        return backend.to_numpy(t.forward(backend.asarray(x))[0])

    return f


def _cases():
    return {
        "affine": (Affine([-1.0, 0.0, 2.0], [3.0, 0.5, -4.0]), RNG.random((50, 3))),
        # |x| <= 6: beyond ~8, float32 cannot hold 1 - sigmoid(x) to the round trip's tolerance
        "sigmoid": (Sigmoid(3), RNG.uniform(-6.0, 6.0, size=(50, 3))),
        "logit": (Logit(3), RNG.uniform(0.01, 0.99, size=(50, 3))),
        "compose": (Compose([Logit(3), Affine(-0.5, 0.5, dims=3), Sigmoid(3)]),
                    RNG.uniform(0.01, 0.99, size=(50, 3))),
        "inverse": (Inverse(Affine([0.0, 1.0, 2.0], [2.0, 3.0, 7.0])), RNG.random((50, 3)) * 2),
    }


@pytest.mark.parametrize("case", list(_cases()))
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-5)])
def test_round_trip(backend, case, dtype, tol):
    t, x = _cases()[case]
    t = t.to(backend, dtype)
    xb = backend.asarray(x, dtype=dtype)
    y, ld_f = t.forward(xb)
    x2, ld_i = t.inverse(y)
    assert str(y.dtype).endswith(dtype)
    assert np.allclose(backend.to_numpy(x2), x, atol=tol * 10, rtol=tol * 10)
    assert np.allclose(backend.to_numpy(ld_f), -backend.to_numpy(ld_i), atol=tol * 100)


@pytest.mark.parametrize("case", list(_cases()))
def test_log_det_matches_numerical_jacobian(backend, case, num_log_det):
    t, x = _cases()[case]
    t = t.to(backend)
    _, ld = t.forward(backend.asarray(x))
    expect = num_log_det(_np_fn(t, backend), x)
    assert np.allclose(backend.to_numpy(ld), expect, atol=1e-6)


@pytest.mark.parametrize("case", list(_cases()))
def test_same_result_on_every_backend(backend, case):
    t, x = _cases()[case]
    ref_y, ref_ld = t.forward(x)
    y, ld = t.to(backend).forward(backend.asarray(x))
    assert np.allclose(backend.to_numpy(y), ref_y, rtol=1e-12, atol=1e-13)
    assert np.allclose(backend.to_numpy(ld), ref_ld, rtol=1e-12, atol=1e-13)


def test_matmul_composes_in_function_order():
    a, b = Affine(0.0, 2.0, dims=1), Affine(1.0, 2.0, dims=1)
    x = np.array([[0.25]])
    assert np.allclose((a @ b)(x), a(b(x)))
    assert np.allclose((a @ b).inv((a @ b)(x)), x)


def test_compose_flattens_and_checks_dims():
    c = Compose([Compose([Sigmoid(2), Logit(2)]), Sigmoid(2)])
    assert len(c.transforms) == 3
    with pytest.raises(ValueError, match="different dims"):
        Compose([Sigmoid(2), Sigmoid(3)])
    with pytest.raises(ValueError, match="at least one"):
        Compose([])
    with pytest.raises(TypeError, match="Transforms"):
        Compose([lambda x: x])


def test_bad_batches_are_named():
    t = Affine(0.0, 1.0, dims=2)
    with pytest.raises(ValueError, match="2-d"):
        t.forward(np.zeros(3))
    with pytest.raises(ValueError, match="3 columns.*dims=2"):
        t.forward(np.zeros((4, 3)))
    with pytest.raises(TypeError, match="float32 or float64"):
        t.forward(np.zeros((4, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="low != high"):
        Affine([0.0, 1.0], [1.0, 1.0])


def test_arrays_and_to_recurse_into_children(backend):
    c = Compose([Affine(0.0, 2.0, dims=2), Inverse(Affine(1.0, 3.0, dims=2))])
    names = set(c.arrays())
    assert names == {"transforms.0.low", "transforms.0.width", "transforms.1.base.low",
                     "transforms.1.base.width"}
    moved = c.to(backend, "float32")
    assert all(backend.is_array(a) for a in moved.arrays().values())
    assert all(isinstance(a, np.ndarray) for a in c.arrays().values())  # original untouched
