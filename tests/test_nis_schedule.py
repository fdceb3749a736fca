"""Training schedules of the NIS integrator: geometric batch growth over a train() call and the
refinement loss that takes over once tempering has reached the integrand (beta = 1)."""

from __future__ import annotations

import math
import os
import signal

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mcint.nis import Integrator  # noqa: E402

FLOW = dict(hidden=(16,), layers=2, bins=6)


def f(x):
    return np.exp(-np.sum((x - 0.4) ** 2, axis=1) / (2 * 0.1 ** 2))


def test_batch_plan_grows_geometrically_within_the_budget():
    it = Integrator(f, 2, seed=0, batch_size=(256, 1024), flow=FLOW)
    budget = 80_000
    plan = it.trainer.batch_plan(budget)
    assert plan[0] == 256 and all(b % 8 == 0 for b in plan)
    assert all(b1 >= b0 for b0, b1 in zip(plan, plan[1:]))
    assert sum(plan) <= budget and budget - sum(plan) < 1024 + 8
    # size at the share t of the budget used is 256 * 4^t (up to rounding to 8)
    done = np.concatenate([[0], np.cumsum(plan)[:-1]]) / budget
    assert np.all(np.abs(np.asarray(plan) - 256 * 4.0 ** done) <= 4)
    assert plan[-1] > 900
    # fewer steps than constant 256-point batches, more than constant 1024
    assert budget // 1024 < len(plan) < budget // 256
    const = Integrator(f, 2, seed=0, batch_size=256, flow=FLOW)
    assert const.trainer.batch_plan(1000) == [256, 256, 256]
    assert const.trainer.batch_growth is None and it.trainer.batch_growth == (256, 1024)


def test_growing_batches_spend_the_plan_and_the_lr_follows_the_call_share():
    it = Integrator(f, 2, seed=1, batch_size=(64, 256), flow=FLOW, vegas_init=False,
                    temper=0.0)
    lrs, sizes = [], []
    it.train(6_000, lambda s: (lrs.append(s.lr), sizes.append(it.trainer.step_batch)))
    plan = it.trainer.batch_plan(6_000)
    assert sizes == plan and it.trainer.train_calls == sum(plan) and it.step == len(plan)
    edges = np.concatenate([[0], np.cumsum(plan)[:-1]]) / sum(plan)
    cos = 0.5 * (1 + np.cos(np.pi * edges))
    np.testing.assert_allclose(lrs, it.trainer.lr * np.maximum(cos, 1e-3), rtol=1e-12)
    r = it.integrate(20_000)
    exact = 2 * math.pi * 0.1 ** 2 * (0.5 * (math.erf(0.6 / (math.sqrt(2) * 0.1))
                                             + math.erf(0.4 / (math.sqrt(2) * 0.1)))) ** 2
    assert abs(r.value - exact) < 5 * r.error


def _run(temper, **kw):
    it = Integrator(f, 2, seed=3, batch_size=128, flow=FLOW, vegas_init=False, temper=temper,
                    **kw)
    betas = []
    it.train(3_000, lambda s: betas.append(it.trainer.beta))
    return [row["loss"] for row in it.log], betas


def test_refine_loss_replaces_the_loss_exactly_when_beta_reaches_one():
    # no tempering: beta = 1 from the start, so KL-then-variance is the variance loss throughout
    var, _ = _run(0.0, loss="variance", refine_loss=False)
    switched, _ = _run(0.0, loss="kl", refine_loss="variance")
    kl, _ = _run(0.0, loss="kl", refine_loss=False)
    assert switched == var and switched != kl
    # tempered: identical to pure KL while beta < 1, different afterwards
    kl_t, betas = _run(0.3, loss="kl", refine_loss=False)
    sw_t, betas2 = _run(0.3, loss="kl", refine_loss="variance")
    n_temp = next(i for i, b in enumerate(betas) if b >= 1.0)
    assert 0 < n_temp < len(betas) - 2, "the test needs a tempered stretch and a refined one"
    assert betas2[:n_temp + 1] == betas[:n_temp + 1]
    assert sw_t[:n_temp] == kl_t[:n_temp]
    assert sw_t[n_temp + 1:] != kl_t[n_temp + 1:]


def test_defaults_one_channel_vs_several():
    one = Integrator(f, 2, flow=FLOW)
    assert one.trainer.refine_loss is not None and one.trainer.refine_loss.__name__ == "loss"
    from mcint.nis.losses import variance_softclip
    assert one.trainer.refine_loss is variance_softclip
    assert "refine_loss" not in one.options   # default runs keep their checkpoint option set


@pytest.mark.parametrize("bad, match", [
    ((256,), "pair"), ((4, 256), "batch_size must be an integer >= 8"),
    ((256, "x"), "batch_size"), (256.0, "batch_size"),
])
def test_bad_batch_size_is_named(bad, match):
    with pytest.raises(ValueError, match=match):
        Integrator(f, 2, batch_size=bad)


@pytest.mark.parametrize("bad", ["nope", 3, len])
def test_bad_refine_loss_is_named(bad):
    with pytest.raises(ValueError, match="loss"):
        Integrator(f, 2, refine_loss=bad)


