"""RAMBO on diet's intermediate-mass solver ``solve_u``: accuracy against 40-digit roots,
bit-identical results on every backend, finite output at the edges, autograd ``du/dr``."""

from __future__ import annotations

from decimal import Decimal, getcontext

import numpy as np
import pytest

from mcint.phasespace.rambo import solve_u


def _root40(r: float, k: int) -> Decimal:
    """Root of ``(k+1) u^k - k u^(k+1) = r`` in [0, 1] by 40-digit bisection (F is increasing)."""
    getcontext().prec = 40
    rr, lo, hi = Decimal(r), Decimal(0), Decimal(1)
    for _ in range(135):
        mid = (lo + hi) / 2
        if mid ** k * ((k + 1) - k * mid) < rr:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _hard_r(seed: int, n: int = 12) -> np.ndarray:
    """Bulk, tiny r (root ~ 0), r near 1 (double root at u = 1) and the branch switch."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.random(n), 10.0 ** rng.uniform(-16, -1, n),
                           1 - 10.0 ** rng.uniform(-15.5, -1, n), [0.5, 2.0 ** -52, 1 - 2.0 ** -53]])


@pytest.mark.parametrize("k", [1, 2, 3, 4, 6, 9, 12])
def test_solve_u_matches_40_digit_roots(k):
    r = _hard_r(k)
    u = solve_u(r, k)
    ref = np.array([float(_root40(x, k)) for x in r])
    # relative accuracy of u itself (also for tiny u) and absolute accuracy near u = 1
    assert np.all(np.abs(u - ref) <= 4e-16 * ref), np.max(np.abs(u - ref) / ref)
    assert np.all(np.abs(u - ref) <= 2.3e-16)


def test_solve_u_is_bit_identical_on_every_backend(backend):
    r = np.concatenate([_hard_r(0, 200), [0.0, 1.0]])
    for k in (1, 2, 3, 5):
        ref = solve_u(r, k)
        got = backend.to_numpy(solve_u(backend.asarray(r), k))
        assert np.array_equal(got, ref), (k, np.max(np.abs(got - ref)))


def test_solve_u_edges_are_finite_and_inside():
    r = np.array([0.0, 1e-300, 1e-30, 1 - 2.0 ** -53, 1.0, 1.5, -0.5])
    for k in (1, 2, 4, 7):
        u = solve_u(r, k)
        assert np.all(np.isfinite(u)) and np.all(u >= 0) and np.all(u < 1)
        assert u[1] < 1e-19 and u[0] < 1e-18  # the tiniest roots to within 2^-64 (absolute)


def test_solve_u_float32():
    r = np.random.default_rng(3).random(500).astype(np.float32)
    for k in (1, 3, 5):
        u = solve_u(r, k)
        assert u.dtype == np.float32
        resid = u.astype(np.float64) ** k * ((k + 1) - k * u.astype(np.float64)) - r
        fp = k * (k + 1) * u.astype(np.float64) ** (k - 1) * (1 - u.astype(np.float64))
        # |du| <= a few float32 ulps of r divided by F'(u), or a few ulps of u
        assert np.all(np.abs(resid) <= 4e-7 * np.maximum(r, 1e-30) + 2e-7 * fp * u + 1e-12)


def test_solve_u_autograd_gives_inverse_derivative():
    torch = pytest.importorskip("torch")
    r0 = np.random.default_rng(4).uniform(0.01, 0.99, 64)
    for k in (1, 2, 4):
        r = torch.tensor(r0, requires_grad=True)
        u = solve_u(r, k)
        u.sum().backward()
        un = u.detach().numpy()
        assert np.array_equal(un, solve_u(r0, k))  # the correction adds exactly zero
        assert np.allclose(r.grad.numpy(), 1 / (k * (k + 1) * un ** (k - 1) * (1 - un)),
                           rtol=1e-12)
