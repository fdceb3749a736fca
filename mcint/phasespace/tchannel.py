"""The 2 -> 2 t-channel block: ``p_a + p_b -> p_1 + p_2`` parametrised by ``(t, phi)``.

``t = (p_a - p_1)^2`` is drawn through an invariant sampler on ``x = M^2 - t`` (``M`` the mass
of the exchanged particle, so a :class:`~.invariants.PowerLaw` flattens ``1/(M^2 - t)^nu``), and
``phi`` flat around the direction of ``p_a`` in the centre-of-mass frame of ``p_a + p_b``.
``p_a`` may be off shell (spacelike), which is how t-channel chains recurse. Weight:

    dPhi_2 = dt dphi / (32 pi^2 |p_a*| sqrt(s)),   |p_a*| = momentum of p_a in the c.m. frame.

**A transverse-momentum cut** ``pt_min`` (momentum of ``p_1`` transverse to ``p_a`` in the c.m.
frame, which is the lab pT when both incoming momenta lie on the beam axis) is
``|p_1*| sin(theta) >= pt_min``, i.e. ``|cos(theta)| <= c = sqrt(1 - pt_min^2 / |p_1*|^2)``: the
range of ``t`` shrinks to ``base +- span c`` and every drawn point passes the cut, with the
log-det of the narrowed map (the cut integral, no point wasted). Where ``|p_1*| <= pt_min`` no
point passes: the weight is exactly zero (``log_weight = -inf``).
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace

from ..backends import fusable
from .invariants import InvariantSampler
from .kinematics import (
    boost,
    boost_to_rest,
    four,
    mass2,
    rotate_from_z,
    rotate_to_z,
    two_body_momentum,
)

__all__ = ["t_channel", "t_channel_inverse"]


def t_channel_frame(pa: Any, p: Any, m1sq: Any, m2sq: Any, prop_m2: float,
                    pt_min: float | None = None) -> tuple[Any, ...]:
    """The frame of the block with total momentum ``p`` (``pa + pb``, or the 2->3 block's
    ``pa + pb - p3``) and the range of ``x = prop_m2 - t`` (narrowed by ``pt_min``, module
    docstring; the last entry flags the points where the cut leaves no range)."""
    xp = array_namespace(pa, p)
    s = mass2(p)
    rs = xp.sqrt(s)
    pa_cm = boost_to_rest(pa, p)
    ka = xp.sqrt(xp.sum(pa_cm[:, 1:] * pa_cm[:, 1:], axis=1))
    k1 = two_body_momentum(s, m1sq, m2sq)
    e1 = (s + m1sq - m2sq) / (2.0 * rs)
    ma2, ea = mass2(pa), pa_cm[:, 0]
    base = ma2 + m1sq - 2.0 * ea * e1
    span = 2.0 * ka * k1
    zero = xp.zeros_like(s)
    t_top = ma2 + m1sq - 2.0 * _energy_product_minus(xp, ma2, ea, ka, m1sq, e1, k1)
    empty, reach = None, span
    if pt_min:
        # |cos| <= c; where k1 <= pt_min nothing passes (c = 0 keeps the range finite); at
        # cos = +c, t = t_top - span (1 - c) with 1 - c = ratio^2 / (1 + c): no cancellation
        ratio = pt_min / xp.where(k1 > 0, k1, xp.ones_like(k1))
        empty = k1 <= pt_min
        c = xp.sqrt(xp.where(empty, zero, 1.0 - ratio * ratio))
        t_top = xp.where(empty, base, t_top - span * (ratio * ratio) / (1.0 + c))
        reach = span * c
    # t from t_top (cos = +c) down by the range's width 2 span c: never an empty or negative
    # width from rounding, however small span is
    x_lo = xp.maximum(prop_m2 - t_top, zero)
    x_hi = prop_m2 - (t_top - 2.0 * reach)
    return p, s, rs, pa_cm, ka, k1, e1, base, span, x_lo, x_hi, empty


def _energy_product_minus(xp: Any, ma2: Any, ea: Any, ka: Any, m1sq: Any, e1: Any,
                          k1: Any) -> Any:
    """``ea e1 - ka k1`` (``t`` at ``cos = 1`` is ``ma2 + m1sq - 2`` times it). For a light
    emission at high energy the two products nearly cancel, and ``t_max`` (the pole side of a
    ``1/t`` map) lost most of its digits; with ``ea > 0`` it is the quotient
    ``(ma2 e1^2 + ka^2 m1sq) / (ea e1 + ka k1)`` of terms without cancellation."""
    den = ea * e1 + ka * k1
    quot = (ma2 * e1 * e1 + ka * ka * m1sq) / xp.where(den > 0, den, xp.ones_like(den))
    return xp.where((ea > 0) & (den > 0), quot, ea * e1 - ka * k1)


def _log_weight(xp: Any, ld_t: Any, ka: Any, rs: Any, empty: Any = None) -> Any:
    lw = ld_t + math.log(2 * math.pi) - math.log(32 * math.pi ** 2) - xp.log(ka) - xp.log(rs)
    return lw if empty is None else xp.where(empty, -math.inf, lw)


@fusable("phasespace-tchannel-forward")
def t_channel(r: Any, pa: Any, pb: Any, m1sq: Any, m2sq: Any, sampler: InvariantSampler,
              prop_m2: float = 0.0, pt_min: float | None = None) -> tuple[Any, Any, Any]:
    """``r (n, 2) = (r_t, r_phi)`` -> ``(p1, p2, log_weight)`` with ``p1 + p2 = pa + pb``;
    ``pt_min``: only ``p1`` with at least this momentum transverse to ``pa`` (module docstring).

    The numba backend fuses it for the built-in samplers without ``pt_min``
    (``kernels/ps_tchannel.py``).
    """
    xp = array_namespace(r, pa)
    z = xp.zeros_like(r[:, 0])
    m1sq, m2sq = m1sq + z, m2sq + z
    p, s, rs, pa_cm, ka, k1, e1, base, span, x_lo, x_hi, empty = t_channel_frame(
        pa, pa + pb, m1sq, m2sq, prop_m2, pt_min)
    x, ld_t = sampler.forward(r[:, 0], x_lo, x_hi)
    t = prop_m2 - x
    # span = 0 only at threshold (|p1| = 0), where the angle is irrelevant; the momenta come
    # from cos (ulp-level near cos = 1, harmless): only the limits of t needed the stable form
    span_ok = xp.where(span > 0, span, xp.ones_like(span))
    cos_t = xp.clip((t - base) / span_ok, -1.0, 1.0)
    sin_t = xp.sqrt(xp.maximum(1.0 - cos_t * cos_t, z))
    ph = math.pi * (2.0 * r[:, 1] - 1.0)
    v = xp.stack([k1 * sin_t * xp.cos(ph), k1 * sin_t * xp.sin(ph), k1 * cos_t], axis=1)
    v = rotate_from_z(v, pa_cm[:, 1:])
    p1 = boost(four(e1, v[:, 0], v[:, 1], v[:, 2]), p)
    return p1, p - p1, _log_weight(xp, ld_t, ka, rs, empty)


def t_channel_inverse(p1: Any, pa: Any, pb: Any, sampler: InvariantSampler,
                      prop_m2: float = 0.0, m1sq: Any = None, m2sq: Any = None,
                      pt_min: float | None = None) -> tuple[Any, Any]:
    """Random numbers ``(n, 2)`` and the log-weight of :func:`t_channel` for a given ``p1``.

    A ``p1`` the narrowed chart cannot draw (below ``pt_min``, or a block with no range) has no
    random numbers: it gets ``r_t`` clipped into ``[0, 1]`` (0.5 where the range is empty) and
    ``log_weight = -inf``, so that callers that use the inverse as coordinates (features of
    points of other channels) stay finite."""
    xp = array_namespace(p1, pa)
    m1sq = mass2(p1) if m1sq is None else m1sq + xp.zeros_like(p1[:, 0])
    m2sq = mass2(pa + pb - p1) if m2sq is None else m2sq + xp.zeros_like(p1[:, 0])
    p, s, rs, pa_cm, ka, k1, e1, base, span, x_lo, x_hi, empty = t_channel_frame(
        pa, pa + pb, m1sq, m2sq, prop_m2, pt_min)
    t = mass2(pa - p1)
    if pt_min:  # a dummy range where there is none (no 0/0): those rows are replaced below
        x_lo, x_hi = xp.where(empty, 1.0, x_lo), xp.where(empty, 2.0, x_hi)
    r_t, ld_t = sampler.inverse(prop_m2 - t, x_lo, x_hi)
    if pt_min:
        outside = empty | ~((r_t >= 0.0) & (r_t <= 1.0))
        r_t = xp.where(empty, 0.5, xp.clip(xp.where(xp.isnan(r_t), 0.5, r_t), 0.0, 1.0))
        empty = outside
    v = rotate_to_z(boost_to_rest(p1, p)[:, 1:], pa_cm[:, 1:])
    r_phi = xp.atan2(v[:, 1], v[:, 0]) / (2 * math.pi) + 0.5
    return xp.stack([r_t, r_phi], axis=1), _log_weight(xp, -ld_t, ka, rs, empty)
