"""Transverse-momentum cuts built into t-channel charts (``DiagramMapping(pt_min=...)``): the
narrowed chart covers exactly the cut region (analytic two-body fraction, Monte Carlo against
the full chart with the cut applied), every drawn point passes, round trips hold, the numba
backend falls back to the reference, and a hadron collision's cross section is unchanged."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcint import backends as B
from mcint.phasespace import Decay, Diagram, DiagramMapping, PhaseSpace, Propagator, TChain
from mcint.phasespace import kinematics as K

SQRT_S = 200.0


def _two_body(masses, nu=None):
    return Diagram(TChain((0, 1), [Propagator(0.0, nu=nu)]), masses)


def _three_body():
    # a jet from the beam, then a massive pair: the W + 1 jet chain's shape
    return Diagram(TChain((0, Decay((1, 2), Propagator(80.0, 2.0))),
                          [Propagator(0.0, nu=0.5)]), [0.0, 0.0, 0.0])


def _r(dims, n, seed=0):
    return np.random.default_rng(seed).random((n, dims))


@pytest.mark.parametrize("masses", [(0.0, 0.0), (0.0, 80.0), (10.0, 30.0)])
@pytest.mark.parametrize("cut_on", [0, 1])
def test_two_body_fraction_is_the_analytic_one(masses, cut_on):
    """A flat ``t`` sampler has a constant weight: narrowed / full must be exactly
    ``c = sqrt(1 - pt_min^2 / |p*|^2)``, the share of ``dcos`` with ``|p*| sin(theta) >= pt_min``
    (either leg may carry the cut: their pT are equal)."""
    pt_min = 25.0
    full = PhaseSpace(DiagramMapping(_two_body(masses)), SQRT_S)
    cut = PhaseSpace(DiagramMapping(_two_body(masses), pt_min={cut_on: pt_min}), SQRT_S)
    r = _r(full.dims, 500)
    _, _, _, lw_full = full.map(r)
    mom, _, _, lw_cut = cut.map(r)
    s = SQRT_S ** 2
    m1, m2 = masses
    k = math.sqrt((s - (m1 + m2) ** 2) * (s - (m1 - m2) ** 2)) / (2 * SQRT_S)
    c = math.sqrt(1 - (pt_min / k) ** 2)
    np.testing.assert_allclose(np.exp(lw_cut - lw_full), c, rtol=1e-12)
    assert np.all(K.pt(mom[:, 2 + cut_on, :]) >= pt_min * (1 - 1e-12))


def test_nothing_passes_below_threshold_weight_zero():
    """``|p*| <= pt_min``: no point passes; the weight is exactly zero, the momenta finite."""
    ps = PhaseSpace(DiagramMapping(_two_body((0.0, 0.0)), pt_min={0: SQRT_S}), SQRT_S)
    mom, _, _, lw = ps.map(_r(ps.dims, 50))
    assert np.all(lw == -np.inf) and np.all(np.isfinite(mom))


def test_three_body_chain_integrates_the_cut_region():
    """A power-law ``t`` map and a Breit-Wigner: the narrowed chart's integral of a smooth
    function equals the full chart's integral of it times the cut (Monte Carlo, 5 sigma), every
    point passes, and the error is smaller for the same number of points."""
    pt_min = 30.0
    full = PhaseSpace(DiagramMapping(_three_body()), SQRT_S)
    cut = PhaseSpace(DiagramMapping(_three_body(), pt_min={0: pt_min}), SQRT_S)
    n = 200_000

    def f(mom):  # smooth, not constant: an energy weighting of the jet
        return 1.0 + mom[:, 2, 0] / SQRT_S

    mom, _, _, lw = full.map(_r(full.dims, n, 1))
    w_full = np.exp(lw) * f(mom) * (K.pt(mom[:, 2, :]) >= pt_min)
    mom_c, _, _, lw_c = cut.map(_r(cut.dims, n, 2))
    w_cut = np.where(np.isfinite(lw_c), np.exp(lw_c), 0.0) * f(mom_c)
    assert np.all(K.pt(mom_c[np.isfinite(lw_c), 2, :]) >= pt_min * (1 - 1e-12))
    i_full, e_full = w_full.mean(), w_full.std() / math.sqrt(n)
    i_cut, e_cut = w_cut.mean(), w_cut.std() / math.sqrt(n)
    assert abs(i_cut - i_full) < 5 * math.hypot(e_full, e_cut), (i_cut, i_full)
    assert e_cut < e_full


def test_round_trip_with_the_cut():
    ps = PhaseSpace(DiagramMapping(_three_body(), pt_min={0: 30.0}), SQRT_S)
    r = _r(ps.dims, 300, 3)
    mom, _, _, lw = ps.map(r)
    ok = np.isfinite(lw)
    r_back, lw_back = ps.map_inverse(mom[ok])
    np.testing.assert_allclose(r_back, r[ok], atol=1e-8)
    np.testing.assert_allclose(lw_back, lw[ok], rtol=1e-10, atol=1e-10)


def _three_leg():
    # a jet from each beam around a Breit-Wigner pair: the W + 2 jets double-t chain
    return Diagram(TChain((2, Decay((0, 1), Propagator(80.379, 2.085)), 3),
                          [Propagator(0.0, nu=0.8), Propagator(0.0, nu=0.8)]), [0.0] * 4)


@pytest.mark.parametrize("diagram,cut,sqrt_s", [
    (_three_body(), {0: 30.0}, SQRT_S),
    (_three_body(), {0: 83.0}, SQRT_S),          # ~12% of the points with an empty range
    (_two_body((0.0, 80.0), nu=0.5), {0: 25.0}, SQRT_S),
    (_two_body((0.0, 0.0)), {1: 25.0}, SQRT_S),
    (_three_leg(), {2: 20.0, 3: 20.0}, 13000.0),
    (_three_leg(), {2: 1e-6}, 13000.0),          # c within 1e-16 of 1
], ids=["3body", "3body-empty", "2body-massive", "2body-other-leg", "3leg-13TeV", "3leg-c~1"])
def test_numba_kernel_equals_the_reference(numba_be, diagram, cut, sqrt_s):
    """The fused chart program carries the first block's cut (a lone 2 -> 2 block runs it
    event by event): the numba backend gives the array-API reference's weights and, where the
    weight is not zero, its momenta; not the uncut chart's."""
    ps = PhaseSpace(DiagramMapping(diagram, pt_min=cut), sqrt_s)
    r = _r(ps.dims, 400, 4)
    r[:5, 0] = [0.0, 1.0, 0.5, 1e-12, 1 - 1e-12]
    mom_ref, _, _, lw_ref = ps.map(r)
    with B.use("numba"), B.trace() as log:
        mom, _, _, lw = ps.map(r)
        _, _, _, lw_full = PhaseSpace(DiagramMapping(diagram), sqrt_s).map(r)
    assert ("phasespace-map-forward", "numba") in log
    np.testing.assert_allclose(lw, lw_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mom, mom_ref, rtol=1e-12, atol=1e-9 * sqrt_s / SQRT_S)
    assert not np.allclose(lw_full, lw_ref)  # not the uncut chart's numbers


