"""The 2 -> 3 block in the invariants ``(t, s~)``: ``p_a + p_b -> p_1 + p_2 (+ p_3 given)``.

Byckling and Kajantie, Phys. Rev. 187 (1969) 2008; the block MadGraph7's madspace calls
``TwoToThreeParticleScattering``. The recoil ``p_3`` is already generated; the system
``P = p_a + p_b - p_3`` decays into ``p_1, p_2`` (masses given), parametrised not by two angles
but by two invariants:

* ``t = (p_a - p_1)^2``, drawn through an invariant sampler on ``x = M^2 - t`` as in
  :mod:`.tchannel` (it fixes the polar angle of ``p_1`` about ``p_a`` in the rest frame of ``P``);
* ``s~ = (p_2 + p_3)^2``, drawn by a second sampler between its limits at that ``t``: it is
  linear in the cosine of the azimuth ``phi`` of ``p_1`` about ``p_a``, measured from the plane
  of ``p_a`` and ``p_3``, so a propagator ``1/(s~ - M^2)`` in the ``(2, 3)`` channel can be
  flattened. Both signs of ``phi`` give the same ``s~``: the random number folds,
  ``r_s >= 1/2`` is ``phi >= 0``, with ``u = |2 r_s - 1|``.

The weight is the two-body phase space ``dPhi_2 = k / (16 pi^2 sqrt(s_P)) dcos dphi`` with
``dcos = dx / (2 |p_a*| k)`` and ``dphi = ds~ / sqrt((s~_max - s~)(s~ - s~_min))`` (the
``1/|sin phi|`` of the change of variables). That factor is integrable but makes the variance
diverge logarithmically at the ``s~`` limits, so by default (``arcsine=True``, as madspace) the
folded random number first goes through ``u' = sin^2(pi u / 2)``, whose Jacobian cancels it for a
flat ``s~`` (then the block is the usual flat-``phi`` block) and bounds it for the others.
Random numbers: ``r[:, 0]`` for ``t``, ``r[:, 1]`` for ``s~`` (and the sign of ``phi``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ..backends import fusable
from .base import FinalStateMapping, check_masses
from .invariants import InvariantSampler, Uniform
from .kinematics import (
    boost,
    boost_to_rest,
    four,
    mass2,
    rotate_from_z,
    rotate_to_z,
)
from .tchannel import t_channel, t_channel_frame, t_channel_inverse

__all__ = ["two_to_three", "two_to_three_inverse", "TwoToThree"]

_LOG_2PI = math.log(2 * math.pi)


def _frame(pa: Any, pb: Any, p3: Any, m1sq: Any, m2sq: Any, prop_m2: float) -> tuple[Any, ...]:
    """Everything the block needs that does not depend on the random numbers."""
    xp = array_namespace(pa, pb, p3)
    p, s, rs, pa_c, ka, k, e1, base, span, x_lo, x_hi, _ = t_channel_frame(
        pa, pa + pb - p3, m1sq, m2sq, prop_m2)
    # p_3 in the rest frame of P, in the frame whose z axis is p_a there
    p3_c = boost_to_rest(p3, p)
    v3 = rotate_to_z(p3_c[:, 1:], pa_c[:, 1:])
    rho3 = xp.sqrt(v3[:, 0] * v3[:, 0] + v3[:, 1] * v3[:, 1])
    phi3 = xp.atan2(v3[:, 1], v3[:, 0])
    # s~ = (P - p1 + p3)^2 = m2^2 + m3^2 + 2 E3 (rs - e1) + 2 k (cos v3_z + sin rho3 cos phi)
    s_const = m2sq + mass2(p3) + 2.0 * p3_c[:, 0] * (rs - e1)
    return p, s, rs, pa_c, ka, k, e1, base, span, x_lo, x_hi, v3, rho3, phi3, s_const


def _s_limits(k: Any, cos_t: Any, sin_t: Any, v3: Any, rho3: Any, s_const: Any
              ) -> tuple[Any, Any]:
    """``(A, B)`` with ``s~ = A + B cos(phi_rel)`` at this polar angle."""
    return s_const + 2.0 * k * cos_t * v3[:, 2], 2.0 * k * sin_t * rho3


#: below this ``u'`` (or ``1 - u'``) the distance of ``s~`` to its limit is taken as
#: ``ds~/du' u'``: the difference ``s~ - s~_min`` has only ``ulp(s) / (width u')`` relative
#: precision there, the first-order model an error ``~u'`` (equal near 1e-8)
_NEAR_LIMIT = 1e-8


def _distances(xp: Any, s_t: Any, s_lo: Any, s_hi: Any, up: Any, up_c: Any, ld_s: Any
               ) -> tuple[Any, Any]:
    """``(s~_max - s~, s~ - s~_min)``: differences, or near a limit ``ds~/du'`` times the
    distance in ``u'``."""
    z = xp.zeros_like(s_t)
    ds = xp.exp(ld_s)
    d_hi = xp.where(up_c < _NEAR_LIMIT, ds * up_c, xp.maximum(s_hi - s_t, z))
    d_lo = xp.where(up < _NEAR_LIMIT, ds * up, xp.maximum(s_t - s_lo, z))
    return d_hi, d_lo