def test_interrupted_growing_run_resumes_bit_for_bit(tmp_path):
    opts = dict(seed=5, batch_size=(64, 192), flow=FLOW, refine_loss="variance")
    a = Integrator(f, 2, **opts)
    a.train(4_000)
    ra = a.integrate(3_000)

    b = Integrator(f, 2, **opts)
    ck = tmp_path / "ck.npz"

    def interrupt(status):
        if status.step == 7:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        b.train(4_000, interrupt, checkpoint_path=str(ck), checkpoint_every=100)
    assert b.step < a.step
    c = Integrator.resume(str(ck), f)
    assert c.trainer.batch_growth == (64, 192)
    c.train()
    rc = c.integrate(3_000)
    assert c.step == a.step and c.calls == a.calls
    assert rc.value == ra.value and rc.error == ra.error


def test_vegas_grid_and_defensive_fit_defaults():
    # the flows fit alone (defensive points enter by importance weights) and sit on a fine
    # VEGAS grid: 512 increments up to 2 dims, 128 above, at most a tenth of one VEGAS round
    two, four = Integrator(f, 2, flow=FLOW), Integrator(lambda x: f(x[:, :2]), 4, flow=FLOW)
    assert (two.trainer.vegas.ninc, four.trainer.vegas.ninc) == (512, 128)
    assert not two.trainer.defensive_in_loss and not four.trainer.defensive_in_loss
    assert Integrator(f, 2, flow=FLOW, vegas_ninc=32).trainer.vegas.ninc == 32
    assert Integrator(lambda x: f(x[:, :2]), 9, flow=FLOW).trainer.vegas.ninc == 64
    for calls, ninc in ((40_000, 100), (400_000, 512)):
        it = Integrator(f, 2, seed=1, flow=FLOW)
        it.trainer._pretrain_vegas(int(calls * it.trainer.vegas.fraction))
        # 8 adaptation rounds of calls * vegas_fraction / 8 points each
        assert np.asarray(it.model.samplers[0].vmap.grid).shape == (2, ninc + 1)
    # above 2 dims the default grid stays at 64 until a round has 100 points per increment
    for calls, ninc in ((200_000, 64), (600_000, 128)):
        it = Integrator(lambda x: f(x[:, :2]), 4, seed=1, flow=FLOW)
        it.trainer._pretrain_vegas(int(calls * it.trainer.vegas.fraction))
        assert np.asarray(it.model.samplers[0].vmap.grid).shape == (4, ninc + 1)


@pytest.mark.parametrize("bad", [1, 2.5, "64"])
def test_bad_vegas_ninc_is_named(bad):
    with pytest.raises(ValueError, match="vegas_ninc"):
        Integrator(f, 2, vegas_ninc=bad)


def test_large_budgets_take_the_large_default_batches():
    from mcint.nis.train_loop import LARGE_BUDGET
    from mcint.transforms import Affine

    g4 = lambda x: f(x[:, :2])  # noqa: E731
    it = Integrator(g4, 4, flow=FLOW)
    small = it.trainer.batch_plan(LARGE_BUDGET - 1)
    assert set(small) == {256} and len(small) == (LARGE_BUDGET - 1) // 256
    # constant large batches: up to 4 dims 1024 (2 dims: growing from 256 below), 8 dims 512
    two = Integrator(f, 2, flow=FLOW)
    assert two.trainer.batch_plan(LARGE_BUDGET - 1)[0] == 256
    for itg, b in ((two, 1024), (it, 1024),
                   (Integrator(lambda x: f(x[:, :2]), 8, flow=FLOW), 512)):
        plan = itg.trainer.batch_plan(LARGE_BUDGET)
        assert set(plan) == {b} and len(plan) == LARGE_BUDGET // b
    # several channels: 1024 constant below, growing to 4096 above
    multi = Integrator(f, 2, channels=[Affine(np.zeros(2), np.ones(2))] * 2, flow=FLOW)
    assert set(multi.trainer.batch_plan(LARGE_BUDGET - 1)) == {1024}
    big = multi.trainer.batch_plan(LARGE_BUDGET)
    assert big[0] == 1024 and 3900 < big[-1] <= 4096 and sum(big) <= LARGE_BUDGET
    # an explicit batch size and 16 dims keep their constant batches
    for other in (Integrator(g4, 4, flow=FLOW, batch_size=256),
                  Integrator(lambda x: f(x[:, :2]), 16, flow=FLOW)):
        assert set(other.trainer.batch_plan(LARGE_BUDGET)) == {256}


def test_buffered_steps_by_default_from_8_dims_or_several_channels():
    from mcint.transforms import Affine

    deep = Integrator(lambda x: f(x[:, :2]), 8, flow=FLOW)
    multi = Integrator(f, 2, channels=[Affine(np.zeros(2), np.ones(2))] * 2, flow=FLOW)
    for it in (deep, multi):
        assert (it.trainer.buffer.capacity, it.trainer.buffered_steps) == (8192, 1)
    for it in (Integrator(lambda x: f(x[:, :2]), 7, flow=FLOW),
               Integrator(lambda x: f(x[:, :2]), 9, flow=FLOW, buffered_steps=0,
                          buffer_capacity=0)):
        assert (it.trainer.buffer.capacity, it.trainer.buffered_steps) == (0, 0)
    # the default buffered step runs: two optimiser steps per fresh batch (one channel: all
    # of them; several: the first 60% of the fresh steps, buffered_until)
    it = Integrator(lambda x: f(x[:, :2]), 9, seed=0, flow=FLOW, vegas_init=False,
                    batch_size=64)
    it.train(1280)
    assert [e["buffered"] for e in it.log] == [False, True] * 20
    assert (it.trainer.buffered_until, multi.trainer.buffered_until) == (1.0, 0.6)
