"""Phase-space mappings: volumes, conservation, round trips, Jacobians, backends, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcint.phasespace import (
    BreitWigner,
    Cuts,
    Decay,
    DeltaRMin,
    Diagram,
    DiagramMapping,
    EtaMax,
    InvariantMap,
    Luminosity,
    MassRange,
    PhaseSpace,
    PowerLaw,
    Propagator,
    PtMin,
    RamboOnDiet,
    TChain,
    Uniform,
    channel_prior,
    efficiency,
    massless_volume,
)
from mcint.phasespace import kinematics as K

SQRT_S = 100.0


def _np(be, a):
    return be.to_numpy(a)


def _cases():
    """name -> PhaseSpace; a mix of every building block."""
    d_s = Diagram(Decay((Decay((0, 1), Propagator(30.0, 3.0)), Decay((2, 3)))), [0.0, 1.0, 2.0, 0.5])
    d_t = Diagram(TChain((0, Decay((1, 2), Propagator(20.0, 2.0)), 3),
                         [Propagator(80.0), Propagator(10.0)]), [0.0, 1.0, 2.0, 0.0])
    return {
        "rambo-massless": PhaseSpace(RamboOnDiet(5), SQRT_S),
        "rambo-massive": PhaseSpace(RamboOnDiet([1.0, 2.0, 3.0, 0.5]), 20.0),
        "s-chain": PhaseSpace(DiagramMapping(d_s), SQRT_S),
        "t-chain": PhaseSpace(DiagramMapping(d_t), SQRT_S),
        "hadronic-bw": PhaseSpace(DiagramMapping(d_t), 1000.0,
                                  Luminosity.breit_wigner(1e6, 91.0, 2.5, 60.0 ** 2)),
        "hadronic-rambo": PhaseSpace(RamboOnDiet(3), 1000.0, Luminosity.power_law(1e6, 50.0 ** 2)),
    }


CASES = list(_cases())


def _r(ps, n=200, seed=0):
    return np.random.default_rng(seed).uniform(1e-6, 1 - 1e-6, size=(n, ps.dims))


# -- volumes -------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_rambo_massless_volume_is_exact_for_every_event(n):
    ps = PhaseSpace(RamboOnDiet(n), SQRT_S)
    _, _, _, lw = ps.map(_r(ps, 500, n))
    w = np.exp(lw)
    expect = massless_volume(n, SQRT_S ** 2)
    assert np.allclose(w, expect, rtol=1e-12, atol=0)


def test_massless_volume_formula_known_values():
    assert massless_volume(2, 1.0) == pytest.approx(1 / (8 * math.pi))
    assert massless_volume(3, 7.0) == pytest.approx(7.0 / (256 * math.pi ** 3))


def _chain(n):
    """A ladder of s-channel decays, massive propagators alternating with flat ones."""
    node = Decay((n - 2, n - 1))
    for i in range(n - 3, 0, -1):
        prop = Propagator(20.0 * i, 4.0) if i % 2 else Propagator()
        node = Decay((i, node), prop)
    return Diagram(Decay((0, node)) if n > 2 else Decay((0, 1)), [0.0] * n)


def _tchain(n):
    return Diagram(TChain(tuple(range(n)), [Propagator(50.0)] * (n - 1)), [0.0] * n)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("kind", ["s", "t"])
def test_chain_volumes_within_statistical_errors(n, kind):
    ps = PhaseSpace(DiagramMapping(_chain(n) if kind == "s" else _tchain(n)), SQRT_S)
    nev = 40_000
    _, _, _, lw = ps.map(_r(ps, nev, 10 + n))
    w = np.exp(lw)
    est, err = w.mean(), w.std() / math.sqrt(nev) + 1e-12 * w.mean()
    pull = (est - massless_volume(n, SQRT_S ** 2)) / err
    assert abs(pull) < 4.5, (est, err, pull)


def _phi2(s, m1, m2):
    return math.sqrt(max((s - m1 ** 2 - m2 ** 2) ** 2 - 4 * m1 ** 2 * m2 ** 2, 0)) / (8 * math.pi * s)


def test_massive_volumes_against_quadrature():
    # n = 2 exact: every weight equals the massive two-body volume
    ps = PhaseSpace(RamboOnDiet([3.0, 5.0]), 20.0)
    _, _, _, lw = ps.map(_r(ps, 100))
    assert np.allclose(np.exp(lw), _phi2(400.0, 3.0, 5.0), rtol=1e-12)
    # n = 3: Phi_3 = int ds23/(2pi) Phi_2(s; m1, sqrt s23) Phi_2(s23; m2, m3) by Gauss-Legendre
    m, rs = (1.0, 2.0, 3.0), 20.0
    lo, hi = (m[1] + m[2]) ** 2, (rs - m[0]) ** 2
    x, wq = np.polynomial.legendre.leggauss(200)
    s23 = lo + (hi - lo) * (x + 1) / 2
    vals = [_phi2(rs ** 2, m[0], math.sqrt(v)) * _phi2(v, m[1], m[2]) for v in s23]
    exact = (hi - lo) / 2 * np.dot(wq, vals) / (2 * math.pi)
    nev = 100_000
    for fs in (RamboOnDiet(m), DiagramMapping(Diagram(Decay((0, Decay((1, 2)))), m))):
        ps = PhaseSpace(fs, rs)
        _, _, _, lw = ps.map(_r(ps, nev, 3))
        w = np.exp(lw)
        assert abs(w.mean() - exact) < 4.5 * w.std() / math.sqrt(nev), type(fs)


# -- kinematics, round trips, backends -----------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_conservation_onshell_and_round_trip(backend, case):
    ps = _cases()[case]
    r = _r(ps)
    p, x1, x2, lw = ps.map(backend.asarray(r))
    pn = _np(backend, p)
    scale = np.abs(pn[:, :2, 0]).sum(axis=1).max()
    assert np.abs(pn[:, 2:].sum(axis=1) - pn[:, :2].sum(axis=1)).max() < 1e-9 * scale
    m2 = pn[..., 0] ** 2 - (pn[..., 1:] ** 2).sum(-1)
    masses = np.array((0.0, 0.0) + ps.final.masses)
    assert np.abs(m2 - masses ** 2).max() < 1e-9 * scale ** 2
    r2, lw2 = ps.map_inverse(p, x1, x2)
    assert np.allclose(_np(backend, r2), r, atol=1e-8, rtol=0)
    assert np.allclose(_np(backend, lw2), _np(backend, lw), atol=1e-7, rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_identical_on_every_backend(backend, case):
    ps = _cases()[case]
    r = _r(ps, 64)
    ref = ps.map(r)
    out = ps.map(backend.asarray(r))
    for a, b in zip(out, ref):
        assert np.allclose(_np(backend, a), b, rtol=1e-12, atol=1e-10)


def test_float32_runs(backend):
    ps = PhaseSpace(RamboOnDiet(4), SQRT_S)
    p, _, _, lw = ps.map(backend.asarray(_r(ps, 32), dtype="float32"))
    assert str(p.dtype).endswith("float32")
    assert np.allclose(np.exp(_np(backend, lw)), massless_volume(4, SQRT_S ** 2), rtol=1e-4)


# -- Jacobians -------------------------------------------------------------------------------
def _dalitz(p):
    """(m12^2, m23^2, cos theta_1, phi_1, chi) for 3-body final states p (n, 3, 4)."""
    q12, q23 = p[:, 0] + p[:, 1], p[:, 1] + p[:, 2]
    v = K.rotate_to_z(p[:, 1, 1:], p[:, 0, 1:])
    p1 = p[:, 0, 1:]
    return np.stack([K.mass2(q12), K.mass2(q23), p1[:, 2] / np.linalg.norm(p1, axis=1),
                     np.arctan2(p1[:, 1], p1[:, 0]), np.arctan2(v[:, 1], v[:, 0])], axis=1)


@pytest.mark.parametrize("fs", [
    RamboOnDiet(3), RamboOnDiet([1.0, 5.0, 10.0]),
    DiagramMapping(Diagram(Decay((0, Decay((1, 2), Propagator(40.0, 5.0)))), [1.0, 5.0, 10.0])),
    DiagramMapping(Diagram(TChain((0, 1, 2), [Propagator(30.0), Propagator(20.0)]), [0, 1, 2])),
])
def test_log_weight_matches_numerical_jacobian(fs, num_log_det):
    """dPhi_3 = dm12^2 dm23^2 dcos dphi dchi / (1024 pi^5 s) in Dalitz + Euler coordinates."""
    ps = PhaseSpace(fs, SQRT_S)
    r = _r(ps, 300, 5) * 0.98 + 0.01

    def y(rr):
        return _dalitz(ps.map(rr)[0][:, 2:])

    yy = y(r)
    keep = (np.abs(yy[:, 3]) < 3.0) & (np.abs(yy[:, 4]) < 3.0) & (np.abs(yy[:, 2]) < 0.99)
    r = r[keep]
    _, _, _, lw = ps.map(r)
    expect = num_log_det(y, r) - math.log(1024 * math.pi ** 5 * SQRT_S ** 2)
    assert np.allclose(lw, expect, atol=1e-5)


@pytest.mark.parametrize("sampler,lo,hi", [
    (Uniform(), 10.0, 50.0), (BreitWigner(91.0, 2.5), 50.0 ** 2, 130.0 ** 2),
    (PowerLaw(1.0), 5.0, 500.0), (PowerLaw(0.6), 0.0, 500.0), (PowerLaw(2.5), 5.0, 500.0),
])
def test_invariant_maps(backend, num_log_det, sampler, lo, hi):
    t = InvariantMap(sampler, lo, hi)
    x = np.random.default_rng(1).uniform(0.01, 0.99, (100, 1))
    y, ld = t.forward(backend.asarray(x))
    yn = _np(backend, y)
    assert yn.min() >= lo and yn.max() <= hi
    expect = num_log_det(lambda a: t.forward(a)[0], x, eps=1e-7)
    assert np.allclose(_np(backend, ld), expect, rtol=1e-6, atol=1e-6)
    x2, ld2 = t.inverse(y)
    assert np.allclose(_np(backend, x2), x, atol=1e-10)
    assert np.allclose(_np(backend, ld2), -_np(backend, ld), atol=1e-9)
    # the sampled density integrates the propagator shape to its exact integral
    z = np.random.default_rng(2).random((20000, 1))
    s, l = t.forward(z)
    if isinstance(sampler, BreitWigner):
        w = np.exp(l) / ((s[:, 0] - 91.0 ** 2) ** 2 + (91.0 * 2.5) ** 2)
        exact = (math.atan((hi - 91.0 ** 2) / (91 * 2.5)) - math.atan((lo - 91.0 ** 2) / (91 * 2.5))
                 ) / (91 * 2.5)
        assert np.allclose(w, exact, rtol=1e-10)


@pytest.mark.parametrize("lum", [
    Luminosity.flat(1e6, 100.0), Luminosity.power_law(1e6, 100.0, 9e5),
    Luminosity.breit_wigner(1e6, 91.0, 2.5, 60.0 ** 2, 200.0 ** 2),
])
def test_luminosity_transform(backend, num_log_det, lum):
    x = np.random.default_rng(3).uniform(0.01, 0.99, (100, 2))
    y, ld = lum.to(backend).forward(backend.asarray(x))
    yn = _np(backend, y)
    assert np.all((yn > 0) & (yn <= 1))
    assert np.allclose(_np(backend, ld), num_log_det(lambda a: lum.forward(a)[0], x, 1e-7),
                       atol=1e-5)
    x2, ld2 = lum.inverse(y)
    assert np.allclose(_np(backend, x2), x, atol=1e-10)
    assert np.allclose(_np(backend, ld2), -_np(backend, ld), atol=1e-9)


def test_two_to_two_t_channel_jacobian(num_log_det):
    """dPhi_2 = |p| / (16 pi^2 sqrt s) dcos dphi for the (t, phi) parametrisation."""
    d = Diagram(TChain((0, 1), [Propagator(80.0)]), [3.0, 7.0])
    ps = PhaseSpace(DiagramMapping(d), SQRT_S)
    r = _r(ps, 200, 8) * 0.9 + 0.05

    def y(rr):
        p = ps.map(rr)[0][:, 2]
        return np.stack([p[:, 3] / np.linalg.norm(p[:, 1:], axis=1),
                         np.arctan2(p[:, 2], p[:, 1])], axis=1)

    _, _, _, lw = ps.map(r)
    q = math.sqrt((1e4 - 9 - 49) ** 2 - 4 * 9 * 49) / (2 * SQRT_S)
    expect = num_log_det(y, r) + math.log(q / (16 * math.pi ** 2 * SQRT_S))
    assert np.allclose(lw, expect, atol=1e-6)


def test_autograd_through_the_maps():
    torch = pytest.importorskip("torch")
    for ps in _cases().values():
        r = torch.tensor(_r(ps, 16), requires_grad=True)
        p, x1, x2, lw = ps.map(r)
        (lw.sum() + p.sum()).backward()
        assert torch.all(torch.isfinite(r.grad))
    # d(sampled invariant)/dr against finite differences, through RAMBO's root solver
    ps = PhaseSpace(RamboOnDiet(4), SQRT_S)
    r0 = _r(ps, 8, 4)
    r = torch.tensor(r0, requires_grad=True)
    e = ps.map(r)[0][:, 2, 0]
    e.sum().backward()
    h = 1e-6
    for j in range(ps.dims):
        rp, rm = r0.copy(), r0.copy()
        rp[:, j] += h
        rm[:, j] -= h
        fd = (ps.map(rp)[0][:, 2, 0] - ps.map(rm)[0][:, 2, 0]) / (2 * h)
        assert np.allclose(r.grad.numpy()[:, j], fd, rtol=1e-5, atol=1e-6)


# -- prior and cuts --------------------------------------------------------------------------
def test_channel_prior_prefers_the_resonant_channel(backend):
    z = Diagram(Decay((0, 1), Propagator(91.0, 2.5)), [0, 0])
    g = Diagram(Decay((0, 1), Propagator()), [0, 0])
    ps = PhaseSpace(RamboOnDiet(2), 1000.0, Luminosity.flat(1e6, 50.0 ** 2, 300.0 ** 2))
    p, *_ = ps.map(backend.asarray(_r(ps, 500)))
    a = _np(backend, channel_prior([z, g], p))
    assert np.allclose(a.sum(axis=1), 1.0)
    pn = _np(backend, p)
    m = np.sqrt(K.mass2(pn[:, 2] + pn[:, 3]))
    ratio = ((m ** 2) ** -2) / (((m ** 2 - 91.0 ** 2) ** 2 + (91 * 2.5) ** 2) ** -1 + (m ** 2) ** -2)
    assert np.allclose(a[:, 1], ratio, rtol=1e-9)
    assert a[np.abs(m - 91.0) < 1.0, 0].min() > 0.99
    a2 = _np(backend, channel_prior([z, g], p, me2=[backend.asarray(np.zeros(500)),
                                                     backend.asarray(np.ones(500))]))
    assert np.allclose(a2[:, 1], 1.0)


def test_cuts_against_direct_computation(backend):
    ps = PhaseSpace(RamboOnDiet(3), SQRT_S)
    p, *_ = ps.map(backend.asarray(_r(ps, 2000)))
    cuts = Cuts([PtMin((0, 1), 10.0), EtaMax(2, 1.5), DeltaRMin(0, 1, 0.4),
                 MassRange((0, 1), 20.0, 80.0)], n_final=3, sqrt_s=SQRT_S)
    mask = _np(backend, cuts.mask(p, beams=True))
    f = _np(backend, p)[:, 2:]
    pt = np.hypot(f[..., 1], f[..., 2])
    eta = np.arcsinh(f[..., 3] / pt)
    phi = np.arctan2(f[..., 2], f[..., 1])
    dphi = (phi[:, 0] - phi[:, 1] + np.pi) % (2 * np.pi) - np.pi
    dr = np.hypot(eta[:, 0] - eta[:, 1], dphi)
    q = f[:, 0] + f[:, 1]
    m = np.sqrt(q[:, 0] ** 2 - (q[:, 1:] ** 2).sum(-1))
    expect = (pt[:, 0] > 10) & (pt[:, 1] > 10) & (np.abs(eta[:, 2]) < 1.5) & (dr > 0.4) & \
        (m > 20) & (m < 80)
    assert np.array_equal(mask, expect)
    eff, err = efficiency(cuts.mask(p, beams=True))
    assert eff == pytest.approx(expect.mean()) and 0 < err < 0.02


# -- bad input ---------------------------------------------------------------------------------
def test_bad_input_is_rejected_clearly():
    with pytest.raises(ValueError, match="mass of particle 1"):
        RamboOnDiet([1.0, -2.0])
    with pytest.raises(ValueError, match="mass of particle 0"):
        RamboOnDiet([float("nan"), 1.0])
    with pytest.raises(ValueError, match="below threshold"):
        PhaseSpace(RamboOnDiet([40.0, 70.0]), 100.0)
    with pytest.raises(ValueError, match="below threshold"):
        PhaseSpace(RamboOnDiet([400.0, 700.0]), 1e4, Luminosity.flat(1e8, 100.0 ** 2))
    with pytest.raises(ValueError, match="width must be positive"):
        BreitWigner(91.0, -1.0)
    with pytest.raises(ValueError, match="width must be >= 0"):
        Propagator(91.0, -2.0)
    with pytest.raises(ValueError, match="positive lower limit"):
        InvariantMap(PowerLaw(1.0), 0.0, 10.0)
    with pytest.raises(ValueError, match="positive lower limit"):
        DiagramMapping(Diagram(Decay((0, Decay((1, 2), Propagator(nu=1.0)))), [0, 0, 0]))
    with pytest.raises(ValueError, match="exactly"):
        Diagram(Decay((0, 2)), [0, 0])
    with pytest.raises(ValueError, match="empty range"):
        Luminosity.flat(1e4, 200.0 ** 2, 100.0 ** 2)
    with pytest.raises(ValueError, match="removes everything"):
        Cuts([MassRange((0, 1), 200.0)], n_final=2, sqrt_s=100.0)
    with pytest.raises(ValueError, match="removes everything"):
        Cuts([PtMin(0, 60.0)], n_final=2, sqrt_s=100.0)
    with pytest.raises(ValueError, match="out of range"):
        Cuts([PtMin(3, 1.0)], n_final=2)
    with pytest.raises(ValueError, match="columns"):
        PhaseSpace(RamboOnDiet(3), 10.0).map(np.zeros((4, 3)))


def test_cut_removing_everything_gives_zero_not_nan():
    ps = PhaseSpace(RamboOnDiet(2), SQRT_S)
    p, _, _, lw = ps.map(_r(ps, 100))
    cuts = Cuts([EtaMax((0, 1), 1e-9)], n_final=2, sqrt_s=SQRT_S)
    mask = cuts.mask(p, beams=True)
    assert not mask.any()
    val = np.where(mask, np.exp(lw), 0.0)
    assert np.all(val == 0)
    assert efficiency(mask) == (0.0, 0.0)


@pytest.mark.parametrize("case", CASES)
def test_extreme_random_numbers_stay_finite(case):
    ps = _cases()[case]
    rng = np.random.default_rng(11)
    r = rng.choice(np.array([1e-12, 0.5, 1 - 1e-12]), size=(300, ps.dims))
    with np.errstate(divide="ignore"):  # log(0) = -inf: a zero weight at the very edge is fine
        p, x1, x2, lw = ps.map(r)
    assert np.all(np.isfinite(p)) and not np.any(np.isnan(lw))
    assert np.all(np.isfinite(np.exp(lw)))


@pytest.mark.parametrize("nu", [1.0 - 1e-8, 1.0 + 1e-8, 1.0 - 1e-13])
def test_power_law_near_one_is_flat_in_log_s(nu):
    # the textbook (s^a - lo^a) / (hi^a - lo^a) with a = 1 - nu cancels here; the limit is
    # s = lo (hi/lo)^r with log ds/dr = log(s log(hi/lo)), off by O(a) = 1e-8 relative
    r = np.linspace(0.01, 0.99, 50)
    lo, hi = 13.0, 14.0
    s, ld = PowerLaw(nu).forward(r, lo, hi)
    s1 = lo * (hi / lo) ** r
    np.testing.assert_allclose(s, s1, rtol=1e-9)
    np.testing.assert_allclose(ld, np.log(s1 * math.log(hi / lo)), atol=1e-7)
    r2, ld2 = PowerLaw(nu).inverse(s, lo, hi)
    np.testing.assert_allclose(r2, r, atol=1e-12)
    np.testing.assert_allclose(ld2, -ld, atol=1e-12)


def test_zero_weight_edge_points_are_finite(backend):
    """Random numbers on a chart's edge (0 exactly, as float32 samplers draw): a massless
    s-channel line with a logarithmic map met 0 * inf and gave NaN momenta and a NaN weight,
    which stopped runs. They now have weight exactly 0 and valid (the chart centre's) momenta."""
    pytest.importorskip("mcint.amplitudes")
    from mcint.amplitudes.example import w2j

    ps = w2j().phase_spaces[0]
    r = np.random.default_rng(3).random((6, ps.dims))
    r[:3, 2] = 0.0                        # the edge that gave NaN
    with np.errstate(all="ignore"):
        p, x1, x2, lw = (_np(backend, a) for a in ps.map(backend.asarray(r)))
        ref = ps.map(r[3:])[3]
    assert np.all(lw[:3] == -np.inf) and np.all(np.isfinite(lw[3:]))
    np.testing.assert_allclose(lw[3:], ref, rtol=1e-12)    # other rows untouched
    assert np.isfinite(p).all() and np.isfinite(x1).all() and np.isfinite(x2).all()
    scale = np.abs(p[:, :2, 0]).sum(axis=1).max()
    assert np.abs(p[:, 2:].sum(axis=1) - p[:, :2].sum(axis=1)).max() < 1e-9 * scale
