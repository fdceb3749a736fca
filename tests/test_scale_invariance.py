"""An integral's scale does not change its answer: ``c * f`` gives ``c`` times the result of
``f`` with the same relative error (to round-off, same seed), for VEGAS and NIS, float64 and
float32, and for every statistic computed from weights (results, channel tables, unweighting).

Before: VEGAS at ``1e-200`` reported error 0 (squares underflowed), at ``1e200`` raised
``OverflowError`` from ``Result``; float32 NIS at ``1e-46`` returned ``0 +- 0``; float64 NIS
at ``1e-200`` reported error 0.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from mcint.diagnostics import channel_table, relative_std
from mcint.events.unweight import Unweighter, max_weight
from mcint.results import IterationResult, Result, pow2_scale
from mcint.vegas import VEGAS

SMALL = dict(batch_size=64, flow=dict(hidden=(8,), layers=2, bins=4))


def g(x):
    return np.exp(-10 * np.sum((x - 0.5) ** 2, axis=1))


def scaled(c):
    return lambda x: c * g(x)


def _same(a, b, rtol):
    """``a`` and ``b`` (value / scale, rel. error) agree, and the error is a real one."""
    assert a[1] > 0 and b[1] > 0, (a, b)
    np.testing.assert_allclose(a, b, rtol=rtol)


# -- VEGAS ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("c", [1e-200, 1e200, 2.0**-700, 1e-46])
def test_vegas_result_does_not_depend_on_scale(backend, c):
    def run(k, dtype="float64"):
        v = VEGAS(scaled(k), 2, seed=1, backend=backend, dtype=dtype)
        v.train(10_000, nitn=5)
        r = v.integrate(10_000, nitn=3)
        return r.value / k, r.error / r.value

    with warnings.catch_warnings():
        warnings.simplefilter("error")      # no overflow/underflow warnings either
        ref, got = run(1.0), run(c)
    # a power of two is exact: the same digits; 1e-200 * g(x) itself is rounded
    _same(ref, got, rtol=0 if math.frexp(c)[0] == 0.5 else 1e-12)
    if c == 1e-46:
        # float32 points and map: the values are rescaled before anything is cast to float32
        _same(run(1.0, "float32"), run(c, "float32"), rtol=1e-4)


def test_vegas_sample_weights_in_the_integrands_units(backend):
    for dtype in ("float64", "float32"):
        ws = []
        for c in (1.0, 1e-200):
            v = VEGAS(scaled(c), 2, seed=2, backend=backend, dtype=dtype)
            v.train(5_000, nitn=2)
            b = v.sample(2_000)
            w = backend.to_numpy(b.weights).astype(np.float64)
            np.testing.assert_allclose(backend.to_numpy(b.f).astype(np.float64),
                                       c * g(backend.to_numpy(b.x).astype(np.float64)),
                                       rtol=1e-5)
            ws.append(w / c)
        # float32 rounds c * g / scale, not g: the maps differ in the last bits
        np.testing.assert_allclose(ws[0], ws[1], rtol=1e-12 if dtype == "float64" else 1e-3)
    # float32 cannot hold 1e-200: the weights come back as float64 instead of as zeros
    assert str(b.weights.dtype).endswith("float64") and float(backend.xp.min(b.weights)) > 0


# -- NIS -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,cs", [("float32", [1e-46, 1e-200, 1e200, 2.0**-600]),
                                      ("float64", [1e-200, 1e200, 2.0**-700])])
def test_nis_result_does_not_depend_on_scale(dtype, cs):
    pytest.importorskip("torch")
    from mcint.nis import Integrator

    def run(c):
        it = Integrator(scaled(c), 2, seed=1, dtype=dtype, **SMALL)
        it.train(2_000)
        r = it.integrate(2_000)
        st = it.log[-1]
        return (r.value / c, r.error / r.value), (st["integral"] / c, st["error"] / c), it

    ref, ref_st, _ = run(1.0)
    for c in cs:
        got, got_st, it = run(c)
        exact = math.frexp(c)[0] == 0.5
        # float32 training amplifies last-bit differences a little; powers of two are exact
        rtol = 0 if exact else (1e-4 if dtype == "float32" else 1e-10)
        _same(ref, got, rtol)
        np.testing.assert_allclose(ref_st, got_st, rtol=rtol)   # the training status too
        assert math.frexp(it.value_scale)[0] == 0.5                # a power of two
        b = it.sample(500)
        w = np.asarray(it.backend.to_numpy(b.weights), dtype=np.float64)
        assert np.all(np.isfinite(w)) and abs(w.mean() / c - ref[0]) < 0.5 * ref[0]


def test_nis_value_scale_survives_a_checkpoint(tmp_path):
    pytest.importorskip("torch")
    from mcint.nis import Integrator

    it = Integrator(scaled(1e-46), 2, seed=1, **SMALL)
    it.train(1_000)
    path = str(tmp_path / "ck.npz")
    it.save(path)
    back = Integrator.resume(path, scaled(1e-46))
    assert back.value_scale == it.value_scale != 1.0
    a, b = it.integrate(1_000), back.integrate(1_000)
    assert (a.value, a.error) == (b.value, b.error) and a.value > 0
    with pytest.raises(ValueError, match="value scale must be a positive power of two"):
        Integrator(g, 2, value_scale=3.0)


def test_nis_losses_are_scale_free():
    torch = pytest.importorskip("torch")
    from mcint.nis.losses import LOSSES

    rng = np.random.default_rng(0)
    for dtype, cs in ((torch.float32, (2.0**-100, 2.0**60, 1e-30, 1e30)),
                      (torch.float64, (1e-200, 1e200, 2.0**-900))):
        f = torch.tensor(rng.random(256) + 0.1, dtype=dtype)
        log_q = torch.tensor(rng.normal(0, 0.3, 256), dtype=dtype)
        ch = torch.tensor(rng.integers(0, 2, 256))
        for name, loss in LOSSES.items():
            ref = float(loss(f, log_q, log_q, ch, 2))
            for c in cs:
                got = float(loss(f * c, log_q, log_q, ch, 2))
                assert got == pytest.approx(ref, rel=1e-5, abs=1e-6), (name, dtype, c)


# -- statistics of weights --------------------------------------------------------------------
def test_results_average_far_from_one():
    for c in (1e-200, 1e200, 1e-300):
        r = Result([IterationResult(1.0 * c, 0.01 * c), IterationResult(1.02 * c, 0.02 * c)])
        ref = Result([IterationResult(1.0, 0.01), IterationResult(1.02, 0.02)])
        np.testing.assert_allclose([r.value / c, r.error / c, r.chi2], [ref.value, ref.error,
                                                                        ref.chi2], rtol=1e-12)
        assert r.iterations[0].variance >= 0      # inf past 1e154, never an OverflowError
    assert pow2_scale(1.0) == 1.0 and pow2_scale(0.0) == 1.0 and pow2_scale(math.inf) == 1.0
    assert pow2_scale(3e-200) == 2.0 ** math.frexp(3e-200)[1]


@pytest.mark.parametrize("c", [1e-200, 1e200])
def test_weight_statistics_do_not_depend_on_scale(c):
    rng = np.random.default_rng(1)
    w = rng.exponential(size=5_000)
    ch = rng.integers(0, 3, size=w.size)
    a, b = channel_table(w, ch, 3), channel_table(w * c, ch, 3)
    np.testing.assert_allclose([b.total / c, b.total_error / c], [a.total, a.total_error],
                               rtol=1e-12)
    np.testing.assert_allclose(b.errors / c, a.errors, rtol=1e-12)
    assert relative_std(w * c) == pytest.approx(relative_std(w), rel=1e-12)
    assert max_weight(w * c) / c == pytest.approx(max_weight(w), rel=1e-12)
    stats = []
    for k in (1.0, c):
        u = Unweighter(max_weight(w * k), seed=0)
        u.select(w * k)
        stats.append(np.array(u.stats.sigma) / k)
    np.testing.assert_allclose(stats[1], stats[0], rtol=1e-12)
    assert stats[1][1] > 0
