"""The integrand boundary: numpy integrands on every backend, and clear errors for bad output."""

from __future__ import annotations

import numpy as np
import pytest

from mcint import Integrand, IntegrandError, NonFiniteIntegrandError
from mcint.integrand import native


def gauss(x):
    return np.exp(-np.sum(x**2, axis=1))


def test_numpy_integrand_runs_on_every_backend(backend):
    f = Integrand(gauss, 3)
    x = np.random.default_rng(0).random((20, 3))
    out = f(backend.asarray(x), backend)
    assert backend.is_array(out)
    assert np.allclose(backend.to_numpy(out), gauss(x))
    assert f.calls == 20
    out32 = f(backend.asarray(x, dtype="float32"), backend)
    assert str(out32.dtype).endswith("float32")


def test_native_integrand_gets_backend_arrays(backend):
    seen = []

    @native
    def g(x):
        seen.append(type(x))
        xp = backend.xp
        return xp.sum(x, axis=1)

    f = Integrand(g, 2)
    x = backend.asarray(np.ones((4, 2)))
    assert np.allclose(backend.to_numpy(f(x, backend)), 2.0)
    assert seen[0] is type(x)


def test_nonfinite_raises_with_count_and_location():
    def f(x):
        v = np.ones(len(x))
        v[[3, 5]] = [np.nan, np.inf]
        return v

    with pytest.raises(NonFiniteIntegrandError, match=r"2 non-finite value\(s\) out of 10.*x="):
        Integrand(f, 1)(np.linspace(0, 1, 10)[:, None])


def test_nonfinite_zero_policy_warns_and_counts():
    def f(x):
        v = np.ones(len(x))
        v[0] = np.nan
        return v

    g = Integrand(f, 1, nonfinite="zero")
    with pytest.warns(RuntimeWarning, match="counted as zero"):
        out = g(np.zeros((4, 1)))
    assert out.tolist() == [0, 1, 1, 1] and g.nonfinite_count == 1


@pytest.mark.parametrize(
    "ret,match",
    [
        (lambda x: np.ones((len(x), 2)), r"shape \(\d+, 2\); expected \(\d+,\)"),
        (lambda x: np.ones(len(x) + 1), r"shape"),
        (lambda x: None, "returned None"),
        (lambda x: np.ones(len(x), dtype=complex), "complex"),
        (lambda x: np.array(["a"] * len(x)), "dtype"),
    ],
)
def test_bad_output_is_named(ret, match):
    with pytest.raises(IntegrandError, match=match):
        Integrand(ret, 2)(np.zeros((3, 2)))


def test_exceptions_reraised_with_context():
    def boom(x):
        raise KeyError("missing pdf")

    with pytest.raises(KeyError, match="raised by the integrand.*batch of 3 points"):
        Integrand(boom, 2)(np.zeros((3, 2)))


def test_constructor_validation():
    with pytest.raises(TypeError, match="callable"):
        Integrand(3, 2)
    with pytest.raises(ValueError, match="dims"):
        Integrand(gauss, 0)
    with pytest.raises(ValueError, match="nonfinite"):
        Integrand(gauss, 2, nonfinite="ignore")
    with pytest.raises(IntegrandError, match=r"shape \(n, 2\)"):
        Integrand(gauss, 2)(np.zeros((3, 3)))