@pytest.mark.parametrize("bad,match", [
    ({3: 10.0}, "final-state index must be an integer in 0..2"),
    ({True: 10.0}, "final-state index"),
    ({0: -1.0}, r"pt_min\[0\] must be a finite number of GeV >= 0"),
    ({0: math.nan}, r"pt_min\[0\]"),
    ({0: "20"}, r"pt_min\[0\]"),
])
def test_bad_pt_min(bad, match):
    with pytest.raises(ValueError, match=match):
        DiagramMapping(_three_body(), pt_min=bad)


def test_hadron_collision_cross_section_unchanged_fewer_points_cut():
    """``u d~ > e+ ve g`` with a jet pT cut: the cut-aware charts give the same cross section
    (per channel, prior-weighted; Monte Carlo, 5 sigma) with no jet drawn below its cut in the
    t-channel charts, where the full charts put a large share there."""
    from mcint.amplitudes.hadronic import HadronCollision

    cuts = {"pt_min": {"jet": 20.0}, "eta_max": {"jet": 5.0}}
    full = HadronCollision("u d~ > e+ ve g", 13000.0, cuts=cuts, cut_aware=False)
    aware = HadronCollision("u d~ > e+ ve g", 13000.0, cuts=cuts)
    assert aware.pt_min == {2: 20.0} and full.pt_min == {}
    n = 60_000
    t_channels = [c for c, t in enumerate(aware.topologies) if isinstance(t.root, TChain)]
    assert t_channels
    for c in range(aware.n_channels):
        vals = []
        for k, h in enumerate((full, aware)):
            r = _r(h.dims, n, 10 + k)
            ev = h.evaluate(r, c)
            w = ev.value * ev.alpha_prior[:, c]
            vals.append((w.mean(), w.std() / math.sqrt(n)))
            if h is aware and c in t_channels:
                mom, _, _, lw = h.point(r, c)
                ok = np.isfinite(lw)
                assert np.all(K.pt(mom[ok, 4, :]) >= 20.0 * (1 - 1e-12))
        (i0, e0), (i1, e1) = vals
        assert abs(i1 - i0) < 5 * math.hypot(e0, e1), (c, i0, i1)



