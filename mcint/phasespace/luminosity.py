"""Parton luminosity map ``(r1, r2) -> (x1, x2)`` through ``(tau, y)``.

``tau = x1 x2 = s_hat / S`` is drawn from an invariant sampler in ``s_hat`` (flat, ``1/s``
power law or Breit–Wigner: :func:`Luminosity.flat`, :func:`Luminosity.power_law`,
:func:`Luminosity.breit_wigner`), and the rapidity ``y = log(x1 / x2) / 2`` flat in
``[log(tau)/2, -log(tau)/2]``. Since ``dx1 dx2 = dtau dy`` the log-det is
``log(ds_hat/dr1) - log S + log(-log tau)``.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace

from ..backends import fusable
from ..transforms import Transform, check_batch
from .invariants import BreitWigner, InvariantSampler, PowerLaw, Uniform

__all__ = ["Luminosity"]


class Luminosity(Transform):
    """``(n, 2)`` unit-square points -> momentum fractions ``(x1, x2)``, with log-det.

    Parameters
    ----------
    s_hadronic: collider energy squared ``S`` (GeV^2).
    sampler: how ``s_hat = x1 x2 S`` is drawn in ``[s_hat_min, s_hat_max]``.
    s_hat_min, s_hat_max: partonic energy-squared range (``s_hat_max`` defaults to ``S``).
    """

    dims = 2

    def __init__(self, s_hadronic: float, sampler: InvariantSampler, s_hat_min: float,
                 s_hat_max: float | None = None) -> None:
        s_hadronic = float(s_hadronic)
        if not (math.isfinite(s_hadronic) and s_hadronic > 0):
            raise ValueError(f"the hadronic energy squared S must be positive, got {s_hadronic}")
        s_hat_max = s_hadronic if s_hat_max is None else float(s_hat_max)
        s_hat_min = float(s_hat_min)
        if s_hat_max > s_hadronic * (1 + 1e-12):
            raise ValueError(f"s_hat_max={s_hat_max} exceeds the collider S={s_hadronic}")
        if s_hat_min <= 0:
            raise ValueError(f"s_hat_min must be positive (tau = 0 has no rapidity range), "
                             f"got {s_hat_min}")
        sampler.check_limits(s_hat_min, s_hat_max, "Luminosity s_hat")
        self.s_hadronic, self.sampler = s_hadronic, sampler
        self.s_hat_min, self.s_hat_max = s_hat_min, min(s_hat_max, s_hadronic)

    @classmethod
    def flat(cls, s_hadronic: float, s_hat_min: float, s_hat_max: float | None = None
             ) -> Luminosity:
        """Flat in ``tau``."""
        return cls(s_hadronic, Uniform(), s_hat_min, s_hat_max)

    @classmethod
    def power_law(cls, s_hadronic: float, s_hat_min: float, s_hat_max: float | None = None,
                  nu: float = 1.0) -> Luminosity:
        """``1 / tau^nu`` (``nu = 1``: flat in ``log tau``, the photon-like choice)."""
        return cls(s_hadronic, PowerLaw(nu), s_hat_min, s_hat_max)

    @classmethod
    def breit_wigner(cls, s_hadronic: float, mass: float, width: float, s_hat_min: float,
                     s_hat_max: float | None = None) -> Luminosity:
        """Breit–Wigner in ``s_hat`` around a resonance ``mass``."""
        return cls(s_hadronic, BreitWigner(mass, width), s_hat_min, s_hat_max)

    def forward(self, x: Any) -> tuple[Any, Any]:
        check_batch(x, 2)
        return luminosity_forward(x, self.s_hadronic, self.sampler, self.s_hat_min,
                                  self.s_hat_max)

    def inverse(self, y: Any) -> tuple[Any, Any]:
        xp = check_batch(y, 2)
        x1, x2 = y[:, 0], y[:, 1]
        log_tau = xp.log(x1) + xp.log(x2)
        rap = 0.5 * (xp.log(x1) - xp.log(x2))
        r2 = rap / (-log_tau) + 0.5
        s_hat = xp.exp(log_tau) * self.s_hadronic
        r1, ld = self.sampler.inverse(s_hat, self.s_hat_min, self.s_hat_max)
        ld = ld + math.log(self.s_hadronic) - xp.log(-log_tau)
        return xp.stack([r1, r2], axis=1), ld

    def __repr__(self) -> str:
        return (f"Luminosity(S={self.s_hadronic}, {self.sampler!r}, "
                f"s_hat in [{self.s_hat_min}, {self.s_hat_max}])")


@fusable("phasespace-luminosity-forward")
def luminosity_forward(x: Any, s_hadronic: float, sampler: InvariantSampler, s_hat_min: float,
                       s_hat_max: float) -> tuple[Any, Any]:
    """:meth:`Luminosity.forward` on a checked ``(n, 2)`` batch (fused by the numba backend)."""
    xp = array_namespace(x)
    s_hat, ld = sampler.forward(x[:, 0], s_hat_min, s_hat_max)
    log_tau = xp.log(s_hat) - math.log(s_hadronic)
    y = (x[:, 1] - 0.5) * (-log_tau)
    x1 = xp.exp(0.5 * log_tau + y)
    x2 = xp.exp(0.5 * log_tau - y)
    ld = ld - math.log(s_hadronic) + xp.log(-log_tau)
    return xp.stack([x1, x2], axis=1), ld
