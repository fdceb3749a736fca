"""g g -> W+(-> e+ nu) d u~ (the seeds' W + 2 jets process): its matrix element in the
initial-state collinear limit (DGLAP factorisation onto the analytically tested W + 1 jet), and
mcint.amplitudes.hadronic.HadronCollision: PDF x flux x Jacobian against quadrature, beam-mirror
symmetry groups exact in r, features that rebuild the events exactly."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from test_amplitudes import _boost, dot

import mcint.amplitudes as A
from mcint.amplitudes.hadronic import WJETS_CUTS, HadronCollision, mirror
from mcint.phasespace import PhaseSpace, RamboOnDiet
from mcint.processes.ew import GEV2_TO_PB

ALPHA_S = 0.118
GS2 = 4 * math.pi * ALPHA_S



@pytest.mark.parametrize("x", [0.3, 0.7])
def test_gg_wdu_initial_state_collinear_limit(x):
    """d collinear to the incoming gluon p1 (carrying 1 - x of it): an incoming d~ of x p1
    enters d~ g -> e+ nu u~, and (averaged) |M|^2 -> g_s^2 2 P_qg(x) / (x 2 p1.p_d) |M_born|^2,
    P_qg = T_R (x^2 + (1 - x)^2), T_R = 1/2 (from sigma = int dx dt/t alpha_s/(2 pi) P(x)
    sigma_born(x p1) with d^3p/(2E (2 pi)^3) = dx dt / (16 pi^2)). No azimuthal correlation:
    the parton entering the hard process is a fermion."""
    full = A.Process("g g > e+ ve d u~", alpha_s=ALPHA_S)
    born_proc = A.Process("d~ g > e+ ve u~", alpha_s=ALPHA_S)
    ps = PhaseSpace(RamboOnDiet(3), 300.0)
    born = np.asarray(ps.map(np.random.default_rng(3).random((4, ps.dims)))[0])
    phis = np.random.default_rng(4).random(4) * 2 * math.pi
    deviations = []
    for theta in (1e-2, 1e-3):
        rows = []
        for i in range(len(born)):
            e1 = born[i, 0, 0] / x
            e_d = (1 - x) * e1
            pd = e_d * np.array([1.0, math.sin(theta) * math.cos(phis[i]),
                                 math.sin(theta) * math.sin(phis[i]), math.cos(theta)])
            fin = born[i, 2:]
            e_h = fin[:, 0].sum()
            kt = np.array([pd[1], pd[2], 0.0])
            fin = _boost(fin, -kt / math.hypot(e_h, np.linalg.norm(kt)))  # recoil: -kT
            tot = fin.sum(axis=0) + pd
            ea, eb = (tot[0] + tot[3]) / 2, (tot[0] - tot[3]) / 2
            rows.append(np.concatenate([[[ea, 0, 0, ea], [eb, 0, 0, -eb]], fin[:2], [pd],
                                        fin[2:]]))
        p = np.array(rows)
        pqg = 0.5 * (x * x + (1 - x) ** 2)
        ref = GS2 * 2 * pqg / (x * 2 * dot(p[:, 0], p[:, 4])) * born_proc.matrix_element(born)
        deviations.append(np.abs(full.matrix_element(p) / ref - 1).max())
    # corrections are O(theta): ten times more collinear, about ten times closer
    assert deviations[0] < 0.05
    assert deviations[1] < 0.2 * deviations[0]


# -- the hadronic integrand ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def wjj():
    return HadronCollision("g g > e+ ve d u~", cuts=WJETS_CUTS)


def test_wjets_channels_and_mirror_groups(wjj):
    """8 diagrams = 8 channels; the 3 pairs of t-channel chains that are mirror images (beams
    swapped) share a group, the 2 s-channel-gluon diagrams are their own mirror: 5 groups."""
    assert wjj.n_channels == 8 and not wjj.skipped
    assert wjj.dims == 10 and wjj.features_dim == 18
    members: dict[int, list[int]] = {}
    for c, g in enumerate(wjj.groups):
        members.setdefault(g, []).append(c)
    sizes = sorted(len(m) for m in members.values())
    assert sizes == [1, 1, 2, 2, 2]
    for m in members.values():
        if len(m) == 2:
            a, b = (wjj.topologies[c] for c in m)
            assert repr(mirror(a).root) == repr(b.root)
            assert sorted(wjj.reflected[c] for c in m) == [False, True]
    assert "TOY PDF" in repr(wjj)


def test_mirror_partners_are_the_same_integrand_in_r(wjj):
    """A reflected channel is its partner's chart seen through z -> -z: the same value at the
    same r (the integrand is mirror symmetric: g g PDFs, Bose symmetry, |eta| cuts)."""
    r = np.random.default_rng(5).random((2000, wjj.dims))
    pairs = [[c for c in range(wjj.n_channels) if wjj.groups[c] == g]
             for g in set(wjj.groups)]
    checked = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for pair in (p for p in pairs if len(p) == 2):
            a, b = (wjj.evaluate(r, c) for c in pair)
            assert (a.value > 0).mean() > 0.2
            # the two evaluations differ by rounding only (cancellations in far-off-peak
            # amplitudes lose digits: tiny values are compared against the largest)
            np.testing.assert_allclose(a.value, b.value, rtol=1e-9, atol=1e-12 * a.value.max())
            checked += 1
    assert checked == 3


def test_features_rebuild_the_event_exactly(wjj):
    r = np.random.default_rng(6).random((500, wjj.dims))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for c in (0, 4, 5):
            mom, x1, x2, lw = wjj.point(r, c)
            ok = np.isfinite(lw)
            f = wjj.features(mom, x1, x2)[ok]
            back, bx1, bx2 = wjj.momenta(f)
            np.testing.assert_allclose(back, mom[ok], rtol=0, atol=1e-9 * wjj.sqrt_s)
            np.testing.assert_allclose(bx1, x1[ok], rtol=1e-10)
            # float32 features (a float32 sampler): still exact conservation and on shell
            for feats in (f, f.astype(np.float32)):
                back, *_ = wjj.momenta(feats)
                cons = back[:, 0] + back[:, 1] - back[:, 2:].sum(axis=1)
                assert np.abs(cons).max() < 1e-13 * wjj.sqrt_s
                m2 = back[..., 0] ** 2 - (back[..., 1:] ** 2).sum(-1)
                assert np.abs(m2).max() < 1e-13 * (back[..., 0] ** 2).max()
            p, pdg, *_ = wjj.events(f)
            assert tuple(pdg) == (21, 21, -11, 12, 1, -2)


def _toy_drell_yan_w(lo: float, hi: float) -> float:
    """sigma(p p -> W+ -> e+ nu) for u(x1) d~(x2) with the toy PDF by quadrature: the
    partonic cross section g_w^4 s / (576 pi |s - M^2 + i M G|^2) (tested in
    test_amplitudes) times the luminosity int dx1 dx2 f f over s in [lo^2, hi^2]."""
    from scipy import integrate

    from mcint.pdf import ToyPDF

    pdf = ToyPDF()
    ew = A.EWParameters()
    big_s = 13000.0 ** 2

    def f(t, y):  # s = M^2 + M G tan(t): the Breit-Wigner flattened
        s = ew.mw ** 2 + ew.mw * ew.ww * math.tan(t)
        tau = s / big_s
        x1, x2 = math.sqrt(tau) * math.exp(y), math.sqrt(tau) * math.exp(-y)
        lum = float(pdf.xfxQ2(2, np.asarray(x1)) * pdf.xfxQ2(-1, np.asarray(x2))) / (x1 * x2)
        ds_dt = ew.mw * ew.ww / math.cos(t) ** 2
        sig = ew.gw2 ** 2 * s / (576 * math.pi * ((s - ew.mw ** 2) ** 2 + (ew.mw * ew.ww) ** 2))
        return lum * sig * ds_dt / big_s  # dx1 dx2 = dtau dy, dtau = ds / S

    t_lo, t_hi = (math.atan((m * m - ew.mw ** 2) / (ew.mw * ew.ww)) for m in (lo, hi))

    def y_range(t):
        s = ew.mw ** 2 + ew.mw * ew.ww * math.tan(t)
        ym = -0.5 * math.log(s / big_s)
        return -ym, ym

    val, _ = integrate.dblquad(lambda y, t: f(t, y), t_lo, t_hi, lambda t: y_range(t)[0],
                               lambda t: y_range(t)[1], epsrel=1e-9)
    return val * GEV2_TO_PB


def test_pdf_flux_and_jacobians_against_quadrature():
    """u d~ > e+ ve in p p at 13 TeV (toy PDF, 60 < sqrt(s_hat) < 100 GeV): the integrand's
    Monte Carlo mean agrees with a two-dimensional quadrature."""
    pytest.importorskip("scipy")
    proc = HadronCollision("u d~ > e+ ve", sqrt_s_hat_min=60.0,
                           cuts={"sqrt_s_max": 100.0})
    assert proc.n_channels == 1
    r = np.random.default_rng(7).random((200_000, proc.dims))
    v = proc.evaluate(r, 0).value
    mean, err = v.mean(), v.std() / math.sqrt(len(v))
    exact = _toy_drell_yan_w(60.0, 100.0)
    assert abs(mean - exact) < 4 * err
    assert err < 0.01 * exact


def test_bad_input():
    with pytest.raises(ValueError, match="sqrt_s_hat_min"):
        HadronCollision("u d~ > e+ ve")
    with pytest.raises(ValueError, match="unknown cut"):
        HadronCollision("g g > e+ ve d u~", cuts={"pt_mn": {"jet": 20}})
    with pytest.raises(ValueError, match="positive"):
        HadronCollision("g g > e+ ve d u~", sqrt_s=-1.0, cuts=WJETS_CUTS)
    proc = HadronCollision("g g > e+ ve d u~", cuts=WJETS_CUTS)
    with pytest.raises(ValueError, match="channel"):
        proc.evaluate(np.full((2, proc.dims), 0.5), 8)
    with pytest.raises(ValueError, match="features"):
        proc.momenta(np.zeros((2, 5)))


# -- leading-colour flows and the w2j example -------------------------------------------------------
def _valid_lhe_colours(tags: np.ndarray, n_in: int) -> bool:
    """Every tag twice: outgoing colour + outgoing anticolour, incoming + outgoing of the same
    kind, or incoming colour + incoming anticolour."""
    seen: dict[int, list[tuple[bool, int]]] = {}
    for leg, (c, a) in enumerate(tags):
        for slot, t in ((0, c), (1, a)):
            if t:
                seen.setdefault(int(t), []).append((leg < n_in, slot))
    ok = {((False, 0), (False, 1)), ((False, 0), (True, 0)), ((False, 1), (True, 1)),
          ((True, 0), (True, 1))}
    return all(len(v) == 2 and tuple(sorted(v)) in ok for v in seen.values())


def test_leading_colour_weights_and_validity():
    """u u~ > g g: the two orderings' helicity-summed |A|^2 are in the ratio (t/u)^2 (MHV:
    |A(q3 4qb)|^2 / |A(q4 3qb)|^2 = s13 s24 / (s14 s23)); draws follow the weights; every
    flow is a valid LHE colour assignment."""
    from mcint.amplitudes.colourflow import colour_flows, colour_orderings, flow_tags
    from mcint.collider import check_color_flow

    pr = A.Process("u u~ > g g", alpha_s=ALPHA_S)
    ps = PhaseSpace(RamboOnDiet(2), 500.0)
    p = np.asarray(ps.map(np.random.default_rng(8).random((6, ps.dims)))[0])
    orders = colour_orderings(pr)
    w = (np.abs(np.asarray(pr.helicity_amplitudes(p, orders=orders))) ** 2).sum(axis=1)
    t = -2 * dot(p[:, 0], p[:, 2])
    u = -2 * dot(p[:, 0], p[:, 3])
    np.testing.assert_allclose(w[:, 0] / w[:, 1], (t / u) ** 2, rtol=1e-10)
    many = np.repeat(p[:1], 20_000, axis=0)
    tags, pick = colour_flows(pr, many, np.random.default_rng(9))
    share = w[0, 0] / w[0].sum()
    assert abs((pick == 0).mean() - share) < 5 * math.sqrt(share * (1 - share) / len(pick))
    # two quark lines, one pairing: the subleading basis element has weight exactly
    # (1 / 2N)^2 / ((1 / 2)^2 + (1 / 2N)^2) = 1 / (N^2 + 1)
    _, pick = colour_flows(A.Process("u u~ > d d~"), many, np.random.default_rng(10))
    assert abs((pick == 0).mean() - 0.1) < 5 * math.sqrt(0.09 / len(pick))
    for name in ("u u~ > g g", "g g > e+ ve d u~", "g g > g g g", "u g > u g g",
                 "u u~ > d d~", "u d > u d", "u u > u u", "u d~ > u d~"):
        pr = A.Process(name)
        for o in colour_orderings(pr):
            assert _valid_lhe_colours(flow_tags(pr, o), 2), (name, o)
            # and by the collider package's checker (representations too)
            check_color_flow(pr.particles, [True, True] + [False] * (len(pr.particles) - 2),
                             flow_tags(pr, o))
    assert _valid_lhe_colours(np.array([[501, 0], [0, 0], [501, 0], [0, 0]]), 2)
    assert not _valid_lhe_colours(np.array([[501, 0], [0, 0], [0, 501], [0, 0]]), 2)
    assert not _valid_lhe_colours(np.array([[501, 0], [0, 0], [502, 0], [0, 0]]), 2)


@pytest.mark.slow
def test_cli_w2j_writes_a_showerable_lhe(tmp_path):
    """`mcint run w2j` writes LHE events: momentum conservation, massless partons, valid colour
    flows, the process' particles, and the toy PDF labelled in the header."""
    from mcint.cli import main

    rc = main(["run", "w2j", "--events", "50", "--train-calls", "6000", "--integrate-calls",
               "4000", "--calibration-calls", "4000", "--out", str(tmp_path / "out"),
               "--progress", "none", "--no-plot", "--seed", "3"])
    assert rc == 0
    text = (tmp_path / "out" / "events.lhe").read_text()
    assert "TOY" in text
    pylhe = pytest.importorskip("pylhe")  # an independent reader parses every event
    read = list(pylhe.LHEFile.fromfile(str(tmp_path / "out" / "events.lhe")).events)
    assert len(read) == 50 and all(len(e.particles) == 6 for e in read)
    events = text.split("<event>")[1:]
    assert len(events) == 50
    for ev in events:
        lines = [ln.split() for ln in ev.split("</event>")[0].strip().splitlines()
                 if ln.strip() and not ln.startswith("#") and not ln.startswith("<")]
        rows = lines[1:1 + int(lines[0][0])]
        pdg = [int(r[0]) for r in rows]
        status = np.array([int(r[1]) for r in rows])
        tags = np.array([[int(r[4]), int(r[5])] for r in rows])
        mom = np.array([[float(r[9]), float(r[6]), float(r[7]), float(r[8])] for r in rows])
        assert pdg == [21, 21, -11, 12, 1, -2]
        cons = mom[status == -1].sum(axis=0) - mom[status == 1].sum(axis=0)
        assert np.abs(cons).max() < 1e-8 * mom[:, 0].max()
        assert _valid_lhe_colours(tags, 2)
        assert (tags[2:4] == 0).all()


