"""Invariant-mass samplers: ``r in [0, 1] -> s in [s_min, s_max]`` with ``log(ds/dr)``.

Each sampler is the inverse CDF of a density shaped like a propagator, so ``|propagator|^2 *
ds/dr`` is flat in ``r``:

* :class:`Uniform` -- flat in ``s``;
* :class:`BreitWigner` -- ``1 / ((s - m^2)^2 + m^2 Gamma^2)`` (massive, unstable propagator);
* :class:`PowerLaw` -- ``1 / s^nu`` (massless propagators; ``nu = 1`` is flat in ``log s``).

The limits may be floats or arrays broadcasting against ``r`` (in decay chains they depend on
other invariants), so the samplers are plain objects with ``forward(r, lo, hi)`` and
``inverse(s, lo, hi)``; :class:`InvariantMap` wraps one with fixed limits as a
:class:`mcint.transforms.Transform` on ``(n, 1)`` batches.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace

from ..backends import fusable
from ..transforms import Transform, check_batch

__all__ = ["InvariantSampler", "Uniform", "BreitWigner", "PowerLaw", "InvariantMap",
           "propagator_sampler", "uniform_forward", "breit_wigner_forward", "power_law_forward"]


def _finite(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


class InvariantSampler:
    """Base class: ``forward(r, lo, hi) -> (s, log ds/dr)``, ``inverse(s, lo, hi) -> (r, log dr/ds)``."""

    #: whether the sampler needs ``lo > 0`` (power laws with ``nu >= 1``)
    needs_positive_lower = False

    def forward(self, r: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def inverse(self, s: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def check_limits(self, lo: float, hi: float, what: str = "invariant") -> None:
        """Raise ``ValueError`` for limits this sampler cannot map (called at build time)."""
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"{what}: limits must be finite, got [{lo}, {hi}]")
        if hi <= lo:
            raise ValueError(f"{what}: empty range [{lo}, {hi}] (below threshold?)")
        if self.needs_positive_lower and lo <= 0:
            raise ValueError(f"{what}: {self!r} needs a positive lower limit, got {lo}; "
                             "set a minimum invariant mass (a cut) or use nu < 1")


class Uniform(InvariantSampler):
    """Flat in ``s``."""

    def forward(self, r: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
        return uniform_forward(r, lo, hi)

    def inverse(self, s: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
        xp = array_namespace(s)
        width = hi - lo
        return (s - lo) / width, -xp.log(width + xp.zeros_like(s))

    def __repr__(self) -> str:
        return "Uniform()"


class BreitWigner(InvariantSampler):
    """Breit–Wigner ``1 / ((s - m^2)^2 + m^2 Gamma^2)`` via ``s = m^2 + m Gamma tan(y)``."""

    def __init__(self, mass: float, width: float) -> None:
        mass = _finite(mass, "Breit-Wigner mass")
        width = _finite(width, "Breit-Wigner width")
        if mass <= 0:
            raise ValueError(f"Breit-Wigner mass must be positive, got {mass}")
        if width <= 0:
            raise ValueError(f"Breit-Wigner width must be positive, got {width} "
                             "(use Uniform or PowerLaw for a stable/massless propagator)")
        self.mass, self.width = mass, width
        self._m2, self._mg = mass * mass, mass * width

    def _ylim(self, xp: Any, like: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
        z = xp.zeros_like(like)
        return xp.atan((lo - self._m2) / self._mg + z), xp.atan((hi - self._m2) / self._mg + z)

    def forward(self, r: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
        return breit_wigner_forward(r, lo, hi, self.mass, self.width)

    def inverse(self, s: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
        xp = array_namespace(s)
        ylo, yhi = self._ylim(xp, s, lo, hi)
        d = s - self._m2
        r = (xp.atan(d / self._mg) - ylo) / (yhi - ylo)
        return r, -(xp.log(yhi - ylo) + xp.log(d * d + self._mg * self._mg) - math.log(self._mg))

    def __repr__(self) -> str:
        return f"BreitWigner(mass={self.mass}, width={self.width})"


class PowerLaw(InvariantSampler):
    """Density ``1 / s^nu`` on ``[lo, hi]`` (``nu = 1``: flat in ``log s``)."""

    def __init__(self, nu: float = 1.0) -> None:
        nu = _finite(nu, "power-law exponent nu")
        if nu < 0:
            raise ValueError(f"power-law exponent nu must be >= 0, got {nu}")
        self.nu = nu
        self.needs_positive_lower = nu >= 1.0

    def forward(self, r: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
        return power_law_forward(r, lo, hi, self.nu)

    def inverse(self, s: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
        xp = array_namespace(s)
        z = xp.zeros_like(s)
        lo, hi = lo + z, hi + z
        a = 1.0 - self.nu
        pos = lo > 0
        lo1 = xp.where(pos, lo, 0.5 * hi)
        L = xp.log(hi / lo1)
        k = _power_law_scale(xp, L, a)
        t = xp.log(s / lo1)
        r = t / L if a == 0.0 else xp.expm1(a * t) / (a * k)
        ld = -(xp.log(s) + xp.log(k) - a * t)
        if a > 0.0:
            s0 = xp.where(pos, hi, s)
            r0 = (s0 / hi) ** a
            ld0 = -(a * xp.log(hi) - math.log(a) + self.nu * xp.log(s0))
            r, ld = xp.where(pos, r, r0), xp.where(pos, ld, ld0)
        return r, ld

    def __repr__(self) -> str:
        return f"PowerLaw(nu={self.nu})"


# -- forward maps as fusable functions (the numba backend fuses each; these are the references)
@fusable("phasespace-uniform-forward")
def uniform_forward(r: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
    """:meth:`Uniform.forward`: ``s = lo + (hi - lo) r``, ``log ds/dr = log(hi - lo)``."""
    xp = array_namespace(r)
    width = hi - lo
    return lo + width * r, xp.log(width + xp.zeros_like(r))


@fusable("phasespace-breit-wigner-forward")
def breit_wigner_forward(r: Any, lo: Any, hi: Any, mass: float, width: float
                         ) -> tuple[Any, Any]:
    """:meth:`BreitWigner.forward`: ``s = m^2 + m Gamma tan(y)``, ``y`` flat between the limits."""
    xp = array_namespace(r)
    m2, mg = mass * mass, mass * width
    z = xp.zeros_like(r)
    ylo, yhi = xp.atan((lo - m2) / mg + z), xp.atan((hi - m2) / mg + z)
    y = ylo + (yhi - ylo) * r
    s = m2 + mg * xp.tan(y)
    d = s - m2
    return s, xp.log(yhi - ylo) + xp.log(d * d + mg * mg) - math.log(mg)


# In t = log(s / lo), L = log(hi / lo), a = 1 - nu: r = expm1(a t) / expm1(a L). Written
# with expm1/log1p, this stays exact as nu -> 1 (a -> 0, flat in log s), where the textbook
# (s^a - lo^a) / (hi^a - lo^a) cancels catastrophically (nu = 1 - 1e-8 lost all digits).
# A lower limit 0 (allowed for nu < 1) has no logarithm: there r = (s / hi)^a, which has
# nothing to cancel.
def _power_law_scale(xp: Any, L: Any, a: float) -> Any:
    """``expm1(a L) / a`` (``L`` at ``a = 0``): positive for every ``nu``."""
    return L if a == 0.0 else xp.expm1(a * L) / a


@fusable("phasespace-power-law-forward")
def power_law_forward(r: Any, lo: Any, hi: Any, nu: float) -> tuple[Any, Any]:
    """:meth:`PowerLaw.forward`: density ``1 / s^nu`` on ``[lo, hi]``."""
    xp = array_namespace(r)
    z = xp.zeros_like(r)
    lo, hi = lo + z, hi + z
    a = 1.0 - nu
    pos = lo > 0
    lo1 = xp.where(pos, lo, 0.5 * hi)    # rows with lo = 0 take the other branch
    L = xp.log(hi / lo1)
    k = _power_law_scale(xp, L, a)
    t = r * L if a == 0.0 else xp.log1p(r * (a * k)) / a
    s = lo1 * xp.exp(t)
    ld = xp.log(s) + xp.log(k) - a * t
    if a > 0.0:
        t0 = xp.log(xp.where(pos, 0.5, r)) / a      # log(s / hi), finite where not taken
        s0 = hi * xp.exp(t0)
        ld0 = xp.log(hi) - math.log(a) + nu * t0
        s, ld = xp.where(pos, s, s0), xp.where(pos, ld, ld0)
    return s, ld


def propagator_sampler(mass: float = 0.0, width: float = 0.0, nu: float | None = None
                       ) -> InvariantSampler:
    """The MadGraph-style choice: Breit–Wigner for ``width > 0``, else ``1/s^nu`` if ``nu``
    is given, else flat."""
    mass, width = _finite(mass, "propagator mass"), _finite(width, "propagator width")
    if mass < 0:
        raise ValueError(f"propagator mass must be >= 0, got {mass}")
    if width < 0:
        raise ValueError(f"propagator width must be >= 0, got {width}")
    if width > 0:
        if mass == 0:
            raise ValueError("a propagator with a width needs a positive mass")
        return BreitWigner(mass, width)
    if nu is not None:
        return PowerLaw(nu)
    return Uniform()


class InvariantMap(Transform):
    """A sampler with fixed limits as a ``(n, 1) -> (n, 1)`` :class:`Transform` (r -> s)."""

    dims = 1

    def __init__(self, sampler: InvariantSampler, s_min: float, s_max: float) -> None:
        s_min, s_max = float(s_min), float(s_max)
        sampler.check_limits(s_min, s_max, "InvariantMap")
        self.sampler, self.s_min, self.s_max = sampler, s_min, s_max

    def forward(self, x: Any) -> tuple[Any, Any]:
        check_batch(x, 1)
        s, ld = self.sampler.forward(x[:, 0], self.s_min, self.s_max)
        return s[:, None], ld

    def inverse(self, y: Any) -> tuple[Any, Any]:
        check_batch(y, 1)
        r, ld = self.sampler.inverse(y[:, 0], self.s_min, self.s_max)
        return r[:, None], ld

    def __repr__(self) -> str:
        return f"InvariantMap({self.sampler!r}, {self.s_min}, {self.s_max})"
