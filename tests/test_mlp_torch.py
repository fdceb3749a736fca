"""torch's native MLP layers (addmm + activation ops) against the array-API reference.

Oracle: ``mlp_layers.reference`` (``x @ w + b`` and the formulas of ``mcint.flows.mlp``)
differentiated by torch autograd. Values and gradients must agree to float64 rounding for every
activation the kernel takes; the others must decline, so the reference runs.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mcint.backends import get_backend, select_kernel  # noqa: E402
from mcint.flows.mlp import ACTIVATIONS, apply_mlp, init_mlp, mlp_layers  # noqa: E402

get_backend("torch")  # the plugin must import (the dispatch would load it on first use)
from mcint_torch import fused  # noqa: E402
from mcint_torch import mlp as torch_mlp  # noqa: E402


def _params(seed=0):
    rng = np.random.default_rng(seed)
    ps = init_mlp([3, 16, 8, 5], seed=seed, zero_last=False)
    # pre-activations of both signs and of size ~1-5 (where the activations are curved)
    return [tuple(torch.tensor(3.0 * a + 0.2 * rng.standard_normal(a.shape),
                               requires_grad=True) for a in wb) for wb in ps]


def _value_and_grads(fn, x, params, act):
    out = fn(x, tuple(params), act)
    g = torch.linspace(-1.0, 2.0, out.numel(), dtype=out.dtype).reshape(out.shape)
    leaves = [x] + [a for wb in params for a in wb]
    grads = torch.autograd.grad((out * g).sum(), leaves)
    return out.detach(), grads


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_values_and_gradients_equal_reference(act):
    x = torch.randn(200, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x.requires_grad_(True)
    params = _params()
    ref, gref = _value_and_grads(mlp_layers.reference, x, params, act)
    out, gout = _value_and_grads(mlp_layers, x, params, act)
    scale = float(ref.abs().max())
    assert scale > 1.0  # not a trivially small output
    assert float((out - ref).abs().max()) <= 1e-12 * scale
    for a, b in zip(gout, gref):
        assert float((a - b).abs().max()) <= 1e-11 * (1.0 + float(b.abs().max()))


def test_dispatch_decline_and_switch(monkeypatch):
    x = torch.rand(10, 3, dtype=torch.float64)
    params = _params(2)
    out = mlp_layers(x, tuple(params), "relu")
    assert type(out.grad_fn).__name__ == "AddmmBackward0"  # the native layer ran
    # no exact torch twin (torch's softplus is linear above 20): declined, the reference runs
    assert torch_mlp.mlp_layers(x, params, "softplus") is NotImplemented
    monkeypatch.setenv(fused.ENV_VAR, "0")
    assert select_kernel("mlp", "numpy", x) is None  # the dispatch rule, not the kernel
    assert type(mlp_layers(x, tuple(params), "relu").grad_fn).__name__ != "AddmmBackward0"
    # numpy arrays never reach it, and apply_mlp's checks come first
    monkeypatch.delenv(fused.ENV_VAR)
    npp = [tuple(a.detach().numpy() for a in wb) for wb in params]
    assert isinstance(apply_mlp(npp, x.numpy()), np.ndarray)
    with pytest.raises(ValueError, match="MLP input must have shape"):
        apply_mlp(params, torch.rand(10, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="unknown activation"):
        apply_mlp(params, x, "swish")


@pytest.mark.parametrize("act", ["relu", "tanh", "gelu"])
def test_stacked_layers_equal_reference(act):
    from mcint.flows.grouped import stacked_mlp_layers

    stacks = [_params(s) for s in (3, 4)]
    params = [tuple(torch.stack([st[k][j] for st in stacks]) for j in range(2))
              for k in range(len(stacks[0]))]
    h = torch.randn(2, 50, 3, dtype=torch.float64, requires_grad=True)
    ref, gref = _value_and_grads(stacked_mlp_layers.reference, h, params, act)
    out, gout = _value_and_grads(stacked_mlp_layers, h, params, act)
    assert type(stacked_mlp_layers(h, tuple(params), act).grad_fn).__name__ == "BaddbmmBackward0"
    assert float((out - ref).abs().max()) <= 1e-12 * float(ref.abs().max())
    for a, b in zip(gout, gref):
        assert float((a - b).abs().max()) <= 1e-11 * (1.0 + float(b.abs().max()))


@pytest.mark.parametrize("with_prior,with_delta", [(True, True), (True, False), (False, True)])
def test_channel_log_weights_equal_reference(with_prior, with_delta):
    from mcint.nis.channel_weights import normalized_log_weights as nlw

    rng = np.random.default_rng(5)
    n, C = 60, 4
    prior = rng.uniform(0.0, 1.0, (n, C))
    prior[::7, 1] = 0.0          # channels a point cannot come from
    prior[3, [0, 2]] = 0.0       # with channel 1 inactive, row 3 keeps only channel 3
    prior[5, [0, 2, 3]] = 0.0    # ... and row 5 nothing active at all
    active = torch.tensor([True, False, True, True])
    log_beta = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64))
    p = torch.tensor(prior) if with_prior else None
    delta = torch.tensor(rng.normal(0.0, 2.0, (n, C)), requires_grad=True) if with_delta \
        else None
    g = torch.linspace(-1.0, 2.0, n * C, dtype=torch.float64).reshape(n, C)

    def run(fn):
        out = fn(log_beta, p, delta, active)
        w = torch.exp(out)
        grads = torch.autograd.grad((w * g).sum(), [delta]) if with_delta else ()
        return out.detach(), w.detach(), grads

    ref, wref, gref = run(nlw.reference)
    out, w, gout = run(nlw)
    assert torch.equal(torch.isfinite(out), torch.isfinite(ref))
    fin = torch.isfinite(ref)
    assert float((out[fin] - ref[fin]).abs().max()) <= 1e-12
    assert not torch.isnan(out).any() and not torch.isnan(ref).any()
    # normalised over the active channels; a row with no active support stays all zero
    sums = w.sum(axis=1) if with_delta or with_prior else w.expand(n, C).sum(axis=1)
    expect = torch.ones(n, dtype=torch.float64)
    if with_prior:
        expect[5] = 0.0
    assert torch.allclose(sums, expect, atol=1e-14)
    assert float(w[:, 1].abs().max()) == 0.0
    for a, b in zip(gout, gref):
        assert torch.isfinite(a).all() and torch.isfinite(b).all()
        assert float((a - b).abs().max()) <= 1e-12 * (1.0 + float(b.abs().max()))
