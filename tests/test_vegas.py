"""VEGAS+ integrator: exact integrals with pulls, sampling, seeds, bad input -- every backend."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import mcint
from mcint import IntegrandError, NonFiniteIntegrandError
from mcint.vegas import VEGAS, choose_ninc, choose_nstrat


# -- integrands with exact integrals on the unit cube -------------------------------------
def _gauss_mass(mu: float, s: float) -> float:
    """int_0^1 N(x; mu, s) dx."""
    r2 = s * math.sqrt(2.0)
    return 0.5 * (math.erf((1 - mu) / r2) + math.erf(mu / r2))


def gaussian(dims, s=0.05, mu=0.5):
    def f(x):
        return np.exp(-np.sum((x - mu) ** 2, axis=1) / (2 * s * s)) / (2 * np.pi * s * s) ** (
            dims / 2)
    return f, _gauss_mass(mu, s) ** dims


def camel(dims, s=0.1 / math.sqrt(2)):
    g1, e1 = gaussian(dims, s, 1 / 3)
    g2, e2 = gaussian(dims, s, 2 / 3)
    return (lambda x: 0.5 * (g1(x) + g2(x))), 0.5 * (e1 + e2)


def peaks(dims, c=0.02):
    """Product of 1-d Lorentzian peaks at different places."""
    a = np.linspace(0.2, 0.8, dims)

    def f(x):
        return np.prod(c / (c * c + (x - a) ** 2), axis=1)
    return f, math.prod(math.atan((1 - ai) / c) + math.atan(ai / c) for ai in a)


def zero_region(dims):
    """d! on the simplex sum(x) < 1, zero elsewhere (discontinuous): exactly 1."""
    def f(x):
        return np.where(np.sum(x, axis=1) < 1.0, float(math.factorial(dims)), 0.0)
    return f, 1.0


CASES = {
    "gauss2": (gaussian(2), 2, 5_000, 2e-3),
    "gauss4": (gaussian(4), 4, 10_000, 5e-3),
    "camel2": (camel(2), 2, 5_000, 5e-3),
    "camel4": (camel(4), 4, 10_000, 2e-2),
    "peaks3": (peaks(3), 3, 10_000, 1e-2),
    "zero_region3": (zero_region(3), 3, 10_000, 3e-2),
}


# the weight-tail heuristic (mcint.health) flags the discontinuous simplex integrand although
# its VEGAS error is honest (see the many-seed pull test); this test checks the pulls
@pytest.mark.filterwarnings("ignore:the VEGAS integral may be wrong")
@pytest.mark.parametrize("case", list(CASES))
def test_exact_integrals(backend, case):
    (f, exact), dims, calls, max_rel = CASES[case]
    v = VEGAS(f, dims, backend=backend, seed=11)
    v.train(8 * calls, nitn=8)
    r = v.integrate(4 * calls, nitn=4)
    pull = (r.value - exact) / r.error
    assert abs(pull) < 4, f"{case}: {r!r} vs exact {exact:.6f}, pull {pull:.2f}"
    # the error is small (VEGAS works), so the pull test has teeth
    assert r.error / exact < max_rel, f"{case}: relative error {r.error / exact:.3g}"
    assert r.calls <= 4 * calls


def test_camel_8d_and_float32(backend):
    (f, exact) = camel(8)
    for dtype in ("float64", "float32"):
        v = VEGAS(f, 8, backend=backend, seed=3, dtype=dtype)
        v.train(160_000, nitn=8)
        r = v.integrate(60_000, nitn=3)
        assert abs(r.value - exact) < 4 * r.error, (dtype, r, exact)
        assert r.error / exact < 0.05


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_exact_integrals_many_seeds(case):
    """Pull distribution over seeds: mean ~ 0 and spread ~ 1 (honest errors)."""
    (f, exact), dims, calls, _ = CASES[case]
    pulls = []
    for seed in range(20):
        v = VEGAS(f, dims, seed=seed, backend="numba" if "numba" in mcint.available()
                  else "numpy")
        v.train(6 * calls, nitn=6)
        r = v.integrate(4 * calls, nitn=4)
        pulls.append((r.value - exact) / r.error)
    pulls = np.array(pulls)
    assert abs(pulls.mean()) < 4 / math.sqrt(len(pulls)) + 0.2
    assert 0.5 < pulls.std() < 1.6


def test_domain_and_weighted_training_average(backend):
    # int over [-1, 2] x [0, 3] of x^2 * y = (9/3) * (9/2) = 13.5
    v = VEGAS(lambda x: x[:, 0] ** 2 * x[:, 1], 2, backend=backend, seed=5,
              domain=[(-1, 2), (0, 3)])
    rt = v.train(20_000, nitn=5)
    assert rt.weighted and len(rt.iterations) == 5
    r = v.integrate(12_000, nitn=3)
    assert not r.weighted
    assert abs(r.value - 13.5) < 4 * r.error and r.error < 0.05


def test_same_seed_same_numbers(backend):
    f, _ = camel(3)
    runs = []
    for seed in (7, 7, 8):
        v = VEGAS(f, 3, backend=backend, seed=seed)
        v.train(9_000, nitn=3)
        runs.append([(it.value, it.error) for it in v.integrate(6_000, nitn=2)])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_backends_agree_with_numpy(backend):
    """CPU backends share the random stream, so they must agree to round-off."""
    if backend.gpu:
        pytest.skip("different random stream on this device")
    f, _ = peaks(3)
    out = {}
    for be in ("numpy", backend):
        v = VEGAS(f, 3, backend=be, seed=2)
        v.train(16_000, nitn=4)
        r = v.integrate(8_000, nitn=2)
        out[str(be)] = (r.value, r.error, backend.to_numpy(v.map.grid) if be is backend
                        else v.map.grid)
    (a, b) = out.values()
    assert a[0] == pytest.approx(b[0], rel=1e-10)
    assert a[1] == pytest.approx(b[1], rel=1e-8)
    np.testing.assert_allclose(a[2], b[2], atol=1e-10)


# -- sampling --------------------------------------------------------------------------------
@pytest.mark.parametrize("stratified", [True, False])
def test_sample_weights_estimate_integral(backend, stratified):
    (f, exact) = gaussian(3, s=0.08)
    v = VEGAS(f, 3, backend=backend, seed=9)
    v.train(48_000, nitn=6)
    n = 20_000
    b = v.sample(n, stratified=stratified)
    xp = backend.xp
    assert tuple(b.x.shape) == (n, 3) and tuple(b.weights.shape) == (n,)
    w = backend.to_numpy(b.weights)
    x = backend.to_numpy(b.x)
    assert np.all((x >= 0) & (x <= 1))
    # weights = f / g with g the design density
    np.testing.assert_allclose(w, f(x) / backend.to_numpy(b.prob), rtol=1e-10)
    np.testing.assert_allclose(backend.to_numpy(b.f), f(x), rtol=1e-12)
    # std/sqrt(n) is an honest (conservative for stratified) error of the mean
    err = w.std() / math.sqrt(n)
    assert abs(w.mean() - exact) < 4 * err
    assert err / exact < 0.01
    assert float(xp.mean(b.weights)) == pytest.approx(w.mean())


def test_sample_unweighted_histogram():
    """Unweighting a VEGAS sample reproduces the target density (1-d marginal)."""
    s = 0.1
    (f, exact) = gaussian(2, s=s)
    v = VEGAS(f, 2, seed=4)
    v.train(60_000, nitn=6)
    b = v.sample(50_000)
    rng = np.random.default_rng(0)
    keep = rng.random(len(b)) < b.weights / b.weights.max()
    x0 = b.x[keep, 0]
    assert x0.size > 5_000
    hist, edges = np.histogram(x0, bins=10, range=(0.2, 0.8))
    mids = 0.5 * (edges[1:] + edges[:-1])
    expect = np.exp(-(mids - 0.5) ** 2 / (2 * s * s))
    expect *= hist.sum() / expect.sum()
    assert np.all(np.abs(hist - expect) < 5 * np.sqrt(expect) + 5)


def test_sample_before_training_and_too_small_stratified():
    v = VEGAS(lambda x: np.ones(len(x)), 2, seed=1)
    b = v.sample(100)
    np.testing.assert_allclose(b.weights, 1.0)
    v.train(2_000, nitn=1)
    with pytest.raises(ValueError, match="stratified"):
        v.sample(10, stratified=True)
    assert len(v.sample(10)) == 10


# -- bad input -------------------------------------------------------------------------------
def test_zero_integrand_gives_exact_zero(backend):
    v = VEGAS(lambda x: np.zeros(x.shape[0]), 3, backend=backend, seed=1)
    grid0 = backend.to_numpy(v.map.grid).copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            rt = v.train(6_000, nitn=3)
            r = v.integrate(4_000, nitn=2)
            b = v.sample(500)
    assert (rt.value, rt.error, r.value, r.error) == (0.0, 0.0, 0.0, 0.0)
    assert repr(r) == "0(0)"
    assert float(backend.xp.sum(b.weights)) == 0.0
    # the map did not adapt to garbage: still uniform (up to the resize for 2000 calls)
    g = backend.to_numpy(v.map.grid)
    np.testing.assert_allclose(g, np.broadcast_to(np.linspace(0, 1, g.shape[1]), g.shape),
                               atol=1e-12)
    assert grid0.shape[0] == g.shape[0]


def _with_nan(x):
    out = np.exp(-np.sum(x, axis=1))
    out[x[:, 0] < 0.01] = np.nan
    return out


def test_nonfinite_integrand_raises_or_zeroes(backend):
    v = VEGAS(_with_nan, 2, backend=backend, seed=1)
    with pytest.raises(NonFiniteIntegrandError, match=r"non-finite value\(s\).*x="):
        v.train(2_000, nitn=1)
    v = VEGAS(_with_nan, 2, backend=backend, seed=1, nonfinite="zero")
    with pytest.warns(RuntimeWarning, match="counted as zero"):
        r = v.integrate(2_000, nitn=1)
    assert math.isfinite(r.value) and r.value > 0
    assert v.integrand.nonfinite_count > 0


def test_wrong_output_shape_and_dtype(backend):
    with pytest.raises(IntegrandError, match="shape"):
        VEGAS(lambda x: np.ones((x.shape[0], 2)), 2, backend=backend).train(100, nitn=1)
    with pytest.raises(IntegrandError, match="complex"):
        VEGAS(lambda x: np.ones(x.shape[0]) * 1j, 2, backend=backend).train(100, nitn=1)


@pytest.mark.parametrize("kwargs,match", [
    ({"dims": 0}, "dims"), ({"ninc": 1}, "ninc"), ({"alpha": -0.5}, "alpha"),
    ({"beta": 1.5}, "beta"), ({"neval_frac": 1.0}, "neval_frac"),
    ({"dtype": "float16"}, "dtype"), ({"nstrat": [2]}, "nstrat"),
    ({"domain": [(0, 1), (1, 0)]}, "domain"), ({"nonfinite": "ignore"}, "nonfinite"),
])
def test_bad_arguments(kwargs, match):
    args = {"dims": 2, **kwargs}
    dims = args.pop("dims")
    with pytest.raises(ValueError, match=match):
        VEGAS(lambda x: x[:, 0], dims, **args)


def test_calls_too_small():
    v = VEGAS(lambda x: x[:, 0], 2, nstrat=[20, 20])
    with pytest.raises(ValueError, match="too few for 400 hypercubes"):
        v.train(1_000, nitn=1)
    with pytest.raises(ValueError, match="calls"):
        VEGAS(lambda x: x[:, 0], 2).train(5, nitn=1)


def test_calls_are_the_total_budget_of_every_method(backend):
    """train, integrate and __call__ spend ``calls`` in all, ``calls // nitn`` per iteration."""
    seen = []

    def f(x):
        seen.append(x.shape[0])
        return np.exp(-np.sum(x, axis=1))

    v = VEGAS(f, 2, backend=backend, seed=1, nitn=4)
    runs = [(lambda: v.train(8_000), 8_000, 4), (lambda: v.train(9_000, nitn=3), 9_000, 3),
            (lambda: v.integrate(6_000, nitn=2), 6_000, 2), (lambda: v(4_000, nitn=2), 4_000, 2)]
    for run, budget, nitn in runs:
        seen.clear()
        r = run()
        assert 0.85 * budget <= sum(seen) <= budget and r.calls == sum(seen)
        assert len(r.iterations) == nitn
    with pytest.raises(ValueError, match="gives 9 calls per iteration; need at least 10"):
        v.integrate(99, nitn=11)