def _log_weight(xp: Any, k: Any, rs: Any, ld_t: Any, span: Any, ld_s: Any, ld_u: Any,
                d_hi: Any, d_lo: Any, arcsine: bool) -> Any:
    """``log dPhi_2/d^2r``: ``k/(16 pi^2 rs)``, ``dx/dr_t / span``, ``ds~/du'``, ``du'/dr_s``,
    ``1 / sqrt((s~_max - s~)(s~ - s~_min))``.

    With the arcsine fold, at ``s~`` exactly on a limit (``r_s`` = 0, 1/2, 1: ``du'/dr_s`` and
    the square root both vanish) the weight is the limit ``2 pi sqrt(ds~/du' / d)`` (``d`` the
    distance to the other limit), not 0/0.
    """
    dist = d_hi * d_lo
    s_part = ld_s + ld_u - 0.5 * xp.log(dist)
    if arcsine:
        edge = dist == 0
        far = xp.where(edge, xp.maximum(d_hi, d_lo), xp.ones_like(dist))
        s_part = xp.where(edge, _LOG_2PI + 0.5 * ld_s - 0.5 * xp.log(far), s_part)
    return (xp.log(k) - xp.log(rs) - math.log(16 * math.pi ** 2) + ld_t - xp.log(span)
            + s_part)


@fusable("phasespace-two-to-three-forward")
def two_to_three(r: Any, pa: Any, pb: Any, p3: Any, m1sq: Any, m2sq: Any,
                 t_sampler: InvariantSampler | None = None,
                 s_sampler: InvariantSampler | None = None, prop_m2: float = 0.0,
                 arcsine: bool = True) -> tuple[Any, Any, Any]:
    """``r (n, 2) = (r_t, r_s)`` -> ``(p1, p2, log_weight)`` with ``p1 + p2 = pa + pb - p3``.

    ``t = (pa - p1)^2`` from ``t_sampler`` on ``x = prop_m2 - t`` (default flat);
    ``s~ = (p2 + p3)^2`` from ``s_sampler`` (default flat) between its limits at that ``t``.
    The numba backend fuses it for the built-in samplers (``kernels/ps_twotothree.py``).
    """
    xp = array_namespace(r, pa, pb, p3)
    t_sampler, s_sampler = t_sampler or Uniform(), s_sampler or Uniform()
    z = xp.zeros_like(r[:, 0])
    m1sq, m2sq = m1sq + z, m2sq + z
    (p, s, rs, pa_c, ka, k, e1, base, span, x_lo, x_hi, v3, rho3, phi3,
     s_const) = _frame(pa, pb, p3, m1sq, m2sq, prop_m2)
    x, ld_t = t_sampler.forward(r[:, 0], x_lo, x_hi)
    span_ok = xp.where(span > 0, span, xp.ones_like(span))
    cos_t = xp.clip((prop_m2 - x - base) / span_ok, -1.0, 1.0)
    sin_t = xp.sqrt(xp.maximum(1.0 - cos_t * cos_t, z))
    a, b = _s_limits(k, cos_t, sin_t, v3, rho3, s_const)
    s_lo, s_hi = a - b, a + b
    w = 2.0 * r[:, 1] - 1.0
    u = xp.abs(w)
    if arcsine:
        h = math.pi / 2 * u
        su, cu = xp.sin(h), xp.cos(h)
        up, up_c = su * su, cu * cu  # u' and 1 - u', each without cancellation
        with np.errstate(divide="ignore"):  # log(0) on a limit: replaced in _log_weight
            ld_u = math.log(math.pi) + xp.log(su * cu) + math.log(2.0)  # du'/du, du/dr_s = 2
    else:
        up, up_c, ld_u = u, 1.0 - u, math.log(2.0) + z
    s_t, ld_s = s_sampler.forward(up, s_lo, s_hi)
    d_hi, d_lo = _distances(xp, s_t, s_lo, s_hi, up, up_c, ld_s)
    # over d_lo + d_hi (= 2B up to rounding): cos^2 + sin^2 = 1 to round-off, p1 on shell
    tot = d_lo + d_hi
    tot = xp.where(tot > 0, tot, xp.ones_like(tot))
    cos_p = xp.clip((d_lo - d_hi) / tot, -1.0, 1.0)
    sin_p = 2.0 * xp.sqrt(d_hi * d_lo) / tot
    sin_p = xp.where(w >= 0, sin_p, -sin_p)
    c3, s3 = xp.cos(phi3), xp.sin(phi3)
    cph, sph = cos_p * c3 - sin_p * s3, sin_p * c3 + cos_p * s3  # phi = phi3 + phi_rel
    v = xp.stack([k * sin_t * cph, k * sin_t * sph, k * cos_t], axis=1)
    v = rotate_from_z(v, pa_c[:, 1:])
    p1 = boost(four(e1, v[:, 0], v[:, 1], v[:, 2]), p, rs)
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) on a limit: replaced
        log_w = _log_weight(xp, k, rs, ld_t, span_ok, ld_s, ld_u, d_hi, d_lo, arcsine)
    return p1, p - p1, log_w


