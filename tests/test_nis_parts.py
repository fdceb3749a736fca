"""Each part of the neural integrator built and checked alone, against exact answers: the option
groups, the sampler model (a normalised mixture density), the channel book (allocation,
dropping), the integration plan (the least-variance defensive share), the VEGAS stage, the
estimator (an exact integral and its analytic spread) and the trainer."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from mcint.backends import get_backend
from mcint.nis import ChannelOptions, Integrator, SamplerOptions, TrainingOptions
from mcint.nis.defensive import IntegrationPlan, mixture_channel_moments
from mcint.nis.estimate import CallCount, Estimator
from mcint.nis.evaluate import ChannelCaller
from mcint.nis.model import SamplerModel, WeightSpec, channel_groups
from mcint.nis.multichannel import ChannelBook
from mcint.nis.options import Options, saved_options
from mcint.nis.train_loop import Trainer
from mcint.nis.vegas_init import VegasStage

FLOW = dict(hidden=(16,), layers=2, bins=6)
NP = get_backend("numpy")


def product(x):
    return x[:, 0] * x[:, 1]        # integral 1/4, variance under uniform 1/9 - 1/16


def gauss(x):
    x = np.asarray(x)
    return np.exp(-((x - 0.5) ** 2).sum(axis=1) / (2 * 0.1 ** 2)) / (2 * math.pi * 0.1 ** 2)


def _model(f, dims=2, flow=None, seed=0):
    caller = ChannelCaller(f, dims)
    return SamplerModel(caller, [0], "float64", flow, [seed], WeightSpec())


# -- options ---------------------------------------------------------------------------------
def test_flat_keywords_go_to_their_group_and_groups_are_frozen():
    o = Options.build(training=TrainingOptions(lr=3e-3), batch_size=256, defensive=0.2,
                      drop_threshold=0.01)
    assert (o.training.lr, o.training.batch_size) == (3e-3, 256)
    assert o.sampler.defensive == 0.2 and o.channels.drop_threshold == 0.01
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.training.lr = 1.0
    with pytest.raises(TypeError, match="unexpected keyword.*'bogus'"):
        Options.build(bogus=1)
    with pytest.raises(TypeError, match="TrainingOptions"):
        Options.build(training=SamplerOptions())
    with pytest.raises(ValueError, match="defensive must be"):
        SamplerOptions(defensive=1.5)
    with pytest.raises(ValueError, match="split_sign needs prior='integrand'"):
        ChannelOptions(split_sign=True, prior="uniform")


def test_option_groups_and_flat_keywords_build_the_same_integrator():
    pytest.importorskip("torch")
    a = Integrator(gauss, 2, seed=4, batch_size=256, lr=5e-3, flow=FLOW, defensive=0.2,
                   vegas_ninc=64)
    b = Integrator(gauss, 2, seed=4, training=TrainingOptions(batch_size=256, lr=5e-3),
                   sampler=SamplerOptions(flow=FLOW, defensive=0.2), vegas_ninc=64)
    assert a.options == b.options == saved_options(b.settings, 4, "raise")
    a.train(3_000)
    b.train(3_000)
    assert [r["loss"] for r in a.log] == [r["loss"] for r in b.log]
    assert a.integrate(2_000).value == b.integrate(2_000).value


# -- the sampler model -----------------------------------------------------------------------
def test_mixture_density_is_normalised_and_matches_the_draws():
    m = _model(gauss, flow=dict(FLOW), seed=3)
    rng = NP.rng(1)
    eps = 0.3
    # normalisation: E_uniform[m(u)] = 1 for the mixture (1 - eps) q + eps
    u = rng.uniform((200_000, 2), "float64")
    lq = m.log_q(u, np.zeros(len(u), np.int64), m.samplers, eps)
    dens = np.exp(lq)
    assert abs(dens.mean() - 1) < 5 * dens.std() / math.sqrt(len(u))
    # the density recorded with a draw is the mixture's at the drawn point
    b = m.collect(np.array([4_000]), eps, NP, rng, m.samplers)
    again = m.log_q(b["u"], np.zeros(4_000, np.int64), m.samplers, eps)
    np.testing.assert_allclose(b["log_q_sample"], again, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(b["target"], gauss(b["r"]), rtol=1e-12)
    assert (b["channels"] == 0).all()


def test_channel_groups_from_option_or_integrand():
    class WithGroups:
        groups = [5, 5, 2]

    assert channel_groups(None, WithGroups(), 3) == [1, 1, 0]
    assert channel_groups(False, WithGroups(), 3) == [0, 1, 2]
    assert channel_groups([7, 3, 7], None, 3) == [1, 0, 1]
    with pytest.raises(ValueError, match="one group per channel"):
        channel_groups([0, 1], None, 3)


# -- the channel book ------------------------------------------------------------------------
def test_shares_mix_uniform_and_scores_over_active_channels():
    book = ChannelBook(3, True)
    s = book.shares(0.25, np.array([1.0, 3.0, np.nan]))
    np.testing.assert_allclose(s, 0.25 / 3 + 0.75 * np.array([0.25, 0.75, 0.0]))
    book.deactivate([0])
    s = book.shares(0.5, np.array([1.0, 3.0, 1.0]))
    np.testing.assert_allclose(s, [0.0, 0.25 + 0.5 * 0.75, 0.25 + 0.5 * 0.25])
    assert book.alloc(10, 1.0).tolist() == [0, 5, 5]


def test_dropping_by_absolute_share_never_all():
    book = ChannelBook(3, True, drop_threshold=0.1, drop_interval=5)
    book.history.add(np.array([-5.0, 6.0, 0.01]), np.ones(3), np.array([10, 10, 10]))
    assert book.to_drop(4) == []            # only every drop_interval steps
    assert book.to_drop(5) == [2]           # |I_c| shares, not signed means
    one = ChannelBook(1, True, drop_threshold=0.9, drop_interval=1)
    one.history.add(np.array([1.0]), np.ones(1), np.array([10]))
    assert one.to_drop(1) == []


def test_sign_channel_without_support_is_dropped_after_the_probe():
    book = ChannelBook(2, True, split_sign="auto", sign_probe=10)
    assert book.note_sign_support(np.array([1.0, 0.0]), np.array([5, 5])).tolist() == []
    assert book.note_sign_support(np.array([1.0, 0.0]), np.array([5, 5])).tolist() == [1]
    assert ChannelBook(2, True).note_sign_support(np.zeros(2), np.array([99, 99])).size == 0


# -- the integration plan --------------------------------------------------------------------
def test_plan_without_flows_or_points():
    assert IntegrationPlan().eps(_model(gauss), np.ones(1, bool), [], 0, None) == 1.0
    m = _model(gauss, flow=dict(FLOW))
    assert IntegrationPlan(defensive=0.1).eps(m, np.ones(1, bool), [], 0, None) == 0.1
    assert IntegrationPlan(0.05).eps(m, np.ones(1, bool), [], 3, None) == 0.05


def test_auto_share_is_the_least_variance_candidate():
    torch_be = pytest.importorskip("torch") and get_backend("torch")
    m = _model(gauss, flow=dict(FLOW), seed=2)
    samplers = [type(s)(s.flow.to(torch_be, "float64"), None) for s in m.samplers]
    m.samplers[:] = samplers
    batch = m.collect(np.array([8_000]), 0.1, torch_be, torch_be.rng(0), m.samplers)
    plan = IntegrationPlan("auto", 1e-4, 0.1)
    eps = plan.eps(m, np.ones(1, bool), [batch], 1, torch_be)
    # brute force over the same candidates with the moments of each share
    f = torch_be.to_numpy(batch["target"])
    lflow = np.log((np.exp(torch_be.to_numpy(batch["log_q_sample"])) - 0.1) / 0.9)
    ch = np.zeros(len(f), np.int64)
    cands = [e for e in IntegrationPlan.GRID if e >= 1e-4]
    stds = [mixture_channel_moments(f, lflow, torch_be.to_numpy(batch["log_q_sample"]), ch,
                                    np.array([0]), e)[1][0] for e in cands]
    assert eps == cands[int(np.argmin(stds))]
    assert plan.channel_plan["stds"][0] == pytest.approx(min(stds), rel=1e-6)


# -- the VEGAS stage -------------------------------------------------------------------------
def test_vegas_stage_grid_size_and_a_better_map():
    assert VegasStage(True, 0.2, None, 2, 0).ninc == 512
    # above 2 dims: 64 increments until each of the 8 rounds has 100 points per increment
    assert VegasStage(True, 0.2, None, 4, 0).ninc_for(8 * 100 * 128 - 8) == 64
    assert VegasStage(True, 0.2, None, 4, 0).ninc_for(8 * 100 * 128) == 128
    assert VegasStage(True, 0.2, 32, 4, 0).ninc_for(10) == 32
    stage = VegasStage(True, 0.2, 64, 2, 0)
    assert stage.pretrain([gauss], 10, "float64", 0.0) is None     # too few calls
    (amap,), used, beta = stage.pretrain([gauss], 40_000, "float64", 0.0)
    assert used <= 40_000 and beta == 1.0
    y = NP.rng(5).uniform((100_000, 2), "float64")
    x, jac = amap.forward_jac(y)
    w = gauss(x) * jac
    assert abs(w.mean() - 1) < 5 * w.std() / math.sqrt(len(w))   # exact integral: 1 (~)
    assert w.std() < 0.3 * gauss(y).std()                          # the map flattens the peak


# -- the estimator ---------------------------------------------------------------------------
def test_estimator_gives_the_exact_integral_and_the_analytic_error():
    m = _model(product)                    # no flow: uniform sampling
    book = ChannelBook(1, False)
    counter = CallCount()
    est = Estimator(m, book, NP, NP.rng(3), counter)
    n = 40_000
    r = est.integrate(n, 1.0, None)
    sigma = math.sqrt((1 / 9 - 1 / 16) / n)
    assert abs(r.value - 0.25) < 4 * sigma
    assert r.error == pytest.approx(sigma, rel=0.05)
    b = est.sample(1_000, 1.0, None)
    np.testing.assert_allclose(b.weights, product(b.x), rtol=1e-12)
    np.testing.assert_allclose(b.prob, 1.0)
    assert counter.total == n + 1_000


# -- the trainer -----------------------------------------------------------------------------
def test_trainer_alone_spends_its_budget_and_learns():
    pytest.importorskip("torch")
    tb = get_backend("torch")
    m = _model(gauss, flow=dict(FLOW), seed=1)
    book = ChannelBook(1, False)
    counter = CallCount()
    t = Trainer(m, book, counter, TrainingOptions(batch_size=256), VegasStage(False, 0.2, None,
                2, 0), tb, tb.rng(0))
    assert t.planned_steps(6_000) == 23
    t.train(6_000)
    plan = t.batch_plan(6_000)
    assert counter.total == t.train_calls == sum(plan) and t.step == len(plan) == len(t.log)
    assert t.pending is None and t.beta == 1.0
    est = Estimator(m, book, NP, NP.rng(0), counter)
    r = est.integrate(20_000, 0.1, None)
    assert abs(r.value - 1.0) < 4 * r.error                      # exact: 1 (to 1e-10)
    assert r.metrics["rel_std"] < 0.5 * 3.8                     # uniform sampling: rel. std 3.8
    with pytest.raises(ValueError, match="calls must be"):
        t.train(0)
