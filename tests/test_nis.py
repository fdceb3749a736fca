"""The neural importance sampling integrator against exact integrals (statistical pulls).

Short trainings with fixed seeds: the point is unbiasedness and honest errors, not precision,
so tolerances are pulls |(I - exact) / error| < 4.
"""

from __future__ import annotations

import math
import warnings
from math import erf

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mcint import IntegrandError, NonFiniteIntegrandError  # noqa: E402
from mcint.channels import ChannelEval, MultiChannelIntegrand  # noqa: E402
from mcint.nis import Integrator  # noqa: E402

SMALL = dict(batch_size=512, flow=dict(hidden=(16,), layers=2, bins=6))


def _mass(mu: float, s: float) -> float:
    return 0.5 * (erf((1 - mu) / (math.sqrt(2) * s)) - erf(-mu / (math.sqrt(2) * s)))


def camel(d: int):
    # the benchmark's camel (exp(-|x - mu|^2 / 0.1^2)): one definition, in mcint.examples.toys
    from mcint.examples import toys

    s = 0.1 / math.sqrt(2)
    return toys.camel(d, s), toys.camel_exact(d, s)


def gauss(d: int, mu: float = 0.4, s: float = 0.1):
    def f(x):
        return np.exp(-np.sum((x - mu) ** 2, axis=1) / (2 * s * s))

    return f, (s * math.sqrt(2 * math.pi) * _mass(mu, s)) ** d


def pull(r, exact):
    return (r.value - exact) / r.error


@pytest.mark.parametrize("d", [2, 4])
def test_camel_pull(d):
    f, exact = camel(d)
    it = Integrator(f, d, seed=3, **SMALL)
    it.train(20_000)
    r = it.integrate(40_000)
    assert abs(pull(r, exact)) < 4, (r, exact)
    assert math.isfinite(r.metrics["rel_std"])


def test_gaussian_pull_and_sample_weights():
    f, exact = gauss(3)
    it = Integrator(f, 3, seed=5, **SMALL)
    it.train(15_000)
    r = it.integrate(30_000)
    assert abs(pull(r, exact)) < 4
    b = it.sample(20_000)
    w = np.asarray(b.to_numpy().weights)
    assert b.x.shape == (20_000, 3) and w.shape == (20_000,)
    # weights = f / g: the mean estimates the integral; f/w recovers the density g
    assert abs(w.mean() - exact) < 5 * w.std() / math.sqrt(w.size)
    fx = f(np.asarray(b.to_numpy().x))
    np.testing.assert_allclose(fx / np.asarray(b.to_numpy().prob), w, rtol=2e-4)  # float32


def test_seed_repeats_exactly_and_differs_otherwise():
    f, _ = gauss(2)
    vals = []
    for seed in (7, 7, 8):
        it = Integrator(f, 2, seed=seed, **SMALL)
        it.train(6_000)
        vals.append(it.integrate(5_000).value)
    assert vals[0] == vals[1]
    assert vals[0] != vals[2]


def test_buffered_training_reuses_points():
    f, exact = gauss(2)
    a = Integrator(f, 2, seed=1, vegas_init=False, **SMALL)
    a.train(5_120)
    b = Integrator(f, 2, seed=1, vegas_init=False, buffer_capacity=4096, buffered_steps=3,
                   **SMALL)
    b.train(5_120)
    assert a.caller.total_calls == b.caller.total_calls == 5_120
    assert b.step > 3 * a.step            # more optimisation steps for the same calls
    assert sum(s["buffered"] for s in b.log) >= 2 * a.step
    assert abs(pull(b.integrate(20_000), exact)) < 4


@pytest.mark.parametrize("until", [0.0, 0.5, 1.0])
def test_buffered_steps_stop_after_buffered_until(until):
    # 20 fresh steps of 512 calls; buffered steps (one after each) only in the first share
    f, _ = gauss(2)
    it = Integrator(f, 2, seed=1, vegas_init=False, buffer_capacity=4096, buffered_steps=1,
                    buffered_until=until, **SMALL)
    it.train(20 * 512)
    flags = [s["buffered"] for s in it.log]
    fresh_before = [sum(not b for b in flags[:i]) for i in range(len(flags))]
    assert sum(not b for b in flags) == 20
    assert sum(flags) == int(math.ceil(until * 20))
    # every buffered step follows a fresh step with index below until * 20
    assert all(fresh_before[i] <= until * 20 for i, b in enumerate(flags) if b)


