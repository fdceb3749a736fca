"""``e+ e- -> mu+ mu-`` through gamma/Z at fixed energy: a single-channel unit-square integrand."""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ..phasespace import PhaseSpace, RamboOnDiet
from ..phasespace.kinematics import dot
from .ew import GEV2_TO_PB, LEPTON, EWParams, amplitudes, me2, sigma_total

__all__ = ["EEMuMu"]

class EEMuMu:
    """``sigma(e+ e- -> mu+ mu-)`` in pb as an integral over the unit square (dims = 2).

    ``f(r) = |M|^2 / (2 s) * dPhi_2/dr * pb`` with ``r = (cos, phi)`` random numbers of the
    two-body decay in the c.m. frame. ``exact()`` is ``s/(48 pi) sum|A_ij|^2`` (see
    :mod:`mcint.processes.ew`); ``z=False`` gives QED only (``4 pi alpha^2 / (3 s)``).
    Array-API code: pass backend arrays directly (``Integrand(proc, 2, native=True)``).
    Events: ``events(r) -> (momenta (n, 4, 4), pdg (4,), x1, x2, scale)`` with particle order
    ``e- (+z), e+, mu-, mu+``.
    """

    dims = 2
    __mcint_native__ = True
    pdg_ids = (11, -11, 13, -13)

    def __init__(self, sqrt_s: float = 91.1876, z: bool = True,
                 params: EWParams | None = None) -> None:
        p = params or EWParams()
        if not z:
            p = EWParams(alpha=p.alpha, sw2=p.sw2, mz=p.mz, wz=p.wz, z=False)
        self.params = p
        self.sqrt_s = float(sqrt_s)
        self.phase_space = PhaseSpace(RamboOnDiet(2), self.sqrt_s)
        self.s = self.sqrt_s ** 2

    def __call__(self, r: Any) -> Any:
        mom, _, _, lw = self.phase_space.map(r)
        xp = array_namespace(mom)
        # massless legs: t = -2 p1.p3 has no cancellation, unlike (p1 - p3)^2
        t = -2 * dot(mom[:, 0, :], mom[:, 2, :])
        u = -2 * dot(mom[:, 0, :], mom[:, 3, :])
        m = me2(self.s, t, u, LEPTON, LEPTON, self.params)
        return m * xp.exp(lw) * (GEV2_TO_PB / (2 * self.s))

    def exact(self) -> float:
        """Total cross section in pb (analytic)."""
        return sigma_total(self.s, LEPTON, LEPTON, self.params) * GEV2_TO_PB

    def dsigma_dcos(self, c: Any) -> np.ndarray:
        """``d sigma / d cos(theta)`` in pb, ``theta`` the angle between the e- (+z) and the
        mu-: ``s / (128 pi) [(|A_LL|^2 + |A_RR|^2)(1 + c)^2 + (|A_LR|^2 + |A_RL|^2)(1 - c)^2]``."""
        c = np.asarray(c, dtype=np.float64)
        same, mixed = amplitudes(self.s, LEPTON, LEPTON, self.params)
        out = self.s / (128 * np.pi) * (same * (1 + c) ** 2 + mixed * (1 - c) ** 2)
        return np.where(np.abs(c) <= 1, out, 0.0) * GEV2_TO_PB

    def events(self, r: Any) -> tuple[Any, np.ndarray, Any, Any, Any]:
        mom, x1, x2, _ = self.phase_space.map(r)
        xp = array_namespace(mom)
        return mom, np.array(self.pdg_ids), x1, x2, xp.zeros_like(x1) + self.sqrt_s

    def exact_distributions(self) -> dict[str, tuple[Any, tuple[float, float]]]:
        """``{observable: (d sigma / d obs in pb per unit, (lo, hi))}`` for event plots
        (:func:`mcint.plots.plot_events`): ``cos_3``, the mu- (particle 3) to the e- beam (+z)."""
        return {"cos_3": (self.dsigma_dcos, (-1.0, 1.0))}

    def __repr__(self) -> str:
        return f"EEMuMu(sqrt_s={self.sqrt_s}, z={self.params.z})"
