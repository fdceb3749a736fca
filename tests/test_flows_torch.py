"""Training through the array-API code with torch autograd: gradcheck and a small fit."""

from __future__ import annotations

import numpy as np
import pytest

import mcint.backends as B
from mcint.flows import Flow
from mcint.flows.splines import rq_spline

torch = pytest.importorskip("torch")


def _perturbed(flow: Flow, scale: float = 0.5, seed: int = 3) -> Flow:
    rng = np.random.default_rng(seed)
    return flow.map_arrays(lambda a: a + scale * rng.normal(size=a.shape)
                           / (np.sqrt(a.shape[0]) if a.ndim == 2 else 1.0))


@pytest.mark.parametrize("inverse", [False, True])
def test_gradcheck_spline(inverse):
    g = torch.Generator().manual_seed(0)
    x = (0.05 + 0.9 * torch.rand(3, 2, generator=g, dtype=torch.float64)).requires_grad_()
    p = torch.randn(3, 2, 3 * 3 + 1, generator=g, dtype=torch.float64).requires_grad_()
    with B.use("torch"):
        assert torch.autograd.gradcheck(lambda x, p: rq_spline(x, p, inverse=inverse), (x, p))


@pytest.mark.parametrize("coupling", ["rqs", "affine"])
def test_gradcheck_flow_log_prob_and_sample(coupling):
    flow = _perturbed(Flow(2, condition_dims=1, bins=3, hidden=(4,), coupling=coupling))
    tflow = flow.to("torch")
    names = list(tflow.arrays())
    params = [p.detach().clone().requires_grad_() for p in tflow.arrays().values()]
    x = torch.tensor([[0.2, 0.7], [0.55, 0.4], [0.9, 0.15]], dtype=torch.float64)
    c = torch.tensor([[0.3], [0.8], [0.1]], dtype=torch.float64)

    def log_prob(*ps):
        f = tflow.map_arrays(lambda a: a)
        f.set_arrays(dict(zip(names, ps)))
        return f.log_prob(x, c)

    def sample(*ps):
        f = tflow.map_arrays(lambda a: a)
        f.set_arrays(dict(zip(names, ps)))
        return f.forward(x, c)

    with B.use("torch"):
        assert torch.autograd.gradcheck(log_prob, params)
        assert torch.autograd.gradcheck(sample, params)


def test_torch_parameters_needs_torch_backend():
    with pytest.raises(TypeError, match="to\\('torch'\\)"):
        Flow(2).torch_parameters()
    tflow = Flow(2).to("torch")
    ps = tflow.torch_parameters()
    assert all(p.requires_grad and p.is_leaf for p in ps)
    assert tflow.requires_grad_(False) is tflow and not any(p.requires_grad for p in ps)


def _target_samples(n: int, seed: int = 0) -> np.ndarray:
    """A correlated Gaussian (means 0.3, 0.6; sd 0.1; rho 0.5), kept inside the unit square."""
    rng = np.random.default_rng(seed)
    cov = 0.01 * np.array([[1.0, 0.5], [0.5, 1.0]])
    x = rng.multivariate_normal([0.3, 0.6], cov, size=2 * n)
    x = x[np.all((x > 0) & (x < 1), axis=1)]
    return x[:n]


@pytest.mark.parametrize("coupling", ["rqs", "affine"])
def test_training_by_maximum_likelihood(coupling):
    torch.manual_seed(0)
    data = torch.as_tensor(_target_samples(2048))
    test = torch.as_tensor(_target_samples(2048, seed=1))
    flow = Flow(2, bins=8, hidden=(16, 16), coupling=coupling, seed=2).to("torch")
    opt = torch.optim.Adam(flow.torch_parameters(), lr=2e-2)
    with torch.no_grad():
        nll0 = float(-flow.log_prob(test).mean())
    for _ in range(40):
        opt.zero_grad()
        loss = -flow.log_prob(data).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        nll = float(-flow.log_prob(test).mean())
    # uniform start: nll0 = 0; the target's entropy is about -1.9
    assert abs(nll0) < 1e-12 and nll < -1.0
    # the trained flow, exported to numpy, is still a normalised density on the unit square
    nflow = flow.to("numpy")
    m = 400
    g = (np.arange(m) + 0.5) / m
    pts = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    assert abs(np.exp(nflow.log_prob(pts)).mean() - 1) < 1e-2
    x, lp = nflow.sample(4000, rng=1)
    assert np.allclose(nflow.log_prob(x), lp, atol=1e-9)
    assert np.allclose(x.mean(axis=0), [0.3, 0.6], atol=0.03)


def test_training_by_variance_loss_on_a_numba_current_backend():
    """Variance loss f/g with points drawn from the flow; torch tensors under the numba backend
    make the fused kernels decline, so autograd runs through the reference."""
    pytest.importorskip("numba")

    def f(x):  # a normalised bump: integral 1 over the unit square (up to 1e-6)
        return torch.exp(-((x - 0.4) ** 2).sum(dim=1) / (2 * 0.15**2)) / (2 * np.pi * 0.15**2)

    flow = Flow(2, bins=6, hidden=(16,), seed=1).to("torch")
    opt = torch.optim.Adam(flow.torch_parameters(), lr=2e-2)
    rng = flow.backend.rng(0)
    losses = []
    with B.use("numba"):
        for _ in range(30):
            with torch.no_grad():
                x, _ = flow.sample(1024, rng=rng)
            opt.zero_grad()
            lp = flow.log_prob(x)
            w = f(x) / torch.exp(lp.detach())
            loss = torch.mean(w * w * (lp.detach() - lp))  # gradient of Var_g(f/g)
            loss.backward()
            opt.step()
            losses.append(float(torch.var(w)))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