def test_buffered_until_is_validated():
    f, _ = gauss(2)
    for bad in (-0.1, 1.5, "half"):
        with pytest.raises(ValueError, match="buffered_until"):
            Integrator(f, 2, buffered_until=bad)


@pytest.mark.parametrize("loss", ["variance", "variance_softclip", "kl_softclip", "reverse_kl"])
def test_every_loss_trains_unbiased(loss):
    f, exact = gauss(2)
    it = Integrator(f, 2, seed=2, loss=loss, schedule="onecycle", **SMALL)
    it.train(6_000)
    r = it.integrate(20_000)
    assert abs(pull(r, exact)) < 4 and math.isfinite(r.error)


# -- multi-channel ---------------------------------------------------------------------------
class TwoPeaks(MultiChannelIntegrand):
    """f = N(0.25) + N(0.75) in 2-d; channel c maps r linearly onto half c of the x0 axis
    (so each channel alone covers half the space and needs the other)."""

    dims = 2
    n_channels = 2

    def __init__(self, zero_channel: int | None = None, nan_every: int = 0,
                 bad_shape: bool = False):
        self.zero_channel = zero_channel
        self.nan_every = nan_every
        self.bad_shape = bad_shape
        self.s = 0.08

    def f(self, x):
        s = self.s
        g = lambda m: np.exp(-((x[:, 0] - m) ** 2 + (x[:, 1] - 0.5) ** 2) / (2 * s * s))
        return g(0.25) + g(0.75)

    def exact(self):
        s = self.s
        return (s * math.sqrt(2 * math.pi)) ** 2 * _mass(0.5, s) * (_mass(0.25, s)
                                                                   + _mass(0.75, s))

    def evaluate(self, r, channel):
        x = r.copy()
        x[:, 0] = 0.5 * r[:, 0] + 0.5 * channel
        v = self.f(x) * 0.5
        if channel == self.zero_channel:
            v = np.zeros_like(v)
        if self.nan_every:
            v[:: self.nan_every] = np.nan
        n = len(r)
        prior = np.zeros((n, 2))
        prior[:, channel] = 1.0       # each point belongs to exactly one chart
        if self.bad_shape:
            return ChannelEval(v[:-1], prior, x)
        return ChannelEval(v, prior, x)


class Overlapping(MultiChannelIntegrand):
    """Three channels that each cover the whole square with power maps; the third (x = r^4)
    carries the smallest share (~15 %) of the peak at 0.3: the one to drop."""

    dims = 2
    n_channels = 3

    def __init__(self, groups=None):
        self.groups = groups
        self.powers = [1.0, 1.0, 4.0]

    def f(self, x):
        return np.exp(-np.sum((x - 0.3) ** 2, axis=1) / (2 * 0.1**2))

    def exact(self):
        return (0.1 * math.sqrt(2 * math.pi) * _mass(0.3, 0.1)) ** 2

    def _map(self, r, k):
        p = self.powers[k]
        return r**p, np.prod(p * r ** (p - 1), axis=1)

    def evaluate(self, r, channel):
        r = np.clip(r, 1e-12, 1.0)
        x, jac = self._map(r, channel)
        # density of each channel at x: 1 / jac at r_k = x^(1/p)
        dens = []
        for k in range(3):
            rk = x ** (1.0 / self.powers[k])
            dens.append(1.0 / np.prod(self.powers[k] * rk ** (self.powers[k] - 1), axis=1))
        dens = np.stack(dens, axis=1)
        return ChannelEval(self.f(x) * jac, dens / dens.sum(axis=1, keepdims=True), x)


def test_multichannel_alpha_sums_to_one_and_channels_add_up():
    mc = TwoPeaks()
    it = Integrator(mc, seed=4, **SMALL)
    it.train(12_000)
    r = it.integrate(30_000)
    assert abs(pull(r, mc.exact())) < 4
    t = r.channels
    assert t.total == pytest.approx(r.value, rel=1e-12)
    assert np.sum(t.integrals) == pytest.approx(r.value, rel=1e-12)
    assert r.channels.counts.sum() == 30_000
    # each channel carries its own peak
    assert t.integrals[0] == pytest.approx(mc.exact() / 2, rel=0.05)


