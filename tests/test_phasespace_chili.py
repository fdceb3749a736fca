"""Chili (arXiv:2302.10449): exact volumes, the numerical Jacobian, round trips, native cuts,
conservation, every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcint.phasespace import Chili, Luminosity, PhaseSpace, RamboOnDiet
from mcint.phasespace import kinematics as K

SQRT_S = 200.0


def _np(be, a):
    return be.to_numpy(a) if be is not None else np.asarray(a)


def _two_body_volume(tau0: float, beta, n: int = 400) -> float:
    """``integral dx1 dx2 Phi_2 f(tau) = (1/8 pi) int_tau0^1 (-log tau) beta(tau) dtau``.

    ``tau = tau0 + (1 - tau0) v^2`` takes the square-root edge at ``tau0`` away (smooth in
    ``v``), then Gauss–Legendre."""
    v, w = np.polynomial.legendre.leggauss(n)
    v, w = 0.5 * (v + 1), 0.5 * w
    tau = tau0 + (1 - tau0) * v * v
    return float(np.sum(w * 2 * (1 - tau0) * v * -np.log(tau) * beta(tau))) / (8 * math.pi)


def _mc(ps, n, seed, mask=None):
    """Monte Carlo integral of 1 (times ``mask(momenta)``) over ``ps`` and its error."""
    r = np.random.default_rng(seed).random((n, ps.dims))
    p, x1, x2, lw = ps.map(r)
    w = np.exp(lw)
    if mask is not None:
        w = w * mask(p[:, 2:])
    return w.mean(), w.std() / math.sqrt(n)


def test_volume_massless_pt_cut_exact():
    """n = 2, massless, pT > p0: the pair is back to back, so the cut keeps
    ``|cos theta| <= sqrt(1 - tau0 / tau)`` of the solid angle; quadrature against MC."""
    p0 = 20.0
    tau0 = 4 * p0 ** 2 / SQRT_S ** 2
    exact = _two_body_volume(tau0, lambda t: np.sqrt(1 - tau0 / t))
    ps = Chili([0.0, 0.0], SQRT_S, pt_min=[p0, 0.0])
    mean, err = _mc(ps, 400_000, 1)
    assert abs(mean - exact) < 4 * err and err < 0.01 * exact


def test_volume_massive_no_cut_exact():
    """n = 2, equal masses, no cuts: ``beta = sqrt(1 - 4 m^2 / s_hat)``."""
    m = 30.0
    tau0 = 4 * m * m / SQRT_S ** 2
    exact = _two_body_volume(tau0, lambda t: np.sqrt(1 - tau0 / t))
    ps = Chili([m, m], SQRT_S)
    mean, err = _mc(ps, 400_000, 2)
    assert abs(mean - exact) < 4 * err and err < 0.01 * exact


@pytest.mark.parametrize("masses,y_max", [([0.0, 0.0, 0.0], 2.0), ([5.0, 0.0, 10.0], 1.5)])
def test_volume_against_rambo_with_cut_masks(masses, y_max):
    """n = 3 with pT and rapidity cuts: Chili's native cuts against RAMBO on diet plus a flat
    luminosity with the cuts as masks (a different mapping of the same space)."""
    p0 = 15.0
    chili = Chili(masses, SQRT_S, pt_min=[p0, p0, 0.0], y_max=y_max)
    s_min = (2 * p0) ** 2  # sqrt(s_hat) >= pT_1 + pT_2 >= 2 p0: no cut point is lost
    rambo = PhaseSpace(RamboOnDiet(masses), SQRT_S, Luminosity.flat(SQRT_S ** 2, s_min))

    def cuts(p):
        pt = np.hypot(p[..., 1], p[..., 2])
        y = 0.5 * np.log((p[..., 0] + p[..., 3]) / (p[..., 0] - p[..., 3]))
        return (pt[:, 0] >= p0) & (pt[:, 1] >= p0) & np.all(np.abs(y) <= y_max, axis=1)

    a, ea = _mc(chili, 400_000, 3)
    b, eb = _mc(rambo, 1_000_000, 4, cuts)
    assert abs(a - b) < 4 * math.hypot(ea, eb) and ea < 0.02 * a
    # (Chili's pT map follows a 1/pT^2-like tail, made for QCD matrix elements: integrating 1
    # its weight grows with pT, so its error here is not the smaller one)


def _coords(p):
    """Independent coordinates of the image: the 3-momenta of the first n - 1 particles and
    the last one's pz (its pT is the balance; x1, x2 follow)."""
    return np.concatenate([p[:, 2:-1, 1:].reshape(len(p), -1), p[:, -1:, 3]], axis=1)


