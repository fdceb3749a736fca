"""Test integrands on the unit hypercube with exactly known integrals.

They are written against the array API (``xp`` from the input) and marked native, so they run
on every backend without a host round trip.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace

from ..integrand import native


def _gauss_norm(sigma: float, dims: int) -> float:
    return (sigma * math.sqrt(2.0 * math.pi)) ** -dims


def _box_fraction(mu: float, sigma: float) -> float:
    """Share of a 1-d normal N(mu, sigma) inside [0, 1]."""
    s = sigma * math.sqrt(2.0)
    return 0.5 * (math.erf((1.0 - mu) / s) + math.erf(mu / s))


def _peak(xp: Any, x: Any, centre: float, inv: float) -> Any:
    """``exp(-inv |x - centre|^2)`` per row (``centre`` on the diagonal)."""
    a = x - centre
    return xp.exp(-inv * xp.sum(a * a, axis=1))


def camel(dims: int = 4, sigma: float = 0.1) -> Any:
    """Two Gaussian peaks on the diagonal at 1/3 and 2/3 (weights 1/2 each), integral ~1."""
    norm = 0.5 * _gauss_norm(sigma, dims)
    inv = 1.0 / (2.0 * sigma * sigma)

    @native
    def f(x: Any) -> Any:
        xp = array_namespace(x)
        return norm * (_peak(xp, x, 1.0 / 3.0, inv) + _peak(xp, x, 2.0 / 3.0, inv))

    f.__name__ = f"camel{dims}d"
    return f


def camel_exact(dims: int = 4, sigma: float = 0.1) -> float:
    # both peaks lose the same share to the box edges (mirror symmetry x -> 1 - x)
    return _box_fraction(1.0 / 3.0, sigma) ** dims


def gauss(dims: int = 4, sigma: float = 0.05) -> Any:
    """One narrow normalised Gaussian at the centre of the cube, integral ~1."""
    norm = _gauss_norm(sigma, dims)
    inv = 1.0 / (2.0 * sigma * sigma)

    @native
    def f(x: Any) -> Any:
        return norm * _peak(array_namespace(x), x, 0.5, inv)

    f.__name__ = f"gauss{dims}d"
    return f


def gauss_exact(dims: int = 4, sigma: float = 0.05) -> float:
    return _box_fraction(0.5, sigma) ** dims


RING_R0, RING_W = 0.3, 0.02


def ring(dims: int = 2, r0: float = RING_R0, w: float = RING_W) -> Any:
    """A thin Gaussian ring of radius ``r0`` and width ``w`` around (1/2, 1/2), integral ~1.

    The ring is curved, so no product of 1-d maps (VEGAS) follows it: a test of flows.
    """
    if dims != 2:
        raise ValueError(f"the ring example is 2-dimensional, got dims={dims}")
    norm = 1.0 / (2.0 * math.pi * r0 * w * math.sqrt(2.0 * math.pi))
    inv = 1.0 / (2.0 * w * w)

    @native
    def f(x: Any) -> Any:
        xp = array_namespace(x)
        a = x - 0.5
        r = xp.sqrt(xp.sum(a * a, axis=1))
        d = r - r0
        return norm * xp.exp(-inv * d * d)

    f.__name__ = "ring"
    return f


def ring_exact(dims: int = 2, r0: float = RING_R0, w: float = RING_W) -> float:
    # integral over the plane in polar coordinates; the square clips only exp(-50) of it
    s = w * math.sqrt(2.0)
    plane = 2.0 * math.pi * (w * w * math.exp(-r0 * r0 / (2 * w * w))
                             + r0 * w * math.sqrt(math.pi / 2.0) * (1.0 + math.erf(r0 / s)))
    return plane / (2.0 * math.pi * r0 * w * math.sqrt(2.0 * math.pi))


def signed_two_peak(dims: int = 2, sigma: float = 0.05) -> Any:
    """MadNIS' signed toy: a normalised Gaussian peak at ``(0.3, ...)`` minus half of one at
    ``(0.7, ...)``; integral ~1/2, positive part ~1, negative part ~-1/2 (exactly as
    :func:`signed_two_peak_parts`: the peaks are 11 sigma apart, so their overlap, ~exp(-60),
    moves no sign boundary measurably)."""
    norm = _gauss_norm(sigma, dims)
    inv = 1.0 / (2.0 * sigma * sigma)

    @native
    def f(x: Any) -> Any:
        xp = array_namespace(x)
        return norm * (_peak(xp, x, 0.3, inv) - 0.5 * _peak(xp, x, 0.7, inv))

    f.__name__ = f"signed{dims}d"
    return f


def signed_two_peak_parts(dims: int = 2, sigma: float = 0.05) -> tuple[float, float]:
    """Exact integrals of the positive and the negative part of :func:`signed_two_peak`."""
    return _box_fraction(0.3, sigma) ** dims, -0.5 * _box_fraction(0.7, sigma) ** dims


def signed_two_peak_exact(dims: int = 2, sigma: float = 0.05) -> float:
    pos, neg = signed_two_peak_parts(dims, sigma)
    return pos + neg
