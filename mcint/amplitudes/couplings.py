"""Couplings: the electroweak parameters (G_mu scheme) and the strong coupling.

The W couples as ``(g_w / sqrt(2)) gamma^mu P_L`` to ``(u, d)``, ``(c, s)``, ``(nu_l, l)``
with a unit CKM matrix. In the G_mu scheme ``g_w^2 = 4 sqrt(2) G_F M_W^2`` (from muon decay),
``sin^2 theta_W = 1 - M_W^2 / M_Z^2`` and ``alpha = sqrt(2) G_F M_W^2 sin^2 theta_W / pi``; only
``g_w``, ``M_W`` and ``Gamma_W`` enter the W amplitudes here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["EWParameters", "strong_coupling"]


@dataclass(frozen=True)
class EWParameters:
    """Electroweak inputs (GeV) in the G_mu scheme: ``mw``, ``ww`` (W width, fixed-width
    propagator everywhere), ``mz`` and the Fermi constant ``gf`` (GeV^-2)."""

    mw: float = 80.379
    ww: float = 2.085
    mz: float = 91.1876
    gf: float = 1.1663787e-5

    def __post_init__(self) -> None:
        for name in ("mw", "ww", "mz", "gf"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"EWParameters.{name} must be finite and > 0, got {v}")
        if self.mw >= self.mz:
            raise ValueError(f"need mw < mz for sin^2(theta_W) > 0, got mw={self.mw}, "
                             f"mz={self.mz}")

    @property
    def gw2(self) -> float:
        """SU(2) coupling squared, ``4 sqrt(2) G_F M_W^2``."""
        return 4.0 * math.sqrt(2.0) * self.gf * self.mw ** 2

    @property
    def sw2(self) -> float:
        """``sin^2 theta_W = 1 - M_W^2 / M_Z^2`` (on-shell definition)."""
        return 1.0 - (self.mw / self.mz) ** 2

    @property
    def alpha(self) -> float:
        """``alpha_Gmu = sqrt(2) G_F M_W^2 sin^2 theta_W / pi``."""
        return math.sqrt(2.0) * self.gf * self.mw ** 2 * self.sw2 / math.pi


def strong_coupling(alpha_s: float) -> float:
    """``g_s^2 = 4 pi alpha_s`` after checking ``alpha_s``."""
    alpha_s = float(alpha_s)
    if not (math.isfinite(alpha_s) and alpha_s > 0):
        raise ValueError(f"alpha_s must be finite and > 0, got {alpha_s}")
    return 4.0 * math.pi * alpha_s
