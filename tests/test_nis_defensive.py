"""The integration plan: the defensive share, each channel's spread under it, and the channel
allocation of integrate() and sample().

Oracles: quadrature of ``Var_m(f / m) = int (f/m - I)^2 m du`` for known densities in one
dimension; the per-channel spreads and integrals measured by integrate() itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcint.nis.defensive import mixture_channel_moments

U = np.linspace(0.0, 1.0, 2_000_001)


def _quad(y):
    return float(np.sum((y[1:] + y[:-1]) * 0.5) * (U[1] - U[0]))


def _exact(f, q, eps):
    m = (1 - eps) * q(U) + eps
    w = f(U) / m
    integral = _quad(f(U))
    return integral, math.sqrt(_quad((w - integral) ** 2 * m))


# channel 0: a flow q = 2u that is almost the integrand (rel. std ~1e-3 at small eps, the
# regime a good flow reaches); channel 1: a uniform flow under a peak (a poor fit)
DELTA = 2e-3
CHANNELS = [
    (lambda u: 5.0 * 2 * u * (1 + DELTA * np.sin(2 * np.pi * u)), lambda u: 2 * u),
    (lambda u: 3.0 * np.exp(-0.5 * ((u - 0.5) / 0.1) ** 2), lambda u: np.ones_like(u)),
]


@pytest.mark.parametrize("eps", [1e-5, 1e-3, 0.03, 0.3])
def test_moments_under_the_mixture_match_quadrature(eps):
    rng = np.random.default_rng(11)
    n = 200_000
    fs, lflow, lqs, ch = [], [], [], []
    for c, (f, q) in enumerate(CHANNELS):
        # the training mixture that drew the points: 0.9 q_old + 0.1 uniform, q_old = 3u^2
        # for channel 0 (another shape than the current flow), uniform for channel 1
        if c == 0:
            u = np.where(rng.random(n) < 0.1, rng.random(n), rng.random(n) ** (1 / 3))
            s = 0.9 * 3 * u * u + 0.1
        else:
            u = rng.random(n)
            s = np.ones(n)
        fs.append(f(u))
        lflow.append(np.log(q(u)))
        lqs.append(np.log(s))
        ch.append(np.full(n, c))
    # float32, as training hands them over
    args = [np.concatenate(a).astype(np.float32) for a in (fs, lflow, lqs)]
    means, stds = mixture_channel_moments(*args, np.concatenate(ch), np.array([0, 1]), eps)
    for c, (f, q) in enumerate(CHANNELS):
        integral, std = _exact(f, q, eps)
        assert means[c] == pytest.approx(integral, rel=3e-3)
        assert stds[c] == pytest.approx(std, rel=0.05), (c, stds[c], std)
    # the hard case is in range: channel 0 at small eps has a spread of ~1e-3 of its integral
    if eps <= 1e-3:
        assert stds[0] / means[0] < 3e-3


def test_integration_allocates_by_spread_and_sampling_by_integral():
    from test_nis import SMALL, Overlapping

    from mcint.nis import Integrator

    it = Integrator(Overlapping(), seed=3, **SMALL)
    it.train(12_000)
    r = it.integrate(60_000)
    plan = it.plan.channel_plan
    eps = r.metrics["defensive"]
    assert eps == it.plan.eps_auto
    # the plan's spreads and integrals are those integrate() then measures
    t = r.channels
    assert np.all(np.abs(plan["means"] - t.integrals) < 5 * t.errors + 0.05 * np.abs(t.integrals))
    np.testing.assert_allclose(plan["stds"], t.stds, rtol=0.3)
    uniform = 0.1     # integrate()'s and sample()'s default uniform_ratio

    def shares(x):
        x = np.abs(x) / np.abs(x).sum()
        return uniform / 3 + (1 - uniform) * x

    np.testing.assert_allclose(r.channels.counts / 60_000, shares(plan["stds"]), atol=1e-4)
    b = it.sample(60_000, stratified=True)
    counts = np.bincount(np.asarray(b.to_numpy().channels), minlength=3)
    np.testing.assert_allclose(counts / 60_000, shares(plan["means"]), atol=1e-4)


def test_sample_draws_independent_points_whose_every_prefix_is_unbiased():
    """Events stop anywhere in a batch: sample() must give i.i.d. points (the channel of each
    drawn with its share), not channel-grouped stratified rows."""
    stats = pytest.importorskip("scipy.stats")
    from test_nis import SMALL, Overlapping

    from mcint.nis import Integrator

    it = Integrator(Overlapping(), seed=3, **SMALL)
    it.train(12_000)
    p = np.abs(it.plan.channel_plan["means"])
    p = 0.1 / 3 + 0.9 * p / p.sum()
    n = 60_000
    b = it.sample(n).to_numpy()
    ch = np.asarray(b.channels, dtype=np.int64)
    w = np.asarray(b.weights, dtype=np.float64)
    counts = np.bincount(ch, minlength=3)
    chi2 = float(np.sum((counts - n * p) ** 2 / (n * p)))
    assert stats.chi2.sf(chi2, 2) > 1e-4, (counts, n * p)
    # channels interleave as independent draws: the number of changes along the rows
    changes = int(np.count_nonzero(np.diff(ch)))
    q = 1 - float(np.sum(p * p))
    assert abs(changes - (n - 1) * q) < 6 * np.sqrt(n * q * (1 - q)), changes
    # every prefix estimates the integral: the first, middle and last tenth of the rows
    exact = Overlapping().exact()
    for part in (w[: n // 10], w[n // 2: n // 2 + n // 10], w[-n // 10:]):
        err = part.std() / np.sqrt(part.size)
        assert abs(part.mean() - exact) < 5 * err, (part.mean(), err, exact)


def test_plan_travels_with_the_checkpoint(tmp_path):
    from test_nis import SMALL, Overlapping

    from mcint.nis import Integrator

    it = Integrator(Overlapping(), seed=3, **SMALL)
    it.train(6_000)
    plan, eps = it.plan.channel_plan, it.plan.eps_auto      # made at the end of train()
    path = str(tmp_path / "ck.npz")
    it.save(path)
    again = Integrator.resume(path, Overlapping())
    again.trainer.tb = None         # as in a process without torch: the stored plan is used
    t = again.trainer
    assert again.plan.eps(again.model, again.active, t.recent, t.step, t.tb) == eps
    for k in ("stds", "means"):
        np.testing.assert_array_equal(again.plan.channel_plan[k], plan[k])
    r1, r2 = it.integrate(20_000), again.integrate(20_000)
    np.testing.assert_array_equal(r1.channels.counts, r2.channels.counts)
    assert r2.value == pytest.approx(r1.value, rel=1e-6)


def test_moments_without_usable_points_are_unknown():
    # a channel whose flow density vanishes at all its points (eps = 0): NaN, no exception
    f = np.ones(6)
    lflow = np.array([0.0, 0.0, 0.0, -np.inf, -np.inf, -np.inf])
    means, stds = mixture_channel_moments(f, lflow, np.zeros(6), np.repeat([0, 1], 3),
                                          np.array([0, 1]), 0.0)
    assert means[0] == 1.0 and stds[0] == 0.0
    assert np.isnan(means[1]) and np.isnan(stds[1])


def test_plan_is_reused_until_the_model_or_the_options_change():
    from test_nis import SMALL, Overlapping

    from mcint.nis import Integrator

    it = Integrator(Overlapping(), seed=3, **SMALL)
    it.train(4_000)
    plan = it.plan.channel_plan
    it.sample(500)
    it.integrate(500)
    assert it.plan.channel_plan is plan          # no second pass over the recent points
    it.plan.defensive_integrate = 0.05
    it.sample(500)
    assert it.plan.channel_plan is not plan      # another share: its own spreads
    plan = it.plan.channel_plan
    it.train(1_000)
    assert it.plan.channel_plan is not plan      # trained further: a new plan
