"""Signed integrands split into a positive and a negative channel (``split_sign``), against
exact integrals of the parts (pulls at fixed seeds)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mcint.backends import get_backend  # noqa: E402
from mcint.examples import toys  # noqa: E402
from mcint.nis import Integrator, MappedChannels, SignSplit  # noqa: E402
from mcint.transforms import Affine  # noqa: E402

SMALL = dict(flow=dict(hidden=(16,), layers=2, bins=6))


@pytest.mark.parametrize("seed", [1, 2])
def test_split_parts_match_exact_and_add_up(seed):
    f = toys.signed_two_peak(2)
    pos, neg = toys.signed_two_peak_parts(2)
    it = Integrator(f, 2, seed=seed, split_sign=True, **SMALL)
    assert it.n_channels == 2 and it.model.groups == [0, 1]
    it.train(20_000)
    r = it.integrate(20_000)
    t = r.channels
    assert t.integrals[0] > 0 > t.integrals[1]
    for got, err, exact in zip(t.integrals, t.errors, (pos, neg)):
        assert abs(got - exact) < 4 * err, (got, err, exact)
    assert math.isclose(t.integrals.sum(), r.value, rel_tol=1e-12)
    assert abs(r.value - (pos + neg)) < 4 * r.error
    # the split beats the floor of one |f| sampler, sqrt(J^2 - I^2) / I = sqrt(8) here
    floor = math.sqrt((pos - neg) ** 2 - (pos + neg) ** 2) / (pos + neg)
    assert r.metrics["rel_std"] < 0.5 * floor
    # sample(): weights average to the integral, every point in its own sign's channel
    b = it.sample(20_000).to_numpy()
    w, ch = np.asarray(b.weights), np.asarray(b.channels)
    assert abs(w.mean() - (pos + neg)) < 5 * w.std() / math.sqrt(w.size)
    fx = np.asarray(f(np.asarray(b.x)))
    assert np.all((fx[w != 0] >= 0) == (ch[w != 0] == 0))


def test_no_negative_part_gives_zero_without_nan():
    f = toys.gauss(2, 0.1)
    exact = toys.gauss_exact(2, 0.1)
    it = Integrator(f, 2, seed=3, split_sign=True, **SMALL)
    it.train(10_000)
    r = it.integrate(10_000)
    assert it.active.tolist() == [True, True]
    assert r.channels.integrals[1] == 0.0 and r.channels.errors[1] == 0.0
    assert all(math.isfinite(v) for v in (r.value, r.error, r.metrics["rel_std"]))
    assert abs(r.value - exact) < 4 * r.error


def test_auto_drops_a_sign_that_never_occurs_and_keeps_a_real_one():
    f = toys.gauss(2, 0.1)
    it = Integrator(f, 2, seed=4, split_sign="auto", sign_probe=2048, **SMALL)
    it.train(10_000)
    assert it.active.tolist() == [True, False]
    r = it.integrate(10_000)
    assert r.channels.counts[1] == 0 and r.channels.integrals[1] == 0.0
    assert abs(r.value - toys.gauss_exact(2, 0.1)) < 4 * r.error
    # a signed integrand keeps both channels
    it = Integrator(toys.signed_two_peak(2), 2, seed=4, split_sign="auto", sign_probe=2048,
                    **SMALL)
    it.train(8_000)
    assert it.active.tolist() == [True, True]


def test_split_of_multichannel_integrand_weights_sum_to_one():
    f = toys.signed_two_peak(2)
    maps = [Affine(np.zeros(2), np.ones(2)), Affine(np.ones(2), np.zeros(2))]  # x, 1 - x
    s = SignSplit(MappedChannels(f, 2, maps, channel_names=["a", "b"]))
    assert s.n_channels == 4 and s.groups == [0, 1, 2, 3]
    assert s.channel_names == ["a+", "a-", "b+", "b-"]
    be = get_backend("numpy")
    r = np.random.default_rng(0).random((4000, 2))
    for c in range(4):
        ev = s.evaluate_on(be.asarray(r), c, be)
        fx = np.asarray(f(np.asarray(ev.features)))       # f at the mapped point x(r)
        a = np.asarray(ev.alpha_prior)
        np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(ev.value), fx, rtol=1e-12)   # |dx/dr| = 1
        # sign channels carry the base weight (1/2 each here) only on their own sign
        np.testing.assert_allclose(a[:, 0] + a[:, 2], np.where(fx >= 0, 1.0, 0.0))
        np.testing.assert_allclose(a[:, 1] + a[:, 3], np.where(fx < 0, 1.0, 0.0))
    it = Integrator(s, seed=5, **SMALL)
    it.train(12_000)
    r = it.integrate(20_000)
    assert abs(r.value - toys.signed_two_peak_exact(2)) < 4 * r.error


def test_split_checkpoint_resumes_exactly(tmp_path):
    f = toys.signed_two_peak(2)
    a = Integrator(f, 2, seed=6, split_sign="auto", **SMALL)
    a.train(6_000)
    a.save(tmp_path / "ck.npz")
    b = Integrator.resume(tmp_path / "ck.npz", f, dims=2)
    assert b.book.split_sign == "auto" and b.n_channels == 2
    np.testing.assert_array_equal(b.book.sign_zero, a.book.sign_zero)
    a.train(3_000)
    b.train(3_000)
    assert a.integrate(5_000).value == b.integrate(5_000).value


def test_split_sign_bad_options():
    f = toys.signed_two_peak(2)
    with pytest.raises(ValueError, match="split_sign must be"):
        Integrator(f, 2, split_sign="yes")
    with pytest.raises(ValueError, match="prior='integrand'"):
        Integrator(f, 2, split_sign=True, prior="uniform")
    with pytest.raises(ValueError, match="already split"):
        SignSplit(SignSplit(f, 2))
