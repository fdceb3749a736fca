"""The fused differentiable spline (torch CPU training) against the pure array-API reference.

Oracle: ``rq_spline.reference`` differentiated by torch autograd, and finite differences
(``torch.autograd.gradcheck``). The fused node must give the same forward values and gradients
(float64: 1e-10 relative), and float32 inputs must agree with the float64 reference to float32
rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("numba")

from mcint.backends import get_backend, use  # noqa: E402
from mcint.flows import Flow  # noqa: E402
from mcint.flows.splines import rq_spline  # noqa: E402

get_backend("torch")  # the plugin must import (the dispatch would load it on first use)
from mcint_torch import fused  # noqa: E402

FUSED_NODE = "_RQSplineBackward"


def _inputs(n, k, bins, scale, dtype=torch.float64, lo=0.0, hi=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = lo + (hi - lo) * torch.rand(n, k, generator=g, dtype=torch.float64)
    p = scale * torch.randn(n, k, 3 * bins + 1, generator=g, dtype=torch.float64)
    return x.to(dtype), p.to(dtype)


def _value_and_grads(fn, x, p, gy, gl):
    x = x.detach().clone().requires_grad_(True)
    p = p.detach().clone().requires_grad_(True)
    y, ld = fn(x, p)
    gx, gp = torch.autograd.grad((y * gy).sum() + (ld * gl).sum(), (x, p))
    return y.detach(), ld.detach(), gx, gp


def _rel(a, b):
    a, b = a.detach(), b.detach()
    return float(((a - b).abs() / (1.0 + b.abs())).max())


@pytest.mark.parametrize("bins", [1, 2, 10])
@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_matches_autograd_through_reference_float64(bins, scale):
    # x runs past both ends (clipped: gradient zero outside), with exact 0 and 1
    x, p = _inputs(400, 3, bins, scale, lo=-0.1, hi=1.1, seed=bins)
    x[:4, 0] = torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    gy = torch.randn(400, 3, generator=g, dtype=torch.float64)
    gl = torch.randn(400, generator=g, dtype=torch.float64)
    y, ld, gx, gp = _value_and_grads(fused.rq_spline, x, p, gy, gl)
    y0, ld0, gx0, gp0 = _value_and_grads(rq_spline.reference, x, p, gy, gl)
    assert _rel(y, y0) < 1e-12 and _rel(ld, ld0) < 1e-11
    assert _rel(gx, gx0) < 1e-10
    assert _rel(gp, gp0) < 1e-10
    outside = (x < 0) | (x > 1)
    assert outside.any() and torch.all(gx[outside] == 0)
    # the gradient really flows to every parameter group: widths, heights, derivatives
    if bins > 1:
        assert float(gp[..., :bins].abs().max()) > 0
        assert float(gp[..., bins:2 * bins].abs().max()) > 0
    assert float(gp[..., 2 * bins:].abs().max()) > 0


@pytest.mark.parametrize("bins", [1, 4])
def test_gradcheck_finite_differences(bins):
    x, p = _inputs(12, 2, bins, 2.0, lo=0.01, hi=0.99, seed=3)
    x.requires_grad_(True)
    p.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: fused.rq_spline(a, b), (x, p))


def test_float32_agrees_with_float64_reference():
    x, p = _inputs(500, 2, 10, 2.0, dtype=torch.float32, seed=7)
    g = torch.Generator().manual_seed(8)
    gy = torch.randn(500, 2, generator=g)
    gl = torch.randn(500, generator=g)
    y, ld, gx, gp = _value_and_grads(fused.rq_spline, x, p, gy, gl)
    assert y.dtype == gp.dtype == torch.float32
    # the same float32 inputs through the float64 reference: only output rounding differs
    y0, ld0, gx0, gp0 = _value_and_grads(rq_spline.reference, x.double(), p.double(),
                                         gy.double(), gl.double())
    assert _rel(y.double(), y0) < 1e-6 and _rel(ld.double(), ld0) < 1e-6
    assert _rel(gx.double(), gx0) < 1e-5 and _rel(gp.double(), gp0) < 1e-5


def test_inverse_without_grad_is_fused_and_exact():
    x, p = _inputs(300, 2, 8, 2.0, seed=9)
    y, _ = rq_spline.reference(x, p)
    with torch.no_grad():
        xi, ldi = fused.rq_spline(y, p, inverse=True)
    xr, ldr = rq_spline.reference(y, p, inverse=True)
    assert _rel(xi, xr) < 1e-9 and _rel(ldi, ldr) < 1e-9  # the quadratic solve conditions it
    assert float((xi - x).abs().max()) < 1e-9  # round trip
    # sampling direction with gradients: declined, the reference runs
    pr = p.clone().requires_grad_(True)
    assert fused.rq_spline(y, pr, inverse=True) is NotImplemented
    assert rq_spline(y, pr, inverse=True)[0].grad_fn is not None


def test_dispatch_and_switch(monkeypatch):
    x, p = _inputs(20, 1, 4, 1.0, seed=2)
    p.requires_grad_(True)
    assert type(rq_spline(x, p)[0].grad_fn).__name__ == FUSED_NODE
    with use("numba"):  # numba's own kernel declines torch tensors; the fused one still runs
        assert type(rq_spline(x, p)[0].grad_fn).__name__ == FUSED_NODE
    monkeypatch.setenv(fused.ENV_VAR, "0")
    assert type(rq_spline(x, p)[0].grad_fn).__name__ != FUSED_NODE
    # numpy arrays never reach it
    monkeypatch.delenv(fused.ENV_VAR)
    y, _ = rq_spline(x.numpy(), p.detach().numpy())
    assert isinstance(y, np.ndarray)
    # bad shapes still get the reference's error
    with pytest.raises(ValueError, match="spline parameters must have shape"):
        rq_spline(x, p[..., :-1])


@pytest.mark.parametrize("dims", [2, 5])
def test_flow_gradients_fused_equal_pure(dims, monkeypatch):
    base = Flow(dims, seed=dims)
    rng = np.random.default_rng(dims)
    base.set_arrays({k: v + 0.3 * rng.standard_normal(v.shape)
                     for k, v in base.arrays().items()})
    x = torch.as_tensor(rng.random((256, dims)))
    grads, lps = [], []
    for flag in ("1", "0"):
        monkeypatch.setenv(fused.ENV_VAR, flag)
        fl = base.to("torch")
        ps = fl.torch_parameters()
        lp = fl.log_prob(x)
        (-(lp * lp).mean()).backward()
        lps.append(lp.detach())
        grads.append(torch.cat([q.grad.reshape(-1) for q in ps]))
    assert _rel(lps[0], lps[1]) < 1e-11
    assert _rel(grads[0], grads[1]) < 1e-10


def test_flow_float32_training_path_close_to_float64():
    base = Flow(4, seed=3)
    rng = np.random.default_rng(3)
    base.set_arrays({k: v + 0.3 * rng.standard_normal(v.shape)
                     for k, v in base.arrays().items()})
    x = rng.random((300, 4))
    out = []
    for dt in ("float64", "float32"):
        fl = base.to("torch", dt)
        ps = fl.torch_parameters()
        lp = fl.log_prob(torch.as_tensor(x, dtype=getattr(torch, dt)))
        lp.mean().backward()
        out.append((lp.detach().double(), torch.cat([q.grad.reshape(-1).double() for q in ps])))
    assert _rel(out[1][0], out[0][0]) < 1e-4
    assert _rel(out[1][1], out[0][1]) < 1e-3


@pytest.mark.parametrize("bins", [1, 2, 10])
@pytest.mark.parametrize("scale", [0.5, 4.0])
def test_float32_row_vectorised_kernel_against_float64_reference(bins, scale):
    # float32 runs its own row-vectorised kernels (polynomial exp/log, branch-free bin search,
    # saved state): rows not a multiple of its block, x past both ends, steep bins (scale 4)
    x, p = _inputs(333, 3, bins, scale, dtype=torch.float32, lo=-0.1, hi=1.1, seed=11 + bins)
    x[:4, 0] = torch.tensor([0.0, 1.0, 0.0, 1.0])
    g = torch.Generator().manual_seed(12)
    gy = torch.randn(333, 3, generator=g)
    gl = torch.randn(333, generator=g)
    y, ld, gx, gp = _value_and_grads(fused.rq_spline, x, p, gy, gl)
    y0, ld0, gx0, gp0 = _value_and_grads(rq_spline.reference, x.double(), p.double(),
                                         gy.double(), gl.double())
    assert _rel(y.double(), y0) < 1e-6 and _rel(ld.double(), ld0) < 1e-6
    assert _rel(gx.double(), gx0) < 1e-5 and _rel(gp.double(), gp0) < 1e-5
    outside = (x < 0) | (x > 1)
    assert outside.any() and torch.all(gx[outside] == 0)


def test_float32_nonfinite_input_propagates():
    # as the reference: a nan parameter or x spoils its value and row; x = inf is clipped
    x, p = _inputs(100, 2, 4, 1.0, dtype=torch.float32, seed=4)
    p[7, 1, 3] = float("nan")
    p[8, 0, 12] = float("inf")
    x[9, 0] = float("nan")
    x[10, 1] = float("inf")
    y0, ld0 = rq_spline.reference(x.double(), p.double())
    assert torch.isnan(y0[7, 1]) and torch.isnan(y0[9, 0]) and float(y0[10, 1]) == 1.0
    for grad in (False, True):
        pr = p.clone().requires_grad_(grad)
        y, ld = fused.rq_spline(x, pr)
        assert torch.equal(torch.isnan(y), torch.isnan(y0))
        assert torch.equal(torch.isnan(ld), torch.isnan(ld0))
        ok = ~torch.isnan(y0)
        assert _rel(y[ok].double(), y0[ok]) < 1e-6
