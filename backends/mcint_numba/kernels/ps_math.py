"""Shared numerics of the fused phase-space kernels: the per-event formulas, in one place.

Every function here is the per-event version of an array-API formula in
:mod:`mcint.phasespace` and keeps its operation order, so the fused kernels agree with the
references to a few ulp (no ``fastmath``: no reassociation, no FMA contraction). ``max``/``clip``
are written as comparisons that let NaN through, as ``numpy.maximum``/``clip`` do. Deliberate
differences: decay azimuths (and a lone t-channel block's) by :func:`sincos_pi`, and fewer
logarithms in the weights. The
Python helpers at the end decide what a kernel accepts (numpy float64 only) and broadcast scalar
arguments.

numba's on-disk cache keys each kernel on its own module's source: after editing this file,
delete ``__pycache__/ps_*.nb*`` next to it, or the kernels keep the old inlined numerics.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

#: compiled once per signature and cached on disk; ``error_model="numpy"``: 1/0 gives inf
#: (as the array-API code does) instead of raising
jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
#: the per-event formulas, inlined into their callers at numba-IR level: LLVM only vectorises
#: a loop over events when it sees no call in it
inline = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy",
                    inline="always")
#: events per block in the block-wise kernels: a block's columns (~20 x 8 bytes each) stay in L1
BLOCK = 256

LOG_2PI = math.log(2 * math.pi)
LOG_4PI = math.log(4 * math.pi)
#: exponent-search scales of :func:`mcint.phasespace.rambo.solve_u`
_SEARCH = (2.0 ** -32, 2.0 ** -16, 2.0 ** -8, 2.0 ** -4, 2.0 ** -2, 2.0 ** -1)
#: sampler kinds of :func:`sample_invariant` (see :func:`sampler_code`)
UNIFORM, BREIT_WIGNER, POWER_LAW = 0, 1, 2


# -- kinematics (mcint.phasespace.kinematics) ----------------------------------------------
@inline
def two_body_momentum(s: float, m1sq: float, m2sq: float) -> float:  # pragma: no cover
    """:func:`~mcint.phasespace.kinematics.two_body_momentum` (0 below threshold)."""
    d = s - m1sq - m2sq
    lam = d * d - 4.0 * m1sq * m2sq
    if lam < 0.0:
        lam = 0.0
    return math.sqrt(lam) / (2.0 * math.sqrt(s))


@inline
def boost(e, px, py, pz, q0, qx, qy, qz, m):  # pragma: no cover - compiled
    """:func:`~mcint.phasespace.kinematics.boost` of ``p`` from the rest frame of ``q``."""
    e_new = (q0 * e + ((qx * px + qy * py) + qz * pz)) / m
    fac = (e + e_new) / (q0 + m)
    return e_new, px + qx * fac, py + qy * fac, pz + qz * fac


@inline
def z_frame(n0, n1, n2):  # pragma: no cover - compiled
    """The frame whose z axis is ``n``: unit ``n`` and cos/sin of its azimuth, sin of its polar
    angle (the rotation of :func:`rotate_from_z` and :func:`rotate_to_z`)."""
    nn = math.sqrt((n0 * n0 + n1 * n1) + n2 * n2)
    nx, ny, nz = n0 / nn, n1 / nn, n2 / nn
    rho2 = nx * nx + ny * ny
    if rho2 > 1e-300:
        rho = math.sqrt(rho2)
        return nx, ny, nz, nx / rho, ny / rho, rho
    return nx, ny, nz, 1.0, 0.0, 0.0   # n along +-z (or NaN): azimuth 0, as the reference's where()


@inline
def rotate_to_z(v0, v1, v2, n0, n1, n2):  # pragma: no cover - compiled
    """:func:`~mcint.phasespace.kinematics.rotate_to_z`: ``v``'s components in ``n``'s frame."""
    nx, ny, nz, cphi, sphi, sth = z_frame(n0, n1, n2)
    return ((v0 * (nz * cphi) + v1 * (nz * sphi)) + v2 * -sth,
            (v0 * -sphi + v1 * cphi) + v2 * 0.0,
            (v0 * nx + v1 * ny) + v2 * nz)


@inline
def rotate_from_z(v0, v1, v2, n0, n1, n2):  # pragma: no cover - compiled
    """:func:`~mcint.phasespace.kinematics.rotate_from_z`: ``v`` from ``n``'s frame to the lab."""
    nx, ny, nz, cphi, sphi, sth = z_frame(n0, n1, n2)
    return ((v0 * (nz * cphi) + v1 * -sphi) + v2 * nx,
            (v0 * (nz * sphi) + v1 * cphi) + v2 * ny,
            (v0 * -sth + v1 * 0.0) + v2 * nz)


