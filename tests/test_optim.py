"""The optimiser's gradient handling: clipping to the norm, refusal of non-finite gradients.

Oracle: the gradient of ``0.5 * sum(a * p^2)`` is ``a * p``; its Euclidean norm over all tensors
is computed here with numpy.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mcint.nis.optim import Optimizer  # noqa: E402


def _params():
    g = torch.Generator().manual_seed(3)
    return [torch.randn(4, 3, dtype=torch.float64, generator=g).requires_grad_(True),
            torch.randn(5, dtype=torch.float64, generator=g).requires_grad_(True)]


def _loss(params, a):
    return sum(0.5 * a * (p * p).sum() for p in params)


@pytest.mark.parametrize("a,clip", [(100.0, 1.0), (0.01, 1.0), (100.0, None)])
def test_gradients_are_scaled_to_the_clip_norm_only_above_it(a, clip):
    params = _params()
    expect = [a * p.detach().numpy().copy() for p in params]
    norm = float(np.sqrt(sum((e * e).sum() for e in expect)))
    opt = Optimizer(params, lr=1e-3, clip=clip)
    assert opt.step(_loss(params, a))
    scale = clip / (norm + 1e-6) if clip is not None and norm > clip else 1.0
    assert (norm > 1.0) == (a == 100.0)
    for p, e in zip(params, expect):
        np.testing.assert_allclose(p.grad.numpy(), e * scale, rtol=1e-12)
    got = float(np.sqrt(sum(float((p.grad ** 2).sum()) for p in params)))
    assert got == pytest.approx(min(norm, clip) if clip is not None else norm, rel=1e-7)


def test_non_finite_gradients_are_refused_and_counted():
    params = _params()
    before = [p.detach().clone() for p in params]
    opt = Optimizer(params, lr=1e-2, clip=10.0)
    bad = _loss(params, 1.0) + (params[1] * torch.tensor(float("inf"))).sum() * 0.0
    assert not opt.step(bad)     # inf * 0: a NaN gradient, a finite-looking loss
    assert opt.skipped == 1
    for p, b in zip(params, before):
        assert torch.equal(p.detach(), b)
    assert opt.step(_loss(params, 1.0))
    assert any(not torch.equal(p.detach(), b) for p, b in zip(params, before))
