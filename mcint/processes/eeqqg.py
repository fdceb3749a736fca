"""``e+ e- -> gamma* -> q qbar g`` at O(alpha_s) with a JADE-type cut: single channel, dims 5.

Spin/colour-summed and averaged (photon exchange, massless quarks)::

    |M|^2 = K [(pa.p1)^2 + (pa.p2)^2 + (pb.p1)^2 + (pb.p2)^2] / ((p1.p3)(p2.p3)),
    K = 192 pi^2 sigma_0 C_F alpha_s,  sigma_0 = 4 pi alpha^2 N_c sum_q Q_q^2 / (3 s),

(``p1 = q, p2 = qbar, p3 = g``): averaged over the event orientation it gives the textbook
``d sigma = sigma_0 C_F alpha_s / (2 pi) (x1^2 + x2^2) / ((1 - x1)(1 - x2)) dx1 dx2``. Events
need ``y_ij = s_ij / s > y_cut`` for every pair (else the integrand is an explicit 0);
``exact()`` is the O(alpha_s) three-jet cross section for that cut,
``sigma_0 C_F alpha_s/(2 pi) [(3 - 6y) ln(y/(1-2y)) + 2 ln^2(y/(1-y)) + 5/2 - 6y - 9y^2/2
+ 4 Li2(y/(1-y)) - pi^2/3]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ..phasespace import PhaseSpace, RamboOnDiet
from ..phasespace.kinematics import dot
from .ew import GEV2_TO_PB

__all__ = ["EEQQG"]

_CHARGES = {1: -1 / 3, 2: 2 / 3, 3: -1 / 3, 4: 2 / 3, 5: -1 / 3}


def _li2(z: float) -> float:
    """Dilogarithm for ``0 <= z <= 1/2`` (series; enough for y_cut < 1/3)."""
    return sum(z ** k / k ** 2 for k in range(1, 200))


class EEQQG:
    """``sigma(e+ e- -> q qbar g)`` in pb with all ``y_ij > y_cut`` (dims = 5, RAMBO)."""

    dims = 5
    __mcint_native__ = True

    def __init__(self, sqrt_s: float = 91.1876, y_cut: float = 0.1, alpha_s: float = 0.118,
                 alpha: float = 1 / 128.9, flavours: tuple[int, ...] = (1, 2, 3, 4, 5)) -> None:
        if not 0 < y_cut < 1 / 3:
            raise ValueError(f"y_cut must be in (0, 1/3) (three jets need y_ij > y_cut for all "
                             f"pairs and sum y_ij = 1), got {y_cut}")
        if not alpha_s > 0 or not alpha > 0:
            raise ValueError(f"couplings must be positive, got alpha_s={alpha_s}, alpha={alpha}")
        bad = [f for f in flavours if f not in _CHARGES]
        if bad or not flavours:
            raise ValueError(f"flavours must be PDG ids among 1..5, got {flavours}")
        self.sqrt_s, self.y_cut = float(sqrt_s), float(y_cut)
        self.s = self.sqrt_s ** 2
        self.flavours = tuple(flavours)
        sum_q2 = sum(_CHARGES[f] ** 2 for f in flavours)
        self.sigma0 = 4 * math.pi * alpha ** 2 * 3 * sum_q2 / (3 * self.s) * GEV2_TO_PB
        self.alpha_s, self.alpha = float(alpha_s), float(alpha)
        self.cf_as = 4 / 3 * alpha_s
        self._k = 192 * math.pi ** 2 * self.sigma0 * self.cf_as  # pb GeV^2 absorbed below
        self.phase_space = PhaseSpace(RamboOnDiet(3), self.sqrt_s)

    def __call__(self, r: Any) -> Any:
        mom, _, _, lw = self.phase_space.map(r)
        xp = array_namespace(mom)
        pa, pb = mom[:, 0, :], mom[:, 1, :]
        p1, p2, p3 = mom[:, 2, :], mom[:, 3, :], mom[:, 4, :]
        s12, s13, s23 = 2 * dot(p1, p2), 2 * dot(p1, p3), 2 * dot(p2, p3)
        ycut_s = self.y_cut * self.s
        ok = xp.logical_and(xp.logical_and(s12 > ycut_s, s13 > ycut_s), s23 > ycut_s)
        num = dot(pa, p1) ** 2 + dot(pa, p2) ** 2 + dot(pb, p1) ** 2 + dot(pb, p2) ** 2
        den = xp.where(ok, 0.25 * s13 * s23, xp.ones_like(s13))
        val = self._k * num / den * xp.exp(lw) / (2 * self.s)
        return xp.where(ok, val, xp.zeros_like(val))

    def exact(self) -> float:
        y = self.y_cut
        z = y / (1 - y)
        bracket = ((3 - 6 * y) * math.log(y / (1 - 2 * y)) + 2 * math.log(z) ** 2 + 2.5 - 6 * y
                   - 4.5 * y * y + 4 * _li2(z) - math.pi ** 2 / 3)
        return self.sigma0 * self.cf_as / (2 * math.pi) * bracket

    def events(self, r: Any, rng: np.random.Generator | None = None
               ) -> tuple[Any, np.ndarray, Any, Any, Any]:
        """Momenta ``e-, e+, q, qbar, g``; PDG ids ``(n, 5)`` with the quark flavour drawn with
        probability ``Q_q^2 / sum Q^2`` (the matrix element's only flavour dependence)."""
        mom, x1, x2, _ = self.phase_space.map(r)
        xp = array_namespace(mom)
        n = int(mom.shape[0])
        q2 = np.array([_CHARGES[f] ** 2 for f in self.flavours])
        rng = rng or np.random.default_rng(0)
        pick = rng.choice(len(self.flavours), size=n, p=q2 / q2.sum())
        fl = np.asarray(self.flavours, dtype=np.int64)[pick]
        pdg = np.stack([np.full(n, 11), np.full(n, -11), fl, -fl, np.full(n, 21)], axis=1)
        return mom, pdg, x1, x2, xp.zeros_like(x1) + self.sqrt_s

    def __repr__(self) -> str:
        return f"EEQQG(sqrt_s={self.sqrt_s}, y_cut={self.y_cut})"
