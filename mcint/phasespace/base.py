"""Phase-space mappings: unit-hypercube points ``r`` <-> collider events.

Conventions (every mapping in :mod:`mcint.phasespace`):

* momenta are ``(E, px, py, pz)`` in GeV, metric ``(+,-,-,-)``;
* ``dPhi_n = (2pi)^4 delta^4(p_a + p_b - sum p_i) prod_i d^3p_i / ((2pi)^3 2E_i)``; the weights
  **include** the ``(2pi)^(4-3n)`` factors (massless ``Phi_2 = 1/(8 pi)``), so
  ``sigma = (1/flux) * integral d^d r exp(log_weight) |M|^2`` (times PDFs for hadron beams);
* for hadron colliders ``exp(log_weight)`` also includes ``dx1 dx2 / dr1 dr2`` (PDFs and flux
  are the process' business).

A :class:`FinalStateMapping` generates the outgoing momenta for given incoming ones;
:class:`PhaseSpace` adds the beams (fixed energy, or a :class:`~.luminosity.Luminosity` map for
``x1, x2``) and is what processes use:

    momenta, x1, x2, log_weight = ps.map(r)          # momenta: (n, 2 + n_final, 4)
    r, log_weight = ps.map_inverse(momenta, x1, x2)  # log_weight as returned by map
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from array_api_compat import array_namespace, device

from ..backends import fusable
from ..transforms import check_batch
from .kinematics import four
from .luminosity import Luminosity

__all__ = ["FinalStateMapping", "PhaseSpace", "check_masses", "phase_space_map"]


def check_masses(masses: Sequence[float], what: str = "final-state masses") -> tuple[float, ...]:
    """Validate a list of on-shell masses (finite, >= 0)."""
    out = tuple(float(m) for m in masses)
    for i, m in enumerate(out):
        if not math.isfinite(m) or m < 0:
            raise ValueError(f"{what}: mass of particle {i} must be finite and >= 0, got {m}")
    return out


class FinalStateMapping:
    """Outgoing momenta for given incoming ``p_a, p_b``: subclasses implement the two methods.

    ``generate(r, pa, pb) -> (p (n, n_final, 4), log_weight)`` with ``r (n, n_random)``;
    ``invert(p, pa, pb) -> (r, log_weight)`` returns the same ``log_weight`` (not its negative).
    """

    n_random: int
    masses: tuple[float, ...]

    @property
    def n_final(self) -> int:
        return len(self.masses)

    @property
    def threshold(self) -> float:
        """Smallest partonic ``sqrt(s)`` the mapping can reach."""
        return float(sum(self.masses))

    def generate(self, r: Any, pa: Any, pb: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def invert(self, p: Any, pa: Any, pb: Any) -> tuple[Any, Any]:
        raise NotImplementedError


class PhaseSpace:
    """Beams + final state: ``map(r) -> (momenta, x1, x2, log_weight)`` and its inverse.

    Parameters
    ----------
    final: the final-state mapping.
    sqrt_s: collider energy (GeV); partonic for lepton beams, hadronic with ``luminosity``.
    luminosity: a :class:`Luminosity` for hadron beams (its ``r`` are the first two columns),
        or ``None`` for fixed-energy beams (``x1 = x2 = 1``).
    """

    def __init__(self, final: FinalStateMapping, sqrt_s: float,
                 luminosity: Luminosity | None = None) -> None:
        sqrt_s = float(sqrt_s)
        if not (math.isfinite(sqrt_s) and sqrt_s > 0):
            raise ValueError(f"sqrt_s must be positive and finite, got {sqrt_s}")
        lowest = sqrt_s if luminosity is None else math.sqrt(luminosity.s_hat_min)
        if luminosity is not None and abs(luminosity.s_hadronic - sqrt_s ** 2) > 1e-9 * sqrt_s**2:
            raise ValueError(f"luminosity S={luminosity.s_hadronic} does not match "
                             f"sqrt_s={sqrt_s} (S={sqrt_s ** 2})")
        if lowest <= final.threshold:
            raise ValueError(
                f"energy below threshold: the lowest partonic sqrt(s) is {lowest} GeV but the "
                f"final-state masses add up to {final.threshold} GeV")
        self.final, self.sqrt_s, self.luminosity = final, sqrt_s, luminosity
        self.dims = final.n_random + (2 if luminosity is not None else 0)

    @property
    def n_final(self) -> int:
        return self.final.n_final

    def beams(self, x1: Any, x2: Any) -> tuple[Any, Any]:
        """Incoming momenta along ``+z`` and ``-z`` carrying fractions ``x1, x2``."""
        xp = array_namespace(x1, x2)
        e = 0.5 * self.sqrt_s
        z = xp.zeros_like(x1)
        return four(e * x1, z, z, e * x1), four(e * x2, z, z, -e * x2)

    def map(self, r: Any) -> tuple[Any, Any, Any, Any]:
        """``r (n, dims)`` -> ``(momenta (n, 2 + n_final, 4), x1, x2, log_weight)``.

        Points of zero weight (random numbers on the edge of a chart, where an invariant range
        pinches or a logarithmic map meets ``0 * inf``: a set of measure zero) come back with
        ``log_weight = -inf`` and the momenta of the chart's centre, so that an integrand
        evaluated there stays finite and contributes exactly nothing.
        """
        check_batch(r, self.dims, "phase-space random numbers")
        return _zero_weight_points(*phase_space_map(r, self), r, self)

    def map_inverse(self, momenta: Any, x1: Any = None, x2: Any = None) -> tuple[Any, Any]:
        """Momenta ``(n, 2 + n_final, 4)`` (and ``x1, x2``) -> ``(r, log_weight)``."""
        xp = array_namespace(momenta)
        if momenta.ndim != 3 or momenta.shape[1:] != (2 + self.n_final, 4):
            raise ValueError(f"momenta must have shape (n, {2 + self.n_final}, 4), "
                             f"got {tuple(momenta.shape)}")
        pa, pb = momenta[:, 0, :], momenta[:, 1, :]
        if x1 is None:
            x1, x2 = pa[:, 0] / (0.5 * self.sqrt_s), pb[:, 0] / (0.5 * self.sqrt_s)
        rf, log_w = self.final.invert(momenta[:, 2:, :], pa, pb)
        if self.luminosity is None:
            return rf, log_w
        rl, ld = self.luminosity.inverse(xp.stack([x1, x2], axis=1))
        return xp.concat([rl, rf], axis=1), log_w - ld


def _zero_weight_points(momenta: Any, x1: Any, x2: Any, log_w: Any, r: Any, ps: PhaseSpace
                        ) -> tuple[Any, Any, Any, Any]:
    xp = array_namespace(log_w)
    zero = xp.isnan(log_w) | (log_w == -math.inf)
    if not bool(xp.any(zero)):
        return momenta, x1, x2, log_w
    centre = xp.full((1, ps.dims), 0.5, dtype=r.dtype, device=device(r))
    cm, c1, c2, _ = phase_space_map(centre, ps)
    momenta = xp.where(zero[:, None, None], cm, momenta)
    x1, x2 = xp.where(zero, c1, x1), xp.where(zero, c2, x2)
    return momenta, x1, x2, xp.where(zero, -math.inf, log_w)


@fusable("phasespace-map-forward")
def phase_space_map(r: Any, ps: PhaseSpace) -> tuple[Any, Any, Any, Any]:
    """:meth:`PhaseSpace.map` on a checked batch. The numba backend runs beams, luminosity and
    the built-in final states in one kernel (``backends/mcint_numba/kernels/ps_map.py``),
    writing straight into the momenta array; this is the reference."""
    xp = array_namespace(r)
    if ps.luminosity is not None:
        x, log_w = ps.luminosity.forward(r[:, :2])
        x1, x2 = x[:, 0], x[:, 1]
        rf = r[:, 2:]
    else:
        x1 = xp.ones(r.shape[0], dtype=r.dtype, device=device(r))
        x2, log_w, rf = x1, xp.zeros_like(x1), r
    pa, pb = ps.beams(x1, x2)
    p, lw = ps.final.generate(rf, pa, pb)
    momenta = xp.concat([pa[:, None, :], pb[:, None, :], p], axis=1)
    return momenta, x1, x2, log_w + lw
