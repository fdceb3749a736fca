"""grouped_log_prob against each flow's own log_prob (the loop it replaces).

Oracle: ``flows[g].log_prob`` row by row group, on numpy and under torch autograd (values and
gradients); layouts with empty and lopsided groups, points outside the cube, and both coupling
kinds.
"""

from __future__ import annotations

import numpy as np
import pytest

from mcint.flows import Flow
from mcint.flows.grouped import can_group, group_layout, grouped_log_prob


def _flows(n, dims, coupling="rqs", backend="numpy", dtype="float64"):
    out = []
    for g in range(n):
        f = Flow(dims, coupling=coupling, seed=10 + g, dtype=dtype)
        rng = np.random.default_rng(g)
        f.set_arrays({k: v + 0.4 * rng.standard_normal(v.shape).astype(v.dtype)
                      for k, v in f.arrays().items()})
        out.append(f.to(backend))
    return out


def _loop(flows, x, group, xp):
    from array_api_compat import array_namespace

    xp = array_namespace(x)
    parts = []
    for g, f in enumerate(flows):
        idx = np.flatnonzero(group == g)
        if idx.size:
            parts.append((idx, f.log_prob(xp.take(x, xp.asarray(idx), axis=0))))
    return parts


@pytest.mark.parametrize("coupling", ["rqs", "affine"])
@pytest.mark.parametrize("dims,n_groups", [(1, 2), (3, 3), (5, 4)])
def test_numpy_values_equal_per_flow_log_prob(coupling, dims, n_groups):
    rng = np.random.default_rng(dims)
    flows = _flows(n_groups, dims, coupling)
    x = rng.random((301, dims))
    x[:3] += 1.5  # outside the cube: -inf in both
    # lopsided, and the last group empty
    group = rng.choice(n_groups - 1, size=301, p=np.r_[0.7, [0.3 / max(n_groups - 2, 1)]
                                                       * (n_groups - 2)] if n_groups > 2
                       else None) if n_groups > 1 else np.zeros(301, int)
    lq = grouped_log_prob(flows, x, group)
    assert lq.shape == (301,)
    assert np.all(np.isneginf(lq[:3]))
    for idx, ref in _loop(flows, x, group, np):
        np.testing.assert_allclose(lq[idx], ref, rtol=1e-12, atol=1e-12)
    assert np.all(np.isfinite(lq[3:]))


@pytest.mark.parametrize("coupling", ["rqs", "affine"])
def test_torch_values_and_gradients_equal_loop(coupling):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    flows = _flows(3, 4, coupling, backend="torch")
    leaves = [p for f in flows for p in f.torch_parameters()]
    x = torch.as_tensor(rng.random((200, 4)))
    group = rng.integers(0, 3, size=200)
    lq = grouped_log_prob(flows, x, group)
    g1 = torch.autograd.grad((lq * lq).sum(), leaves)
    ref = torch.empty(200, dtype=torch.float64)
    total = 0.0
    for idx, v in _loop(flows, x, group, torch):
        ref[idx] = v.detach()
        total = total + (v * v).sum()
    g2 = torch.autograd.grad(total, leaves)
    assert float((lq.detach() - ref).abs().max()) < 1e-11
    for a, b in zip(g1, g2):
        assert float((a - b).abs().max()) <= 1e-10 * (1.0 + float(b.abs().max()))


def test_layout_and_refusals():
    lay = group_layout(np.array([2, 0, 2, 2]), 3, np)
    assert lay.m == 3
    # every row is in its own group's slot range, and slots point back at the rows
    assert np.array_equal(lay.pos // lay.m, [2, 0, 2, 2])
    assert np.array_equal(lay.slots[lay.pos], np.arange(4))
    with pytest.raises(ValueError, match="group indices must lie in"):
        group_layout(np.array([0, 3]), 3, np)
    a, b = Flow(3, seed=1), Flow(3, seed=2, bins=8)
    assert not can_group([a, b]) and can_group([a, Flow(3, seed=2)])
    with pytest.raises(ValueError, match="one architecture"):
        grouped_log_prob([a, b], np.full((2, 3), 0.5), np.array([0, 1]))
    with pytest.raises(ValueError, match="must have shape"):
        grouped_log_prob([a, a], np.full((2, 4), 0.5), np.array([0, 1]))
    with pytest.raises(ValueError, match="one flow index per row"):
        grouped_log_prob([a, a], np.full((3, 3), 0.5), np.array([0, 1]))
