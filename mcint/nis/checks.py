"""Argument checks and seed plumbing shared by the NIS modules (clear errors naming the option)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..vegas._util import check_frac, check_seed


def _seed_ints(seed: int | None, n: int) -> list[int]:
    """``n`` stream seeds from the user's ``seed`` (checked as VEGAS checks it)."""
    ss = np.random.SeedSequence(check_seed(seed))
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


_check_frac = check_frac
