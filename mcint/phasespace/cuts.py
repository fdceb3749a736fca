"""Generator-level cuts as boolean masks, and the cut efficiency.

Particle indices refer to the final state (0-based, as in the diagrams); ``mask`` takes either
final-state momenta ``(n, n_final, 4)`` or full event momenta ``(n, 2 + n_final, 4)`` with
``beams=True``. A cut that removes every event is not an error here: integrands multiply by the
mask and return an explicit zero; :func:`efficiency` reports the fraction kept with its error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from array_api_compat import array_namespace

from .kinematics import delta_r, eta, mass2, pt

__all__ = ["Cut", "PtMin", "EtaMax", "DeltaRMin", "MassRange", "Cuts", "efficiency"]


class Cut:
    """One condition; ``passes(p)`` with final-state momenta ``p (n, k, 4)``."""

    def passes(self, p: Any) -> Any:
        raise NotImplementedError

    def check(self, n_final: int, sqrt_s: float | None = None) -> None:
        """Raise ``ValueError`` for indices out of range or a cut no event can pass."""


def _idx(parts: Sequence[int] | int, n_final: int, what: str) -> tuple[int, ...]:
    parts = (parts,) if isinstance(parts, int) else tuple(parts)
    for i in parts:
        if not 0 <= int(i) < n_final:
            raise ValueError(f"{what}: particle index {i} out of range 0..{n_final - 1}")
    return parts


@dataclass(frozen=True)
class PtMin(Cut):
    """``pT > value`` for each of ``particles``."""

    particles: tuple[int, ...] | int
    value: float

    def passes(self, p: Any) -> Any:
        xp = array_namespace(p)
        parts = (self.particles,) if isinstance(self.particles, int) else self.particles
        ok = pt(p[:, parts[0], :]) > self.value
        for i in parts[1:]:
            ok = xp.logical_and(ok, pt(p[:, i, :]) > self.value)
        return ok

    def check(self, n_final: int, sqrt_s: float | None = None) -> None:
        _idx(self.particles, n_final, "PtMin")
        if sqrt_s is not None and self.value >= 0.5 * sqrt_s:
            raise ValueError(f"PtMin({self.value}) removes everything: pT <= sqrt(s)/2 = "
                             f"{0.5 * sqrt_s}")


@dataclass(frozen=True)
class EtaMax(Cut):
    """``|eta| < value`` for each of ``particles``."""

    particles: tuple[int, ...] | int
    value: float

    def passes(self, p: Any) -> Any:
        xp = array_namespace(p)
        parts = (self.particles,) if isinstance(self.particles, int) else self.particles
        ok = xp.abs(eta(p[:, parts[0], :])) < self.value
        for i in parts[1:]:
            ok = xp.logical_and(ok, xp.abs(eta(p[:, i, :])) < self.value)
        return ok

    def check(self, n_final: int, sqrt_s: float | None = None) -> None:
        _idx(self.particles, n_final, "EtaMax")
        if self.value <= 0:
            raise ValueError(f"EtaMax({self.value}) removes everything (|eta| >= 0)")


@dataclass(frozen=True)
class DeltaRMin(Cut):
    """``Delta R(i, j) > value``."""

    i: int
    j: int
    value: float

    def passes(self, p: Any) -> Any:
        return delta_r(p[:, self.i, :], p[:, self.j, :]) > self.value

    def check(self, n_final: int, sqrt_s: float | None = None) -> None:
        _idx((self.i, self.j), n_final, "DeltaRMin")


@dataclass(frozen=True)
class MassRange(Cut):
    """``low < m(particles) < high`` for the invariant mass of the summed momenta."""

    particles: tuple[int, ...]
    low: float = 0.0
    high: float = math.inf

    def passes(self, p: Any) -> Any:
        xp = array_namespace(p)
        q = p[:, self.particles[0], :]
        for i in self.particles[1:]:
            q = q + p[:, i, :]
        m2 = mass2(q)
        ok = m2 > self.low * abs(self.low)
        if math.isfinite(self.high):
            ok = xp.logical_and(ok, m2 < self.high ** 2)
        return ok

    def check(self, n_final: int, sqrt_s: float | None = None) -> None:
        _idx(self.particles, n_final, "MassRange")
        if self.high <= self.low:
            raise ValueError(f"MassRange: empty window [{self.low}, {self.high}]")
        if sqrt_s is not None and self.low >= sqrt_s:
            raise ValueError(f"MassRange: low={self.low} >= sqrt(s)={sqrt_s} removes everything")


class Cuts:
    """A conjunction of :class:`Cut` s."""

    def __init__(self, cuts: Sequence[Cut], n_final: int, sqrt_s: float | None = None) -> None:
        self.cuts = tuple(cuts)
        for c in self.cuts:
            if not isinstance(c, Cut):
                raise TypeError(f"Cuts takes Cut objects, got {type(c).__name__}")
            c.check(n_final, sqrt_s)
        self.n_final = n_final

    def mask(self, p: Any, beams: bool = False) -> Any:
        """Boolean ``(n,)``: which events pass every cut."""
        xp = array_namespace(p)
        if beams:
            p = p[:, 2:, :]
        if p.ndim != 3 or p.shape[1] != self.n_final:
            raise ValueError(f"expected final-state momenta (n, {self.n_final}, 4), "
                             f"got {tuple(p.shape)}")
        ok = xp.ones(p.shape[0], dtype=xp.bool, device=getattr(p, "device", None))
        for c in self.cuts:
            ok = xp.logical_and(ok, c.passes(p))
        return ok

    def __repr__(self) -> str:
        return f"Cuts({list(self.cuts)!r})"


def efficiency(mask: Any, weights: Any = None) -> tuple[float, float]:
    """Fraction of events (or of the weight sum) passing, with its binomial/MC error."""
    xp = array_namespace(mask)
    n = int(mask.shape[0])
    if n == 0:
        raise ValueError("efficiency of an empty batch is undefined")
    m = xp.astype(mask, xp.float64)
    if weights is None:
        eff = float(xp.mean(m))
        return eff, math.sqrt(max(eff * (1 - eff), 0.0) / n)
    w = xp.astype(weights, xp.float64)
    tot = float(xp.sum(w))
    if tot <= 0:
        raise ValueError("efficiency needs weights with a positive sum")
    eff = float(xp.sum(w * m)) / tot
    # error of the ratio of weighted sums (delta method)
    var = float(xp.sum((w * (m - eff)) ** 2)) / tot ** 2
    return eff, math.sqrt(var)
