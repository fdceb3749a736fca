"""Optimiser plumbing for training on torch: Adam over leaf tensors, LR schedules, clipping.

The models' maths is array-API code; here are only the few torch-specific pieces training needs
(the optimiser and gradient clipping), kept in one module so nothing else imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["SCHEDULES", "Optimizer", "schedule_factor"]


def _constant(t: float) -> float:
    return 1.0


def _cosine(t: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(max(t, 0.0), 1.0)))


def _exponential(t: float) -> float:
    # down by 100x over the run
    return 0.01 ** min(max(t, 0.0), 1.0)


def _onecycle(t: float) -> float:
    # linear warm-up over the first 10 %, then cosine decay
    t = min(max(t, 0.0), 1.0)
    return t / 0.1 if t < 0.1 else _cosine((t - 0.1) / 0.9)


#: learning-rate schedules as functions of the run fraction ``t`` in [0, 1]
SCHEDULES: dict[str, Callable[[float], float]] = {
    "constant": _constant,
    "cosine": _cosine,
    "exponential": _exponential,
    "onecycle": _onecycle,
}


def schedule_factor(schedule: str | Callable[[float], float], t: float) -> float:
    """The LR multiplier of ``schedule`` at run fraction ``t`` (floored at 1e-3 of the
    base rate except for user callables)."""
    if callable(schedule):
        return float(schedule(t))
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown lr schedule {schedule!r}; choose one of {sorted(SCHEDULES)} "
                         "or pass a callable of the run fraction")
    return max(SCHEDULES[schedule](t), 1e-3)


class Optimizer:
    """Adam on a list of torch leaf tensors, with gradient-norm clipping and a schedule.

    :meth:`step` refuses non-finite gradients (the step is skipped and counted), so a bad
    batch never reaches the parameters.
    """

    def __init__(self, params: Sequence[Any], lr: float = 1e-3, *, clip: float | None = 10.0,
                 betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0) -> None:
        import torch

        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        if clip is not None and not clip > 0:
            raise ValueError(f"gradient clip must be > 0 or None, got {clip}")
        self.torch = torch
        self.params = list(params)
        self.base_lr = float(lr)
        self.clip = clip
        # nothing to train (a VEGAS-only integrator) still gets an optimiser object
        ps = self.params or [torch.zeros(1, requires_grad=True)]
        try:
            # one fused kernel for all tensors: ~4x cheaper than the per-tensor loop, which
            # matters at small batches (the step is then mostly fixed costs)
            self.opt = torch.optim.Adam(ps, lr=lr, betas=betas, weight_decay=weight_decay,
                                        fused=True)
        except (RuntimeError, TypeError, ValueError):  # older torch, unsupported device/dtype
            self.opt = torch.optim.Adam(ps, lr=lr, betas=betas, weight_decay=weight_decay)
        #: optimisation steps skipped because the gradient was not finite
        self.skipped = 0

    def set_lr_factor(self, factor: float) -> None:
        for g in self.opt.param_groups:
            g["lr"] = self.base_lr * factor

    @property
    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def step(self, loss: Any, frozen: Sequence[Any] = ()) -> bool:
        """Back-propagate ``loss`` and update; returns False (and counts) if skipped."""
        torch = self.torch
        self.opt.zero_grad(set_to_none=True)
        if not bool(torch.isfinite(loss)):
            self.skipped += 1
            return False
        if not loss.requires_grad:
            return True
        loss.backward()
        return self.apply_gradients(frozen)

    def apply_gradients(self, frozen: Sequence[Any] = ()) -> bool:
        """Clip the gradients now held by the parameters and make the Adam step (the part of
        :meth:`step` after ``backward``); returns False (and counts) if they are not finite."""
        torch = self.torch
        for p in frozen:
            p.grad = None
        g = [p.grad for p in self.params if p.grad is not None]
        if not g:
            return True
        # one fused kernel per operation (torch >= 2.1, as clip_grad_norm_ uses them)
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(g)))
        if not bool(torch.isfinite(norm)):
            self.opt.zero_grad(set_to_none=True)
            self.skipped += 1
            return False
        if self.clip is not None and bool(norm > self.clip):
            # what clip_grad_norm_ does, without its per-call grouping by device and dtype
            # (a third of the optimiser's time at small batches)
            torch._foreach_mul_(g, self.clip / (norm + 1e-6))
        self.opt.step()
        return True

    # -- checkpoints -----------------------------------------------------------------------
    def state_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Adam moments as numpy arrays plus JSON metadata (no pickle)."""
        arrays: dict[str, np.ndarray] = {}
        steps: list[float | None] = []
        for i, p in enumerate(self.params):
            st = self.opt.state.get(p, {})
            if "exp_avg" in st:
                arrays[f"m{i}"] = st["exp_avg"].detach().cpu().numpy()
                arrays[f"v{i}"] = st["exp_avg_sq"].detach().cpu().numpy()
                steps.append(float(st["step"]))
            else:
                steps.append(None)
        meta = {"steps": steps, "lr": self.lr, "base_lr": self.base_lr, "skipped": self.skipped}
        return arrays, meta

    def load_state_arrays(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        torch = self.torch
        for i, p in enumerate(self.params):
            step = meta["steps"][i]
            if step is None:
                continue
            # fused Adam keeps its step counts on the parameters' device, the loop on the host
            fused = bool(self.opt.defaults.get("fused"))
            self.opt.state[p] = {
                "step": torch.tensor(float(step), dtype=torch.float32,
                                     device=p.device if fused else "cpu"),
                "exp_avg": torch.as_tensor(arrays[f"m{i}"], dtype=p.dtype, device=p.device).clone(),
                "exp_avg_sq": torch.as_tensor(arrays[f"v{i}"], dtype=p.dtype,
                                              device=p.device).clone(),
            }
        self.base_lr = float(meta["base_lr"])
        self.skipped = int(meta["skipped"])
        for g in self.opt.param_groups:
            g["lr"] = float(meta["lr"])
