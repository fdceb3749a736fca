"""Hadron-collider integrands built from parts, checked against the built-in Drell-Yan: the
UMAMI test library (tests/data/umami) for u ubar / d dbar -> l- l+, PDFs, scales and channels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_pdf import _write_set

from mcint import umami
from mcint.collider import DYNAMIC_SCALES, Flavour, HadronicProcess, Subprocess, mirrored, scale
from mcint.pdf import LHAGrid
from mcint.processes import DrellYan

UP, DOWN = 1, 2          # the test library's flavour indices


def dy_flavours() -> list[Flavour]:
    fl = [Flavour(q, -q, UP if q in (2, 4) else DOWN) for q in (1, 2, 3, 4, 5)]
    return mirrored(fl)


def make(umami_lib, pdf, **kw):
    dy = DrellYan(zprime_mass=0.0, pdf=pdf)
    me = umami.load(umami_lib())
    sub = Subprocess(me, dy_flavours(), outgoing=(11, -11))
    proc = HadronicProcess([sub], dy.phase_spaces, pdf, diagrams=dy.diagrams,
                           scale="partonic_energy", **kw)
    return dy, proc


@pytest.fixture
def synthetic_pdf(tmp_path):
    return LHAGrid.read(_write_set(tmp_path) / "ToySynth_0000.dat")


def test_values_match_the_built_in_drell_yan_per_point(umami_lib, synthetic_pdf):
    dy, proc = make(umami_lib, synthetic_pdf)
    rng = np.random.default_rng(0)
    r = rng.random((2000, 4))
    for c in range(2):
        a, b = dy.evaluate(r, c), proc.evaluate(r, c)
        s_hat = np.asarray(dy.phase_spaces[c].map(r)[1]) * np.asarray(
            dy.phase_spaces[c].map(r)[2]) * dy.sqrt_s ** 2
        # 1e-12 times the condition number of |M|^2 in s at the Z peak (see test_umami)
        cond = 1 + s_hat / np.hypot(s_hat - 91.1876 ** 2, 91.1876 * 2.4952)
        rel = np.abs(b.value / a.value - 1)
        assert np.all(rel <= 1e-12 * cond + 1e-13), (c, float(rel.max()))
        np.testing.assert_allclose(b.alpha_prior, a.alpha_prior, rtol=1e-12)
        np.testing.assert_allclose(b.features[:, 1:], a.features[:, 1:], atol=1e-12)


def test_diagram_amp2_priors(umami_lib, synthetic_pdf):
    dy, proc = make(umami_lib, synthetic_pdf, channel_diagrams=[0, 1])
    r = np.random.default_rng(1).random((500, 4))
    ev = proc.evaluate(r, 1)
    np.testing.assert_allclose(ev.alpha_prior.sum(axis=1), 1.0, rtol=1e-14)
    # at the Z peak the Z diagram dominates, far below it the photon
    mom = np.asarray(dy.phase_spaces[1].map(r)[0])
    m = np.sqrt(np.maximum(0, (mom[:, 2] + mom[:, 3])[:, 0] ** 2
                           - np.sum((mom[:, 2] + mom[:, 3])[:, 1:] ** 2, axis=1)))
    assert np.all(ev.alpha_prior[np.abs(m - 91.19) < 1.0, 1] > 0.9)


def test_cross_section_matches_the_built_in_drell_yan(umami_lib, synthetic_pdf):
    """sigma by plain multi-channel Monte Carlo over the two channels (prior weights) against
    DrellYan.exact() with the same PDF (quadrature)."""
    dy, proc = make(umami_lib, synthetic_pdf)
    rng = np.random.default_rng(2)
    n = 40_000
    est = []
    for c in range(2):
        ev = proc.evaluate(rng.random((n, 4)), c)
        est.append(ev.value * ev.alpha_prior[:, c])
    mean = sum(e.mean() for e in est)
    err = math.sqrt(sum(e.var() / n for e in est))
    exact = dy.exact()
    assert abs(mean - exact) < 4 * err, (mean, err, exact)
    assert err / mean < 0.01


def test_events_draw_flavours_by_their_share(umami_lib, synthetic_pdf):
    dy, proc = make(umami_lib, synthetic_pdf)
    r = np.random.default_rng(3).random((20_000, 4))
    mom, pdg, x1, x2, mu = proc.events(r, 1, np.random.default_rng(4))
    assert pdg.shape == (20_000, 4) and np.all(pdg[:, 2:] == [11, -11])
    assert np.all(pdg[:, 0] == -pdg[:, 1])
    np.testing.assert_allclose(mu, np.sqrt(x1 * x2) * dy.sqrt_s, rtol=1e-11)   # from momenta
    # up-type share against the luminosity-weighted matrix elements at these points
    terms, _ = proc._terms(mom, x1, x2, False)
    up = sum(t for _, f, t in terms if abs(f.a) in (2, 4))
    total = sum(t for _, _, t in terms)
    expect = float(np.mean(up / total))
    got = float(np.mean(np.isin(np.abs(pdg[:, 0]), (2, 4))))
    assert abs(got - expect) < 5 * math.sqrt(expect * (1 - expect) / 20_000)


def test_scales():
    p = np.zeros((2, 4, 4))
    p[:, 0] = [50, 0, 0, 50]
    p[:, 1] = [50, 0, 0, -50]
    p[:, 2] = [50, 30, 40, 0]                      # pT 50, massless
    p[:, 3] = [50, -30, -40, 0]
    np.testing.assert_allclose(scale("partonic_energy", p), 100.0)
    np.testing.assert_allclose(scale("transverse_energy", p), 100.0)
    np.testing.assert_allclose(scale("transverse_mass", p), 100.0)
    np.testing.assert_allclose(scale("half_transverse_mass", p), 50.0)
    np.testing.assert_allclose(scale(91.0, p), 91.0)
    q = p.copy()
    q[:, 2] = [60, 30, 40, 0]                      # m^2 = 3600 - 2500 = 1100
    np.testing.assert_allclose(scale("transverse_mass", q), math.sqrt(2500 + 1100) + 50)
    assert set(DYNAMIC_SCALES) == {"transverse_energy", "transverse_mass",
                                   "half_transverse_mass", "partonic_energy"}
    with pytest.raises(ValueError, match="did you mean 'transverse_mass'"):
        scale("transverse_mas", p)
    with pytest.raises(ValueError, match="positive number"):
        scale(-1.0, p)


def _event(parts):
    """One event: two beams along z, then final-state (E, px, py, pz) vectors."""
    fs = np.array(parts, dtype=np.float64)
    e = fs[:, 0].sum()
    pz = fs[:, 3].sum()
    beams = np.array([[(e + pz) / 2, 0, 0, (e + pz) / 2], [(e - pz) / 2, 0, 0, -(e - pz) / 2]])
    return np.concatenate([beams, fs])[None]


def _massless(pt, eta, phi):
    return [pt * math.cosh(eta), pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)]


def test_particle_group_cuts():
    from mcint.collider import ParticleCuts

    out = (11, -11, 21, 2)          # two leptons, two jets
    ev = _event([_massless(30, 0.5, 0), _massless(25, -1.0, 3.0), _massless(40, 2.0, 1.0),
                 _massless(15, 4.0, 1.2)])

    def passes(spec):
        return bool(ParticleCuts(out, spec).mask(ev)[0])

    assert passes({"pt_min": {"lepton": 20, "jet": 10}})
    assert not passes({"pt_min": {"jet": 20}})                   # the quark has pT 15
    assert passes({"pt_max": {"lepton": 31}}) and not passes({"pt_max": {"lepton": 29}})
    assert passes({"eta_max": {"lepton": 1.1}}) and not passes({"eta_max": {"jet": 3.0}})
    # jets at (eta, phi) = (2, 1) and (4, 1.2): Delta R = sqrt(4 + 0.04)
    dr = math.hypot(2.0, 0.2)
    assert passes({"dr_min": {"jet_jet": dr - 1e-6}})
    assert not passes({"dr_min": {"jet_jet": dr + 1e-6}})
    m_ll = K_mass(ev[0, 2] + ev[0, 3])
    assert passes({"mass_min": {"lepton_lepton": m_ll - 1e-6}})
    assert not passes({"mass_max": {"lepton_lepton": m_ll - 1e-6}})
    rs = K_mass(ev[0, 0] + ev[0, 1])
    assert passes({"sqrt_s_min": rs - 1e-6}) and not passes({"sqrt_s_max": rs - 1e-6})
    # missing transverse momentum: the vector sum of the neutrinos
    ev2 = _event([_massless(30, 0, 0), _massless(20, 1, math.pi), _massless(50, 0, 0.5)])
    cuts = ParticleCuts((12, -12, 11), {"pt_min": {"missing": 9.9}})
    assert bool(cuts.mask(ev2)[0]) and not ParticleCuts(
        (12, -12, 11), {"pt_min": {"missing": 10.1}}).mask(ev2)[0]
    with pytest.raises(ValueError, match="did you mean 'pt_min'"):
        ParticleCuts(out, {"pt_mn": {"jet": 1}})
    with pytest.raises(ValueError, match="unknown group 'jets'.*did you mean 'jet'"):
        ParticleCuts(out, {"pt_min": {"jets": 1}})
    with pytest.raises(ValueError, match="pair of groups"):
        ParticleCuts(out, {"dr_min": {"jet": 0.4}})
    with pytest.raises(ValueError, match=">= 0"):
        ParticleCuts(out, {"pt_min": {"jet": -1}})


def K_mass(p):
    return math.sqrt(max(p[0] ** 2 - p[1] ** 2 - p[2] ** 2 - p[3] ** 2, 0.0))


def test_cuts_in_a_hadronic_process_remove_exactly_the_cut_points(umami_lib, synthetic_pdf):
    from mcint.collider import ParticleCuts

    dy, full = make(umami_lib, synthetic_pdf)
    cuts = ParticleCuts((11, -11), {"pt_min": {"lepton": 25}, "eta_max": {"lepton": 2.5}})
    _, cut = make(umami_lib, synthetic_pdf, cuts=cuts)
    r = np.random.default_rng(5).random((4000, 4))
    a, b = full.evaluate(r, 1).value, cut.evaluate(r, 1).value
    mom = np.asarray(dy.phase_spaces[1].map(r)[0])
    keep = cuts.mask(mom)
    assert 0.1 < keep.mean() < 0.9
    np.testing.assert_array_equal(b[~keep], 0.0)
    np.testing.assert_array_equal(b[keep], a[keep])
