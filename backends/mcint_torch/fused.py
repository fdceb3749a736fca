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

import numpy as np
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
        k = _kernels
        y = torch.empty_like(x)
        ld = torch.empty(x.shape[0], dtype=x.dtype)
        pn = params.detach().numpy()
        ex = k.exps(pn)
        xn = x.detach().numpy()
        aux = k.aux_like(xn)
        k.rqs_forward(xn, pn, ex, False, *mins, y.numpy(), ld.numpy(), aux)
        ctx.save_for_backward(x, params)
        # host scratch reused by the backward: the exponentials, knot derivatives and slopes
        ctx.ex = ex
        ctx.aux = aux
        ctx.mins = mins
        return y, ld

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, gy: Any, gld: Any) -> Any:
        x, params = ctx.saved_tensors
        gx = torch.empty_like(x)
        gp = torch.empty_like(params)
        _kernels.rqs_backward(x.detach().numpy(), params.detach().numpy(), ctx.ex, ctx.aux,
                              gy.contiguous().numpy(), gld.contiguous().numpy(), *ctx.mins,
                              gx.numpy(), gp.numpy())
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
        _kernels.rqs_forward(xn.numpy(), pn, _kernels.exps(pn), bool(inverse), *mins, y.numpy(),
                             ld.numpy(), _kernels.aux_like(xn))
        return y, ld
    if inverse:
        return NotImplemented
    return _RQSpline.apply(x.contiguous(), params.contiguous(), mins)


# -- a whole spline coupling block as one autograd node -----------------------------------------

_FLOATS = (torch.float32, torch.float64)
#: per block layout (index arrays, spline minima), checked once
_META: dict[tuple, tuple] = {}


def _mlp_forward(mlp: list[tuple[Any, Any]], inp: Any) -> tuple[Any, list[Any], list[Any]]:
    """ReLU MLP on numpy arrays: the output, and the hidden layers' pre-activations and
    activations (for the backward)."""
    pre = []
    acts = []
    h = inp
    last = len(mlp) - 1
    for k, (w, b) in enumerate(mlp):
        # one input column (1-d conditioners): a broadcast product, exactly what gemm gives,
        # without numpy's slow k=1 matmul path
        z = h * w[0] if h.shape[1] == 1 else h @ w
        z += b
        if k != last:
            pre.append(z)
            h = np.maximum(z, 0.0)
            acts.append(h)
        else:
            h = z
    return h, pre, acts


