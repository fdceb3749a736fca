"""Channels from the amplitudes' diagrams: topologies, the partonic multi-channel integrand
(cross sections against an analytic 2 -> 2 result and a single-channel RAMBO integration),
the prior, the features and the symmetry groups."""

from __future__ import annotations

import numpy as np
import pytest

import mcint.amplitudes as A
from mcint.amplitudes.channels import DEFAULT_NU
from mcint.phasespace import Decay, PhaseSpace, Propagator, RamboOnDiet, TChain
from mcint.phasespace.kinematics import pt
from mcint.processes.ew import GEV2_TO_PB

_EW = A.EWParameters()
W = Propagator(_EW.mw, _EW.ww)
Q = Propagator(0.0, 0.0, DEFAULT_NU)


def gluon_cut(momenta):
    """pT of the gluon (last particle) above 20 GeV."""
    return pt(momenta[:, -1, :]) > 20.0


def plain_mc(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std() / np.sqrt(len(values)))


def sigma_2to2(proc: A.Process, sqrt_s: float, n: int = 64) -> float:
    """``sigma`` in pb of a massless 2 -> 2 process by Gauss-Legendre over ``cos theta``:
    ``dPhi_2 = dcos / (16 pi)`` after the azimuth."""
    c, w = np.polynomial.legendre.leggauss(n)
    e, s = sqrt_s / 2, np.sqrt(1 - c * c)
    p = np.zeros((n, 4, 4))
    p[:, 0], p[:, 1] = [e, 0, 0, e], [e, 0, 0, -e]
    p[:, 2] = np.stack([e + 0 * c, e * s, 0 * c, e * c], axis=1)
    p[:, 3] = np.stack([e + 0 * c, -e * s, 0 * c, -e * c], axis=1)
    me = proc.matrix_element(p)
    return float(np.sum(w * me) / (16 * np.pi) / (2 * sqrt_s ** 2) * GEV2_TO_PB
                 * proc.symmetry_factor)


def test_topologies_by_hand():
    proc = A.Process("u d~ > e+ ve g")
    tops = [A.to_topology(d, proc) for d in proc.diagrams]
    # t[1,4]:d s[2,3]:W -> the W is emitted on u's (p_a's) side, the gluon on d~'s
    assert tops[0].root == TChain((Decay((0, 1), W), 2), (Q,))
    assert tops[1].root == TChain((2, Decay((0, 1), W)), (Q,))
    two = A.Process("u d~ > e+ ve")
    assert A.to_topology(two.diagrams[0], two).root == Decay((0, 1), W)
    # the propagators the prior sees are the diagram's lines
    assert [(k, parts) for _, k, parts in tops[0].propagators()] == [("t", (0, 1)), ("s", (0, 1))]


def test_four_point_vertices_are_skipped():
    proc = A.Process("g g > g g g")
    contact = [d for d in proc.diagrams if len(d.lines) == 1]
    assert len(contact) == 10
    for d in contact:
        with pytest.raises(A.UnmappableDiagram, match="four-point vertex"):
            A.to_topology(d, proc)
    pp = A.PartonicProcess(proc, 500.0)
    assert pp.n_channels == 15 and len(pp.skipped) == 10


def test_w_production_one_channel_analytic():
    pp = A.PartonicProcess("u d~ > e+ ve", 80.0)
    assert pp.n_channels == 1 and pp.groups == [0] and pp.dims == 2
    r = np.random.default_rng(0).random((20000, pp.dims))
    ev = pp.evaluate(r, 0)
    np.testing.assert_allclose(ev.alpha_prior, 1.0)
    assert ev.features.shape == (20000, 8) and np.all(np.isfinite(ev.features))
    mean, err = plain_mc(ev.value)
    exact = sigma_2to2(pp.process, 80.0)
    assert abs(mean - exact) < 4 * err, (mean, err, exact)
    assert err < 0.01 * exact


def test_w_plus_jet_multichannel_equals_rambo():
    pp = A.PartonicProcess("u d~ > e+ ve g", 200.0, cuts=gluon_cut)
    assert pp.n_channels == 2 and pp.groups == [0, 1]
    rng = np.random.default_rng(1)
    n = 40000
    total, var = 0.0, 0.0
    for c in range(pp.n_channels):
        ev = pp.evaluate(rng.random((n, pp.dims)), c)
        np.testing.assert_allclose(ev.alpha_prior.sum(axis=1), 1.0, rtol=1e-12)
        assert np.all(ev.alpha_prior >= 0)
        mean, err = plain_mc(ev.alpha_prior[:, c] * ev.value)
        total, var = total + mean, var + err ** 2
    ps = PhaseSpace(RamboOnDiet(3), 200.0)
    p, _, _, lw = ps.map(rng.random((300000, ps.dims)))
    ref, ref_err = plain_mc(pp.weight(p, lw))
    err = np.sqrt(var + ref_err ** 2)
    assert abs(total - ref) < 4 * err, (total, np.sqrt(var), ref, ref_err)
    assert np.sqrt(var) < 0.5 * ref_err  # the channels beat flat phase space


