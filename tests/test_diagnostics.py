"""Sample-quality metrics against their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcint import diagnostics as D


def test_relative_std_and_ess_of_known_weights():
    w = np.array([1.0, 3.0])
    assert D.relative_std(w) == pytest.approx(0.5)          # std 1, mean 2
    assert D.effective_sample_size(w) == pytest.approx(16 / 10)
    assert D.largest_weight_share(w) == pytest.approx(0.75)
    assert D.relative_std(np.full(10, 2.5)) == 0.0
    assert D.effective_sample_size(np.full(10, 2.5)) == pytest.approx(10)
    assert D.relative_std(np.array([1.0, -1.0])) == math.inf


@pytest.mark.parametrize("m", [None, 7])
def test_bootstrap_max_matches_explicit_replicas(m):
    rng = np.random.default_rng(3)
    w = rng.exponential(size=40)
    n = w.size
    size = n if m is None else m
    reps = rng.choice(w, size=(20000, size), replace=True).max(axis=1)
    # the exact median of the bootstrap maximum is one of the sample values; the simulated
    # median must land on it or on a neighbour in sorted order
    exact = D.bootstrap_max_weight(w, m)
    srt = np.sort(w)
    k = int(np.searchsorted(srt, exact))
    assert srt[k] == exact
    sim = np.median(reps)
    assert srt[max(k - 1, 0)] <= sim <= srt[min(k + 1, n - 1)]


def test_unweighting_efficiency_limits():
    u = D.unweighting_efficiency(np.ones(1000))
    assert u.efficiency == pytest.approx(1.0) and u.overweight_fraction == 0.0
    w = np.zeros(100)
    w[0] = 1.0
    u = D.unweighting_efficiency(w)
    # the bootstrap-median max of one non-zero weight in 100 is that weight: <w>/w_max = 1/100
    assert u.efficiency == pytest.approx(0.01)
    assert u.cut_efficiency == pytest.approx(0.01)
    # signed weights are unweighted on |w|
    assert D.unweighting_efficiency(np.array([1.0, -1.0])).efficiency == pytest.approx(1.0)


def test_channel_table_totals_and_errors():
    rng = np.random.default_rng(0)
    w = rng.normal(size=300)
    c = np.repeat([0, 1, 2], 100)
    t = D.channel_table(w, c, 4)
    for k in range(3):
        part = w[c == k]
        assert t.integrals[k] == pytest.approx(part.mean())
        assert t.errors[k] == pytest.approx(part.std(ddof=1) / math.sqrt(100))
    assert t.counts[3] == 0 and t.integrals[3] == 0 and np.isnan(t.errors[3])
    assert t.total == pytest.approx(t.integrals.sum())
    assert t.total_error == pytest.approx(math.sqrt(np.sum(t.errors[:3] ** 2)))
    assert t.shares.sum() == pytest.approx(1.0)
    assert len(t.rows()) == 4
    assert D.stratified_relative_std(t.stds, 2.0) == pytest.approx(np.nansum(t.stds) / 2.0)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="empty"):
        D.relative_std(np.array([]))
    with pytest.raises(ValueError, match="non-finite"):
        D.relative_std(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="1-d"):
        D.relative_std(np.ones((2, 2)))
    with pytest.raises(ValueError, match="same shape"):
        D.channel_table(np.ones(3), np.zeros(2), 1)
    with pytest.raises(ValueError, match="channel indices"):
        D.channel_table(np.ones(3), np.array([0, 1, 5]), 2)
    with pytest.raises(ValueError, match="replica_size"):
        D.bootstrap_max_weight(np.ones(3), 0)
