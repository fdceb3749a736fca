"""Fused, differentiable rational-quadratic spline for torch CPU training.

:func:`rq_spline` has the signature of :func:`mcint.flows.splines.rq_spline` (whose pure
array-API ``.reference`` stays the oracle) and runs it as ONE autograd node whose forward and
backward are numba kernels (``mcint_numba.kernels.spline_grad``), reaching the tensors' memory
zero-copy through ``.numpy()``. Autograd through the reference costs ~40 small torch ops forward
and as many backward per spline call; here it is one node.

It declines (returns ``NotImplemented``, so the reference runs) when numba is missing, when the
tensors are not CPU float32/float64, for the sampling direction (``inverse=True``) while a
gradient is needed (training only differentiates the density direction), and when the
environment variable ``MCINT_FUSED`` is ``0`` (to test or time the pure path).
"""

from __future__ import annotations

import os
from typing import Any

import torch

ENV_VAR = "MCINT_FUSED"
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


def enabled() -> bool:
    """Whether the fused spline may run (numba importable and ``$MCINT_FUSED`` is not 0)."""
    return os.environ.get(ENV_VAR, "1") != "0" and bool(_load())


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
            or x.ndim != 2 or params.ndim != 3 or not enabled():
        return NotImplemented
    nb = (params.shape[-1] - 1) // 3
    if tuple(params.shape[:-1]) != tuple(x.shape) or params.shape[-1] != 3 * nb + 1 or nb < 1 \
            or min_width * nb >= 1 or min_height * nb >= 1:
        return NotImplemented  # the reference raises the error
    grad = torch.is_grad_enabled() and (x.requires_grad or params.requires_grad)
    mins = (float(min_width), float(min_height), float(min_derivative))
    if not grad:
        xn = x.detach().contiguous()
        y = torch.empty_like(xn)
        ld = torch.empty(x.shape[0], dtype=x.dtype)
        pn = params.detach().contiguous().numpy()
        if inverse:
            _kernels.rqs_forward(xn.numpy(), pn, _kernels.exps(pn), True, *mins, y.numpy(),
                                 ld.numpy(), _kernels.aux_like(xn))
        else:
            _kernels.forward(xn.numpy(), pn, mins, y.numpy(), ld.numpy())
        return y, ld
    if inverse:
        return NotImplemented
    return _RQSpline.apply(x.contiguous(), params.contiguous(), mins)