class _RQSCoupling(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Any, condition: Any, meta: Any, *weights: Any) -> Any:
        cidx, tidx, mins = meta
        k = _kernels
        xn = x.detach().numpy()
        xc = xn[:, cidx]
        xt = np.ascontiguousarray(xn[:, tidx])
        n = xn.shape[0]
        parts = ([xc] if len(cidx) else []) + \
            ([condition.detach().numpy()] if condition is not None else [])
        inp = (np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]) if parts \
            else np.ones((n, 1), dtype=xn.dtype)
        mlp = [(weights[2 * i].detach().numpy(), weights[2 * i + 1].detach().numpy())
               for i in range(len(weights) // 2)]
        out, pre, acts = _mlp_forward(mlp, inp)
        params = out.reshape(n, len(tidx), -1)
        ex = k.exps(params)
        yt = np.empty_like(xt)
        ld = np.empty(n, dtype=xn.dtype)
        aux = k.aux_like(xt)
        k.rqs_forward(xt, params, ex, False, *mins, yt, ld, aux)
        y = np.empty_like(xn)
        y[:, cidx] = xc
        y[:, tidx] = yt
        ctx.saved = (xt, inp, pre, acts, params, ex, aux)
        ctx.meta = meta
        # through autograd's saved tensors: an in-place update of a weight between this forward
        # and the backward raises torch's usual error instead of giving a wrong gradient
        ctx.save_for_backward(*weights)
        return torch.from_numpy(y), torch.from_numpy(ld)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, gy: Any, gld: Any) -> Any:
        cidx, tidx, mins = ctx.meta
        xt, inp, pre, acts, params, ex, aux = ctx.saved
        ws = ctx.saved_tensors
        mlp = [(ws[2 * i].detach().numpy(), None) for i in range(len(ws) // 2)]
        gyn = gy.detach().numpy()
        gtn = np.ascontiguousarray(gyn[:, tidx])
        gxt = np.empty_like(xt)
        gp = np.empty_like(params)
        _kernels.rqs_backward(xt, params, ex, aux, gtn, np.ascontiguousarray(gld.detach().numpy()),
                              *mins, gxt, gp)
        g = gp.reshape(params.shape[0], -1)
        grads: list[Any] = [None] * (2 * len(mlp))
        need_x = ctx.needs_input_grad[0]
        for k in range(len(mlp) - 1, -1, -1):
            w = mlp[k][0]
            h = inp if k == 0 else acts[k - 1]
            grads[2 * k] = torch.from_numpy(h.T @ g)
            grads[2 * k + 1] = torch.from_numpy(g.sum(axis=0))
            if k > 0:
                g = g @ w.T
                # d relu/dz of the reference (z + |z|) / 2 under autograd: 1, 1/2 at 0, 0
                g *= np.heaviside(pre[k - 1], 0.5)
            elif need_x:
                g = g @ w.T
        gx = None
        if need_x:
            gxn = np.empty_like(gyn)
            gxn[:, tidx] = gxt
            gc = gyn[:, cidx]
            if len(cidx):
                gc = gc + g[:, :len(cidx)]
            gxn[:, cidx] = gc
            gx = torch.from_numpy(gxn)
        return (gx, None, None, *grads)


def rqs_coupling(x: Any, condition: Any, mlp: list[tuple[Any, Any]], cond_idx: list[int],
                 trafo_idx: list[int], activation: str = "relu", inverse: bool = False,
                 min_width: float = 1e-3, min_height: float = 1e-3,
                 min_derivative: float = 1e-3) -> Any:
    """Fused :func:`mcint.flows.couplings.rqs_coupling` (density direction, ReLU) on CPU
    tensors as one autograd node: gather, MLP (numpy BLAS), spline (numba), scatter, and the
    analytic backward of all of it. ``NotImplemented`` for anything else."""
    if inverse or activation != "relu" or not isinstance(x, torch.Tensor) or not x.is_cpu \
            or x.ndim != 2 or not enabled():
        return NotImplemented
    dt = x.dtype
    if dt not in _FLOATS:
        return NotImplemented
    if condition is not None and (not isinstance(condition, torch.Tensor)
                                  or condition.requires_grad or condition.dtype != dt
                                  or not condition.is_cpu):
        return NotImplemented
    flat = []
    for w, b in mlp:
        if not (isinstance(w, torch.Tensor) and isinstance(b, torch.Tensor)) \
                or w.dtype != dt or b.dtype != dt or not (w.is_cpu and b.is_cpu):
            return NotImplemented
        flat += [w, b]
    key = (tuple(cond_idx), tuple(trafo_idx), int(flat[-2].shape[1]), float(min_width),
           float(min_height), float(min_derivative))
    meta = _META.get(key)
    if meta is None:
        n_out = key[2]
        k = len(trafo_idx)
        nb = (n_out // max(k, 1) - 1) // 3
        if k < 1 or n_out != k * (3 * nb + 1) or nb < 1 or min_width * nb >= 1 \
                or min_height * nb >= 1:
            return NotImplemented  # the reference raises the error
        meta = (np.asarray(cond_idx, dtype=np.int64), np.asarray(trafo_idx, dtype=np.int64),
                key[3:])
        _META[key] = meta
    return _RQSCoupling.apply(x.contiguous(), condition, meta, *flat)