@pytest.mark.parametrize("masses", [[0.0, 0.0], [0.0, 0.0, 0.0], [3.0, 0.0, 7.0, 0.0]])
def test_log_weight_matches_numerical_jacobian(masses):
    """``dx1 dx2 dPhi_n = (2pi)^(4-3n) (2/S) prod_{i<n} d^3p_i / 2E_i * dpz_n / 2E_n``: the
    weight against central differences of those coordinates."""
    n = len(masses)
    ps = Chili(masses, SQRT_S, pt_min=[10.0] * (n - 1) + [0.0], y_max=3.0)
    r = np.random.default_rng(5).uniform(0.05, 0.95, (400, ps.dims))
    p, _, _, lw = ps.map(r)
    ok = np.isfinite(lw)
    assert ok.mean() > 0.5
    r, p, lw = r[ok], p[ok], lw[ok]
    eps = 1e-6
    jac = np.empty((len(r), ps.dims, ps.dims))
    for j in range(ps.dims):
        d = np.zeros_like(r)
        d[:, j] = eps
        jac[:, :, j] = (_coords(ps.map(r + d)[0]) - _coords(ps.map(r - d)[0])) / (2 * eps)
    log_det = np.linalg.slogdet(jac)[1]
    expect = ((4 - 3 * n) * math.log(2 * math.pi) + math.log(2 / SQRT_S ** 2) + log_det
              - np.sum(np.log(2 * p[:, 2:, 0]), axis=1))
    np.testing.assert_allclose(lw, expect, atol=1e-6)


