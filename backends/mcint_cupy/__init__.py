"""cupy backend (CUDA GPUs)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mcint.backends import Backend, BackendUnavailable


class CupyBackend(Backend):
    name = "cupy"
    numpy_native = False

    def __init__(self) -> None:
        super().__init__()
        import array_api_compat.cupy as xp
        import cupy

        self.cupy = cupy
        self.xp = xp
        self.device = cupy.cuda.Device()

    def _is_native(self, a: Any) -> bool:
        return isinstance(a, self.cupy.ndarray)

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        dt = None if dtype is None else self.dtype(dtype)
        if not self._is_native(a) and not isinstance(a, np.ndarray):
            a = self.to_numpy(a)
        return self.cupy.asarray(a, dtype=dt)

    def to_numpy(self, a: Any) -> np.ndarray:
        if self._is_native(a):
            return a.get()
        return super().to_numpy(a)

    def rng(self, seed: int | None = None):
        return CupyStream(seed, self)

    def bincount(self, idx: Any, weights: Any = None, minlength: int = 0) -> Any:
        return self.cupy.bincount(idx.astype(self.cupy.int64), weights=weights, minlength=minlength)

    def synchronize(self) -> None:
        self.cupy.cuda.Device().synchronize()


class CupyStream:
    """cupy's device generator."""

    def __init__(self, seed: int | None, backend: CupyBackend) -> None:
        self.backend = backend
        self.seed = seed
        self._gen = backend.cupy.random.default_rng(seed)

    def uniform(self, shape, dtype: Any = "float64"):
        return self._gen.random(shape, dtype=self.backend.dtype(dtype))

    def normal(self, shape, dtype: Any = "float64"):
        return self._gen.standard_normal(shape, dtype=self.backend.dtype(dtype))

    def integers(self, low: int, high: int, shape):
        return self._gen.integers(low, high, size=shape, dtype=self.backend.cupy.int64)

    def categorical(self, probs: Any, n: int):
        cp = self.backend.cupy
        cdf = cp.cumsum(cp.asarray(probs, dtype=cp.float64))
        cdf /= cdf[-1]
        idx = cp.searchsorted(cdf, self._gen.random(n), side="right")
        return cp.minimum(idx, cdf.size - 1).astype(cp.int64)

    def spawn(self) -> CupyStream:
        return CupyStream(int(self.integers(0, 2**62, 1)[0]), self.backend)

    @property
    def state(self) -> dict:
        raise NotImplementedError("cupy RNG state cannot be checkpointed; resume on a CPU backend")


def plugin() -> Backend:
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailable("cupy is not installed (pip install 'mcint[cupy]')") from exc
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        raise BackendUnavailable(f"cupy is installed but no CUDA device was found ({exc})") from exc
    if n == 0:
        raise BackendUnavailable("cupy is installed but no CUDA device was found")
    return CupyBackend()
