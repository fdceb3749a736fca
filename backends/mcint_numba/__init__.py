"""numba backend: numpy arrays, with numba-compiled fused kernels for the CPU hot loops.

Kernels are listed by name in :data:`KERNELS`, this backend's ``kernels`` table (see
:mod:`mcint.backends.dispatch` for when they run: numpy arrays while the numba backend is
current); each module under ``mcint_numba.kernels`` adds its own when imported. A kernel
returns ``NotImplemented`` for inputs it does not handle, and the array-API reference runs.
"""

from __future__ import annotations

import importlib
import pkgutil

from mcint.backends import Backend, BackendUnavailable
from mcint.backends.dispatch import declare

KERNELS: dict = {}


def kernel(name: str, dtypes: tuple[str, ...] | None = None):
    """Add a fused numba implementation of the array-API kernel ``name`` to this backend's
    table; ``dtypes``: the dtypes it fuses (``None``: it checks the arguments itself)."""

    def deco(fn):
        KERNELS[name] = declare(fn, dtypes=dtypes)
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