# fdlibm's __kernel_sin / __kernel_cos minimax polynomials on [-pi/4, pi/4] (< 1 ulp)
_S1, _S2, _S3 = -1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04
_S4, _S5, _S6 = 2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10
_C1, _C2, _C3 = 4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05
_C4, _C5, _C6 = -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11


@inline
def sincos_pi(x):  # pragma: no cover - compiled
    """``(sin(pi x), cos(pi x))`` to ~1 ulp, for the azimuths ``phi = pi (2 r - 1)``.

    libm's ``sin`` and ``cos`` cost ~30 ns each per call here (numba has no ``sincos`` and no
    SIMD math without SVML); the reduction ``x - n/2`` is exact, so two short polynomials do,
    and without branches, so loops over events calling this vectorise.
    """
    n = math.floor(2.0 * x + 0.5)
    t = math.pi * (x - 0.5 * n)
    z = t * t
    w = z * z
    r = _S2 + z * (_S3 + z * _S4) + z * w * (_S5 + z * _S6)
    sn = t + (z * t) * (_S1 + z * r)
    r = z * (_C1 + z * (_C2 + z * _C3)) + w * w * (_C4 + z * (_C5 + z * _C6))
    hz = 0.5 * z
    w = 1.0 - hz
    cs = w + (((1.0 - w) - hz) + z * r)
    q = n - 4.0 * math.floor(0.25 * n)  # quadrant 0..3
    odd = q == 1.0 or q == 3.0
    s_out = cs if odd else sn
    c_out = sn if odd else cs
    return (-s_out if q >= 2.0 else s_out), (-c_out if q == 1.0 or q == 2.0 else c_out)


@inline
def decay_momentum(r0, r1, q0, q1, q2, q3, s, m1sq, m2sq):  # pragma: no cover - compiled
    """:func:`~mcint.phasespace.twobody.decay` for one event: ``p1``'s components.

    ``s`` is the parent's mass squared as the caller knows it; ``p2 = q - p1`` is the caller's.
    Branch-free (no libm call), so loops over events vectorise.
    """
    k = two_body_momentum(s, m1sq, m2sq)
    cos_t = 2.0 * r0 - 1.0
    sin_p, cos_p = sincos_pi(2.0 * r1 - 1.0)
    sin2 = 1.0 - cos_t * cos_t
    sin_t = math.sqrt(0.0 if sin2 < 0.0 else sin2)
    e1 = math.sqrt(k * k + m1sq)
    return boost(e1, k * (sin_t * cos_p), k * (sin_t * sin_p), k * cos_t, q0, q1, q2, q3,
                 math.sqrt(s))


@inline
def decay_log_weight(s, m1sq, m2sq):  # pragma: no cover - compiled
    """:func:`~mcint.phasespace.twobody.decay_log_weight` with one log instead of two."""
    return math.log(two_body_momentum(s, m1sq, m2sq) / math.sqrt(s)) - LOG_4PI


@jit
def decay_block(nb, r0, r1, q0, q1, q2, q3, s, m1sq, m2sq, e, x, y, z):  # pragma: no cover
    """:func:`decay_momentum` over a block of ``nb`` events held as columns (one array per
    quantity, allocated apart): a call-free loop LLVM vectorises (2x)."""
    for i in range(nb):
        e[i], x[i], y[i], z[i] = decay_momentum(r0[i], r1[i], q0[i], q1[i], q2[i], q3[i], s[i],
                                                m1sq[i], m2sq[i])


# -- invariant samplers (mcint.phasespace.invariants) --------------------------------------
@inline
def uniform(r, lo, hi):  # pragma: no cover - compiled
    width = hi - lo
    return lo + width * r, math.log(width)


