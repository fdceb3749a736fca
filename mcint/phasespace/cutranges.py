"""Cut-aware invariant ranges: sample an invariant only inside a mass window.

A cut ``a < m < b`` on an s-channel invariant (or on ``sqrt(s_hat)``) throws away every point
the full map puts outside the window. Narrowing the sampler's limits to the window instead maps
the whole unit interval onto the cut region; the log-det is that of the narrowed map, so

    int_0^1 dr f(s(r)) ds/dr = int_{max(lo, a^2)}^{min(hi, b^2)} f(s) ds,

the cut integral, with no point wasted. Where the window and the kinematic limits do not overlap
(limits that depend on other invariants in a decay chain) the weight is exactly zero
(``log_weight = -inf``) and the momenta stay finite.

* :class:`Narrowed` -- any :class:`~.invariants.InvariantSampler` restricted to ``[s_min, s_max]``;
* :class:`NarrowedPropagator` -- a :class:`~.topology.Propagator` whose invariant is narrowed to a
  mass window (for :class:`~.chains.DiagramMapping`);
* :func:`narrow_luminosity` -- a :class:`~.luminosity.Luminosity` with ``sqrt(s_hat)`` in a window;
* :func:`mass_window` -- the window that :class:`~.cuts.MassRange` cuts put on a set of particles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from array_api_compat import array_namespace

from .cuts import Cut, Cuts, MassRange
from .invariants import InvariantSampler
from .luminosity import Luminosity
from .topology import Propagator

__all__ = ["Narrowed", "NarrowedPropagator", "narrow_luminosity", "mass_window"]


def _s_of_mass(m: float) -> float:
    """Mass -> invariant, keeping the sign (``MassRange``'s convention: negative = no cut)."""
    return m * abs(m)


class Narrowed(InvariantSampler):
    """``sampler`` on ``[max(lo, s_min), min(hi, s_max)]`` instead of the limits ``[lo, hi]``."""

    def __init__(self, sampler: InvariantSampler, s_min: float = -math.inf,
                 s_max: float = math.inf) -> None:
        if not isinstance(sampler, InvariantSampler):
            raise TypeError(f"Narrowed takes an InvariantSampler, got {type(sampler).__name__}")
        s_min, s_max = float(s_min), float(s_max)
        if math.isnan(s_min) or math.isnan(s_max) or not s_max > s_min:
            raise ValueError(f"Narrowed: empty or invalid window [{s_min}, {s_max}]")
        self.sampler, self.s_min, self.s_max = sampler, s_min, s_max
        # a positive cut supplies the positive lower limit a power law needs
        self.needs_positive_lower = sampler.needs_positive_lower and not s_min > 0

    @classmethod
    def mass_window(cls, sampler: InvariantSampler, m_min: float = -math.inf,
                    m_max: float = math.inf) -> Narrowed:
        """Narrowed to ``m_min < sqrt(s) < m_max``."""
        return cls(sampler, _s_of_mass(float(m_min)), _s_of_mass(float(m_max)))

    def _limits(self, like: Any, lo: Any, hi: Any) -> tuple[Any, Any, Any]:
        """Per-event limits and the rows where the window misses ``[lo, hi]``."""
        xp = array_namespace(like)
        z = xp.zeros_like(like)
        lo, hi = lo + z, hi + z
        lo2 = xp.where(lo > self.s_min, lo, z + self.s_min) if math.isfinite(self.s_min) else lo
        hi2 = xp.where(hi < self.s_max, hi, z + self.s_max) if math.isfinite(self.s_max) else hi
        empty = hi2 <= lo2
        # empty rows sample the kinematic range (finite momenta) and get weight zero
        return xp.where(empty, lo, lo2), xp.where(empty, hi, hi2), empty

    def forward(self, r: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
        xp = array_namespace(r)
        lo2, hi2, empty = self._limits(r, lo, hi)
        s, ld = self.sampler.forward(r, lo2, hi2)
        return s, xp.where(empty, xp.full_like(ld, -math.inf), ld)

    def inverse(self, s: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
        """``s`` outside the window maps outside ``[0, 1]``; empty rows get ``log dr/ds = inf``."""
        xp = array_namespace(s)
        lo2, hi2, empty = self._limits(s, lo, hi)
        r, ld = self.sampler.inverse(s, lo2, hi2)
        return r, xp.where(empty, xp.full_like(ld, math.inf), ld)

    def check_limits(self, lo: float, hi: float, what: str = "invariant") -> None:
        lo2, hi2 = max(lo, self.s_min), min(hi, self.s_max)
        if hi2 <= lo2:
            raise ValueError(f"{what}: the cut window [{self.s_min}, {self.s_max}] misses the "
                             f"kinematic range [{lo}, {hi}]")
        self.sampler.check_limits(lo2, hi2, what)

    def __repr__(self) -> str:
        return f"Narrowed({self.sampler!r}, s_min={self.s_min}, s_max={self.s_max})"


@dataclass(frozen=True)
class NarrowedPropagator(Propagator):
    """A :class:`~.topology.Propagator` whose invariant mass is sampled in ``(m_min, m_max)``.

    Use it for an s-channel line with a mass cut on its decay products (e.g. ``m_ll > 60``);
    the cut itself may stay in the :class:`~.cuts.Cuts` (it then always passes).
    """

    m_min: float = -math.inf
    m_max: float = math.inf

    def __post_init__(self) -> None:
        super().__post_init__()
        if math.isnan(self.m_min) or math.isnan(self.m_max) or not self.m_max > self.m_min:
            raise ValueError(f"NarrowedPropagator: empty mass window ({self.m_min}, {self.m_max})")

    def sampler(self) -> InvariantSampler:
        return Narrowed.mass_window(super().sampler(), self.m_min, self.m_max)


def narrow_luminosity(lum: Luminosity, m_min: float | None = None, m_max: float | None = None
                      ) -> Luminosity:
    """``lum`` with ``sqrt(s_hat)`` restricted to ``[m_min, m_max]`` (same sampler).

    The limits are fixed numbers here, so the window is simply intersected with the luminosity's
    range (and the fused numba kernel still applies).
    """
    lo, hi = lum.s_hat_min, lum.s_hat_max
    if m_min is not None:
        lo = max(lo, _s_of_mass(float(m_min)))
    if m_max is not None:
        hi = min(hi, _s_of_mass(float(m_max)))
    if not hi > lo:
        raise ValueError(f"narrow_luminosity: sqrt(s_hat) window [{m_min}, {m_max}] misses the "
                         f"range [{math.sqrt(lum.s_hat_min)}, {math.sqrt(lum.s_hat_max)}]")
    return Luminosity(lum.s_hadronic, lum.sampler, lo, hi)


def mass_window(cuts: Cuts | Iterable[Cut], particles: Sequence[int]) -> tuple[float, float]:
    """``(m_min, m_max)`` imposed by the :class:`~.cuts.MassRange` cuts on exactly ``particles``.

    Other cuts are ignored (they stay as masks); ``(-inf, inf)`` if there is none.
    """
    target = sorted(int(i) for i in particles)
    lo, hi = -math.inf, math.inf
    for c in (cuts.cuts if isinstance(cuts, Cuts) else cuts):
        if isinstance(c, MassRange) and sorted(int(i) for i in c.particles) == target:
            lo, hi = max(lo, float(c.low)), min(hi, float(c.high))
    return lo, hi
