"""Renormalisation and factorisation scales: fixed, or MadGraph's dynamical choices.

``scale(choice, momenta)`` gives ``mu`` (GeV) per event from momenta ``(n, 2 + k, 4)`` (the two
incoming partons first):

* a number: that fixed scale;
* ``"transverse_energy"``: ``sum_i E_T,i = sum_i E_i pT_i / |p_i|`` over the final state;
* ``"transverse_mass"``: ``sum_i m_T,i = sum_i sqrt(m_i^2 + pT_i^2)`` over the final state;
* ``"half_transverse_mass"``: half of that (``H_T / 2`` for massless particles);
* ``"partonic_energy"``: ``sqrt(s_hat) = m(p_1 + p_2)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..phasespace import kinematics as K

__all__ = ["DYNAMIC_SCALES", "check_scale", "scale"]

DYNAMIC_SCALES = ("transverse_energy", "transverse_mass", "half_transverse_mass",
                  "partonic_energy")


def check_scale(choice: Any, what: str = "scale") -> float | str:
    """A positive finite number or one of :data:`DYNAMIC_SCALES` (else ``ValueError``)."""
    if isinstance(choice, str):
        if choice not in DYNAMIC_SCALES:
            import difflib

            near = difflib.get_close_matches(choice, DYNAMIC_SCALES, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ValueError(f"{what} {choice!r} is not a number or one of "
                             f"{', '.join(DYNAMIC_SCALES)}{hint}")
        return choice
    if isinstance(choice, bool) or not isinstance(choice, (int, float)) or \
            not (math.isfinite(choice) and choice > 0):
        raise ValueError(f"{what} must be a positive number of GeV or one of "
                         f"{', '.join(DYNAMIC_SCALES)}, got {choice!r}")
    return float(choice)


def scale(choice: float | str, momenta: Any) -> np.ndarray:
    """``mu`` in GeV per event (see the module docstring)."""
    p = np.asarray(momenta, dtype=np.float64)
    n = p.shape[0]
    choice = check_scale(choice)
    if not isinstance(choice, str):
        return np.full(n, choice)
    if choice == "partonic_energy":
        return K.mass(p[:, 0] + p[:, 1])
    fs = p[:, 2:]
    pt = K.pt(fs)
    if choice == "transverse_energy":
        mod = np.sqrt(np.sum(fs[..., 1:] ** 2, axis=-1))
        et = np.where(mod > 0, fs[..., 0] * pt / np.where(mod > 0, mod, 1.0), 0.0)
        return np.sum(et, axis=1)
    mt = np.sqrt(np.maximum(K.mass2(fs), 0.0) + pt * pt)
    total = np.sum(mt, axis=1)
    return total if choice == "transverse_mass" else 0.5 * total