@inline
def breit_wigner(r, lo, hi, mass, width):  # pragma: no cover - compiled
    m2, mg = mass * mass, mass * width
    ylo = math.atan((lo - m2) / mg)
    yhi = math.atan((hi - m2) / mg)
    s = m2 + mg * math.tan(ylo + (yhi - ylo) * r)
    d = s - m2
    return s, math.log(yhi - ylo) + math.log(d * d + mg * mg) - math.log(mg)


@inline
def power_law(r, lo, hi, nu):  # pragma: no cover - compiled
    a = 1.0 - nu
    pos = lo > 0
    lo1 = lo if pos else 0.5 * hi
    big_l = math.log(hi / lo1)
    if a == 0.0:
        k, t = big_l, r * big_l
    else:
        k = math.expm1(a * big_l) / a
        t = math.log1p(r * (a * k)) / a
    if a > 0.0 and not pos:  # lower limit 0: s = hi r^(1/a)
        t0 = math.log(r) / a
        return hi * math.exp(t0), math.log(hi) - math.log(a) + nu * t0
    s = lo1 * math.exp(t)
    return s, math.log(s) + math.log(k) - a * t


@inline
def sample_invariant(kind, p0, p1, r, lo, hi):  # pragma: no cover - compiled
    """``(s, log ds/dr)`` of the sampler ``kind`` with parameters ``p0, p1``."""
    if kind == BREIT_WIGNER:
        return breit_wigner(r, lo, hi, p0, p1)
    if kind == POWER_LAW:
        return power_law(r, lo, hi, p0)
    return uniform(r, lo, hi)


# -- the 2 -> 2 t-channel block (mcint.phasespace.tchannel.t_channel) ---------------------
#: log(2 pi) - log(32 pi^2): the phi range over the t-channel measure's constant
_LOG_TCHAN = math.log(2 * math.pi) - math.log(32 * math.pi ** 2)


@inline
def t_channel_frame(a0, a1, a2, a3, q0, q1, q2, q3, m1sq, m2sq, prop_m2, pt_min
                    ):  # pragma: no cover - compiled
    """The c.m. frame of the total momentum ``q`` (``p_a + p_b``, or the 2->3 block's
    ``p_a + p_b - p_3``) and the limits of ``x = M^2 - t``, for one event, narrowed to
    ``|cos(theta)| <= sqrt(1 - pt_min^2 / k1^2)`` when ``pt_min > 0`` (as the reference's
    ``tchannel.t_channel_frame``; an empty range where ``k1 <= pt_min``):
    ``(rs, b0, b1, b2, b3, ka, k1, e1, base, span, x_lo, x_hi)`` (``b``: ``p_a`` in the c.m.
    frame, ``ka = |b|``, ``k1 = |p_1|`` there)."""
    s = q0 * q0 - q1 * q1 - q2 * q2 - q3 * q3
    rs = math.sqrt(s)
    # p_a in the c.m. frame: boost by (q0, -q_vec), whose mass is rs
    b0, b1, b2, b3 = boost(a0, a1, a2, a3, q0, -q1, -q2, -q3, rs)
    ka = math.sqrt((b1 * b1 + b2 * b2) + b3 * b3)
    k1 = two_body_momentum(s, m1sq, m2sq)
    e1 = (s + m1sq - m2sq) / (2.0 * rs)
    ma2 = a0 * a0 - a1 * a1 - a2 * a2 - a3 * a3
    base = ma2 + m1sq - 2.0 * b0 * e1
    span = 2.0 * ka * k1
    t_top = ma2 + m1sq - 2.0 * energy_product_minus(ma2, b0, ka, m1sq, e1, k1)
    reach = span
    if pt_min > 0.0:
        # t at cos = +c: t_max - span (1 - c), 1 - c = ratio^2 / (1 + c)
        empty = k1 <= pt_min
        ratio = pt_min / (k1 if k1 > 0.0 else 1.0)
        c = 0.0 if empty else math.sqrt(1.0 - ratio * ratio)
        t_top = base if empty else t_top - span * (ratio * ratio) / (1.0 + c)
        reach = span * c
    x_lo = prop_m2 - t_top
    x_lo = 0.0 if x_lo < 0.0 else x_lo
    x_hi = prop_m2 - (t_top - 2.0 * reach)
    return rs, b0, b1, b2, b3, ka, k1, e1, base, span, x_lo, x_hi


