"""array-api-strict backend: the linter backend. Any non-standard call in mcint fails here."""

from __future__ import annotations

from typing import Any

import numpy as np

from mcint.backends import Backend, BackendUnavailable


class StrictBackend(Backend):
    name = "strict"
    numpy_native = False

    def __init__(self) -> None:
        super().__init__()
        import array_api_strict as xp

        self.xp = xp
        self.device = xp.Device("CPU_DEVICE")

    def _is_native(self, a: Any) -> bool:
        return type(a).__module__.startswith("array_api_strict")

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        if self._is_native(a):
            return a if dtype is None else self.xp.astype(a, self.dtype(dtype))
        a = np.asarray(self.to_numpy(a) if not isinstance(a, np.ndarray) else a)
        dt = self.dtype(dtype) if dtype is not None else None
        return self.xp.asarray(a, dtype=dt, device=self.device)


def plugin() -> Backend:
    try:
        import array_api_strict  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable("array-api-strict is not installed") from exc
    return StrictBackend()
