"""mcint.results: averages, chi2/dof, Q, formatting -- checked against closed forms."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from mcint.results import IterationResult, Result, format_value, gammaincc


@pytest.mark.parametrize("x", [0.0, 1e-8, 0.3, 1.0, 4.0, 25.0, 700.0])
def test_gammaincc_closed_forms(x):
    # Q(1, x) = exp(-x); Q(1/2, x) = erfc(sqrt x); Q(2, x) = (1 + x) exp(-x)
    assert gammaincc(1.0, x) == pytest.approx(math.exp(-x), rel=1e-12, abs=1e-300)
    assert gammaincc(0.5, x) == pytest.approx(math.erfc(math.sqrt(x)), rel=1e-12, abs=1e-300)
    assert gammaincc(2.0, x) == pytest.approx((1 + x) * math.exp(-x), rel=1e-12, abs=1e-300)


def test_gammaincc_vs_scipy():
    sp = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(0)
    for a in [0.5, 1.5, 3.0, 4.5, 10.0, 49.5, 200.0]:
        for x in list(rng.random(5) * 3 * a) + [a, a + 1]:
            assert gammaincc(a, x) == pytest.approx(float(sp.gammaincc(a, x)), rel=1e-10,
                                                    abs=1e-280)


def test_gammaincc_bad_input():
    with pytest.raises(ValueError):
        gammaincc(0.0, 1.0)
    with pytest.raises(ValueError):
        gammaincc(1.0, -1.0)


def test_weighted_average_by_hand():
    its = [IterationResult(1.0, 0.1, 100), IterationResult(1.3, 0.2, 100),
           IterationResult(0.9, 0.1, 50)]
    r = Result(its)
    w = np.array([100.0, 25.0, 100.0])
    v = np.array([1.0, 1.3, 0.9])
    mean = (w * v).sum() / w.sum()
    assert r.value == pytest.approx(mean)
    assert r.error == pytest.approx(1 / math.sqrt(w.sum()))
    chi2 = (w * (v - mean) ** 2).sum()
    assert r.chi2 == pytest.approx(chi2)
    assert r.dof == 2 and r.chi2_dof == pytest.approx(chi2 / 2)
    assert r.Q == pytest.approx(math.exp(-chi2 / 2))  # Q(1, x) for dof = 2
    assert r.calls == 250 and len(r) == 3


def test_unweighted_average_by_hand():
    r = Result([IterationResult(1.0, 0.1), IterationResult(1.2, 0.2)], weighted=False)
    assert r.value == pytest.approx(1.1)
    assert r.error == pytest.approx(math.sqrt(0.01 + 0.04) / 2)
    assert r.chi2 == pytest.approx(((0.1**2) * 2) / (0.05 / 2))


def test_zero_error_iterations_are_exact_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = Result([IterationResult(0.0, 0.0, 10)] * 3)
        assert (r.value, r.error, r.chi2, r.chi2_dof) == (0.0, 0.0, 0.0, 0.0)
        assert r.Q == 1.0
        assert repr(r) == "0(0)"
        r2 = Result([IterationResult(0.0, 0.0)] * 2, weighted=False)
        assert (r2.value, r2.error, r2.chi2) == (0.0, 0.0, 0.0)
        assert Result([IterationResult(1.0, 0.0), IterationResult(2.0, 0.0)]).chi2 == math.inf
        assert r.rel_error == 0.0
        r.summary()


def test_single_and_empty():
    r = Result()
    assert math.isnan(r.value) and r.dof == 0
    r.add(IterationResult(2.0, 0.5))
    assert (r.value, r.error, r.chi2_dof) == (2.0, 0.5, 0.0)
    assert math.isnan(r.Q)
    with pytest.raises(TypeError):
        r.add(2.0)
    with pytest.raises(ValueError):
        IterationResult(1.0, -1.0)


@pytest.mark.parametrize("v,e,s", [
    (1.23456, 0.0067, "1.2346(67)"), (12345.6, 670, "12350(670)"),
    (1.23e-12, 4e-14, "1.230(40)e-12"), (-2.5, 1.2, "-2.5(12)"), (0.0, 0.0, "0(0)"),
    (3.0e7, 2.0e5, "3.000(20)e+07"), (0.5, 0.0, "0.5(0)"),
])
def test_format_value(v, e, s):
    assert format_value(v, e) == s


def test_summary_table_and_dict_round_trip():
    r = Result([IterationResult(1.0 + 0.01 * i, 0.02, 1000) for i in range(4)])
    text = r.summary()
    lines = text.splitlines()
    assert "chi2/dof" in lines[0] and len(lines) == 2 + 4
    table = r.table()
    assert table[-1]["avg_value"] == pytest.approx(r.value)
    assert table[0]["chi2_dof"] == 0.0
    d = json.loads(json.dumps(r.to_dict()))
    r2 = Result.from_dict(d)
    assert r2.value == r.value and r2.error == r.error and r2.chi2 == r.chi2
    assert str(r).startswith(repr(r))