@inline
def energy_product_minus(ma2, ea, ka, m1sq, e1, k1):  # pragma: no cover - compiled
    """``ea e1 - ka k1`` without the cancellation of a light, fast emission (the reference's
    ``tchannel._energy_product_minus``)."""
    den = ea * e1 + ka * k1
    if ea > 0.0 and den > 0.0:
        return (ma2 * e1 * e1 + ka * ka * m1sq) / den
    return ea * e1 - ka * k1


@inline
def t_channel_momentum(x, sp, cp, q0, q1, q2, q3, rs, b1, b2, b3, k1, e1, base, span, prop_m2
                       ):  # pragma: no cover - compiled
    """``p_1`` for ``x = M^2 - t`` and the azimuth's ``(sin, cos)``, in the frame of
    :func:`t_channel_frame`. Branch-free."""
    # span = 0 only at threshold (|p1| = 0), where the angle is irrelevant
    cos_t = (prop_m2 - x - base) / (span if span > 0 else 1.0)
    cos_t = -1.0 if cos_t < -1.0 else (1.0 if cos_t > 1.0 else cos_t)
    sin2 = 1.0 - cos_t * cos_t
    ks = k1 * math.sqrt(0.0 if sin2 < 0.0 else sin2)
    v0, v1, v2 = rotate_from_z(ks * cp, ks * sp, k1 * cos_t, b1, b2, b3)
    return boost(e1, v0, v1, v2, q0, q1, q2, q3, rs)


@inline
def t_channel(r0, r1, a0, a1, a2, a3, pb0, pb1, pb2, pb3, m1sq, m2sq, kind, c0, c1, prop_m2,
              pt_min):  # pragma: no cover - compiled
    """One event of :func:`~mcint.phasespace.tchannel.t_channel`: ``(p1 components, log_weight)``
    for ``p_a = a``, ``p_b = pb``; ``p2 = p_a + p_b - p1`` is the caller's. Used inside
    t-channel lines (:mod:`.ps_diagram`); a lone block runs :func:`t_channel_block`.
    ``pt_min > 0`` narrows ``|cos(theta)|`` to ``sqrt(1 - pt_min^2 / k1^2)`` (zero weight where
    ``k1 <= pt_min``), as the reference does."""
    q0, q1, q2, q3 = a0 + pb0, a1 + pb1, a2 + pb2, a3 + pb3
    rs, b0, b1, b2, b3, ka, k1, e1, base, span, x_lo, x_hi = t_channel_frame(
        a0, a1, a2, a3, q0, q1, q2, q3, m1sq, m2sq, prop_m2, pt_min)
    empty = pt_min > 0.0 and k1 <= pt_min
    if kind == UNIFORM:  # the common flat |t|: one log for the whole weight
        width = x_hi - x_lo
        x, ld_t = x_lo + width * r0, 0.0
        log_w = _LOG_TCHAN + math.log(width / (ka * rs))
    else:
        x, ld_t = sample_invariant(kind, c0, c1, r0, x_lo, x_hi)
        log_w = ld_t + _LOG_TCHAN - math.log(ka * rs)
    # libm's sin/cos as the reference: along a t-channel line the next block's limits depend
    # on this azimuth with cancellations, and the ulp-level differences of sincos_pi grew to
    # 1e-9 in the weight at near-degenerate points; with libm the momenta agree bit for bit
    ph = math.pi * (2.0 * r1 - 1.0)
    sp, cp = math.sin(ph), math.cos(ph)
    e, x1, y1, z1 = t_channel_momentum(x, sp, cp, q0, q1, q2, q3, rs, b1, b2, b3, k1, e1,
                                       base, span, prop_m2)
    return e, x1, y1, z1, (-math.inf if empty else log_w)


