"""Processes: analytic cross sections, the Drell–Yan multi-channel integrand, events, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcint.channels import ChannelEval, MultiChannelIntegrand
from mcint.processes import EEQQG, DrellYan, EEMuMu, EWParams
from mcint.processes.ew import GEV2_TO_PB

ALPHA = 1 / 128.9


def _esw(s: float, p: EWParams) -> float:
    """sigma(ee -> mumu) via gamma/Z in the textbook form (Ellis, Stirling, Webber eq. 1.?):
    4 pi alpha^2/(3s) [1 + 2 v_e v_mu chi_1 + (a_e^2 + v_e^2)(a_mu^2 + v_mu^2) chi_2], pb."""
    kappa = 1 / (4 * p.sw2 * (1 - p.sw2))  # = sqrt(2) G_F M_Z^2 / (4 pi alpha) at tree level
    den = (s - p.mz ** 2) ** 2 + (p.mz * p.wz) ** 2
    chi1, chi2 = kappa * s * (s - p.mz ** 2) / den, kappa ** 2 * s ** 2 / den
    v, a = -0.5 + 2 * p.sw2, -0.5
    return 4 * math.pi * p.alpha ** 2 / (3 * s) * (1 + 2 * v * v * chi1
                                                   + (a * a + v * v) ** 2 * chi2) * GEV2_TO_PB


def _vegas(f, dims, seed=1):
    try:
        from mcint.vegas import VEGAS
    except ImportError:
        return None
    v = VEGAS(f, dims, seed=seed, backend="numpy")
    v.train(100_000, nitn=5)
    r = v.integrate(160_000, nitn=4)
    return r.value, r.error


@pytest.mark.parametrize("sqrt_s", [10.0, 91.1876, 200.0])
def test_ee_mumu_photon_only_is_4pi_alpha2_over_3s(sqrt_s):
    proc = EEMuMu(sqrt_s, z=False)
    expect = 4 * math.pi * ALPHA ** 2 / (3 * sqrt_s ** 2) * GEV2_TO_PB
    assert proc.exact() == pytest.approx(expect, rel=1e-13)
    res = _vegas(proc, 2)
    if res is None:  # VEGAS not available: plain MC through the mapping
        v = proc(np.random.default_rng(1).random((200_000, 2)))
        res = v.mean(), v.std() / math.sqrt(v.size)
    value, err = res
    assert abs(value - expect) < 4 * err and err < 1e-2 * expect


@pytest.mark.parametrize("sqrt_s", [60.0, 88.0, 91.1876, 93.0, 100.0])
def test_ee_mumu_gamma_z_against_textbook_formula(sqrt_s):
    proc = EEMuMu(sqrt_s)
    expect = _esw(sqrt_s ** 2, proc.params)
    assert proc.exact() == pytest.approx(expect, rel=1e-12)
    v = proc(np.random.default_rng(int(sqrt_s)).random((100_000, 2)))
    mean, err = v.mean(), v.std() / math.sqrt(v.size)
    assert abs(mean - expect) < 4 * err and err < 4e-3 * expect


def test_ee_mumu_forward_backward_asymmetry_sign():
    """Below the peak the Z-photon interference makes A_FB negative (a shape check)."""
    proc = EEMuMu(80.0)
    r = np.random.default_rng(0).random((50_000, 2))
    v = proc(r)
    fwd = v[r[:, 0] > 0.5].sum()  # cos(theta_mu-) > 0 w.r.t. the e- direction
    bwd = v[r[:, 0] < 0.5].sum()
    assert (fwd - bwd) / (fwd + bwd) < -0.1


def test_ee_mumu_same_on_every_backend(backend):
    proc = EEMuMu(91.0)
    r = np.random.default_rng(2).random((100, 2))
    got = backend.to_numpy(proc(backend.asarray(r)))
    assert np.allclose(got, proc(r), rtol=1e-12, atol=0)
    mom, pdg, x1, x2, scale = proc.events(backend.asarray(r))
    assert tuple(mom.shape) == (100, 4, 4) and list(pdg) == [11, -11, 13, -13]


# -- Drell-Yan ---------------------------------------------------------------------------
def test_drell_yan_is_a_multichannel_integrand():
    dy = DrellYan()
    assert isinstance(dy, MultiChannelIntegrand)
    assert (dy.dims, dy.n_channels) == (4, 3)
    assert DrellYan(zprime_mass=0.0).n_channels == 2


def test_drell_yan_multichannel_agrees_and_beats_single_channel():
    dy = DrellYan()
    rng = np.random.default_rng(7)
    n = 12_000
    est, var = 0.0, 0.0
    for c in range(dy.n_channels):  # uniform sampler per channel, prior weights
        ev = dy.evaluate(rng.random((n // 3, 4)), c)
        w = ev.alpha_prior[:, c] * ev.value
        est += w.mean()
        var += w.var() / (n // 3)
    single = dy.evaluate(rng.random((n, 4)), 0).value  # 1/s mapping alone, same calls
    big = dy.evaluate(rng.random((20 * n, 4)), 0).value  # high-statistics one-channel run
    big_mean, big_err = big.mean(), big.std() / math.sqrt(big.size)
    err = math.sqrt(var)
    assert abs(est - big_mean) < 4 * math.hypot(err, big_err)
    assert err / est < 0.5 * (single.std() / math.sqrt(n)) / single.mean()
    quad = dy.exact()
    assert abs(est - quad) < 4 * err and abs(big_mean - quad) < 4 * big_err


def test_drell_yan_channels_describe_the_same_physics():
    """Same physical point in two charts: f = value / |dx/dr| and features agree."""
    dy = DrellYan()
    r0 = np.random.default_rng(3).uniform(0.02, 0.98, (200, 4))
    mom, x1, x2, lw0 = dy.phase_spaces[0].map(r0)
    e0 = dy.evaluate(r0, 0)
    for c in (1, 2):
        rc, lwc = dy.phase_spaces[c].map_inverse(mom, x1, x2)
        ec = dy.evaluate(rc, c)
        assert np.allclose(ec.value * np.exp(-lwc), e0.value * np.exp(-lw0), rtol=1e-8)
        assert np.allclose(ec.features, e0.features, atol=1e-9)
        assert np.allclose(ec.alpha_prior, e0.alpha_prior, rtol=1e-8)
    assert np.allclose(e0.alpha_prior.sum(axis=1), 1.0)
    assert np.allclose(e0.features, r0, atol=1e-12)  # features = photon-channel r
    assert e0.features.min() >= 0 and e0.features.max() <= 1


def test_drell_yan_same_on_every_backend(backend):
    dy = DrellYan()
    r = np.random.default_rng(4).random((64, 4))
    for c in range(3):
        ref = dy.evaluate(r, c)
        got = dy.evaluate(backend.asarray(r), c)
        assert isinstance(got, ChannelEval)
        for a, b in ((got.value, ref.value), (got.alpha_prior, ref.alpha_prior),
                     (got.features, ref.features)):
            assert np.allclose(backend.to_numpy(a), b, rtol=1e-10, atol=1e-14)


def test_drell_yan_autograd():
    torch = pytest.importorskip("torch")
    dy = DrellYan()
    r = torch.tensor(np.random.default_rng(5).random((32, 4)), requires_grad=True)
    ev = dy.evaluate(r, 1)
    (ev.value.sum() + ev.alpha_prior.sum() + ev.features.sum()).backward()
    assert torch.all(torch.isfinite(r.grad))


def test_drell_yan_events():
    dy = DrellYan()
    r = np.random.default_rng(6).random((500, 4))
    mom, pdg, x1, x2, scale = dy.events(r, 1, rng=np.random.default_rng(0))
    assert mom.shape == (500, 4, 4) and pdg.shape == (500, 4)
    assert np.allclose(mom[:, 2:].sum(axis=1), mom[:, :2].sum(axis=1), rtol=0, atol=1e-8)
    assert set(np.abs(pdg[:, 0])) <= {1, 2, 3, 4, 5} and np.all(pdg[:, 0] == -pdg[:, 1])
    assert np.all(pdg[:, 2:] == [11, -11])
    m = np.sqrt(np.maximum((mom[:, 2] + mom[:, 3])[:, 0] ** 2
                           - ((mom[:, 2] + mom[:, 3])[:, 1:] ** 2).sum(-1), 0))
    assert np.allclose(scale, m, rtol=1e-9)
    # u ubar dominates at the Z with a proton-like PDF
    assert (np.abs(pdg[:, 0]) == 2).mean() > 0.3


# -- e+ e- -> q qbar g -----------------------------------------------------------------------
@pytest.mark.parametrize("y_cut", [0.05, 0.15])
def test_ee_qqg_three_jet_rate(y_cut):
    proc = EEQQG(y_cut=y_cut)
    v = proc(np.random.default_rng(8).random((100_000, 5)))
    assert np.all(np.isfinite(v)) and np.all(v >= 0)
    mean, err = v.mean(), v.std() / math.sqrt(v.size)
    assert abs(mean - proc.exact()) < 4 * err and err < 0.02 * mean


def test_ee_qqg_events_flavours():
    proc = EEQQG(flavours=(1, 2))
    mom, pdg, *_ = proc.events(np.random.default_rng(1).random((4000, 5)))
    assert mom.shape == (4000, 5, 4) and pdg.shape == (4000, 5)
    assert np.all(pdg[:, 2] == -pdg[:, 3]) and np.all(pdg[:, 4] == 21)
    frac_u = (pdg[:, 2] == 2).mean()  # Q_u^2 / (Q_u^2 + Q_d^2) = 0.8
    assert abs(frac_u - 0.8) < 4 * math.sqrt(0.16 / 4000)


def test_ee_qqg_cut_gives_explicit_zero_and_backends(backend):
    proc = EEQQG(y_cut=0.3)
    r = np.random.default_rng(9).random((300, 5))
    v = backend.to_numpy(proc(backend.asarray(r)))
    assert np.all(np.isfinite(v)) and (v == 0).mean() > 0.9
    assert np.allclose(v, proc(r), rtol=1e-11, atol=0)


# -- bad input --------------------------------------------------------------------------------
def test_bad_process_input():
    with pytest.raises(ValueError, match="m_min"):
        DrellYan(m_min=500.0, m_max=100.0)
    with pytest.raises(ValueError, match="m_min"):
        DrellYan(sqrt_s=100.0, m_max=200.0)
    with pytest.raises(ValueError, match="width"):
        DrellYan(zprime_mass=1000.0, zprime_width=-1.0)
    with pytest.raises(ValueError, match="y_cut"):
        EEQQG(y_cut=0.4)
    with pytest.raises(ValueError, match="sqrt_s"):
        EEMuMu(-5.0)
    with pytest.raises(ValueError, match="wz"):
        EWParams(wz=-1.0)
    with pytest.raises(ValueError, match="channel"):
        DrellYan().evaluate(np.zeros((2, 4)) + 0.5, 5)
