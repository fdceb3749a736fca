"""A TOY analytic PDF (not a fit to data, no Q^2 evolution) for examples and tests.

Valence ``u_v = 2 x^-0.5 (1-x)^3 / B(0.5, 4)``, ``d_v = x^-0.5 (1-x)^4 / B(0.5, 5)`` (so the
valence sum rules hold exactly), sea ``x ubar = x dbar = 0.15 x^-0.1 (1-x)^7``, strange and charm
fractions of that, gluon ``x g = 1.7 x^-0.1 (1-x)^5``. Shapes are loosely proton-like at
``Q ~ 100 GeV``; use a real set (:class:`mcint.pdf.LHAGrid`) for physics.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace

__all__ = ["ToyPDF"]


def _beta(a: float, b: float) -> float:
    return math.gamma(a) * math.gamma(b) / math.gamma(a + b)


_NU = 2.0 / _beta(0.5, 4.0)
_ND = 1.0 / _beta(0.5, 5.0)


class ToyPDF:
    """TOY proton PDF (see the module docstring); ``xfxQ2(pid, x, q2)`` ignores ``q2``."""

    is_toy = True
    flavours = (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 21)

    def xfxQ2(self, pid: int, x: Any, q2: Any = None) -> Any:  # noqa: N802 (LHAPDF's name)
        """``x f(x)`` for PDG id ``pid`` (``q2`` accepted for interface parity, unused)."""
        xp = array_namespace(x)
        one_m = 1.0 - x
        sea = 0.15 * x ** -0.1 * one_m ** 7
        if pid == 2:
            return _NU * x ** 0.5 * one_m ** 3 + sea
        if pid == 1:
            return _ND * x ** 0.5 * one_m ** 4 + sea
        if pid in (-1, -2):
            return sea
        if pid in (3, -3):
            return 0.5 * sea
        if pid in (4, -4):
            return 0.2 * sea
        if pid in (5, -5):
            return 0.1 * sea
        if pid == 21:
            return 1.7 * x ** -0.1 * one_m ** 5
        if pid in (6, -6):
            return xp.zeros_like(x)
        raise ValueError(f"ToyPDF has no parton with PDG id {pid}; known: {self.flavours}")

    def __repr__(self) -> str:
        return "ToyPDF()  # a toy, not a fit"
