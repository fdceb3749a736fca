"""Which implementation of a ``@fusable`` kernel runs: one rule, no registration order.

:func:`select_kernel` is a pure function of (kernel name, current backend, the array library of
the first argument, its dtype, the grad mode); :func:`mcint.backends.fusable` calls it on every
call, and tests call it directly. The rule:

1. ``$MCINT_FUSED=0``: the array-API reference, everywhere.
2. The *owner* of the arrays is the current backend when they are its arrays (numpy arrays
   under numpy/numba, torch tensors under torch/torch-cuda, ...), else the default backend of
   their library (torch tensors -> ``torch``, numpy arrays -> ``numpy``, ...); anything else
   (a Python scalar, a list) belongs to the current backend. So torch tensors
   under the numpy or numba backend go to the torch plugin's kernels, in a fresh process as
   after :func:`mcint.backends.available`, and numpy arrays reach numba kernels only when the
   numba backend is current.
3. The owner's ``kernels[name]`` runs if it exists and declares the dtype (``kernel_dtypes``)
   and, with grad mode on, gradient support (``kernel_grad``); see :func:`declare`.
4. Otherwise, or when the kernel declines the call (returns ``NotImplemented``: inputs outside
   its domain, e.g. CUDA tensors or a layout it does not fuse), the reference runs.

:func:`trace` records which implementation each call used (the profile tests).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["FUSED_ENV", "LIBRARY_BACKENDS", "array_library", "declare", "fused_enabled",
           "kernel_owner", "select_kernel", "trace"]

FUSED_ENV = "MCINT_FUSED"
#: array library -> the backend whose kernels serve its arrays under another current backend
LIBRARY_BACKENDS = {"numpy": "numpy", "torch": "torch", "cupy": "cupy",
                    "array_api_strict": "strict"}

_libraries: dict[type, str] = {}
_dtype_names: dict[Any, str] = {}
_owners: dict[tuple[int, str], tuple[Any, Any]] = {}
_trace: contextvars.ContextVar[list | None] = contextvars.ContextVar("mcint_trace", default=None)


# os.environ.get of an unset variable costs ~1 us (a KeyError raised inside), paid on every
# kernel call; os.environ's own dict (CPython's store behind it, kept in sync by os.environ's
# setters, so by monkeypatch.setenv too) answers in ~50 ns
_ENV_DATA = getattr(os.environ, "_data", None)
_encode = getattr(os.environ, "encodekey", None)
_decode = getattr(os.environ, "decodevalue", None)


def getenv(key: str) -> str | None:
    """``os.environ.get(key)``, fast for unset variables."""
    if _ENV_DATA is None or _encode is None or _decode is None:  # pragma: no cover
        return os.environ.get(key)
    v = _ENV_DATA.get(_encode(key))
    return None if v is None else _decode(v)


def fused_enabled() -> bool:
    """Whether fused kernels may run at all (``$MCINT_FUSED`` is not ``0``)."""
    return getenv(FUSED_ENV) != "0"


def array_library(a: Any) -> str:
    """The top-level module of an array, an array type or a library name
    (``"numpy"``, ``"torch"``, ``"array_api_strict"``, ``"cupy"``)."""
    if isinstance(a, str):
        return a
    t = a if isinstance(a, type) else type(a)
    lib = _libraries.get(t)
    if lib is None:
        lib = _libraries[t] = t.__module__.split(".")[0]
    return lib


def _dtype_name(dt: Any) -> str | None:
    if dt is None or isinstance(dt, str):
        return dt
    name = _dtype_names.get(dt)
    if name is None:
        name = _dtype_names[dt] = str(dt).rsplit(".", 1)[-1]  # torch.float32 -> float32
    return name


def declare(fn: Callable[..., Any], *, dtypes: tuple[str, ...] | None = None,
            grad: bool = False) -> Callable[..., Any]:
    """Mark ``fn`` as a fused kernel for the dtypes ``dtypes`` (``None``: it checks itself)
    that supports calls in grad mode when ``grad`` (a differentiable autograd node)."""
    fn.kernel_dtypes = None if dtypes is None else frozenset(dtypes)  # type: ignore[attr-defined]
    fn.kernel_grad = bool(grad)  # type: ignore[attr-defined]
    return fn


def kernel_owner(backend: Any, array: Any) -> Any:
    """The backend whose kernels serve ``array`` (an array, its type or library name) while
    ``backend`` is current, or ``None`` when no usable backend handles that library."""
    lib = array_library(array)
    # memo of a pure function (the registry's instances are fixed); keyed by identity, checked
    hit = _owners.get((id(backend), lib))
    if hit is not None and hit[0] is backend:
        return hit[1]
    if backend.array_library == lib or lib not in LIBRARY_BACKENDS:
        owner = backend  # its own arrays, or no array (a Python scalar, a list, ...)
    else:
        from . import BackendUnavailable, get_backend

        try:
            owner = get_backend(LIBRARY_BACKENDS[lib])
        except BackendUnavailable:
            owner = None
    _owners[(id(backend), lib)] = (backend, owner)
    return owner


def select_kernel(name: str, backend: Any, array: Any, dtype: Any = None,
                  grad: bool | None = None) -> Callable[..., Any] | None:
    """The fused implementation of kernel ``name`` for these inputs, or ``None`` (the
    reference runs). ``backend``: the current backend (a :class:`Backend` or name);
    ``array``: the first argument (or its type or library); ``dtype``/``grad``: default from
    ``array`` and the owner's grad mode."""
    if not fused_enabled():
        return None
    if not hasattr(backend, "kernels"):
        from . import get_backend

        backend = get_backend(backend)
    return _select(name, backend, array, dtype, grad)


def _select(name: str, backend: Any, array: Any, dtype: Any = None,
            grad: bool | None = None) -> Callable[..., Any] | None:
    # select_kernel after the switch and the name lookup: the per-call path of @fusable
    owner = kernel_owner(backend, array)
    if owner is None:
        return None
    impl = owner.kernels.get(name)
    if impl is None:
        return None
    dts = getattr(impl, "kernel_dtypes", None)
    if dts is not None:
        dt = _dtype_name(dtype if dtype is not None else getattr(array, "dtype", None))
        if dt not in dts:
            return None
    if grad is None:
        grad = owner.grad_mode()
    if grad and not getattr(impl, "kernel_grad", False):
        return None
    return impl


def record(name: str, impl: str) -> None:
    """Note that kernel ``name`` ran as ``impl`` (an owner's name, or ``"reference"``)."""
    log = _trace.get()
    if log is not None:
        log.append((name, impl))


def tracing() -> bool:
    return _trace.get() is not None


@contextlib.contextmanager
def trace() -> Iterator[list[tuple[str, str]]]:
    """Record ``(kernel name, implementation)`` for every ``@fusable`` call in the block;
    the implementation is the name of the backend whose fused kernel ran, or ``"reference"``."""
    log: list[tuple[str, str]] = []
    token = _trace.set(log)
    try:
        yield log
    finally:
        _trace.reset(token)


def clear_cache() -> None:
    """Forget the owners resolved so far (after a backend is registered again)."""
    _owners.clear()