def _writes_points(x):
    v = x[:, 0].copy()
    x[:, 0] = 0.5
    return v


def test_integrand_cannot_change_the_sampled_points(backend):
    """numpy integrands get read-only points; native ones are checked (torch) or get a copy."""
    from mcint.integrand import native

    with pytest.raises(IntegrandError, match="wrote into its input points x"):
        VEGAS(_writes_points, 2, backend=backend, seed=1).train(2_000, nitn=2)

    @native
    def writes(x):
        v = x[:, 0] * 1.0
        x[:, 0] = 0.5
        return v

    v = VEGAS(writes, 2, backend=backend, seed=1)
    try:
        v.train(2_000, nitn=2)
    except IntegrandError as exc:
        assert "wrote into its input points x" in str(exc)
    else:       # it wrote into a copy (array-api-strict, cupy): the points are untouched
        assert np.unique(backend.to_numpy(v.sample(500).x)[:, 0]).size > 100


@pytest.mark.parametrize("neval,dims", [(10_000, 2), (100_000, 8), (1_000_000, 30),
                                         (50_000, 3), (1_000, 1), (100_000, 5), (10**7, 2)])
def test_stratification_rules_like_vegas(neval, dims):
    vegas = pytest.importorskip("vegas")
    integ = vegas.Integrator(dims * [[0, 1]], neval=neval)
    ns = choose_nstrat(neval, dims, 0.75, 0.75)
    ninc, ns = choose_ninc(neval, ns, 1000)
    assert list(ns) == [int(n) for n in np.asarray(integ.nstrat)]
    # vegas may use a different ninc per axis; ours is the one of the finest-stratified axis
    assert ninc == int(np.asarray(integ.map.ninc)[0])


