"""Property-based tests (hypothesis): the VEGAS map, flow couplings and phase-space invariant
samplers are bijections with consistent log-dets; the estimators (weighted averages, chi2, Q,
ESS, unweighting efficiency, weight diagnostics) stay within their mathematical bounds."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mcint import diagnostics as D
from mcint.health import diagnose
from mcint.phasespace.invariants import BreitWigner, PowerLaw, Uniform
from mcint.results import IterationResult, Result, gammaincc
from mcint.vegas import AdaptiveMap

FAST = settings(max_examples=25, deadline=None)
unit = st.floats(1e-6, 1 - 1e-6)
positive = st.floats(1e-3, 1.0)


# -- transforms ----------------------------------------------------------------------------------
@FAST
@given(widths=arrays(np.float64, (2, 7), elements=positive),
       y=arrays(np.float64, (6, 2), elements=unit))
def test_adaptive_map_round_trip_and_exact_log_det(widths, y):
    grid = np.concatenate([np.zeros((2, 1)), np.cumsum(widths, axis=1)], axis=1)
    grid /= grid[:, -1:]
    grid[:, -1] = 1.0
    m = AdaptiveMap(2, grid=grid)
    x, ld = m.forward(y)
    y2, ld2 = m.inverse(x)
    assert np.all((x >= 0) & (x <= 1))
    assert np.allclose(y2, y, atol=1e-9) and np.allclose(ld, -ld2, atol=1e-9)
    # piecewise linear: dx/dy = ninc * (width of the increment y falls in), per axis
    ninc = grid.shape[1] - 1
    i = np.minimum((y * ninc).astype(int), ninc - 1)
    dx = np.diff(grid, axis=1)
    expect = np.log(ninc * np.take_along_axis(dx.T, i, axis=0)).sum(axis=1)
    assert np.allclose(ld, expect, atol=1e-9)


def _perturbed_flow(seed: int, coupling: str):
    from mcint.flows import Flow

    rng = np.random.default_rng(seed)
    flow = Flow(3, bins=5, hidden=(8,), layers=3, coupling=coupling, seed=seed)
    # a fresh flow is the identity: give every parameter a random value
    return flow.map_arrays(lambda a: np.asarray(a) + rng.normal(0.0, 0.3, np.shape(a)))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), coupling=st.sampled_from(["rqs", "affine"]),
       z=arrays(np.float64, (5, 3), elements=st.floats(1e-3, 1 - 1e-3)))
def test_flow_couplings_round_trip_with_consistent_log_det(seed, coupling, z):
    flow = _perturbed_flow(seed, coupling)
    x, ld = flow.forward(z)
    # near-saturated sigmoids (exactly 1.0 for logits > ~37) are not invertible in float64,
    # and their Jacobians are too ill-conditioned for finite differences
    assume(np.all((x > 1e-6) & (x < 1 - 1e-6)))
    z2, ld2 = flow.inverse(x)
    assert np.all(np.isfinite(ld)) and np.allclose(ld, -ld2, atol=1e-7)
    assert np.allclose(z2, z, atol=1e-7)
    if coupling == "rqs":
        assert np.all((x >= 0) & (x <= 1))
    # log|det J| against central differences of the map itself (two steps: truncation error
    # spoils the larger one where the map is steep, rounding the smaller one where it is flat)
    ok = np.zeros(len(z), bool)
    for eps in (1e-5, 1e-7):
        jac = np.empty((5, 3, 3))
        for j in range(3):
            dz = np.zeros_like(z)
            dz[:, j] = eps
            jac[:, :, j] = (flow.forward(z + dz)[0] - flow.forward(z - dz)[0]) / (2 * eps)
        sign, num = np.linalg.slogdet(jac)
        assert np.all(sign > 0) or np.all(sign < 0)     # a bijection never folds over
        ok |= np.isclose(ld, num, atol=1e-4, rtol=0)
    assert ok.all()


samplers = st.one_of(
    st.just(Uniform()),
    # (a narrow range ~1e4 widths off the peak resolves s only to ~1e-7 of the range: a
    # limitation of the tan parametrisation, kept out of the random draws)
    st.builds(BreitWigner, st.floats(1.0, 10.0), st.floats(0.05, 10.0)),
    st.builds(PowerLaw, st.floats(0.0, 3.0)),
)


@FAST
@given(sampler=samplers, lo=st.floats(0.5, 100.0), span=st.floats(0.1, 1e4),
       r=arrays(np.float64, 8, elements=st.floats(1e-3, 1 - 1e-3)))
def test_invariant_samplers_are_increasing_bijections(sampler, lo, span, r):
    hi = lo + span
    s, ld = sampler.forward(r, lo, hi)
    r2, ld2 = sampler.inverse(s, lo, hi)
    assert np.all((s >= lo * (1 - 1e-12)) & (s <= hi * (1 + 1e-12)))
    assert np.allclose(r2, r, atol=1e-7) and np.allclose(ld, -ld2, atol=1e-7)
    # log ds/dr is the log of a positive derivative: compare with a central difference
    # central differences: rounding spoils a small step far off a Breit-Wigner's peak (s is
    # resolved to ~1e-10 there), truncation a large one on a sharp peak; one of two is accurate
    ok = np.zeros(r.shape, bool)
    for h in (1e-4, 1e-7):
        num = (sampler.forward(r + h, lo, hi)[0] - sampler.forward(r - h, lo, hi)[0]) / (2 * h)
        assert np.all(num > 0)
        ok |= np.isclose(ld, np.log(num), atol=2e-3, rtol=0)
    assert ok.all()


# -- estimators ----------------------------------------------------------------------------------
iters = st.lists(st.tuples(st.floats(-10, 10), st.floats(1e-3, 5.0)), min_size=1, max_size=8)


@FAST
@given(its=iters, perm_seed=st.integers(0, 100))
def test_weighted_average_bounds_chi2_and_order_independence(its, perm_seed):
    r = Result(IterationResult(v, e) for v, e in its)
    vals = [v for v, _ in its]
    assert min(vals) - 1e-9 <= r.value <= max(vals) + 1e-9
    # combining estimates never makes the error larger than the best single one
    assert r.error <= min(e for _, e in its) * (1 + 1e-12)
    assert r.chi2 >= 0 and r.dof == len(its) - 1
    if r.dof:
        assert 0.0 <= r.Q <= 1.0
    p = np.random.default_rng(perm_seed).permutation(len(its))
    r2 = Result(IterationResult(*its[i]) for i in p)
    assert math.isclose(r2.value, r.value, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(r2.chi2, r.chi2, rel_tol=1e-9, abs_tol=1e-9)
    same = Result(IterationResult(its[0][0], e) for _, e in its)
    assert same.chi2 == 0 or math.isclose(same.chi2, 0, abs_tol=1e-20)
    plain = Result((IterationResult(v, e) for v, e in its), weighted=False)
    assert math.isclose(plain.value, math.fsum(vals) / len(vals), rel_tol=1e-12, abs_tol=1e-12)


@FAST
@given(a=st.floats(0.5, 50), x=st.floats(0, 200), dx=st.floats(0.01, 10))
def test_gammaincc_is_a_survival_function(a, x, dx):
    q = gammaincc(a, x)
    assert 0.0 <= q <= 1.0
    assert gammaincc(a, x + dx) <= q + 1e-12
    assert math.isclose(gammaincc(1.0, x), math.exp(-x), rel_tol=1e-10, abs_tol=1e-300)


weights = arrays(np.float64, st.integers(2, 300),
                 elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False))


@settings(max_examples=40, deadline=None)
@given(w=weights)
def test_sample_metrics_stay_in_their_bounds(w):
    assume(np.any(w != 0))
    n = w.size
    ess = D.effective_sample_size(w)
    assert 1.0 - 1e-9 <= ess <= n * (1 + 1e-9)
    share = D.largest_weight_share(w)
    assert 1.0 / n - 1e-12 <= share <= 1.0 + 1e-12
    u = D.unweighting_efficiency(w)
    for frac in (u.efficiency, u.efficiency_partial, u.overweight_fraction, u.cut_efficiency):
        assert -1e-12 <= frac <= 1.0 + 1e-12
    # without overweights the plain efficiency is the partial one; with them it is larger
    assert u.efficiency >= u.efficiency_partial - 1e-12
    a = np.abs(w)
    assert a.min() <= D.bootstrap_max_weight(w) <= a.max()
    assert D.relative_std(w) >= 0
    d = diagnose(w)
    assert math.isclose(d.ess, ess, rel_tol=1e-9) and d.nonzero == np.count_nonzero(w)
    assert 0.0 <= d.top_variance_share <= 1.0 + 1e-12
    assert 0.0 < d.ess_fraction <= 1.0 + 1e-9 and d.max_over_mean >= 1.0 - 1e-9


@FAST
@given(w=arrays(np.float64, st.integers(1, 200), elements=st.floats(0.01, 10)),
       scale=st.floats(1e-6, 1e6))
def test_metrics_are_scale_invariant(w, scale):
    assert math.isclose(D.effective_sample_size(w * scale), D.effective_sample_size(w),
                        rel_tol=1e-9)
    assert math.isclose(D.unweighting_efficiency(w * scale).efficiency,
                        D.unweighting_efficiency(w).efficiency, rel_tol=1e-9)
    assert math.isclose(D.effective_sample_size(np.full(w.size, scale)), w.size, rel_tol=1e-9)
