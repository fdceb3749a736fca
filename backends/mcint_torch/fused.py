"""Fused, differentiable rational-quadratic spline for torch CPU training.

:func:`rq_spline` has the signature of :func:`mcint.flows.splines.rq_spline` (whose pure
array-API ``.reference`` stays the oracle) and runs it as ONE autograd node whose forward and
backward are the numba kernels of ``mcint_numba.kernels.spline_grad`` (which picks the kernel
per dtype and direction), reaching the tensors' memory zero-copy through ``.numpy()``. Autograd
through the reference costs ~40 small torch ops forward and as many backward per spline call;
here it is one node.

Arguments are validated by the reference's own :func:`~mcint.flows.splines.check_spline_args`.
It declines (returns ``NotImplemented``, so the reference runs) when numba is missing, for
tensors that are not CPU float32/float64 of one dtype, and for the sampling direction
(``inverse=True``) when a gradient is needed (training only differentiates the density
direction). Whether it is asked at all is :mod:`mcint.backends.dispatch`'s rule
(``MCINT_FUSED=0``: never).
"""

from __future__ import annotations

from typing import Any

import torch

from mcint.backends.dispatch import FUSED_ENV as ENV_VAR
from mcint.flows.splines import check_spline_args

__all__ = ["ENV_VAR", "available", "rq_spline"]

_kernels: Any = None  # the numba module once imported, False if unavailable


def _load() -> Any:
    global _kernels
    if _kernels is None:
        try:
            from mcint_numba.kernels import spline_grad
        except ImportError:  # numba not installed: the reference runs
            _kernels = False
        else:
            _kernels = spline_grad
    return _kernels


def available() -> bool:
    """Whether the fused spline can run here (numba importable)."""
    return bool(_load())


class _RQSpline(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Any, params: Any, mins: tuple[float, float, float]) -> Any:
        y = torch.empty_like(x)
        ld = torch.empty(x.shape[0], dtype=x.dtype)
        # host scratch the backward reuses (exponentials, knot derivatives, ...)
        ctx.state = _kernels.forward(x.detach().numpy(), params.detach().numpy(), mins,
                                     y.numpy(), ld.numpy())
        ctx.save_for_backward(x, params)
        ctx.mins = mins
        return y, ld

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, gy: Any, gld: Any) -> Any:
        x, params = ctx.saved_tensors
        gx = torch.empty_like(x)
        gp = torch.empty_like(params)
        _kernels.backward(ctx.state, x.detach().numpy(), params.detach().numpy(),
                          gy.contiguous().numpy(), gld.contiguous().numpy(), ctx.mins, gx.numpy(),
                          gp.numpy())
        return (gx if ctx.needs_input_grad[0] else None), gp, None


def rq_spline(x: Any, params: Any, inverse: bool = False, min_width: float = 1e-3,
              min_height: float = 1e-3, min_derivative: float = 1e-3) -> Any:
    """Fused :func:`mcint.flows.splines.rq_spline` on CPU tensors, or ``NotImplemented``."""
    if not isinstance(params, torch.Tensor) or not isinstance(x, torch.Tensor) \
            or params.device.type != "cpu" or x.device.type != "cpu" \
            or x.dtype != params.dtype or x.dtype not in (torch.float32, torch.float64) \
            or not available():
        return NotImplemented
    check_spline_args(x.shape, params.shape, min_width, min_height, min_derivative)
    grad = torch.is_grad_enabled() and (x.requires_grad or params.requires_grad)
    mins = (float(min_width), float(min_height), float(min_derivative))
    if grad:
        if inverse:
            return NotImplemented
        return _RQSpline.apply(x.contiguous(), params.contiguous(), mins)
    xn = x.detach().contiguous()
    pn = params.detach().contiguous().numpy()
    y = torch.empty_like(xn)
    ld = torch.empty(x.shape[0], dtype=x.dtype)
    if inverse:
        _kernels.inverse(xn.numpy(), pn, mins, y.numpy(), ld.numpy())
    else:
        _kernels.forward(xn.numpy(), pn, mins, y.numpy(), ld.numpy(), save=False)
    return y, ld