@jit
def t_channel_block(nb, r0, r1, a0, a1, a2, a3, pb0, pb1, pb2, pb3, m1sq, m2sq, kind, c0, c1,
                    prop_m2, lo, hi, jac, xs, e, x, y, z, lw):  # pragma: no cover - compiled
    """:func:`t_channel` over a block of ``nb`` events held as columns (inputs ``r0 .. m2sq``,
    scratch ``lo .. xs``, outputs ``e, x, y, z, lw``; one array each, allocated apart).

    A lone block feeds no later limits, so the azimuth takes :func:`sincos_pi` (the momenta
    agree with the reference to ~1e-16 relative) and the limit and momentum loops have no
    call: LLVM vectorises them. The sampler runs in a loop of its own (libm for the
    non-uniform ones), and the weight's one log per event in another.
    """
    for i in range(nb):
        fr = t_channel_frame(a0[i], a1[i], a2[i], a3[i], a0[i] + pb0[i], a1[i] + pb1[i],
                             a2[i] + pb2[i], a3[i] + pb3[i], m1sq[i], m2sq[i], prop_m2, 0.0)
        lo[i], hi[i], jac[i] = fr[10], fr[11], fr[5] * fr[0]  # ka * rs
    if kind == UNIFORM:
        for i in range(nb):
            width = hi[i] - lo[i]
            xs[i] = lo[i] + width * r0[i]
            jac[i] = width / jac[i]
    else:
        for i in range(nb):
            xs[i], ld = sample_invariant(kind, c0, c1, r0[i], lo[i], hi[i])
            jac[i] = ld - math.log(jac[i])
    for i in range(nb):
        q0, q1, q2, q3 = a0[i] + pb0[i], a1[i] + pb1[i], a2[i] + pb2[i], a3[i] + pb3[i]
        rs, b0, b1, b2, b3, ka, k1, e1, base, span, x_lo, x_hi = t_channel_frame(
            a0[i], a1[i], a2[i], a3[i], q0, q1, q2, q3, m1sq[i], m2sq[i], prop_m2, 0.0)
        sp, cp = sincos_pi(2.0 * r1[i] - 1.0)
        e[i], x[i], y[i], z[i] = t_channel_momentum(xs[i], sp, cp, q0, q1, q2, q3, rs, b1, b2,
                                                    b3, k1, e1, base, span, prop_m2)
    if kind == UNIFORM:
        for i in range(nb):
            lw[i] = _LOG_TCHAN + math.log(jac[i])
    else:
        for i in range(nb):
            lw[i] = _LOG_TCHAN + jac[i]


# -- RAMBO's intermediate masses (mcint.phasespace.rambo.solve_u) ---------------------------
# The root search is a chain of ~12 dependent polynomial evaluations: latency-bound for one
# event (~200 ns), so it runs on a block of events at a time, one loop per step, which LLVM
# vectorises (8x faster, bit-identical).
_ONE_MINUS = 1.0 - 2.0 ** -53  # the reference's clip, 1 - eps/2


@jit
def block_scratch(size):  # pragma: no cover - compiled
    """Scratch for :func:`solve_u_block`: six float64 rows and one bool row, allocated apart."""
    return (np.empty(size), np.empty(size), np.empty(size), np.empty(size), np.empty(size),
            np.empty(size), np.empty(size, np.bool_))


@jit
def _poly_block(k, f, g, low, x, scale, out):  # pragma: no cover - compiled
    # out = F(x * scale) where low, G(x * scale) elsewhere; zero coefficients of both skipped,
    # as the reference's Horner does
    fk, gk = f[k + 1], g[k + 1]
    for i in range(out.shape[0]):
        out[i] = fk if low[i] else gk
    for j in range(k, -1, -1):
        fj, gj = f[j], g[j]
        if fj == 0.0 and gj == 0.0:
            for i in range(out.shape[0]):
                out[i] = out[i] * (x[i] * scale)
        else:
            for i in range(out.shape[0]):
                out[i] = out[i] * (x[i] * scale) + (fj if low[i] else gj)


