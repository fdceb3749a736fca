"""Electroweak couplings and the chiral amplitudes of ``f1 f1bar -> f2 f2bar`` via gamma/Z(/Z').

For massless fermions the spin-averaged squared matrix element through s-channel vector bosons
is (helicities i of f1, j of f2)::

    |M|^2 = (|A_LL|^2 + |A_RR|^2) u^2 + (|A_LR|^2 + |A_RL|^2) t^2,
    A_ij  = e^2 [ Q1 Q2 / s + sum_V g_i(f1) g_j(f2) / (sw^2 cw^2) / (s - M_V^2 + i M_V Gamma_V) ],

with ``g_L = T3 - Q sw^2``, ``g_R = -Q sw^2``, ``t = (p_f1 - p_f2)^2``. Integrated over angles,
``sigma = s / (48 pi) * sum_ij |A_ij|^2`` (divide by N_c for quark-initiated processes); with the
photon alone this is ``4 pi alpha^2 / (3 s)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["EWParams", "Fermion", "LEPTON", "UP", "DOWN", "GEV2_TO_PB", "amplitudes",
           "me2", "sigma_total"]

#: 1 GeV^-2 in picobarn
GEV2_TO_PB = 0.3893793721e9


@dataclass(frozen=True)
class Fermion:
    charge: float
    t3: float


LEPTON = Fermion(-1.0, -0.5)
UP = Fermion(2.0 / 3.0, 0.5)
DOWN = Fermion(-1.0 / 3.0, -0.5)


@dataclass(frozen=True)
class EWParams:
    """Couplings and boson masses (GeV). ``zprime_mass = 0`` disables the Z' (sequential:
    Z couplings, its own mass and width)."""

    alpha: float = 1 / 128.9
    sw2: float = 0.2312
    mz: float = 91.1876
    wz: float = 2.4952
    z: bool = True
    zprime_mass: float = 0.0
    zprime_width: float = 0.0

    def __post_init__(self) -> None:
        for name in ("alpha", "sw2", "mz", "wz", "zprime_mass", "zprime_width"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"EWParams.{name} must be finite and >= 0, got {v}")
        if not 0 < self.sw2 < 1:
            raise ValueError(f"sin^2(theta_W) must be in (0, 1), got {self.sw2}")
        if self.alpha <= 0:
            raise ValueError(f"alpha must be positive, got {self.alpha}")
        if self.z and (self.mz <= 0 or self.wz <= 0):
            raise ValueError(f"the Z needs a positive mass and width, got {self.mz}, {self.wz}")
        if self.zprime_mass > 0 and self.zprime_width <= 0:
            raise ValueError(f"the Z' needs a positive width, got {self.zprime_width}")

    def bosons(self) -> list[tuple[float, float]]:
        out = []
        if self.z:
            out.append((self.mz, self.wz))
        if self.zprime_mass > 0:
            out.append((self.zprime_mass, self.zprime_width))
        return out


def _g(f: Fermion, sw2: float) -> tuple[float, float]:
    return f.t3 - f.charge * sw2, -f.charge * sw2


def amplitudes(s: Any, f1: Fermion, f2: Fermion, p: EWParams) -> tuple[Any, Any]:
    """``(|A_LL|^2 + |A_RR|^2, |A_LR|^2 + |A_RL|^2)`` at ``s`` (array or float)."""
    e2 = 4 * math.pi * p.alpha
    cz = 1.0 / (p.sw2 * (1 - p.sw2))
    g1, g2 = _g(f1, p.sw2), _g(f2, p.sw2)
    same, mixed = 0.0, 0.0
    for i, j, tgt in ((0, 0, "s"), (1, 1, "s"), (0, 1, "m"), (1, 0, "m")):
        re = f1.charge * f2.charge / s
        im = 0.0 * s
        for m, w in p.bosons():
            d = s - m * m
            den = d * d + (m * w) ** 2
            c = g1[i] * g2[j] * cz
            re = re + c * d / den
            im = im - c * m * w / den
        a2 = e2 * e2 * (re * re + im * im)
        if tgt == "s":
            same = same + a2
        else:
            mixed = mixed + a2
    return same, mixed


def me2(s: Any, t: Any, u: Any, f1: Fermion, f2: Fermion, p: EWParams) -> Any:
    """Spin-averaged ``|M|^2`` (no colour factors) with ``t = (p_f1 - p_f2)^2``."""
    same, mixed = amplitudes(s, f1, f2, p)
    return same * u * u + mixed * t * t


def sigma_total(s: Any, f1: Fermion, f2: Fermion, p: EWParams) -> Any:
    """Total cross section in GeV^-2 (no colour factors): ``s / (48 pi) sum |A_ij|^2``; a
    float for a number ``s``, an array of the same shape for an array."""
    if isinstance(s, (int, float)):
        s = float(s)
    same, mixed = amplitudes(s, f1, f2, p)
    return s / (48 * math.pi) * (same + mixed)