CASES = {
    "massless 2": ([0.0, 0.0], [20.0, 0.0], 2.5),
    "massless 4": ([0.0] * 4, [20.0, 20.0, 20.0, 0.0], 2.5),
    "massive 3": ([4.0, 80.0, 0.0], [0.0, 0.0, 0.0], math.inf),
    "mixed 5": ([0.0, 10.0, 0.0, 0.0, 91.0], [15.0, 5.0, 15.0, 15.0, 0.0], [2.0, 3.0, 2.0, 2.0, 4.0]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_conservation_onshell_cuts_round_trip(backend, case):
    masses, pt_min, y_max = CASES[case]
    sqrt_s = 1000.0
    ps = Chili(masses, sqrt_s, pt_min=pt_min, y_max=y_max)
    r_np = np.random.default_rng(6).random((3000, ps.dims))
    r_np[:5] = np.clip(r_np[:5], 1e-9, 1 - 1e-9)
    r = backend.asarray(r_np)
    p, x1, x2, lw = (_np(backend, a) for a in ps.map(r))
    ok = np.isfinite(lw)
    assert ok.mean() > 0.3  # most points map inside x1, x2 <= 1 (pT_min << sqrt(S))
    assert np.all(np.isfinite(p)) and not np.any(np.isnan(lw))
    p, x1, x2, r_ok = p[ok], x1[ok], x2[ok], r_np[ok]
    scale = sqrt_s
    assert np.abs(p[:, 2:].sum(axis=1) - p[:, :2].sum(axis=1)).max() < 1e-12 * scale
    m2 = p[..., 0] ** 2 - (p[..., 1:] ** 2).sum(axis=-1)
    assert np.abs(m2[:, 2:] - np.asarray(masses) ** 2).max() < 1e-9 * scale ** 2
    assert np.all((x1 > 0) & (x1 <= 1 + 1e-12) & (x2 > 0) & (x2 <= 1 + 1e-12))
    np.testing.assert_allclose(p[:, 0, 0], 0.5 * sqrt_s * x1, rtol=1e-14)
    # native cuts: every sampled point passes them
    pt = np.hypot(p[:, 2:, 1], p[:, 2:, 2])
    y = np.arcsinh(p[:, 2:, 3] / np.sqrt(pt ** 2 + np.asarray(masses) ** 2))
    assert np.all(pt[:, :-1] >= np.asarray(pt_min[:-1]) * (1 - 1e-12))
    assert np.all(np.abs(y) <= np.broadcast_to(y_max, (len(masses),)) * (1 + 1e-12) + 1e-12)
    # round trip
    rb, lwb = (_np(backend, a) for a in ps.map_inverse(backend.asarray(p)))
    np.testing.assert_allclose(rb, r_ok, rtol=0, atol=1e-9)
    np.testing.assert_allclose(lwb, lw[ok], rtol=0, atol=1e-9)


def test_outside_points_have_zero_weight():
    """Where the first n - 1 particles already need x1 or x2 > 1, the weight is 0."""
    ps = Chili([0.0, 0.0, 0.0], SQRT_S, pt_min=[20.0, 20.0, 0.0])
    r = np.random.default_rng(7).random((20000, ps.dims))
    r[:, :2] = 0.999  # hard pT: their sum alone nearly exhausts sqrt(S)
    p, x1, x2, lw = ps.map(r)
    out = ~np.isfinite(lw)
    assert out.any()
    assert np.all(lw[out] == -np.inf) and np.all(np.isfinite(p[out]))
    k_plus = (p[:, 2:-1, 0] + p[:, 2:-1, 3]).sum(axis=1)
    k_minus = (p[:, 2:-1, 0] - p[:, 2:-1, 3]).sum(axis=1)
    assert np.all(np.isfinite(lw[(k_plus < 0.5 * SQRT_S) & (k_minus < 0.5 * SQRT_S)]))


def test_autograd_through_chili():
    torch = pytest.importorskip("torch")
    ps = Chili([0.0, 0.0, 0.0], SQRT_S, pt_min=[10.0, 10.0, 0.0], y_max=2.5)
    r = torch.rand(64, ps.dims, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    r.requires_grad_(True)
    p, x1, x2, lw = ps.map(r)
    ok = torch.isfinite(lw)
    (p[ok].sum() + lw[ok].sum() + x1[ok].sum()).backward()
    assert torch.all(torch.isfinite(r.grad))


def test_chili_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        Chili([0.0], SQRT_S)
    with pytest.raises(ValueError, match="massless without a pT cut"):
        Chili([0.0, 0.0], SQRT_S)
    with pytest.raises(ValueError, match="last particle"):
        Chili([0.0, 0.0], SQRT_S, pt_min=20.0)
    with pytest.raises(ValueError, match="one value per"):
        Chili([0.0, 0.0], SQRT_S, pt_min=[20.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="pt_min of particle 0"):
        Chili([0.0, 0.0], SQRT_S, pt_min=[150.0, 0.0])
    with pytest.raises(ValueError, match="y_max"):
        Chili([0.0, 0.0], SQRT_S, pt_min=[20.0, 0.0], y_max=0.0)
    with pytest.raises(ValueError, match="sqrt_s"):
        Chili([150.0, 60.0], SQRT_S)
    ps = Chili([0.0, 0.0], SQRT_S, pt_min=[20.0, 0.0])
    with pytest.raises(ValueError):
        ps.map(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="shape"):
        ps.map_inverse(np.zeros((3, 3, 4)))


def test_massless_y_is_eta():
    """For massless particles the native rapidity cut is the pseudorapidity cut."""
    ps = Chili([0.0, 0.0, 0.0], SQRT_S, pt_min=[10.0, 10.0, 0.0], y_max=1.2)
    p, *_, lw = ps.map(np.random.default_rng(8).random((2000, ps.dims)))
    ok = np.isfinite(lw)
    assert np.all(np.abs(K.eta(p[ok][:, 2:])) <= 1.2 + 1e-12)


# -- the fused numba kernel (backends/mcint_numba/kernels/ps_chili.py) -------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_fused_chili_matches_reference(numba_be, case):
    from test_phasespace_kernels import _close, _wiggle

    import mcint.backends as B
    from mcint.phasespace.chili import chili_forward

    masses, pt_min, y_max = CASES[case]
    ps = Chili(masses, 1000.0, pt_min=pt_min, y_max=y_max)
    rng = np.random.default_rng(9)
    r = rng.random((4000, ps.dims))
    edges = np.array([1e-12, 1e-6, 0.5, 1 - 1e-6, 1 - 1e-12])
    mask = rng.random(r.shape) < 0.2
    r[mask] = rng.choice(edges, size=int(mask.sum()))
    fused = numba_be.kernels["phasespace-chili-forward"](r, ps)
    assert fused is not NotImplemented
    with np.errstate(all="ignore"):
        ref = chili_forward.reference(r, ps)
    # within the reference's own conditioning (where the y_n range nearly closes, log(width)
    # is ill-conditioned): see test_phasespace_kernels._wiggle
    spread = _wiggle(chili_forward.reference, r, ps)
    _close(fused[0], ref[0], rtol=0, atol=1e-12 * 1000.0, spread=spread[0])
    for a, b, d in zip(fused[1:3], ref[1:3], spread[1:3]):
        _close(a, b, rtol=1e-13, spread=d)
    ok = np.isfinite(ref[3])
    assert np.mean(np.isfinite(fused[3]) != ok) < 1e-3  # at most a point at the boundary
    both = ok & np.isfinite(fused[3])
    _close(fused[3][both], ref[3][both], rtol=0, atol=1e-12, spread=spread[3][both])
    with B.use(numba_be):  # and through the dispatch
        np.testing.assert_array_equal(ps.map(r)[0], fused[0])


def test_fused_chili_declines(numba_be):
    torch = pytest.importorskip("torch")
    ps = Chili([0.0, 0.0, 0.0], 1000.0, pt_min=[20.0, 20.0, 0.0])
    k = numba_be.kernels["phasespace-chili-forward"]
    r = np.random.default_rng(0).random((10, ps.dims))
    assert k(torch.asarray(r), ps) is NotImplemented
    assert k(r.astype(np.float32), ps) is NotImplemented

    class MyChili(Chili):
        pass

    assert k(r, MyChili([0.0, 0.0, 0.0], 1000.0, pt_min=[20.0, 20.0, 0.0])) is NotImplemented