@jit
def solve_u_block(rv, k, coef, split, r_split, n_bisect, u, t, hi, lo, acc, p1, p2, low
                  ):  # pragma: no cover - compiled
    """:func:`~mcint.phasespace.rambo.solve_u` for a block ``rv``, into ``u``: the same bracket
    (exponent search, bisections) and the same 3 Halley steps, step for step.

    ``coef[0]``/``coef[1]``: coefficients of ``F(u)`` and ``G(v)`` (lowest power first);
    ``t .. p2``, ``low``: scratch of the block's length, separate allocations (rows of one
    array would keep LLVM from proving them disjoint, and from vectorising).
    """
    f, g = coef[0], coef[1]
    nb = rv.shape[0]
    top_hi = split + (1.0 - 2.0 * split)
    for i in range(nb):
        lw = rv[i] <= r_split
        low[i] = lw
        t[i] = rv[i] if lw else 1.0 - rv[i]
        hi[i] = split if lw else top_hi
    for sc in _SEARCH:
        _poly_block(k, f, g, low, hi, sc, acc)
        for i in range(nb):
            y = hi[i] * sc
            hi[i] = y if acc[i] >= t[i] else hi[i]
    for i in range(nb):
        lo[i] = 0.5 * hi[i]
    for _ in range(n_bisect):
        for i in range(nb):
            u[i] = 0.5 * (lo[i] + hi[i])
        _poly_block(k, f, g, low, u, 1.0, acc)
        for i in range(nb):
            below = acc[i] < t[i]
            lo[i] = u[i] if below else lo[i]
            hi[i] = hi[i] if below else u[i]
    fk, gk = f[k + 1], g[k + 1]
    for _ in range(3):  # Halley on y = hi: y - f f' / (f'^2 - f f''/2)
        for i in range(nb):
            acc[i] = fk if low[i] else gk
            p1[i] = 0.0
            p2[i] = 0.0
        for j in range(k, -1, -1):
            fj, gj = f[j], g[j]
            skip = fj == 0.0 and gj == 0.0
            for i in range(nb):
                y = hi[i]
                p2[i] = p2[i] * y + p1[i]
                p1[i] = p1[i] * y + acc[i]
                acc[i] = acc[i] * y if skip else acc[i] * y + (fj if low[i] else gj)
        for i in range(nb):
            fy = acc[i] - t[i]
            den = p1[i] * p1[i] - fy * p2[i]
            y = hi[i]
            hi[i] = y - fy * p1[i] / den if den > 0 else y
    for i in range(nb):
        v = hi[i] if low[i] else 1.0 - hi[i]
        v = 0.0 if v < 0.0 else v
        v = _ONE_MINUS if v > _ONE_MINUS else v
        u[i] = v if rv[i] == rv[i] else rv[i]  # NaN in, NaN out


# -- what the kernels accept ---------------------------------------------------------------
def is_f64(a: Any, *shape: int | None) -> bool:
    """``a`` is a plain numpy float64 array of this shape (``None``: any length)."""
    return (type(a) is np.ndarray and a.dtype == np.float64 and a.ndim == len(shape)
            and all(s is None or s == d for s, d in zip(shape, a.shape)))


def column(x: Any, n: int) -> tuple[np.ndarray, int] | None:
    """A scalar or ``(n,)`` float64 argument as ``(values, step)``: index ``values[i * step]``.

    ``None`` for anything else (other dtypes or shapes go to the reference, which broadcasts).
    """
    if isinstance(x, (float, int, np.floating, np.integer)) and not isinstance(x, bool):
        return np.array([float(x)]), 0
    if type(x) is np.ndarray and x.dtype == np.float64:
        if x.ndim == 0:
            return np.array([float(x)]), 0
        if x.shape == (n,):
            return np.ascontiguousarray(x), 1
    return None


def sampler_code(sampler: Any) -> tuple[int, float, float] | None:
    """``(kind, p0, p1)`` of a built-in sampler for :func:`sample_invariant`; ``None`` for any
    other sampler, subclasses included (they may override ``forward``)."""
    from mcint.phasespace.invariants import BreitWigner, PowerLaw, Uniform

    t = type(sampler)
    if t is Uniform:
        return UNIFORM, 0.0, 0.0
    if t is BreitWigner:
        return BREIT_WIGNER, sampler.mass, sampler.width
    if t is PowerLaw:
        return POWER_LAW, sampler.nu, 0.0
    return None
