"""mcint.nis.losses, mcint.flows.grouped and mcint.nis.buffer on array-api-strict.

array-api-strict accepts only the standard: these run the code with nothing but the standard
(no numpy leaking through), against independent numpy formulas (losses), the per-flow loop
(grouped) and plain index bookkeeping (buffer).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

strict = pytest.importorskip("array_api_strict")

import mcint.backends as B  # noqa: E402
from mcint.flows import Flow  # noqa: E402
from mcint.flows.grouped import grouped_log_prob, stack_parameters  # noqa: E402
from mcint.nis import losses  # noqa: E402
from mcint.nis.buffer import Buffer  # noqa: E402

_STRICT_ARRAY = type(strict.asarray([0.0]))


def _batch(n=400, n_channels=3, seed=0):
    rng = np.random.default_rng(seed)
    ch = rng.integers(0, n_channels, n)
    log_q_sample = rng.normal(0.0, 0.3, n)
    log_q = log_q_sample + rng.normal(0.0, 0.1, n)
    f = np.exp(log_q_sample) * rng.lognormal(0.0, 0.5, n) * np.where(rng.random(n) < 0.1, -1, 1)
    return f, log_q, log_q_sample, ch


def _variance_numpy(f, log_q, log_q_sample, ch, n_channels, eps):
    out = 0.0
    for c in range(n_channels):
        m = ch == c
        n = m.sum()
        w_s = f[m] / np.exp(log_q_sample[m])
        mean = w_s.sum() / n
        ratio = np.exp(log_q[m] - log_q_sample[m])
        var = np.sum((f[m] * np.exp(-log_q[m]) - mean) ** 2 * ratio) / n
        out += var / (np.abs(w_s).sum() / n + eps) ** 2
    return out


def _kl_numpy(f, log_q, log_q_sample, ch, n_channels, eps):
    out = 0.0
    for c in range(n_channels):
        m = ch == c
        w = np.abs(f[m]) * np.exp(-log_q_sample[m])
        w = w / w.mean()
        log_p = np.log(w + eps) + log_q_sample[m]
        out += np.mean(w * (log_p - log_q[m]))
    return out


def test_losses_on_strict_match_independent_formulas(strict_be):
    f, lq, lqs, ch = _batch()
    eps = float(np.finfo(np.float64).eps)
    args = [strict_be.asarray(a, dtype="float64") for a in (f, lq, lqs)] + [strict_be.asarray(ch)]
    got_var = losses.variance(*args, n_channels=3)
    got_kl = losses.kl(*args, n_channels=3)
    assert isinstance(got_var, _STRICT_ARRAY) and isinstance(got_kl, _STRICT_ARRAY)
    assert math.isclose(float(got_var), _variance_numpy(f, lq, lqs, ch, 3, eps), rel_tol=1e-12)
    assert math.isclose(float(got_kl), _kl_numpy(f, lq, lqs, ch, 3, eps), rel_tol=1e-12,
                        abs_tol=1e-14)


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
@pytest.mark.parametrize("channels", [None, 3])
def test_every_loss_runs_on_strict_as_on_numpy(strict_be, name, channels):
    f, lq, lqs, ch = _batch(seed=1)
    fn = losses.get_loss(name)
    nc = 1 if channels is None else channels
    out = {}
    for be in (strict_be, B.get_backend("numpy")):
        args = [be.asarray(a, dtype="float64") for a in (f, lq, lqs)]
        c = None if channels is None else be.asarray(ch)
        out[be.name] = fn(*args, c, nc)
    assert isinstance(out["strict"], _STRICT_ARRAY) and out["strict"].shape == ()
    assert math.isfinite(float(out["strict"]))
    assert math.isclose(float(out["strict"]), float(out["numpy"]), rel_tol=1e-12, abs_tol=1e-15)
    # scale-free (module docstring): c * f gives the same loss
    args = [strict_be.asarray(a, dtype="float64") for a in (1024.0 * f, lq, lqs)]
    c = None if channels is None else strict_be.asarray(ch)
    assert math.isclose(float(fn(*args, c, nc)), float(out["strict"]), rel_tol=1e-9,
                        abs_tol=1e-12)


@pytest.mark.parametrize("coupling", ["rqs", "affine"])
def test_grouped_log_prob_on_strict_equals_each_flow(strict_be, coupling):
    flows = []
    for s in range(3):
        fl = Flow(3, seed=s, coupling=coupling)
        rng = np.random.default_rng(10 + s)
        fl.set_arrays({k: v + 0.3 * rng.standard_normal(v.shape)
                       for k, v in fl.arrays().items()})
        flows.append(fl.to("strict"))
    rng = np.random.default_rng(5)
    xn = rng.random((50, 3))
    xn[0, 1] = 1.5  # outside the cube: -inf
    group = rng.integers(0, 3, 50)
    group[:3] = 0  # uneven groups: padding
    x = strict_be.asarray(xn, dtype="float64")
    with B.use(strict_be):
        got = grouped_log_prob(flows, x, group)
        again = grouped_log_prob(flows, x, group, stacked=stack_parameters(flows))
    assert isinstance(got, _STRICT_ARRAY)
    want = np.array([float(flows[g].log_prob(x[i:i + 1, :])[0]) for i, g in enumerate(group)])
    g_np = strict_be.to_numpy(got)
    assert g_np[0] == -np.inf and want[0] == -np.inf
    np.testing.assert_allclose(g_np[1:], want[1:], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(strict_be.to_numpy(again), g_np)


def test_buffer_on_strict(strict_be):
    buf = Buffer(5)
    for start in (0, 3):
        idx = np.arange(start, start + 3)
        buf.store({"u": strict_be.asarray(np.stack([idx, idx], axis=1), dtype="float64"),
                   "target": strict_be.asarray(idx, dtype="float64"),
                   "log_q_sample": strict_be.asarray(-idx, dtype="float64"),
                   "channels": strict_be.asarray(idx % 2), "ignored": strict_be.asarray(idx)})
    assert len(buf) == 5 and set(buf.data) == {"u", "target", "log_q_sample", "channels"}
    # FIFO: the oldest point (0) was dropped
    np.testing.assert_array_equal(strict_be.to_numpy(buf.data["target"]), [1, 2, 3, 4, 5])
    draw = buf.sample(200, strict_be.rng(3))
    t = strict_be.to_numpy(draw["target"])
    assert isinstance(draw["target"], _STRICT_ARRAY) and t.shape == (200,)
    assert set(t) <= {1.0, 2.0, 3.0, 4.0, 5.0} and len(set(t)) == 5
    # every field of a drawn row belongs to the same stored point
    np.testing.assert_array_equal(strict_be.to_numpy(draw["log_q_sample"]), -t)
    np.testing.assert_array_equal(strict_be.to_numpy(draw["u"]), np.stack([t, t], axis=1))
    np.testing.assert_array_equal(strict_be.to_numpy(draw["channels"]), t.astype(int) % 2)
    buf.keep(buf.data["channels"] == 1)
    np.testing.assert_array_equal(strict_be.to_numpy(buf.data["target"]), [1, 3, 5])
    buf.keep(buf.data["channels"] == 0)
    assert len(buf) == 0 and buf.data == {}
    with pytest.raises(RuntimeError, match="empty"):
        buf.sample(1, strict_be.rng(0))
