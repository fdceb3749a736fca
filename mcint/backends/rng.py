"""Seeded random streams that return arrays of a given backend.

The standard has no random numbers; every backend gets a stream with the same small interface:
``uniform``, ``normal``, ``integers``, ``categorical`` and a JSON-serialisable ``state`` so that
checkpoints can resume a run bit-exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .base import Backend


class NumpyStream:
    """PCG64 stream on the host; arrays are converted to the backend (zero-copy for torch-cpu)."""

    def __init__(self, seed: int | None, backend: Backend) -> None:
        if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.backend = backend
        self.seed = seed
        self._gen = np.random.Generator(np.random.PCG64(seed))

    def _out(self, a: np.ndarray, dtype: Any) -> Any:
        return self.backend.asarray(a, dtype=dtype)

    def uniform(self, shape: tuple[int, ...] | int, dtype: Any = "float64") -> Any:
        """Uniform numbers in [0, 1)."""
        dt = np.float32 if str(dtype).endswith("float32") else np.float64
        return self._out(self._gen.random(shape, dtype=dt), dtype)

    def normal(self, shape: tuple[int, ...] | int, dtype: Any = "float64") -> Any:
        """Standard normal numbers."""
        dt = np.float32 if str(dtype).endswith("float32") else np.float64
        return self._out(self._gen.standard_normal(shape, dtype=dt), dtype)

    def integers(self, low: int, high: int, shape: tuple[int, ...] | int) -> Any:
        """Integers in [low, high)."""
        return self._out(self._gen.integers(low, high, size=shape, dtype=np.int64), "int64")

    def categorical(self, probs: Any, n: int) -> Any:
        """``n`` indices drawn with probabilities ``probs`` (1-d, summing to 1)."""
        p = np.asarray(self.backend.to_numpy(probs), dtype=np.float64)
        cdf = np.cumsum(p)
        cdf /= cdf[-1]
        idx = np.searchsorted(cdf, self._gen.random(n), side="right")
        return self._out(np.minimum(idx, p.size - 1).astype(np.int64), "int64")

    def spawn(self) -> NumpyStream:
        """An independent child stream (for helper samplers)."""
        child = NumpyStream.__new__(NumpyStream)
        child.backend = self.backend
        child.seed = None
        child._gen = self._gen.spawn(1)[0]
        return child

    @property
    def state(self) -> dict:
        """JSON-serialisable state (for checkpoints)."""
        st = self._gen.bit_generator.state
        return {
            "kind": "numpy-pcg64",
            "state": int(st["state"]["state"]),
            "inc": int(st["state"]["inc"]),
            "has_uint32": int(st["has_uint32"]),
            "uinteger": int(st["uinteger"]),
        }

    @state.setter
    def state(self, value: dict) -> None:
        if value.get("kind") != "numpy-pcg64":
            raise ValueError(f"cannot restore a {value.get('kind')!r} RNG state into a numpy stream")
        self._gen.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": int(value["state"]), "inc": int(value["inc"])},
            "has_uint32": int(value["has_uint32"]),
            "uinteger": int(value["uinteger"]),
        }
