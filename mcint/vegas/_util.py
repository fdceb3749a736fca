"""Small helpers shared by the VEGAS modules."""

from __future__ import annotations

from typing import Any

import numpy as np

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


def check_seed(seed: Any) -> int | None:
    """``seed`` as a non-negative int or None, else a ValueError (also for ``True``, ``1.5`` or
    a numpy ``Generator``: a seed is a number, so that runs repeat and checkpoints store it).

    The one seed check of every integrator (VEGAS, NIS).
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is True or False, else a ValueError (a string like ``"no"`` is truthy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_frac(v: Any, name: str, lo: float, hi: float, open_hi: bool = False) -> float:
    """``v`` as a float in ``[lo, hi]`` (``[lo, hi)`` with ``open_hi``), else a ValueError."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {v!r}") from None
    if not (lo <= x <= hi) or (open_hi and x >= hi):
        raise ValueError(f"{name} must be in [{lo}, {hi}{')' if open_hi else ']'}, got {v!r}")
    return x
