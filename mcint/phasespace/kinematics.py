"""Four-vector algebra on batches, written once against the array API.

Four-momenta are arrays of shape ``(..., 4)`` ordered ``(E, px, py, pz)`` with the metric
``(+, -, -, -)``. Everything here is elementwise/broadcasting code without data-dependent
branches, so it runs on every backend and torch can differentiate through it (the guards below
keep gradients finite at degenerate points such as a particle at rest or along the z axis).
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace, device

__all__ = [
    "const", "dot", "mass2", "mass", "pt", "eta", "rapidity", "phi", "delta_r", "kallen",
    "two_body_momentum", "boost", "boost_to_rest", "four", "rotate_from_z", "rotate_to_z",
    "angles_to_vector",
]


def const(like: Any, value: float) -> Any:
    """A 0-d array of ``value`` with the dtype and device of ``like``."""
    xp = array_namespace(like)
    return xp.asarray(value, dtype=like.dtype, device=device(like))


def four(e: Any, px: Any, py: Any, pz: Any) -> Any:
    """Stack components into four-vectors ``(..., 4)``."""
    xp = array_namespace(e, px, py, pz)
    return xp.stack([e, px, py, pz], axis=-1)


def dot(p: Any, q: Any) -> Any:
    """Minkowski product ``p.q`` over the last axis."""
    return p[..., 0] * q[..., 0] - p[..., 1] * q[..., 1] - p[..., 2] * q[..., 2] \
        - p[..., 3] * q[..., 3]


def mass2(p: Any) -> Any:
    """Invariant mass squared ``p^2``."""
    return dot(p, p)


def mass(p: Any) -> Any:
    """Invariant mass ``sqrt(max(p^2, 0))``."""
    xp = array_namespace(p)
    m2 = mass2(p)
    return xp.sqrt(xp.maximum(m2, xp.zeros_like(m2)))


def pt(p: Any) -> Any:
    """Transverse momentum with respect to the z (beam) axis."""
    xp = array_namespace(p)
    return xp.sqrt(p[..., 1] ** 2 + p[..., 2] ** 2)


def eta(p: Any) -> Any:
    """Pseudorapidity ``asinh(pz / pT)`` (``+-inf`` along the beam)."""
    xp = array_namespace(p)
    return xp.asinh(p[..., 3] / pt(p))


def rapidity(p: Any) -> Any:
    """Rapidity ``0.5 log((E + pz) / (E - pz))``."""
    xp = array_namespace(p)
    return 0.5 * (xp.log(p[..., 0] + p[..., 3]) - xp.log(p[..., 0] - p[..., 3]))


def phi(p: Any) -> Any:
    """Azimuthal angle in ``(-pi, pi]``."""
    xp = array_namespace(p)
    return xp.atan2(p[..., 2], p[..., 1])


def delta_r(p: Any, q: Any) -> Any:
    """``sqrt(d_eta^2 + d_phi^2)`` with ``d_phi`` wrapped into ``[-pi, pi]``."""
    xp = array_namespace(p, q)
    dphi = phi(p) - phi(q)
    dphi = xp.remainder(dphi + math.pi, 2 * math.pi) - math.pi
    return xp.sqrt((eta(p) - eta(q)) ** 2 + dphi ** 2)


def kallen(a: Any, b: Any, c: Any) -> Any:
    """Källén function ``lambda(a, b, c) = (a - b - c)^2 - 4 b c``."""
    return (a - b - c) ** 2 - 4.0 * b * c


def two_body_momentum(s: Any, m1sq: Any, m2sq: Any) -> Any:
    """Momentum of either daughter in the rest frame of a parent of mass squared ``s``.

    Below threshold (``lambda < 0``) this returns 0 rather than NaN; callers check thresholds.
    """
    xp = array_namespace(s, m1sq, m2sq)
    lam = kallen(s, m1sq, m2sq)
    lam = xp.maximum(lam, xp.zeros_like(lam))
    return xp.sqrt(lam) / (2.0 * xp.sqrt(s))


def boost(p: Any, q: Any, m: Any = None) -> Any:
    """Boost ``p``, given in the rest frame of ``q``, to the frame where ``q`` is given.

    Uses ``p' = p + q_vec (E + E') / (q0 + M)`` with ``E' = (q0 E + q_vec.p_vec) / M``, which has
    no division by ``|beta|`` (finite, and differentiable, for ``q`` at rest). ``q`` must be
    timelike; pass its mass ``m`` when known exactly. Shapes broadcast: ``p (..., 4)``,
    ``q (..., 4)``.
    """
    xp = array_namespace(p, q)
    m = xp.sqrt(mass2(q)) if m is None else m
    e = p[..., 0]
    qv = q[..., 1:]
    e_new = (q[..., 0] * e + xp.sum(qv * p[..., 1:], axis=-1)) / m
    fac = (e + e_new) / (q[..., 0] + m)
    pv = p[..., 1:] + qv * fac[..., None]
    return xp.concat([e_new[..., None], pv], axis=-1)


def boost_to_rest(p: Any, q: Any) -> Any:
    """Boost ``p`` into the rest frame of ``q`` (the inverse of :func:`boost`)."""
    xp = array_namespace(q)
    qbar = xp.concat([q[..., :1], -q[..., 1:]], axis=-1)
    return boost(p, qbar)


def angles_to_vector(cos_t: Any, phi_: Any) -> tuple[Any, Any, Any]:
    """Unit vector components for polar cosine ``cos_t`` and azimuth ``phi_``."""
    xp = array_namespace(cos_t, phi_)
    sin2 = 1.0 - cos_t * cos_t
    sin_t = xp.sqrt(xp.maximum(sin2, xp.zeros_like(sin2)))
    return sin_t * xp.cos(phi_), sin_t * xp.sin(phi_), cos_t


def _frame(n: Any) -> tuple[Any, Any, Any]:
    """Orthonormal frame ``(e1, e2, e3 = n_hat)`` for 3-vectors ``n (..., 3)``.

    ``e1, e2`` follow the polar angles of ``n``; at ``n`` along +-z the azimuth is taken as 0, a
    valid (proper) rotation, with gradients kept finite by guarding the square roots.
    """
    xp = array_namespace(n)
    nn = xp.sqrt(xp.sum(n * n, axis=-1))
    nx, ny, nz = n[..., 0] / nn, n[..., 1] / nn, n[..., 2] / nn
    rho2 = nx * nx + ny * ny
    pos = rho2 > 1e-300
    one = xp.ones_like(rho2)
    rho2s = xp.where(pos, rho2, one)
    rho = xp.sqrt(rho2s)
    cphi = xp.where(pos, nx / rho, one)
    sphi = xp.where(pos, ny / rho, xp.zeros_like(rho2))
    sth = xp.where(pos, rho, xp.zeros_like(rho2))
    cth = nz
    e1 = xp.stack([cth * cphi, cth * sphi, -sth], axis=-1)
    e2 = xp.stack([-sphi, cphi, xp.zeros_like(cphi)], axis=-1)
    e3 = xp.stack([nx, ny, nz], axis=-1)
    return e1, e2, e3


def rotate_from_z(v: Any, n: Any) -> Any:
    """Rotate 3-vectors ``v`` given in a frame whose z axis is ``n_hat`` into the lab frame."""
    e1, e2, e3 = _frame(n)
    return v[..., 0:1] * e1 + v[..., 1:2] * e2 + v[..., 2:3] * e3


def rotate_to_z(v: Any, n: Any) -> Any:
    """Inverse of :func:`rotate_from_z`: components of ``v`` along ``(e1, e2, n_hat)``."""
    xp = array_namespace(v, n)
    e1, e2, e3 = _frame(n)
    return xp.stack([xp.sum(v * e1, axis=-1), xp.sum(v * e2, axis=-1),
                     xp.sum(v * e3, axis=-1)], axis=-1)
