"""Two-body decays ``P -> p1 p2`` with angles drawn in the rest frame of ``P``.

``r = (r_cos, r_phi)`` maps to ``cos(theta) = 2 r_cos - 1`` and ``phi = pi (2 r_phi - 1)``,
measured in the rest frame of ``P`` (reached from the frame where ``P`` is given by a pure
boost) with respect to that frame's z axis. The weight is the two-body phase-space density

    dPhi_2 / d^2 r = 4 pi |p| / (16 pi^2 sqrt(s)) = |p| / (4 pi sqrt(s)),

including its ``(2 pi)^(4 - 3*2)`` factor (conventions: ``dPhi_n = (2pi)^4 delta^4(P - sum p)
prod d^3p / ((2pi)^3 2E)``, so ``Phi_2 = 1 / (8 pi)`` for massless daughters).
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace

from ..backends import fusable
from .kinematics import angles_to_vector, boost, boost_to_rest, four, mass2, two_body_momentum

__all__ = ["decay", "decay_inverse", "decay_log_weight"]


def decay_log_weight(s: Any, m1sq: Any, m2sq: Any) -> Any:
    """``log(dPhi_2 / d^2 r)`` for a parent of mass squared ``s``."""
    xp = array_namespace(s)
    return xp.log(two_body_momentum(s, m1sq, m2sq)) - 0.5 * xp.log(s) - math.log(4 * math.pi)


@fusable("phasespace-decay-forward")
def decay(r: Any, p: Any, m1sq: Any, m2sq: Any, s: Any = None) -> tuple[Any, Any, Any]:
    """Decay ``p (n, 4)`` into daughters of masses squared ``m1sq, m2sq`` (arrays or floats).

    ``r (n, 2)`` in the unit square; ``s`` is ``p^2`` when the caller knows it exactly (a
    sampled invariant: recomputing it from ``p`` loses precision near zero). Returns
    ``(p1, p2, log_weight)``; ``p2 = p - p1`` exactly. The numba backend fuses it
    (``backends/mcint_numba/kernels/ps_decay.py``).
    """
    xp = array_namespace(r, p)
    s = mass2(p) if s is None else s + xp.zeros_like(p[:, 0])
    z = xp.zeros_like(s)
    m1sq, m2sq = m1sq + z, m2sq + z
    q = two_body_momentum(s, m1sq, m2sq)
    cos_t = 2.0 * r[:, 0] - 1.0
    phi = math.pi * (2.0 * r[:, 1] - 1.0)
    ux, uy, uz = angles_to_vector(cos_t, phi)
    e1 = xp.sqrt(q * q + m1sq)
    p1 = boost(four(e1, q * ux, q * uy, q * uz), p, xp.sqrt(s))
    return p1, p - p1, decay_log_weight(s, m1sq, m2sq)


def decay_inverse(p1: Any, p: Any) -> tuple[Any, Any]:
    """Random numbers ``(n, 2)`` and ``log(dr/dPhi_2)`` that :func:`decay` maps to ``p1``."""
    xp = array_namespace(p1, p)
    k = boost_to_rest(p1, p)
    kk = xp.sqrt(xp.sum(k[:, 1:] * k[:, 1:], axis=1))
    r_cos = 0.5 * (k[:, 3] / kk + 1.0)
    r_phi = xp.atan2(k[:, 2], k[:, 1]) / (2 * math.pi) + 0.5
    s = mass2(p)
    m1sq = mass2(p1)
    m2sq = mass2(p - p1)
    return xp.stack([r_cos, r_phi], axis=1), -decay_log_weight(s, m1sq, m2sq)