def test_channels_sharing_a_flow_each_get_draws_of_the_whole_mixture():
    """Two mirror channels share one flow (``groups=[0, 0]``) and are drawn in one call per
    group: each channel's rows must be independent draws of the defensive mixture, so each
    channel's own integral is right. Handing the group's rows out in the order they were made
    (flow draws first, defensive draws last) gave channel 1 every defensive point: with
    ``defensive_integrate=0.5`` the channels came out 0.0596 and 0.0203 against 0.0402 each
    (errors 3e-4: tens of sigma)."""
    mc = TwoPeaks()
    it = Integrator(mc, seed=4, groups=[0, 0], defensive_integrate=0.5, channel_weights=False,
                    **SMALL)
    it.train(12_000)
    r = it.integrate(40_000)
    t = r.channels
    for c in (0, 1):
        assert abs(t.integrals[c] - mc.exact() / 2) < 5 * t.errors[c], (c, t.integrals, t.errors)


def test_learned_channel_weights_are_normalised():
    mc = Overlapping()
    it = Integrator(mc, seed=4, **SMALL)
    it.train(12_000)
    xp = it.trainer.tb.xp
    feats = it.trainer.tb.asarray(np.random.default_rng(0).random((500, 2)), it.dtype)
    prior = it.trainer.tb.asarray(np.random.default_rng(1).dirichlet(np.ones(3), 500), it.dtype)
    with torch.no_grad():
        a = it.model.cw.alpha(feats, prior, xp.asarray(np.ones(3, dtype=bool)))
        a2 = it.model.cw.alpha(feats, prior, xp.asarray(np.array([True, False, True])))
    np.testing.assert_allclose(a.sum(axis=1).numpy(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(a2.sum(axis=1).numpy(), 1.0, rtol=1e-6)
    assert float(a2[:, 1].abs().max()) == 0.0
    # the network moved away from its zero initialisation
    assert float(it.model.cw.params[-1][0].detach().abs().sum()) > 0
    assert abs(pull(it.integrate(30_000), mc.exact())) < 4


def test_grouping_and_dropping_keep_the_total_unbiased():
    mc = Overlapping(groups=[0, 0, 1])       # channels 0 and 1 are the same map: share a flow
    it = Integrator(mc, seed=6, drop_threshold=0.25, drop_interval=5, **SMALL)
    assert it.model.n_groups == 2
    it.train(15_000)
    assert not it.active[2]                  # the power-4 channel carries the least
    r = it.integrate(30_000)
    assert r.channels.counts[2] == 0
    assert abs(pull(r, mc.exact())) < 4


def test_drop_sorts_by_absolute_share():
    # a large negative channel must never be dropped (madnis sorts signed means)
    it = Integrator(Overlapping(), seed=0, drop_threshold=0.1, **SMALL)
    it.book.history.add(np.array([-5.0, 6.0, 0.01]), np.ones(3), np.array([10, 10, 10]))
    it.book.deactivate(it.book.to_drop(it.book.drop_interval))
    assert list(it.active) == [True, True, False]


def test_mapped_channels_from_plain_function():
    from mcint.transforms import Affine

    f, exact = gauss(2, mu=0.5)
    maps = [Affine(np.ones(2), np.zeros(2)), Affine(np.ones(2), np.zeros(2))]
    it = Integrator(f, 2, channels=maps, seed=1, **SMALL)
    it.train(6_000)
    assert abs(pull(it.integrate(20_000), exact)) < 4
    # the channel-weight network arrives after the first step and renews the optimiser's
    # leaves: the sampling views must follow them (share memory with the current leaves)
    be, samplers, _ = it.trainer.draw_view()
    if be.name == "numba":
        for view, s in zip(samplers, it.model.samplers):
            for a, b in zip(view.flow.parameters(), s.flow.parameters()):
                assert np.shares_memory(a, b.detach().numpy())


# -- bad input ---------------------------------------------------------------------------------
def test_nonfinite_raise_or_skip_never_poisons():
    f, _ = gauss(2)

    def bad(x):
        v = f(x)
        v[::50] = np.nan
        return v

    with pytest.raises(NonFiniteIntegrandError, match="non-finite"):
        Integrator(bad, 2, seed=0, **SMALL).train(2_000)
    it = Integrator(bad, 2, seed=0, nonfinite="skip", **SMALL)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")         # skipping must not spam warnings: one a call
        it.train(5_000)
    assert it.nonfinite_points > 0
    assert [w.category for w in got] == [RuntimeWarning], [str(w.message) for w in got]
    assert f"returned {it.nonfinite_points} non-finite value(s)" in str(got[0].message)
    for p in it.trainer.opt.params:
        assert torch.isfinite(p).all()
    with pytest.warns(RuntimeWarning, match="counted as zero"):
        r = it.integrate(10_000)
    assert math.isfinite(r.value) and math.isfinite(r.error)
    assert r.metrics["nonfinite_points"] > 0

    mc = TwoPeaks(nan_every=7)
    with pytest.raises(NonFiniteIntegrandError, match="channel"):
        Integrator(mc, seed=0, **SMALL).train(2_000)
    it = Integrator(mc, seed=0, nonfinite="skip", **SMALL)
    with pytest.warns(RuntimeWarning, match="counted as zero"):
        it.train(4_000)
    assert it.nonfinite_points > 0
    assert all(torch.isfinite(p).all() for p in it.trainer.opt.params)


def test_shape_mismatch_is_named():
    with pytest.raises(IntegrandError, match=r"expected \(\d+,\)"):
        Integrator(lambda x: np.ones((len(x), 2)), 2, seed=0, **SMALL).train(2_000)
    with pytest.raises(IntegrandError, match="channel 0"):
        Integrator(TwoPeaks(bad_shape=True), seed=0, **SMALL).train(2_000)
    with pytest.raises(ValueError, match="dims"):
        Integrator(lambda x: x[:, 0], None)


def test_zero_channel_and_zero_integrand():
    mc = TwoPeaks(zero_channel=1)
    it = Integrator(mc, seed=0, **SMALL)
    it.train(6_000)
    r = it.integrate(10_000)
    assert r.channels.integrals[1] == 0.0
    assert abs(pull(r, mc.exact() / 2)) < 4
    z = Integrator(lambda x: np.zeros(len(x)), 2, seed=0, **SMALL)
    z.train(4_000)
    rz = z.integrate(4_000)
    assert rz.value == 0.0 and rz.error == 0.0
    assert all(torch.isfinite(p).all() for p in z.trainer.opt.params)


def test_bad_options_are_named():
    f, _ = gauss(2)
    with pytest.raises(ValueError, match="unknown loss"):
        Integrator(f, 2, loss="nope")
    with pytest.raises(ValueError, match="defensive"):
        Integrator(f, 2, defensive=1.5)
    with pytest.raises(ValueError, match="groups"):
        Integrator(TwoPeaks(), groups=[0])
    with pytest.raises(ValueError, match="nonfinite"):
        Integrator(f, 2, nonfinite="ignore")


# -- checkpoints -------------------------------------------------------------------------------
@pytest.mark.parametrize("multi", [False, True])
def test_checkpoint_resume_equals_uninterrupted(tmp_path, multi):
    if multi:
        integrand, kw = TwoPeaks(), {}
    else:
        integrand, kw = gauss(2)[0], dict(dims=2)
    opts = dict(seed=11, buffer_capacity=2048, buffered_steps=1, **SMALL)
    a = Integrator(integrand, **kw, **opts)
    a.train(3_000)
    path = tmp_path / "ck.npz"
    a.save(path)
    a.train(3_000)
    ra = a.integrate(5_000)
    b = Integrator.resume(path, integrand, **kw)
    b.train(3_000)
    rb = b.integrate(5_000)
    assert b.step == a.step and b.calls == a.calls
    assert rb.value == ra.value and rb.error == ra.error
    for pa, pb in zip(a.trainer.opt.params, b.trainer.opt.params):
        assert torch.equal(pa, pb)


def test_checkpoint_loads_without_pickle_and_checks_kind(tmp_path):
    f, _ = gauss(2)
    it = Integrator(f, 2, seed=0, **SMALL)
    it.train(2_000)
    p = tmp_path / "ck.npz"
    it.save(p)
    with np.load(p, allow_pickle=False) as z:
        assert "__meta__" in z.files
    from mcint import serialize

    with pytest.raises(serialize.ModelFileError):
        serialize.load(p, expect_kind="flow")
    with pytest.raises(serialize.ModelFileError, match="channel"):
        Integrator.resume(p, TwoPeaks())


def test_integrand_cannot_change_the_sampled_points(backend):
    """The points an integrand sees are the events of sample(): read-only (numpy), checked
    through torch's version counter, or a copy (array-api-strict, cupy)."""
    from mcint.integrand import native

    @native
    def writes(x):
        v = x[:, 0] * 1.0
        x[:, 0] = 0.5
        return v

    it = Integrator(writes, 2, backend=backend, seed=0, **SMALL)
    try:
        b = it.sample(500)                      # untrained: drawn on the backend itself
    except IntegrandError as exc:
        assert "wrote into its input points x" in str(exc)
    else:
        assert np.unique(backend.to_numpy(b.x)[:, 0]).size > 100


def test_float64_and_integration_on_every_backend(backend):
    # training on torch, sampling/integration on the backend under test; a numpy integrand
    f, exact = gauss(2)
    it = Integrator(f, 2, seed=9, dtype="float64", backend=backend, **SMALL)
    it.train(3_000)
    r = it.integrate(8_000)
    assert abs(pull(r, exact)) < 4
    ref = Integrator(f, 2, seed=9, dtype="float64", backend="numpy", **SMALL)
    ref.train(3_000)
    # CPU backends share the random stream: the same points, the same estimate
    if not backend.gpu:
        assert r.value == pytest.approx(ref.integrate(8_000).value, rel=1e-9)


@pytest.mark.parametrize("multi", [False, True], ids=["one-channel", "two-channels"])
def test_training_device_repeat_and_resume(backend, tmp_path, multi):
    # GPU backends train on torch's CUDA device, the others on the CPU; on every one the same
    # seed repeats the run and a checkpoint half way resumes to the uninterrupted numbers
    target, exact = (TwoPeaks(), TwoPeaks().exact()) if multi else gauss(2)

    def run(ck=None):
        it = (Integrator(target, seed=4, backend=backend, **SMALL) if multi
              else Integrator(target, 2, seed=4, backend=backend, **SMALL))
        it.train(3_000)
        if ck is not None:
            it.save(ck)
            it = Integrator.resume(ck, target, backend=backend)
        it.train(3_000)
        return it, it.integrate(6_000)

    it, a = run()
    _, b = run()
    _, c = run(tmp_path / "ck.npz")
    assert it.trainer.tb.device.type == ("cuda" if backend.gpu else "cpu")
    assert (a.value, a.error) == (b.value, b.error) == (c.value, c.error)
    assert abs(pull(a, exact)) < 4


def test_training_draws_on_numba_views_equal_torch_draws():
    # fresh training points are drawn through the numba kernels on views of the torch
    # parameters; the same run drawing on torch must see the same points and densities
    pytest.importorskip("numba")
    f, _ = camel(3)
    runs = []
    for via_numba in (True, False):
        it = Integrator(f, 3, seed=5, dtype="float64", **SMALL)
        if not via_numba:
            t = it.trainer
            t.draw_view = lambda t=t: (t.tb, t.model.samplers, t.rng)
        it.train(8_000)
        assert (it.trainer.draw_view()[0].name == "numba") == via_numba
        runs.append(it)
    ra, rb = runs[0].trainer.recent[-1], runs[1].trainer.recent[-1]
    np.testing.assert_allclose(ra["u"].numpy(), rb["u"].numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ra["log_q_sample"].numpy(), rb["log_q_sample"].numpy(),
                               rtol=1e-9, atol=1e-9)
    pa, pb = runs[0].trainer.opt.params, runs[1].trainer.opt.params
    for x, y in zip(pa, pb):
        np.testing.assert_allclose(x.detach().numpy(), y.detach().numpy(), atol=1e-8)