def two_to_three_inverse(p1: Any, pa: Any, pb: Any, p3: Any,
                         t_sampler: InvariantSampler | None = None,
                         s_sampler: InvariantSampler | None = None, prop_m2: float = 0.0,
                         arcsine: bool = True, m1sq: Any = None, m2sq: Any = None
                         ) -> tuple[Any, Any]:
    """``(r (n, 2), log_weight)`` that :func:`two_to_three` maps to ``p1`` (the forward
    ``log_weight``, not its negative). ``m1sq, m2sq`` default to ``p1``'s and ``p2``'s."""
    xp = array_namespace(p1, pa, pb, p3)
    t_sampler, s_sampler = t_sampler or Uniform(), s_sampler or Uniform()
    z = xp.zeros_like(p1[:, 0])
    m1sq = mass2(p1) if m1sq is None else m1sq + z
    m2sq = mass2(pa + pb - p3 - p1) if m2sq is None else m2sq + z
    (p, s, rs, pa_c, ka, k, e1, base, span, x_lo, x_hi, v3, rho3, phi3,
     s_const) = _frame(pa, pb, p3, m1sq, m2sq, prop_m2)
    t = mass2(pa - p1)
    r_t, ld_t = t_sampler.inverse(prop_m2 - t, x_lo, x_hi)
    v = rotate_to_z(boost_to_rest(p1, p)[:, 1:], pa_c[:, 1:])
    kk = xp.sqrt(xp.sum(v * v, axis=1))
    cos_t = xp.clip(v[:, 2] / kk, -1.0, 1.0)
    sin_t = xp.sqrt(xp.maximum(1.0 - cos_t * cos_t, z))
    a, b = _s_limits(k, cos_t, sin_t, v3, rho3, s_const)
    # phi_rel from the azimuths (exact near the s~ limits, where s~ itself is not)
    phi_rel = xp.atan2(v[:, 1], v[:, 0]) - phi3
    phi_rel = xp.remainder(phi_rel + math.pi, 2 * math.pi) - math.pi
    half = 0.5 * xp.abs(phi_rel)
    # s~ - s_lo = B (1 + cos phi) = 2 B cos^2(phi/2), s_hi - s~ = 2 B sin^2(phi/2)
    d_lo, d_hi = 2.0 * b * xp.cos(half) ** 2, 2.0 * b * xp.sin(half) ** 2
    s_t = (a - b) + d_lo
    up, ld_s = s_sampler.inverse(s_t, a - b, a + b)
    if arcsine:
        u = xp.atan2(xp.sqrt(xp.maximum(up, z)), xp.sqrt(xp.maximum(1.0 - up, z))) * (2 / math.pi)
        h = math.pi / 2 * u
        ld_u = math.log(math.pi) + xp.log(xp.sin(h) * xp.cos(h)) + math.log(2.0)
    else:
        u, ld_u = up, math.log(2.0) + z
    r_s = xp.where(phi_rel >= 0, 0.5 + 0.5 * u, 0.5 - 0.5 * u)
    span_ok = xp.where(span > 0, span, xp.ones_like(span))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_w = _log_weight(xp, k, rs, -ld_t, span_ok, -ld_s, ld_u, d_hi, d_lo, arcsine)
    return xp.stack([r_t, r_s], axis=1), log_w