@pytest.mark.parametrize("m1,m2,pt_min", [(1.0, 100.0, None), (0.5, 80.0, None),
                                          (1.0, 100.0, 1e-3)])
def test_t_max_of_a_light_fast_emission_keeps_its_digits(numba_be, m1, m2, pt_min):
    """``t`` at ``cos = 1`` (the pole side of a ``1/t`` map) is a difference of two products
    of ~6500 GeV that nearly cancel for a 1 GeV emission at 13 TeV: written directly it kept
    5 digits (x_lo = 5.91725e-5 against 5.917510e-5 GeV^2), as a quotient all of them (the pT
    cut's edge through ``1 - c = ratio^2 / (1 + c)``). A ``1/x`` map's weight at ``r_t = 0``
    depends on it: the reference and the fused lone-block kernel must both give the exact one
    (with ``pt_min`` the lone kernel defers to the reference; the chart program's cut is
    compared with the reference in ``test_numba_kernel_equals_the_reference``)."""
    mp = pytest.importorskip("mpmath")
    from mcint.phasespace.invariants import PowerLaw
    from mcint.phasespace.tchannel import t_channel, t_channel_frame

    mp.mp.dps = 40
    rs = 13000.0
    pa = np.array([[rs / 2, 0.0, 0.0, rs / 2]])
    pb = np.array([[rs / 2, 0.0, 0.0, -rs / 2]])
    s = mp.mpf(rs) ** 2
    e1 = (s + m1 ** 2 - m2 ** 2) / (2 * rs)
    k1 = mp.sqrt((s - (m1 + m2) ** 2) * (s - (m1 - m2) ** 2)) / (2 * rs)
    c = 1 if pt_min is None else mp.sqrt(1 - (mp.mpf(pt_min) / k1) ** 2)
    x_lo = -(m1 ** 2 - rs * (e1 - k1 * c))    # 2 |p_a| = rs for massless beams
    x_hi = -(m1 ** 2 - rs * (e1 + k1 * c))
    frame = t_channel_frame(pa, pa + pb, np.array([m1 ** 2]), np.array([m2 ** 2]), 0.0, pt_min)
    assert float(frame[9][0]) == pytest.approx(float(x_lo), rel=1e-11)
    # PowerLaw(1) at r = 0: x = x_lo, log dx/dr = log(x_lo log(x_hi / x_lo))
    exact_ld = mp.log(x_lo * mp.log(x_hi / x_lo))
    lws = []
    for be in ("numpy", numba_be):
        with B.use(be):
            _, _, lw = t_channel(np.array([[0.0, 0.3]]), pa, pb, np.array([m1 ** 2]),
                                 np.array([m2 ** 2]), PowerLaw(1.0), 0.0, pt_min)
        lws.append(float(lw[0]))
    const = math.log(2 * math.pi) - math.log(32 * math.pi ** 2) - math.log(rs / 2) - math.log(rs)
    for lw in lws:
        assert lw - const == pytest.approx(float(exact_ld), abs=1e-11)


def test_points_the_cut_chart_cannot_draw_invert_to_finite_coordinates():
    """The inverse of a narrowed chart is used as coordinates of other channels' points
    (``HadronicProcess`` features in chart 0): a point below the cut, or one whose block has no
    range at all, must come back with finite ``r`` in the unit cube and weight zero
    (``-inf``), a point above it with its own ``r`` and weight."""
    full = PhaseSpace(DiagramMapping(_three_body()), SQRT_S)
    cut = PhaseSpace(DiagramMapping(_three_body(), pt_min={0: 60.0}), SQRT_S)
    mom, _, _, lw_full = full.map(_r(full.dims, 4000, 5))
    ok = np.isfinite(lw_full)
    r, lw = cut.map_inverse(mom[ok])
    passes = K.pt(mom[ok, 2, :]) >= 60.0
    assert np.all(np.isfinite(r)) and np.all((r >= 0) & (r <= 1))
    assert np.all(lw[~passes] == -np.inf) and (~passes).sum() > 100
    assert np.all(np.isfinite(lw[passes])) and passes.sum() > 100
    mom2, _, _, lw2 = cut.map(r[passes])
    np.testing.assert_allclose(mom2, mom[ok][passes], rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(lw2, lw[passes], rtol=1e-9, atol=1e-9)
