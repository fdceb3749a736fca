"""Fused invariant samplers, forward direction (references: ``uniform_forward``,
``breit_wigner_forward`` and ``power_law_forward`` in :mod:`mcint.phasespace.invariants`).

One pass per value instead of the references' 5-15 array temporaries. ``r`` must be a numpy
float64 ``(n,)`` array, the limits floats or ``(n,)`` float64 arrays; anything else returns
``NotImplemented`` (the reference broadcasts it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import kernel
from . import ps_math as M


@M.jit
def _sample(kind, c0, c1, r, lo, sl, hi, sh, s, ld):  # pragma: no cover - compiled
    for i in range(r.shape[0]):
        s[i], ld[i] = M.sample_invariant(kind, c0, c1, r[i], lo[i * sl], hi[i * sh])


def _run(kind: int, c0: float, c1: float, r: Any, lo: Any, hi: Any) -> Any:
    if not M.is_f64(r, None):
        return NotImplemented
    n = r.shape[0]
    clo, chi = M.column(lo, n), M.column(hi, n)
    if clo is None or chi is None:
        return NotImplemented
    s, ld = np.empty(n), np.empty(n)
    _sample(kind, float(c0), float(c1), r, *clo, *chi, s, ld)
    return s, ld


@kernel("phasespace-uniform-forward")
def uniform_forward(r: Any, lo: Any, hi: Any) -> Any:
    return _run(M.UNIFORM, 0.0, 0.0, r, lo, hi)


@kernel("phasespace-breit-wigner-forward")
def breit_wigner_forward(r: Any, lo: Any, hi: Any, mass: float, width: float) -> Any:
    return _run(M.BREIT_WIGNER, mass, width, r, lo, hi)


@kernel("phasespace-power-law-forward")
def power_law_forward(r: Any, lo: Any, hi: Any, nu: float) -> Any:
    return _run(M.POWER_LAW, nu, 0.0, r, lo, hi)
