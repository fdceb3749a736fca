"""Three-body decay block and cut-aware invariant ranges: volumes, round trips, Jacobians, cuts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_phasespace import _dalitz

from mcint.phasespace import (
    BreitWigner,
    Cuts,
    Decay,
    Diagram,
    DiagramMapping,
    InvariantMap,
    Luminosity,
    MassRange,
    Narrowed,
    NarrowedPropagator,
    PhaseSpace,
    PowerLaw,
    Propagator,
    PtMin,
    RamboOnDiet,
    ThreeBodyDecay,
    Uniform,
    mass_window,
    massless_volume,
    narrow_luminosity,
    three_body_decay,
    three_body_decay_inverse,
)
from mcint.phasespace import kinematics as K

SQRT_S = 100.0
MZ, GZ = 91.0, 2.5


def _np(be, a):
    return be.to_numpy(a)


def _r(d, n=200, seed=0, margin=1e-6):
    return np.random.default_rng(seed).uniform(margin, 1 - margin, size=(n, d))


def _phi2(s, m1, m2):
    return math.sqrt(max((s - m1 ** 2 - m2 ** 2) ** 2 - 4 * m1 ** 2 * m2 ** 2, 0)) / (8 * math.pi * s)


def _phi3(rs, m, n=400):
    """Phi_3 = int ds23/(2pi) Phi_2(s; m1, sqrt s23) Phi_2(s23; m2, m3) by Gauss-Legendre, in
    ``s23 = lo + (hi - lo) (1 - cos(pi u)) / 2`` (smooths the square-root thresholds)."""
    lo, hi = (m[1] + m[2]) ** 2, (rs - m[0]) ** 2
    x, wq = np.polynomial.legendre.leggauss(n)
    u = (x + 1) / 2
    s23 = lo + (hi - lo) * (1 - np.cos(np.pi * u)) / 2
    jac = (hi - lo) * np.pi / 2 * np.sin(np.pi * u)
    vals = [_phi2(rs ** 2, m[0], math.sqrt(v)) * _phi2(v, m[1], m[2]) for v in s23]
    return 0.5 * np.dot(wq, jac * np.array(vals)) / (2 * math.pi)


def _quad_r0(fs, rs, n=64):
    """Integral of the weight over r: Gauss-Legendre in r[:, 0] = (1 - cos(pi u)) / 2 (flat
    sampling: the weight depends on nothing else; the substitution smooths the thresholds)."""
    ps = PhaseSpace(fs, rs)
    x, wq = np.polynomial.legendre.leggauss(n)
    u = (x + 1) / 2
    r = np.full((n, 5), 0.3)
    r[:, 0] = (1 - np.cos(np.pi * u)) / 2
    _, _, _, lw = ps.map(r)
    return 0.5 * np.dot(wq, np.exp(lw) * np.pi / 2 * np.sin(np.pi * u))


MAPPINGS = {
    "massless": ThreeBodyDecay([0.0, 0.0, 0.0]),
    "massive": ThreeBodyDecay([1.0, 5.0, 10.0], pair=(2, 0)),
    "bw-12": ThreeBodyDecay([0.0, 0.5, 0.5], pair=(1, 2), sampler=BreitWigner(40.0, 5.0)),
    "power-law": ThreeBodyDecay([2.0, 3.0, 0.0], pair=(0, 1), sampler=PowerLaw(1.0)),
    "narrowed": ThreeBodyDecay([0.0, 0.0, 0.0], pair=(0, 2),
                               sampler=Narrowed.mass_window(BreitWigner(MZ, GZ), 60.0, 95.0)),
}


# -- three-body: volumes ---------------------------------------------------------------------
@pytest.mark.parametrize("pair", [(0, 1), (1, 2), (2, 0)])
def test_massless_volume_exact(pair):
    got = _quad_r0(ThreeBodyDecay([0.0] * 3, pair=pair), SQRT_S)
    assert got == pytest.approx(massless_volume(3, SQRT_S ** 2), rel=1e-12)
    assert got == pytest.approx(SQRT_S ** 2 / (256 * math.pi ** 3), rel=1e-12)


@pytest.mark.parametrize("pair", [(0, 1), (1, 2), (0, 2)])
def test_massive_volume_exact(pair):
    m = (1.0, 5.0, 10.0)
    got = _quad_r0(ThreeBodyDecay(m, pair=pair), 30.0, n=200)
    assert got == pytest.approx(_phi3(30.0, m), rel=1e-12)


@pytest.mark.parametrize("masses,sampler", [
    ([0.0, 0.0, 0.0], None), ([1.0, 5.0, 10.0], None), ([1.0, 5.0, 10.0], BreitWigner(20.0, 4.0)),
])
def test_volume_against_rambo_by_monte_carlo(masses, sampler):
    nev, rs = 100_000, 30.0
    means = []
    for fs in (ThreeBodyDecay(masses, pair=(1, 2), sampler=sampler), RamboOnDiet(masses)):
        ps = PhaseSpace(fs, rs)
        w = np.exp(ps.map(_r(ps.dims, nev, 7))[3])
        means.append((w.mean(), w.std() / math.sqrt(nev)))
    (a, ea), (b, eb) = means
    assert abs(a - b) < 4.5 * math.hypot(ea, eb) + 1e-12 * b, means
    exact = massless_volume(3, rs ** 2) if max(masses) == 0 else _phi3(rs, masses)
    assert abs(a - exact) < 4.5 * ea + 1e-12 * exact


# -- three-body: kinematics, round trips, backends ---------------------------------------------
@pytest.mark.parametrize("case", list(MAPPINGS))
def test_conservation_onshell_round_trip(backend, case):
    fs = MAPPINGS[case]
    ps = PhaseSpace(fs, SQRT_S)
    r = _r(5, 300, 1, margin=0.01)
    p, x1, x2, lw = ps.map(backend.asarray(r))
    pn = _np(backend, p)
    assert np.abs(pn[:, 2:].sum(axis=1) - pn[:, :2].sum(axis=1)).max() < 1e-12 * SQRT_S
    m2 = pn[:, 2:, 0] ** 2 - (pn[:, 2:, 1:] ** 2).sum(-1)
    assert np.abs(m2 - np.array(fs.masses) ** 2).max() < 1e-12 * SQRT_S ** 2
    r2, lw2 = ps.map_inverse(p, x1, x2)
    assert np.allclose(_np(backend, r2), r, atol=1e-10, rtol=0)
    assert np.allclose(_np(backend, lw2), _np(backend, lw), atol=1e-9, rtol=0)
    # the same numbers as the numpy reference
    ref = ps.map(r)
    assert np.allclose(pn, ref[0], rtol=0, atol=1e-12 * SQRT_S)
    assert np.allclose(_np(backend, lw), ref[3], rtol=0, atol=1e-11)


def test_moving_parent_and_float32(backend):
    """The standalone block decays any timelike momentum (here boosted and rotated)."""
    masses = (0.1, 3.0, 4.0)
    rng = np.random.default_rng(4)
    n = 100
    pv = rng.normal(0, 50, (n, 3))
    parent = np.concatenate([np.sqrt(40.0 ** 2 + (pv ** 2).sum(1))[:, None], pv], axis=1)
    r = _r(5, n, 5, margin=0.01)
    q, lw = three_body_decay(backend.asarray(r), backend.asarray(parent), masses, (2, 0))
    qn = _np(backend, q)
    scale = parent[:, 0].max()
    assert np.abs(qn.sum(axis=1) - parent).max() < 1e-12 * scale
    m2 = qn[..., 0] ** 2 - (qn[..., 1:] ** 2).sum(-1)
    assert np.abs(m2 - np.array(masses) ** 2).max() < 1e-12 * scale ** 2
    # the weight does not depend on the parent's frame
    rest = np.array([[40.0, 0.0, 0.0, 0.0]] * n)
    _, lw0 = three_body_decay(r, rest, masses, (2, 0))
    assert np.allclose(_np(backend, lw), lw0, atol=1e-12)
    r2, lw2 = three_body_decay_inverse(q, backend.asarray(parent), masses, (2, 0))
    assert np.allclose(_np(backend, r2), r, atol=1e-10)
    assert np.allclose(_np(backend, lw2), lw0, atol=1e-9)
    q32, lw32 = three_body_decay(backend.asarray(r, dtype="float32"),
                                 backend.asarray(rest, dtype="float32"), masses)
    assert str(q32.dtype).endswith("float32")
    assert np.allclose(np.exp(_np(backend, lw32)), np.exp(three_body_decay(r, rest, masses)[1]),
                       rtol=1e-4)


@pytest.mark.parametrize("case", list(MAPPINGS))
def test_log_weight_matches_numerical_jacobian(case, num_log_det):
    """dPhi_3 = dm12^2 dm23^2 dcos dphi dchi / (1024 pi^5 s) in Dalitz + Euler coordinates."""
    ps = PhaseSpace(MAPPINGS[case], SQRT_S)
    r = _r(5, 300, 5) * 0.98 + 0.01

    def y(rr):
        return _dalitz(ps.map(rr)[0][:, 2:])

    yy = y(r)
    keep = (np.abs(yy[:, 3]) < 3.0) & (np.abs(yy[:, 4]) < 3.0) & (np.abs(yy[:, 2]) < 0.99)
    r = r[keep]
    lw = ps.map(r)[3]
    expect = num_log_det(y, r) - math.log(1024 * math.pi ** 5 * SQRT_S ** 2)
    assert np.allclose(lw, expect, atol=1e-5)


def test_autograd_through_three_body():
    torch = pytest.importorskip("torch")
    ps = PhaseSpace(MAPPINGS["bw-12"], SQRT_S)
    r = torch.tensor(_r(5, 16, 2), requires_grad=True)
    p, _, _, lw = ps.map(r)
    (lw.sum() + p.sum()).backward()
    assert torch.all(torch.isfinite(r.grad))


def test_three_body_bad_input():
    with pytest.raises(ValueError, match="3 masses"):
        ThreeBodyDecay([0.0, 0.0])
    with pytest.raises(ValueError, match="pair"):
        ThreeBodyDecay([0.0] * 3, pair=(1, 1))
    with pytest.raises(ValueError, match="pair"):
        ThreeBodyDecay([0.0] * 3, pair=(0, 3))
    with pytest.raises(ValueError, match="positive lower limit"):
        ThreeBodyDecay([0.0] * 3, sampler=PowerLaw(1.0))
    with pytest.raises(ValueError, match="mass"):
        ThreeBodyDecay([0.0, -1.0, 0.0])
    with pytest.raises(ValueError, match="threshold"):
        PhaseSpace(ThreeBodyDecay([40.0, 40.0, 30.0]), SQRT_S)
    # a cut window supplies the positive lower limit a power law needs
    ThreeBodyDecay([0.0] * 3, sampler=Narrowed.mass_window(PowerLaw(1.0), 10.0))


# -- cut-aware ranges ------------------------------------------------------------------------
def _bw(s):
    return 1.0 / ((s - MZ ** 2) ** 2 + (MZ * GZ) ** 2)


def _f(s):
    """A smooth positive function with a resonance: what the sampler should follow."""
    return _bw(s) * (1.0 + 0.5 * np.sin(s / 300.0))


@pytest.mark.parametrize("sampler", [BreitWigner(MZ, GZ), Uniform(), PowerLaw(2.0)])
def test_narrowed_invariant_map(backend, num_log_det, sampler):
    lo, hi, a, b = 50.0 ** 2, 150.0 ** 2, 80.0, 100.0
    t = InvariantMap(Narrowed.mass_window(sampler, a, b), lo, hi)
    x = _r(1, 100, 1, margin=0.01)
    y, ld = t.forward(backend.asarray(x))
    yn = _np(backend, y)
    assert yn.min() >= a ** 2 and yn.max() <= b ** 2
    assert np.allclose(_np(backend, ld), num_log_det(lambda v: t.forward(v)[0], x, 1e-7),
                       rtol=1e-6, atol=1e-6)
    x2, ld2 = t.inverse(y)
    assert np.allclose(_np(backend, x2), x, atol=1e-10)
    assert np.allclose(_np(backend, ld2), -_np(backend, ld), atol=1e-9)


def test_narrowed_integral_exact_by_quadrature():
    """1-d: int_0^1 f(s(r)) ds/dr dr over the narrowed map = int_{a^2}^{b^2} f(s) ds, both by
    quadrature; and by Monte Carlo it agrees with the full map times the cut mask."""
    lo, hi, a, b = 50.0 ** 2, 150.0 ** 2, 80.0, 100.0
    full = InvariantMap(BreitWigner(MZ, GZ), lo, hi)
    narrow = InvariantMap(Narrowed.mass_window(BreitWigner(MZ, GZ), a, b), lo, hi)
    x, wq = np.polynomial.legendre.leggauss(50)
    # exact: composite Gauss-Legendre in s over the window (resolves the peak)
    edges = np.linspace(a ** 2, b ** 2, 401)
    mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * np.diff(edges)
    s_nodes = (mid[:, None] + half[:, None] * x[None, :]).ravel()
    exact = float(np.sum((half[:, None] * wq[None, :]).ravel() * _f(s_nodes)))
    # the narrowed map by quadrature in r: f * ds/dr is smooth there (the Breit-Wigner is flat)
    s, ld = narrow.forward(((x + 1) / 2)[:, None])
    mapped = 0.5 * float(np.dot(wq, _f(s[:, 0]) * np.exp(ld)))
    assert mapped == pytest.approx(exact, rel=1e-12)
    # Monte Carlo: narrowed vs full * mask, within errors
    n = 200_000
    z = np.random.default_rng(3).random((n, 1))
    s, ld = narrow.forward(z)
    wn = _f(s[:, 0]) * np.exp(ld)
    s, ld = full.forward(z)
    wf = _f(s[:, 0]) * np.exp(ld) * ((s[:, 0] > a ** 2) & (s[:, 0] < b ** 2))
    en, ef = wn.std() / math.sqrt(n), wf.std() / math.sqrt(n)
    assert abs(wn.mean() - exact) < 4.5 * en
    assert abs(wf.mean() - exact) < 4.5 * ef
    assert en < ef  # no point wasted outside the window


def _mc(ps, f, n, seed, mask=None):
    p, x1, x2, lw = ps.map(_r(ps.dims, n, seed))
    w = f(p, x1, x2) * np.exp(lw)
    if mask is not None:
        w = w * mask(p)
    assert np.all(np.isfinite(p)) and np.all(np.isfinite(w))
    return w.mean(), w.std() / math.sqrt(n)


def _agree(a, b):
    (ma, ea), (mb, eb) = a, b
    assert abs(ma - mb) < 4.5 * math.hypot(ea, eb), (a, b)


def test_two_body_s_channel_luminosity_window():
    """p p -> l l through a Breit-Wigner in s_hat, cut 80 < m_ll < 100: the narrowed luminosity
    gives the cut integral, with a smaller error than masking the full one."""
    lum = Luminosity.breit_wigner(1e6, MZ, GZ, 40.0 ** 2)
    cuts = Cuts([MassRange((0, 1), 80.0, 100.0), PtMin((0, 1), 5.0)], 2)
    lo, hi = mass_window(cuts, (1, 0))
    assert (lo, hi) == (80.0, 100.0)
    narrow = narrow_luminosity(lum, lo, hi)
    assert narrow.s_hat_min == 80.0 ** 2 and narrow.s_hat_max == 100.0 ** 2

    def f(p, x1, x2):
        s_hat = K.mass2(p[:, 0] + p[:, 1])
        cos = p[:, 2, 3] / p[:, 2, 0]
        return _bw(s_hat) * (1 + cos ** 2) * (x1 * x2) ** -0.3 * (1 - x1) ** 3 * (1 - x2) ** 3

    def mask(p):
        return cuts.mask(p, beams=True)

    a = _mc(PhaseSpace(RamboOnDiet(2), 1000.0, lum), f, 200_000, 1, mask)
    b = _mc(PhaseSpace(RamboOnDiet(2), 1000.0, narrow), f, 200_000, 2, mask)
    _agree(a, b)
    assert b[1] < a[1]
    # the luminosity's own sampler narrowed instead (same map, through Narrowed)
    lum2 = Luminosity(1e6, Narrowed.mass_window(BreitWigner(MZ, GZ), 80.0, 100.0), 40.0 ** 2)
    c = _mc(PhaseSpace(RamboOnDiet(2), 1000.0, lum2), f, 200_000, 2, mask)
    assert c == pytest.approx(b, rel=1e-10)


def test_decay_chain_windows():
    """Narrowed propagators in chains, including windows that some events cannot reach (their
    weight is exactly zero, their momenta finite)."""
    m = [0.0, 0.0, 0.0]
    cut3 = Cuts([MassRange((1, 2), 85.0, 95.0)], 3)
    full = DiagramMapping(Diagram(Decay((0, Decay((1, 2), Propagator(MZ, GZ)))), m))
    narrow = DiagramMapping(Diagram(Decay((0, Decay((1, 2), NarrowedPropagator(
        MZ, GZ, m_min=85.0, m_max=95.0)))), m))
    tb = ThreeBodyDecay(m, pair=(2, 1), sampler=Narrowed.mass_window(BreitWigner(MZ, GZ), 85, 95))

    def f(p, x1, x2):
        return _bw(K.mass2(p[:, 3] + p[:, 4])) * (1 + (p[:, 2, 3] / p[:, 2, 0]) ** 2)

    def mask3(p):
        return cut3.mask(p, beams=True)

    a = _mc(PhaseSpace(full, 200.0), f, 100_000, 1, mask3)
    _agree(a, _mc(PhaseSpace(narrow, 200.0), f, 100_000, 2))
    _agree(a, _mc(PhaseSpace(tb, 200.0), f, 100_000, 3))
    # 4 bodies: the (2, 3) window [40, 60] is out of reach when m(1 2 3) < 40
    cut4 = Cuts([MassRange((2, 3), 40.0, 60.0)], 4)
    inner = Decay((1, Decay((2, 3), Propagator())))
    full4 = DiagramMapping(Diagram(Decay((0, inner)), [0.0] * 4))
    inner_n = Decay((1, Decay((2, 3), NarrowedPropagator(m_min=40.0, m_max=60.0))))
    narrow4 = DiagramMapping(Diagram(Decay((0, inner_n)), [0.0] * 4))
    ps4 = PhaseSpace(narrow4, SQRT_S)
    lw = ps4.map(_r(ps4.dims, 2000, 9))[3]
    assert np.any(np.isneginf(lw)) and np.all(np.isfinite(lw) | np.isneginf(lw))

    def one(p, x1, x2):
        return np.ones(p.shape[0])

    _agree(_mc(PhaseSpace(full4, SQRT_S), one, 100_000, 4, lambda p: cut4.mask(p, beams=True)),
           _mc(ps4, one, 100_000, 5))


def test_narrowed_on_every_backend(backend):
    """Per-event limits (a chain) with empty rows: same numbers as numpy, zero weights."""
    d = Diagram(Decay((0, Decay((1, Decay((2, 3), NarrowedPropagator(m_min=40.0, m_max=60.0)))))),
                [0.0] * 4)
    ps = PhaseSpace(DiagramMapping(d), SQRT_S)
    r = _r(ps.dims, 64, 11, margin=0.01)
    ref = ps.map(r)
    out = ps.map(backend.asarray(r))
    assert np.allclose(_np(backend, out[0]), ref[0], rtol=0, atol=1e-12 * SQRT_S)
    lw = _np(backend, out[3])
    assert np.array_equal(np.isneginf(lw), np.isneginf(ref[3]))
    ok = np.isfinite(ref[3])
    assert np.allclose(lw[ok], ref[3][ok], atol=1e-11)
    r2, _ = ps.map_inverse(out[0], out[1], out[2])
    assert np.allclose(_np(backend, r2)[ok], r[ok], atol=1e-9)


def test_cut_range_bad_input():
    with pytest.raises(ValueError, match="window"):
        Narrowed(Uniform(), 10.0, 5.0)
    with pytest.raises(TypeError):
        Narrowed("flat", 0.0, 1.0)
    with pytest.raises(ValueError, match="misses"):
        InvariantMap(Narrowed(Uniform(), 200.0, 300.0), 0.0, 100.0)
    with pytest.raises(ValueError, match="window"):
        NarrowedPropagator(MZ, GZ, m_min=100.0, m_max=80.0)
    with pytest.raises(ValueError, match="misses"):
        narrow_luminosity(Luminosity.flat(1e6, 100.0), 2000.0)
    assert mass_window([PtMin(0, 1.0)], (0, 1)) == (-math.inf, math.inf)
    assert mass_window([MassRange((0, 1), 10.0), MassRange((1, 0), 0.0, 50.0)], (0, 1)) == (10, 50)


# -- the fused numba kernel (backends/mcint_numba/kernels/ps_threebody.py) ---------------------
@pytest.mark.parametrize("masses,pair,sampler", [
    ([0.0, 0.0, 0.0], (0, 1), Uniform()), ([1.0, 5.0, 10.0], (1, 2), BreitWigner(40.0, 5.0)),
    ([0.0, 0.0, 3.0], (2, 0), PowerLaw(0.7)), ([2.0, 0.0, 0.0], (0, 2), PowerLaw(1.0))])
@pytest.mark.parametrize("given_s", [False, True])
def test_fused_three_body_matches_reference(numba_be, masses, pair, sampler, given_s):
    from test_phasespace_kernels import _close, _wiggle

    import mcint.backends as B

    n = 3000
    rng = np.random.default_rng(21)
    p = np.empty((n, 4))
    p[:, 1:] = rng.normal(size=(n, 3)) * 40.0
    p[:, 0] = np.sqrt(rng.uniform(60.0, 120.0, n) ** 2 + (p[:, 1:] ** 2).sum(axis=1))
    s = (p[:, 0] ** 2 - (p[:, 1:] ** 2).sum(axis=1)) if given_s else None
    r = rng.random((n, 5))
    mask = rng.random(r.shape) < 0.2
    r[mask] = rng.choice(np.array([1e-12, 1e-6, 0.5, 1 - 1e-6, 1 - 1e-12]), size=int(mask.sum()))
    args = (p, masses, pair, sampler, s)
    fused = numba_be.kernels["phasespace-three-body-forward"](r, *args)
    assert fused is not NotImplemented
    with np.errstate(all="ignore"):
        ref = three_body_decay.reference(r, *args)
    spread = _wiggle(three_body_decay.reference, r, *args)
    scale = p[:, 0].max()
    _close(fused[0], ref[0], rtol=0, atol=1e-13 * scale, spread=spread[0])
    _close(fused[1], ref[1], rtol=0, atol=1e-12, spread=spread[1])
    np.testing.assert_allclose(fused[0].sum(axis=1), p, rtol=0, atol=1e-13 * scale)
    with B.use(numba_be):  # through the dispatch, and ThreeBodyDecay on top of it
        np.testing.assert_array_equal(three_body_decay(r, *args)[0], fused[0])


def test_fused_three_body_declines(numba_be):
    class MyUniform(Uniform):
        pass

    k = numba_be.kernels["phasespace-three-body-forward"]
    p = np.zeros((4, 4))
    p[:, 0] = 100.0
    r = np.full((4, 5), 0.3)
    assert k(r, p, [0.0, 0.0, 0.0], (0, 1), MyUniform()) is NotImplemented
    assert k(r.astype(np.float32), p, [0.0, 0.0, 0.0]) is NotImplemented
