"""Argument checks and seed plumbing shared by the NIS modules (clear errors naming the option)."""

from __future__ import annotations

from typing import Any

import numpy as np


def _seed_ints(seed: int | None, n: int) -> list[int]:
    ss = np.random.SeedSequence(seed)
    return [int(s) for s in ss.generate_state(n, dtype=np.uint32)]



def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _check_int(v: Any, name: str, lo: int) -> None:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")


def _check_frac(v: Any, name: str, lo: float, hi: float, open_hi: bool = False) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {v!r}") from None
    if not (lo <= x <= hi) or (open_hi and x >= hi):
        raise ValueError(f"{name} must be in [{lo}, {hi}{')' if open_hi else ']'}, got {v!r}")
    return x
