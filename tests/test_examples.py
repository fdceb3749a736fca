"""Built-in examples: exact values are right, integrands run on every backend, events are physical."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcint import Integrand, examples
from mcint.batch import Batch

TOYS = ["camel", "gauss", "ring"]


def _quad_1d(f, n=200_001):
    x = np.linspace(0.0, 1.0, n)
    y = f(x)
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2)


@pytest.mark.parametrize("dims", [1, 2, 5])
def test_camel_and_gauss_exact_against_quadrature(dims):
    # separable peaks: each peak's integral is the product of 1-d integrals
    s = 0.1
    g = lambda mu, sig: (lambda x: np.exp(-0.5 * ((x - mu) / sig) ** 2) / (sig * math.sqrt(2 * math.pi)))
    camel = 0.5 * (_quad_1d(g(1 / 3, s)) ** dims + _quad_1d(g(2 / 3, s)) ** dims)
    assert examples.get("camel").exact(dims) == pytest.approx(camel, rel=1e-8)
    gauss = _quad_1d(g(0.5, 0.05)) ** dims
    assert examples.get("gauss").exact(dims) == pytest.approx(gauss, rel=1e-8)


def test_ring_exact_against_polar_quadrature():
    ex = examples.get("ring")
    f = ex.integrand()
    # the ring is rotation invariant: integrate 2 pi r f(r) over r on a fine grid
    r = np.linspace(0, 0.5, 400_001)
    pts = np.stack([0.5 + r, np.full_like(r, 0.5)], axis=1)
    vals = 2 * np.pi * r * f(pts)
    quad = float(np.sum((vals[1:] + vals[:-1]) * np.diff(r)) / 2)
    assert ex.exact() == pytest.approx(quad, rel=1e-8)


@pytest.mark.parametrize("name", TOYS)
def test_toy_integrands_on_every_backend(backend, name):
    ex = examples.get(name)
    f = Integrand(ex.integrand(), ex.dims)
    x = np.random.default_rng(0).random((1000, ex.dims))
    ref = ex.integrand()(x)
    got = backend.to_numpy(f(backend.asarray(x, dtype="float64"), backend))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name", TOYS)
def test_plain_monte_carlo_agrees_with_exact(name):
    ex = examples.get(name)
    x = np.random.default_rng(1).random((400_000, ex.dims))
    v = ex.integrand()(x)
    est, err = v.mean(), v.std() / math.sqrt(v.size)
    assert abs(est - ex.exact()) < 4 * err


def test_unknown_example_and_fixed_dims():
    with pytest.raises(examples.UnknownExample, match="unknown example 'camle'; built-in "
                       "examples: camel"):
        examples.get("camle")
    with pytest.raises(ValueError, match="fixed dimension 2"):
        examples.get("ring").integrand(3)
    with pytest.raises(ValueError, match="positive integer"):
        examples.get("camel").integrand(0)


def _physics(name):
    pytest.importorskip("mcint.processes")
    if name not in examples.names():
        pytest.skip(f"{name} not available")
    return examples.get(name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["ee-mumu", "drell-yan", "ee-qqg"])
def test_physics_events_conserve_momentum(name, dtype):
    ex = _physics(name)
    f = ex.integrand()
    rng = np.random.default_rng(2)
    x = rng.random((200, ex.dims)).astype(dtype)   # float32: the default NIS sampler dtype
    channels = None
    if hasattr(f, "evaluate"):           # multi-channel: the sampler hands out features
        x = np.concatenate([np.asarray(f.evaluate(x[c::3], c).features) for c in range(3)])
        channels = np.repeat(np.arange(3), [len(x[c::3]) for c in range(3)])
    ev = ex.physics.to_particles(Batch(x, np.ones(len(x)), channels=channels),
                                 np.full(len(x), 2.0))
    p = ev.momenta
    inc = ev.status[0] == -1
    np.testing.assert_allclose(p[:, inc].sum(axis=1), p[:, ~inc].sum(axis=1),
                               atol=1e-8 * float(np.abs(p).max()))
    assert np.all(ev.masses < 1e-3 * p[..., 0] + 1e-9)     # massless leptons and partons
    # on shell to full precision (kinematics run in float64 whatever the sampler's dtype)
    m2 = p[..., 0] ** 2 - np.sum(p[..., 1:] ** 2, axis=-1)
    np.testing.assert_allclose(m2, ev.masses**2, atol=1e-9 * float(p[..., 0].max()) ** 2)
    info = ex.physics.run_info(1.5, 0.1, 3)
    assert info.xsec == 1.5 and info.beams[0] != 0 and info.energies[0] > 0


def test_drell_yan_features_give_the_channel_momenta():
    # events from features (what the multi-channel sampler returns) must be the same physical
    # events as those mapped from each channel's own random numbers
    ex = _physics("drell-yan")
    dy = ex.integrand()
    r = np.random.default_rng(3).random((50, 4))
    for c in range(dy.n_channels):
        feats = np.asarray(dy.evaluate(r, c).features)
        mom_f = np.asarray(dy.events(feats, 0)[0])
        mom_r = np.asarray(dy.events(r, c)[0])
        np.testing.assert_allclose(mom_f, mom_r, rtol=1e-9, atol=1e-9)
