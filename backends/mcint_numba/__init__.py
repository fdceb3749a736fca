"""numba backend: numpy arrays, with numba-compiled fused kernels for the CPU hot loops.

Kernels are registered by name in :data:`KERNELS` (see :func:`mcint.backends.fusable`); each
module under ``mcint_numba.kernels`` adds its own when imported. Every kernel falls back to the
pure array-API reference (returns ``NotImplemented``) for inputs it does not handle, e.g. torch
tensors during training.
"""

from __future__ import annotations

import importlib
import pkgutil

from mcint.backends import Backend, BackendUnavailable

KERNELS: dict = {}


def kernel(name: str):
    """Register a fused numba implementation of the array-API kernel ``name``."""

    def deco(fn):
        KERNELS[name] = fn
        return fn

    return deco


class NumbaBackend(Backend):
    name = "numba"

    def __init__(self) -> None:
        super().__init__()
        self.kernels = KERNELS


def _load_kernels() -> None:
    from . import kernels as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{mod.name}")


def plugin() -> Backend:
    try:
        import numba  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable("numba is not installed (pip install 'mcint[numba]')") from exc
    _load_kernels()
    return NumbaBackend()