def test_vectorised_prior_equals_channel_prior(wjj):
    """The one-matrix-product prior is mcint.phasespace.channel_prior of the channels'
    diagrams (rounding of nearly on-shell invariants aside)."""
    from mcint.phasespace import channel_prior

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mom, _, _, lw = wjj.point(np.random.default_rng(10).random((300, wjj.dims)), 5)
    mom = mom[np.isfinite(lw)]
    ours = wjj.prior(mom)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(ours, np.asarray(channel_prior(wjj.topologies, mom)), atol=1e-6)


def test_nis_trains_on_the_grouped_channels(wjj):
    """NIS with one flow per symmetry group (mirror channels sharing it) agrees with plain
    Monte Carlo over the same channels with the prior weights."""
    pytest.importorskip("torch")
    from mcint.nis import Integrator

    rng = np.random.default_rng(11)
    ref, var = 0.0, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in range(wjj.n_channels):
            ev = wjj.evaluate(rng.random((40_000, wjj.dims)), c)
            w = ev.alpha_prior[:, c] * ev.value
            ref, var = ref + w.mean(), var + w.var() / len(w)
        it = Integrator(wjj, seed=3, channel_weights=False)
        it.train(8_000)
        r = it.integrate(20_000)
    assert abs(r.value - ref) < 4 * np.hypot(r.error, np.sqrt(var)), (r.value, r.error, ref)


