"""Elementwise bijections: box rescaling, logit and sigmoid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import Transform, check_batch


def _as_param(values: Sequence[float] | float, dims: int, name: str) -> np.ndarray:
    a = np.broadcast_to(np.asarray(values, dtype=np.float64), (dims,)).copy()
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {a}")
    return a


class Affine(Transform):
    """``y = low + (high - low) * x``: maps the unit box onto ``[low, high]`` per dimension."""

    _array_attrs = ("low", "width")

    def __init__(self, low: Sequence[float] | float, high: Sequence[float] | float,
                 dims: int | None = None) -> None:
        if dims is None:
            dims = int(np.size(low)) if np.ndim(low) else int(np.size(high))
        lo = _as_param(low, dims, "low")
        hi = _as_param(high, dims, "high")
        if np.any(hi == lo):
            raise ValueError(f"Affine needs low != high in every dimension, got {lo} and {hi}")
        self.dims = dims
        self.low = lo
        self.width = hi - lo

    def _params(self, x: Any) -> tuple[Any, Any, Any]:
        xp = check_batch(x, self.dims)
        low = xp.asarray(self.low, dtype=x.dtype, device=getattr(x, "device", None))
        width = xp.asarray(self.width, dtype=x.dtype, device=getattr(x, "device", None))
        return xp, low, width

    def forward(self, x: Any) -> tuple[Any, Any]:
        xp, low, width = self._params(x)
        ld = xp.sum(xp.log(xp.abs(width)))
        return low + width * x, xp.zeros_like(x[:, 0]) + ld

    def inverse(self, y: Any) -> tuple[Any, Any]:
        xp, low, width = self._params(y)
        ld = -xp.sum(xp.log(xp.abs(width)))
        return (y - low) / width, xp.zeros_like(y[:, 0]) + ld

    def __repr__(self) -> str:
        return f"Affine(low={self.low.tolist()}, high={(self.low + self.width).tolist()})"


class Sigmoid(Transform):
    """``y = 1 / (1 + exp(-x))``: maps ``R^d`` onto the open unit box."""

    def __init__(self, dims: int | None = None) -> None:
        self.dims = dims

    def forward(self, x: Any) -> tuple[Any, Any]:
        xp = check_batch(x, self.dims)
        y = 1.0 / (1.0 + xp.exp(-x))
        # log sigma'(x) = -softplus(-x) - softplus(x), written stably
        ld = -(_softplus(xp, -x) + _softplus(xp, x))
        return y, xp.sum(ld, axis=1)

    def inverse(self, y: Any) -> tuple[Any, Any]:
        xp = check_batch(y, self.dims)
        x = xp.log(y) - xp.log1p(-y)
        return x, -xp.sum(xp.log(y) + xp.log1p(-y), axis=1)

    def __repr__(self) -> str:
        return f"Sigmoid(dims={self.dims})"


class Logit(Transform):
    """``y = log(x / (1 - x))``: the inverse of :class:`Sigmoid`."""

    def __init__(self, dims: int | None = None) -> None:
        self.dims = dims
        self._sig = Sigmoid(dims)

    def forward(self, x: Any) -> tuple[Any, Any]:
        return self._sig.inverse(x)

    def inverse(self, y: Any) -> tuple[Any, Any]:
        return self._sig.forward(y)

    def __repr__(self) -> str:
        return f"Logit(dims={self.dims})"


def _softplus(xp: Any, x: Any) -> Any:
    """``log(1 + exp(x))`` without overflow."""
    return xp.maximum(x, xp.zeros_like(x)) + xp.log1p(xp.exp(-xp.abs(x)))

