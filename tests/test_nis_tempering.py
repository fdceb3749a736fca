"""Tempering's ESS with channels: it measures each channel's fit, not how unequal channels are."""

import numpy as np

from mcint.nis.tempering import ess_fraction, next_beta


def test_ess_per_channel_ignores_unequal_channel_integrals():
    # every channel sampled perfectly (constant weights), but one holds 99.9% of the integral:
    # pooled Kish ESS is about 1/3 of the batch, the per-channel one exactly 1
    ch = np.repeat(np.arange(3), 100)
    w = np.where(ch == 1, 1000.0, 1.0)
    assert ess_fraction(np.log(w)) < 0.34
    assert abs(ess_fraction(np.log(w), ch) - 1.0) < 1e-12


def test_ess_per_channel_is_integral_weighted_mean():
    rng = np.random.default_rng(3)
    ch = np.repeat(np.arange(2), 400)
    w = rng.exponential(size=800) * np.where(ch == 0, 1.0, 5.0)
    expect = 0.0
    shares = []
    for c in range(2):
        wc = w[ch == c]
        shares.append(wc.mean())
        expect += wc.mean() * wc.sum() ** 2 / (wc @ wc) / wc.size
    expect /= sum(shares)
    assert abs(ess_fraction(np.log(w), ch) - expect) < 1e-12


def test_next_beta_reaches_one_when_every_channel_fits():
    ch = np.repeat(np.arange(3), 200)
    lf = np.log(np.where(ch == 0, 1e4, 1.0))
    lq = np.zeros(ch.size)
    assert next_beta(lf, lq, 0.2, 0.6) == 0.2          # pooled: stuck
    assert next_beta(lf, lq, 0.2, 0.6, channels=ch) == 1.0
