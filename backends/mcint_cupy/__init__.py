"""cupy backend (CUDA GPUs)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mcint.backends import Backend, BackendUnavailable


class CupyBackend(Backend):
    name = "cupy"
    numpy_native = False
    gpu = True

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
        if weights is not None:  # cupy's weighted bincount adds with atomics: not repeatable
            return self.sorted_bincount(idx, weights, minlength)
        return self.cupy.bincount(idx.astype(self.cupy.int64), minlength=minlength)

    def synchronize(self) -> None:
        self.cupy.cuda.Device().synchronize()


class CupyStream:
    """Counter-based stream on the device: each draw comes from cuRAND's Philox generator keyed
    by ``(seed, draw number)``.

    A cuRAND generator's state is hundreds of thousands of per-thread states in device memory,
    too big to checkpoint; a fresh Philox generator per draw costs one light set-up kernel and
    makes the whole stream state two integers, so checkpoints resume on the GPU bit-exactly.
    """

    def __init__(self, seed: int | None, backend: CupyBackend) -> None:
        if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.backend = backend
        self.seed = seed
        self._entropy = int(seed) if seed is not None else int(np.random.SeedSequence().entropy)
        self._draws = 0

    def _gen(self):
        cp = self.backend.cupy
        bits = cp.random.Philox4x3210(np.random.SeedSequence([self._entropy, self._draws]))
        self._draws += 1
        return cp.random.Generator(bits)

    def uniform(self, shape, dtype: Any = "float64"):
        return self._gen().random(shape, dtype=self.backend.dtype(dtype))

    def normal(self, shape, dtype: Any = "float64"):
        return self._gen().standard_normal(shape, dtype=self.backend.dtype(dtype))

    def integers(self, low: int, high: int, shape):
        return self._gen().integers(low, high, size=shape, dtype=self.backend.cupy.int64)

    def categorical(self, probs: Any, n: int):
        cp = self.backend.cupy
        cdf = cp.cumsum(cp.asarray(probs, dtype=cp.float64))
        cdf /= cdf[-1]
        idx = cp.searchsorted(cdf, self._gen().random(n), side="right")
        return cp.minimum(idx, cdf.size - 1).astype(cp.int64)

    def spawn(self) -> CupyStream:
        return CupyStream(int(self.integers(0, 2**62, 1)[0]), self.backend)

    @property
    def state(self) -> dict:
        """JSON-serialisable state (for checkpoints)."""
        return {"kind": "cupy-philox", "entropy": self._entropy, "draws": self._draws}

    @state.setter
    def state(self, value: dict) -> None:
        if value.get("kind") != "cupy-philox":
            raise ValueError(f"cannot restore a {value.get('kind')!r} RNG state into a cupy stream")
        self._entropy = int(value["entropy"])
        self._draws = int(value["draws"])


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