def test_stratification_caps():
    assert math.prod(choose_nstrat(10**9, 3, 0.0, 0.0, max_nhcube=1000)) <= 1000
    # at least 2 points per cube from the non-adaptive quarter of the calls
    assert math.prod(choose_nstrat(100, 3, 0.75, 0.75)) * 2 <= 0.25 * 100


def test_save_load_round_trip(tmp_path, backend):
    from mcint.serialize import ModelFileError

    f, exact = camel(2)
    v = VEGAS(f, 2, backend=backend, seed=3, domain=[(0, 1), (0, 1)])
    v.train(16_000, nitn=4)
    path = v.save(str(tmp_path / "vegas.npz"))
    w = VEGAS.load(path, f, backend=backend)
    np.testing.assert_array_equal(backend.to_numpy(w.map.grid), backend.to_numpy(v.map.grid))
    assert w.strat.nstrat == v.strat.nstrat
    # the restored sampler continues the random stream: identical next results
    assert [it.value for it in w.integrate(8_000, nitn=2)] == \
        [it.value for it in v.integrate(8_000, nitn=2)]
    # a fresh seed gives a statistically equivalent, different run
    r = VEGAS.load(path, f, backend=backend, seed=99).integrate(8_000, nitn=2)
    assert abs(r.value - exact) < 4 * r.error
    from mcint import serialize

    serialize.save(str(tmp_path / "flow.npz"), "flow", {}, {"w": np.zeros(2)})
    with pytest.raises(ModelFileError, match="expected a 'vegas'"):
        VEGAS.load(str(tmp_path / "flow.npz"), f, backend=backend)
    serialize.save(str(tmp_path / "bad.npz"), "vegas", {"dims": 2}, {"grid": np.zeros(2)})
    with pytest.raises(ModelFileError, match="not a usable VEGAS file"):
        VEGAS.load(str(tmp_path / "bad.npz"), f, backend=backend)