def test_features_are_the_physical_point_and_events_are_rebuilt_exactly():
    """The features of a point are its final-state momenta (over the beam energy): the same
    whichever channel drew it, finite everywhere, and the events written from them are the
    sampled momenta (no inverse mapping, whose t-channel charts lose collinear digits)."""
    pp = A.PartonicProcess("u d~ > e+ ve g", 200.0, cuts=gluon_cut)
    r = np.random.default_rng(2).random((5000, pp.dims))
    for c in range(pp.n_channels):
        mom = np.asarray(pp.phase_spaces[c].map(r)[0])
        feats = np.asarray(pp.evaluate(r, c).features)
        assert feats.shape == (5000, 12) and np.all(np.isfinite(feats))
        back, pdg, x1, _, scale = pp.events(feats, 0)
        np.testing.assert_allclose(back, mom, rtol=0, atol=1e-12 * 200.0)
        assert list(pdg) == list(pp.process.particles) and np.all(x1 == 1)
        np.testing.assert_allclose(scale, 200.0)


def test_each_channel_alone_covers_phase_space():
    """Without channel weights every channel integrates the whole cross section."""
    pp = A.PartonicProcess("u d~ > e+ ve g", 200.0, cuts=gluon_cut)
    rng = np.random.default_rng(3)
    res = [plain_mc(pp.evaluate(rng.random((40000, pp.dims)), c).value)
           for c in range(pp.n_channels)]
    (a, da), (b, db) = res
    assert abs(a - b) < 4 * np.hypot(da, db), res


def test_symmetry_groups_five_gluons():
    pp = A.PartonicProcess("g g > g g g", 500.0)
    names = pp.channel_names
    sizes = sorted(np.bincount(pp.groups).tolist())
    # s-s trees, t-s (pair at p_a's end), s-t (pair at p_b's end): 3 each; t-t chains: 3! = 6
    assert sizes == [3, 3, 3, 6]
    g = dict(zip(names, pp.groups))
    assert g["t[1, 2]:21 t[1, 2, 3]:21"] == g["t[1, 4]:21 t[1, 2, 4]:21"]
    assert g["s[3, 4]:21 s[2, 3, 4]:21"] == g["s[2, 3]:21 s[2, 3, 4]:21"]
    assert g["t[1, 2]:21 s[3, 4]:21"] != g["s[3, 4]:21 t[1, 3, 4]:21"]
    assert g["t[1, 2]:21 s[3, 4]:21"] != g["s[3, 4]:21 s[2, 3, 4]:21"]
    # a quark line with three gluons has the same structure (the q q~ > g* > ggg contact skipped)
    qq = A.PartonicProcess("u u~ > g g g", 500.0)
    assert qq.n_channels == 15 and sorted(np.bincount(qq.groups).tolist()) == [3, 3, 3, 6]


def test_symmetry_groups_distinguish_flavours():
    pp = A.PartonicProcess("u d~ > e+ ve g g", 200.0)
    assert pp.n_channels == 8 and len(set(pp.groups)) == 5
    # by hand: only the two gluons (final 2, 3) are identical; t[1,4] and t[1,5] emit one
    # gluon next to p_b each, so they pair up; the W-side of the s[4,5] chains does not
    assert pp.groups == [0, 1, 2, 2, 3, 4, 3, 4]


def test_backend_matches_numpy(backend, xp):
    pp = A.PartonicProcess("u d~ > e+ ve g", 200.0, cuts=gluon_cut)
    r = np.random.default_rng(4).random((64, pp.dims))
    ref = pp.evaluate(r, 1)
    got = pp.evaluate(xp.asarray(r), 1)
    for a, b in ((got.value, ref.value), (got.alpha_prior, ref.alpha_prior),
                 (got.features, ref.features)):
        np.testing.assert_allclose(backend.to_numpy(a), b, rtol=1e-9, atol=1e-12)


def test_nis_trains_on_the_diagram_channels():
    """The multi-channel integrator (flows, channel weights, features = momenta) on the diagram
    channels agrees with plain Monte Carlo over the same channels."""
    pytest.importorskip("torch")
    from mcint.nis import Integrator

    pp = A.PartonicProcess("u d~ > e+ ve g", 200.0, cuts=gluon_cut)
    rng = np.random.default_rng(5)
    ref, var = 0.0, 0.0
    for c in range(pp.n_channels):
        ev = pp.evaluate(rng.random((40_000, pp.dims)), c)
        m, e = plain_mc(ev.alpha_prior[:, c] * ev.value)
        ref, var = ref + m, var + e * e
    it = Integrator(pp, seed=2)
    it.train(8_000)
    r = it.integrate(20_000)
    assert abs(r.value - ref) < 4 * np.hypot(r.error, np.sqrt(var)), (r.value, r.error, ref)
