"""The :class:`Batch` of weighted points that every sampler returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Batch:
    """Weighted sample from a sampler.

    ``weights = f(x) / g(x)`` (channel weights applied for multi-channel samplers), so
    ``weights.mean()`` is an unbiased estimate of the integral.
    """

    #: points, shape ``(n, dims)``
    x: Any
    #: importance weights ``f(x)/g(x)``, shape ``(n,)``
    weights: Any
    #: sampling density ``g(x)`` of each point, shape ``(n,)`` (``None`` if not tracked)
    prob: Any = None
    #: integrand values ``f(x)``, shape ``(n,)`` (``None`` if not kept)
    f: Any = None
    #: channel index of each point (multi-channel samplers), shape ``(n,)``
    channels: Any = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to_numpy(self) -> Batch:
        """The same batch with every array copied to numpy."""
        from .backends.base import _to_numpy_any

        return Batch(**{k: None if v is None else _to_numpy_any(v) for k, v in self.__dict__.items()})