class TwoToThree(FinalStateMapping):
    """``p_a p_b -> p_1 p_2 p_3`` (``n_random = 5``) along a t-channel line with the 2 -> 3 block.

    ``s_12 = (p_1 + p_2)^2`` from ``s12_sampler`` (``r[:, 0]``); ``p_b -> p_3`` a 2 -> 2
    t-channel block in ``t_2 = (p_b - p_3)^2`` (``r[:, 1:3]``, :func:`~.tchannel.t_channel`);
    then ``p_1, p_2`` by :func:`two_to_three` in ``t_1 = (p_a - p_1)^2`` and
    ``s~ = (p_2 + p_3)^2`` (``r[:, 3:5]``). Weight: ``ds_12 / (2 pi) dPhi_2 dPhi_2``.

    ``t1``, ``t2``: the propagators' ``(sampler, M^2)``; ``s23_sampler``: ``s~``'s sampler.
    """

    n_random = 5

    def __init__(self, masses: Sequence[float], s12_sampler: InvariantSampler | None = None,
                 t1: tuple[InvariantSampler, float] | None = None,
                 t2: tuple[InvariantSampler, float] | None = None,
                 s23_sampler: InvariantSampler | None = None, arcsine: bool = True) -> None:
        self.masses = check_masses(masses)
        if len(self.masses) != 3:
            raise ValueError(f"TwoToThree needs 3 masses, got {len(self.masses)}")
        self.s12_sampler = s12_sampler or Uniform()
        if self.s12_sampler.needs_positive_lower and self.masses[0] + self.masses[1] <= 0:
            raise ValueError(f"{self.s12_sampler!r} needs a positive lower limit but particles "
                             "0 and 1 are massless")
        self.t1 = t1 or (Uniform(), 0.0)
        self.t2 = t2 or (Uniform(), 0.0)
        self.s23_sampler = s23_sampler or Uniform()
        self.arcsine = bool(arcsine)

    def _s12(self, xp: Any, s: Any) -> tuple[Any, Any]:
        m = self.masses
        z = xp.zeros_like(s)
        return (m[0] + m[1]) ** 2 + z, (xp.sqrt(s) - m[2]) ** 2

    def generate(self, r: Any, pa: Any, pb: Any) -> tuple[Any, Any]:
        xp = array_namespace(r, pa, pb)
        m = self.masses
        lo, hi = self._s12(xp, mass2(pa + pb))
        s12, ld = self.s12_sampler.forward(r[:, 0], lo, hi)
        p3, _, lw2 = t_channel(r[:, 1:3], pb, pa, m[2] ** 2, s12, self.t2[0], self.t2[1])
        p1, p2, lw3 = two_to_three(r[:, 3:5], pa, pb, p3, m[0] ** 2, m[1] ** 2, self.t1[0],
                                   self.s23_sampler, self.t1[1], self.arcsine)
        return xp.stack([p1, p2, p3], axis=1), ld - _LOG_2PI + lw2 + lw3

    def invert(self, p: Any, pa: Any, pb: Any) -> tuple[Any, Any]:
        xp = array_namespace(p, pa, pb)
        m = self.masses
        z = xp.zeros_like(pa[:, 0])
        lo, hi = self._s12(xp, mass2(pa + pb))
        s12 = mass2(p[:, 0, :] + p[:, 1, :])
        r0, ld = self.s12_sampler.inverse(s12, lo, hi)
        r2, lw2 = t_channel_inverse(p[:, 2, :], pb, pa, self.t2[0], self.t2[1], m[2] ** 2 + z,
                                    s12)
        r3, lw3 = two_to_three_inverse(p[:, 0, :], pa, pb, p[:, 2, :], self.t1[0],
                                       self.s23_sampler, self.t1[1], self.arcsine,
                                       m[0] ** 2 + z, m[1] ** 2 + z)
        return xp.concat([r0[:, None], r2, r3], axis=1), -ld - _LOG_2PI + lw2 + lw3

    def __repr__(self) -> str:
        return (f"TwoToThree(masses={list(self.masses)}, s12={self.s12_sampler!r}, "
                f"t1={self.t1!r}, t2={self.t2!r}, s23={self.s23_sampler!r}, "
                f"arcsine={self.arcsine})")
