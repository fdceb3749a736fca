"""Unweighting: the kept events follow the integrand; the truncation budget holds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcint.batch import Batch
from mcint.events import (
    UnweightStats,
    max_weight,
    unweight,
    unweighted_events,
)
from mcint.results import gammaincc

SIG = 0.05


def peak(x):
    """Normal(0.5, 0.05) density on [0, 1] (weights up to ~8 under uniform sampling)."""
    return np.exp(-0.5 * ((x - 0.5) / SIG) ** 2) / (SIG * math.sqrt(2 * math.pi))


def peak_cdf(x):
    return 0.5 * (1 + np.vectorize(math.erf)((x - 0.5) / (SIG * math.sqrt(2))))


def chi2_pvalue(counts, expected):
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    return gammaincc((len(counts) - 1) / 2, chi2 / 2)


def _excess(w, t):
    a = np.abs(w)
    return np.sum(np.clip(a - t, 0, None))


@pytest.mark.parametrize("budget", [0.0, 1e-4, 1e-3, 0.05, 0.5])
def test_max_weight_solves_the_budget_equation(budget):
    w = np.random.default_rng(0).lognormal(0, 1.5, 20_000)
    t = max_weight(w, budget)
    if budget == 0:
        assert t == w.max()
        return
    # the truncated excess equals the budget (the equation defining w_max) ...
    assert _excess(w, t) == pytest.approx(budget * w.sum(), rel=1e-9)
    # ... and t is the smallest such threshold: any lower one exceeds the budget
    assert _excess(w, t * (1 - 1e-9)) > budget * w.sum()


def test_max_weight_uses_absolute_values_and_checks_input():
    w = np.array([1.0, -5.0, 2.0])
    assert max_weight(w, 0.0) == 5.0
    with pytest.raises(ValueError, match="all weights are zero"):
        max_weight(np.zeros(10))
    with pytest.raises(ValueError, match="NaN or inf"):
        max_weight(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"budget must be in \[0, 1\)"):
        max_weight(w, 1.0)
    with pytest.raises(ValueError, match="empty"):
        max_weight(np.zeros(0))


def _unweighted_hist(budget, n=400_000, bins=20, seed=1):
    rng = np.random.default_rng(seed)
    calib = peak(rng.random(n))                      # independent calibration sample
    w_max = max_weight(calib, budget)
    x = rng.random(n)
    r = unweight(peak(x), w_max=w_max, seed=seed + 1)
    kept = x[r.indices]
    # within 4 sigma of the peak, where every bin expects events
    edges = np.linspace(0.3, 0.7, bins + 1)
    counts = np.histogram(kept, edges)[0]
    prob = np.diff(peak_cdf(edges)) / (peak_cdf(1.0) - peak_cdf(0.0))
    return counts, prob * kept.size, r


def test_unweighted_events_follow_the_density():
    counts, expected, r = _unweighted_hist(1e-3)
    assert r.stats.accepted > 40_000
    assert chi2_pvalue(counts, expected) > 1e-3
    # the kept fraction is <|w|> / w_max (binomial error)
    eff = r.stats.accepted / r.stats.trials
    ref = 1.0 / r.w_max  # <|w|> = 1 for a normalised density on [0, 1]
    assert abs(eff - ref) < 5 * math.sqrt(ref * (1 - ref) / r.stats.trials)


def test_the_density_test_detects_over_truncation():
    # control: a w_max far too low flattens the peak, and the same test must notice
    counts, expected, _ = _unweighted_hist(0.3)
    assert chi2_pvalue(counts, expected) < 1e-6


def test_truncation_budget_holds_on_fresh_samples():
    rng = np.random.default_rng(5)
    budget = 1e-3
    w_max = max_weight(rng.lognormal(0, 1.0, 200_000), budget)
    fracs = [unweight(rng.lognormal(0, 1.0, 200_000), w_max=w_max, seed=i).stats
             .overweight_fraction for i in range(5)]
    # expected value is the budget; heavy tails make single samples scatter around it
    assert 0.3 * budget < np.mean(fracs) < 2.0 * budget
    assert max(fracs) < 4 * budget


def test_signed_weights_keep_their_sign_and_reproduce_the_integral():
    # f(x) = cos(3 pi x / 2) + 0.2 on [0, 1]: negative for x in (~0.42, ~0.91)
    rng = np.random.default_rng(7)

    def f(x):
        return np.cos(1.5 * np.pi * x) + 0.2

    exact_bins = lambda a, b: (np.sin(1.5 * np.pi * b) - np.sin(1.5 * np.pi * a)) / (1.5 * np.pi) \
        + 0.2 * (b - a)
    w_max = max_weight(f(rng.random(200_000)), 1e-3)
    x = rng.random(400_000)
    r = unweight(f(x), w_max=w_max, seed=8)
    kept, sign = x[r.indices], r.sign
    assert set(np.unique(sign)) == {-1.0, 1.0}
    assert np.all(np.sign(f(kept)) == sign)
    assert r.stats.negative_fraction == pytest.approx(np.mean(sign < 0))
    # signed counts per bin, times sigma_abs / N, estimate the integral over the bin
    edges = np.linspace(0, 1, 11)
    s = np.histogram(kept, edges, weights=sign)[0]
    n = np.histogram(kept, edges)[0]
    sigma_abs = r.stats.sigma_abs
    est = s * sigma_abs / kept.size
    err = np.sqrt(n) * sigma_abs / kept.size
    exact = exact_bins(edges[:-1], edges[1:])
    pulls = (est - exact) / err
    assert np.all(np.abs(pulls) < 4), pulls
    total, total_err = r.stats.sigma
    assert abs(total - exact.sum()) < 4 * total_err


def test_streaming_unweighting_gives_exactly_n_events():
    rng = np.random.default_rng(11)

    def sample(n):
        x = rng.random((n, 1))
        return Batch(x, peak(x[:, 0]))

    stats = UnweightStats()
    seen = []
    batches = list(unweighted_events(sample, 2_345, w_max=8.0, seed=3, batch_size=1000,
                                     stats=stats, progress=lambda s: seen.append(s.accepted)))
    n = sum(len(b.batch) for b in batches)
    assert n == 2_345 == stats.accepted
    trials = np.concatenate([b.trials for b in batches])
    assert np.all(trials >= 1) and trials.sum() <= stats.trials
    assert seen and seen[-1] == 2_345
    assert stats.efficiency == pytest.approx(1 / 8.0, rel=0.1)
    assert all(np.all(b.sign == 1.0) for b in batches)


def test_efficiency_counts_only_points_used():
    # one batch far larger than needed: points after the last kept event must not count
    rng = np.random.default_rng(12)
    calls = []

    def sample(n):
        calls.append(n)
        x = rng.random((n, 1))
        return Batch(x, peak(x[:, 0]))

    stats = UnweightStats()
    for _ in unweighted_events(sample, 500, w_max=8.0, seed=1, batch_size=200_000, stats=stats):
        pass
    assert stats.accepted == 500
    assert stats.efficiency == pytest.approx(1 / 8.0, rel=0.15)
    assert stats.trials == pytest.approx(4000, rel=0.15)
    # with an efficiency hint the first batch is sized to the need, not to batch_size
    calls.clear()
    for _ in unweighted_events(sample, 500, w_max=8.0, seed=1, batch_size=200_000,
                               expected_efficiency=1 / 8.0):
        pass
    assert max(calls) < 10_000


def test_streaming_unweighting_stops_hopeless_runs():
    def sample(n):
        return Batch(np.zeros((n, 1)), np.zeros(n))

    with pytest.raises(RuntimeError, match="only 0 of 10 events"):
        list(unweighted_events(sample, 10, w_max=1.0, batch_size=100, max_trials=1000))
    with pytest.raises(ValueError, match="positive integer"):
        list(unweighted_events(sample, 0, w_max=1.0))
    with pytest.raises(ValueError, match="w_max must be a positive"):
        list(unweighted_events(sample, 5, w_max=0.0))