def test_zero_weight_chart_points_stay_finite():
    """Charts can draw points of zero weight with non-finite momenta (nu close to 1 makes
    them frequent; a random number exactly 0 too): value 0, finite prior weights and features
    there, never NaN (the NIS integrator rejects NaN features)."""
    proc = HadronCollision("g g > e+ ve d u~", cuts=WJETS_CUTS, nu=0.95)
    rng = np.random.default_rng(0)  # channel 6 meets two such points (measured)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for c in range(proc.n_channels):
            ev = proc.evaluate(rng.random((40_000, proc.dims)), c)
            assert np.isfinite(ev.value).all() and np.isfinite(ev.alpha_prior).all()
            assert np.isfinite(ev.features).all()
    # a random number exactly 0 (float32 samplers draw them) gives NaN momenta in this chart
    r = np.array([[0.5383260846138, 0.2701396346092224, 0.0, 0.25057345628738403,
                   0.8424453139305115, 0.5981537699699402, 0.9133965969085693,
                   0.0056652589701116085, 0.36631861329078674, 0.30341437458992004]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ev = HadronCollision("g g > e+ ve d u~", cuts=WJETS_CUTS).evaluate(r, 2)
    assert ev.value[0] == 0 and np.isfinite(ev.features).all()
    assert np.isfinite(ev.alpha_prior).all()


def test_batched_channel_evaluation_is_the_same_run():
    """``evaluate_batch`` (one integrand call for all channels' points) equals ``evaluate`` row by
    row, and an integrator using it draws the same points and gets the same numbers as one
    calling channel by channel; it makes one call per batch."""
    pytest.importorskip("torch")

    from mcint.channels import ChannelEval, MultiChannelIntegrand
    from mcint.nis import Integrator

    proc = HadronCollision("u d~ > e+ ve g", 13000.0, cuts=WJETS_CUTS)

    class PerChannel(MultiChannelIntegrand):
        """The same process without ``evaluate_batch``, counting calls."""

        def __init__(self, p):
            self.p, self.dims, self.n_channels, self.groups = p, p.dims, p.n_channels, p.groups
            self.calls = 0

        def evaluate(self, r, channel) -> ChannelEval:
            self.calls += 1
            return self.p.evaluate(r, channel)

    class Counted(PerChannel):
        def evaluate_batch(self, r, channels) -> ChannelEval:
            self.calls += 1
            return self.p.evaluate_batch(r, channels)

    rng = np.random.default_rng(2)
    r, ch = rng.random((300, proc.dims)), rng.integers(0, proc.n_channels, 300)
    with np.errstate(all="ignore"):
        whole = proc.evaluate_batch(r, ch)
        for c in range(proc.n_channels):
            one = proc.evaluate(r[ch == c], c)
            np.testing.assert_array_equal(whole.value[ch == c], one.value)
            np.testing.assert_array_equal(whole.features[ch == c], one.features)
    out = []
    for wrap in (PerChannel(proc), Counted(proc)):
        it = Integrator(wrap, seed=4, batch_size=256, backend="numpy")
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            it.train(1024)
            res = it.integrate(2048)
        out.append((res.value, res.error, wrap.calls))
    assert out[0][:2] == out[1][:2]
    assert out[1][2] < out[0][2]            # one call per batch, not one per channel
