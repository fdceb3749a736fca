"""Small helpers shared by the VEGAS modules."""

from __future__ import annotations

from typing import Any

from ..backends import Backend, current, get_backend


def backend_of(a: Any) -> Backend:
    """The backend an array belongs to (the current one if it owns ``a``)."""
    cur = current()
    if cur.is_array(a):
        return cur
    mod = type(a).__module__.split(".")[0]
    if mod == "numpy":
        return get_backend("numpy")
    if mod == "torch":
        return get_backend("torch-cuda" if a.is_cuda else "torch")
    if mod == "cupy":
        return get_backend("cupy")
    if mod == "array_api_strict":
        return get_backend("strict")
    raise TypeError(f"unsupported array type {type(a).__module__}.{type(a).__name__}")


def check_int(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum``, or a ValueError naming ``name``."""
    try:
        ok = float(value) == int(value) and not isinstance(value, bool)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
