"""Massless spinor helicity and Dirac algebra in the chiral (Weyl) representation, batched.

Four-vectors and Dirac spinors are **tuples of component arrays** (four arrays of one shape,
e.g. ``(states, events)``): every operation is then a handful of contiguous elementwise products
with no strided slicing, which is what makes the recursion fast on every backend, and the
components broadcast independently (a momentum ``(1, n)`` against currents ``(h, n)``).
Two-component Weyl spinors are pairs.

Conventions (Dixon, hep-ph/9601359, with all particles outgoing):

* ``gamma^mu = [[0, sigma^mu], [sigmabar^mu, 0]]``, ``sigma = (1, s_i)``, ``sigmabar = (1, -s_i)``,
  ``gamma_5 = diag(-1, -1, 1, 1)``: the upper two components are left-handed;
* for a massless momentum ``k`` with ``k+ = E + pz``, ``k- = E - pz``, ``e^{i phi} =
  (px + i py) / pT``: ``xi+(k) = (sqrt(k+), sqrt(k-) e^{i phi})`` (helicity +1/2) and
  ``xi-(k) = (-sqrt(k-) e^{-i phi}, sqrt(k+))``; ``k+`` and ``k-`` are computed as
  ``E + |pz|`` and ``pT^2 / (E + |pz|)`` so momenta along -z (the second beam) are exact, and
  ``e^{i phi} = 1`` on the z axis;
* ``<ij> = xibar-(i) . xi+(j)``, ``[ij] = xibar+(i) . xi-(j)``, ``|<ij>|^2 = 2 k_i.k_j``;
* gluon polarisations ``eps+(k; q) = <q-|gamma^mu|k-> / (sqrt(2) <qk>)``, ``eps-(k; q) =
  -<q+|gamma^mu|k+> / (sqrt(2) [qk])`` (contravariant components), with a light-like
  reference ``q``; ``eps- = (eps+)^*``, ``eps+.eps- ^* = 0``, ``eps.k = eps.q = 0``;
* outgoing quarks ``ubar_+(k) = (xi+^*, 0)``, ``ubar_-(k) = (0, xi-^*)``, outgoing antiquarks
  ``v_+(k) = u_-(k) = (xi-, 0)``, ``v_-(k) = u_+(k) = (0, xi+)``.

A crossed (incoming) particle of physical momentum ``k`` is the outgoing one of momentum
``-k``; with the continuation ``|-k> = i|k>``, ``|-k] = i|k]`` its polarisation vectors equal
those of ``k`` and its spinors differ by a constant phase, which drops out of ``|M|^2``. So every
wavefunction here is built from the physical (positive-energy) momentum and the helicity label is
the all-outgoing one.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace

__all__ = ["complex_of", "components", "stack", "mdot", "weyl_spinors", "angle", "square",
           "polarisation", "outgoing_quark", "outgoing_antiquark", "slash_col", "row_slash",
           "vector_current", "row_col", "left_row", "left_col"]

_SQRT_HALF = 1.0 / math.sqrt(2.0)

Vec = tuple[Any, Any, Any, Any]
Weyl = tuple[Any, Any]


def complex_of(re: Any, im: Any = None) -> Any:
    """``re + i im`` as a complex array (``re`` real, ``im`` real or ``None``)."""
    xp = array_namespace(re)
    dt = xp.complex128 if re.dtype == xp.float64 else xp.complex64
    out = xp.astype(re, dt)
    if im is not None:
        out = out + xp.astype(im, dt) * 1j
    return out


def components(a: Any) -> Vec:
    """An array ``(..., 4)`` as a tuple of its four components."""
    return a[..., 0], a[..., 1], a[..., 2], a[..., 3]


def stack(v: Vec) -> Any:
    """A tuple of components as one array ``(..., 4)``."""
    xp = array_namespace(*v)
    return xp.stack(list(v), axis=-1)


def mdot(a: Vec, b: Vec) -> Any:
    """Minkowski product ``a.b`` (no complex conjugation)."""
    return a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3]


def _sqrt0(x: Any) -> Any:
    """``sqrt(x)`` for ``x >= 0`` with a finite gradient at 0 (the double-``where`` guard)."""
    xp = array_namespace(x)
    pos = x > 0
    return xp.where(pos, xp.sqrt(xp.where(pos, x, xp.ones_like(x))), xp.zeros_like(x))


def weyl_spinors(k: Vec) -> tuple[Weyl, Weyl]:
    """``(xi+, xi-)`` of massless momenta given as components ``(E, px, py, pz)``, E > 0."""
    e, px, py, pz = k
    xp = array_namespace(e)
    pt2 = px * px + py * py
    # E + |pz| is never small; the other light-cone component follows from k^2 = 0 without the
    # cancellation E - |pz| suffers near the beam axis.
    big = e + xp.abs(pz)
    small = pt2 / big
    up = pz >= 0
    sp, sm = _sqrt0(xp.where(up, big, small)), _sqrt0(xp.where(up, small, big))
    has_pt = pt2 > 0
    safe = xp.where(has_pt, _sqrt0(pt2), xp.ones_like(pt2))
    cos = xp.where(has_pt, px / safe, xp.ones_like(px))
    sin = xp.where(has_pt, py / safe, xp.zeros_like(py))
    phase, phase_c = complex_of(cos, sin), complex_of(cos, -sin)
    spc, smc = complex_of(sp), complex_of(sm)
    return (spc, smc * phase), (-smc * phase_c, spc)


def _conj(w: Weyl) -> Weyl:
    xp = array_namespace(w[0])
    return xp.conj(w[0]), xp.conj(w[1])


def angle(xi_i: tuple[Weyl, Weyl], xi_j: tuple[Weyl, Weyl]) -> Any:
    """``<ij>`` from the ``(xi+, xi-)`` pairs of two momenta."""
    a = _conj(xi_i[1])
    return a[0] * xi_j[0][0] + a[1] * xi_j[0][1]


def square(xi_i: tuple[Weyl, Weyl], xi_j: tuple[Weyl, Weyl]) -> Any:
    """``[ij]`` from the ``(xi+, xi-)`` pairs of two momenta."""
    a = _conj(xi_i[0])
    return a[0] * xi_j[1][0] + a[1] * xi_j[1][1]


def _sigma(a: Weyl, b: Weyl, bar: bool) -> Vec:
    """``a sigma^mu b`` (or ``a sigmabar^mu b``) for 2-spinors, contravariant ``mu``."""
    a0, a1 = a
    b0, b1 = b
    c0 = a0 * b0 + a1 * b1
    cx = a0 * b1 + a1 * b0
    cy = (a1 * b0 - a0 * b1) * 1j
    cz = a0 * b0 - a1 * b1
    return (c0, -cx, -cy, -cz) if bar else (c0, cx, cy, cz)


def polarisation(xi_k: tuple[Weyl, Weyl], xi_q: tuple[Weyl, Weyl], h: int) -> Vec:
    """Gluon polarisation ``eps_h(k; q)`` from the spinors of the gluon momentum ``k`` and of
    the light-like reference ``q`` (not parallel to ``k``)."""
    if h > 0:
        num = _sigma(_conj(xi_q[1]), xi_k[1], bar=True)
        f = _SQRT_HALF / angle(xi_q, xi_k)
    else:
        num = _sigma(_conj(xi_q[0]), xi_k[0], bar=False)
        f = -_SQRT_HALF / square(xi_q, xi_k)
    return tuple(c * f for c in num)


def outgoing_quark(xi: tuple[Weyl, Weyl], h: int) -> Vec:
    """Row spinor ``ubar_h(k)`` of an outgoing massless fermion."""
    xp = array_namespace(xi[0][0])
    z = xp.zeros_like(xi[0][0])
    a = _conj(xi[0] if h > 0 else xi[1])
    return (a[0], a[1], z, z) if h > 0 else (z, z, a[0], a[1])


def outgoing_antiquark(xi: tuple[Weyl, Weyl], h: int) -> Vec:
    """Column spinor ``v_h(k)`` of an outgoing massless antifermion."""
    xp = array_namespace(xi[0][0])
    z = xp.zeros_like(xi[0][0])
    return (xi[1][0], xi[1][1], z, z) if h > 0 else (z, z, xi[0][0], xi[0][1])


def _light_cone(a: Vec) -> Vec:
    """``(a0 + a3, a0 - a3, a1 + i a2, a1 - i a2)`` of a complex four-vector."""
    a0, a1, a2, a3 = a
    ia2 = a2 * 1j
    return a0 + a3, a0 - a3, a1 + ia2, a1 - ia2


def slash_col(a: Vec, c: Vec) -> Vec:
    """``a-slash c`` for a column spinor ``c`` (``a`` complex)."""
    ap, am, at, atc = _light_cone(a)
    c0, c1, c2, c3 = c
    return am * c2 - atc * c3, ap * c3 - at * c2, ap * c0 + atc * c1, at * c0 + am * c1


def row_slash(r: Vec, a: Vec) -> Vec:
    """``r a-slash`` for a row spinor ``r`` (``a`` complex)."""
    ap, am, at, atc = _light_cone(a)
    r0, r1, r2, r3 = r
    return r2 * ap + r3 * at, r2 * atc + r3 * am, r0 * am - r1 * at, r1 * ap - r0 * atc


def vector_current(r: Vec, c: Vec) -> Vec:
    """``r gamma^mu c`` (contravariant ``mu``) of a row and a column spinor."""
    u = _sigma((r[0], r[1]), (c[2], c[3]), bar=False)
    d = _sigma((r[2], r[3]), (c[0], c[1]), bar=True)
    return tuple(x + y for x, y in zip(u, d))


def row_col(r: Vec, c: Vec) -> Any:
    """``r c``: a row spinor times a column spinor."""
    return r[0] * c[0] + r[1] * c[1] + r[2] * c[2] + r[3] * c[3]


def left_row(r: Vec) -> Vec:
    """``r P_L`` with ``P_L = (1 - gamma_5) / 2``: keeps the upper entries of a row."""
    xp = array_namespace(r[0])
    z = xp.zeros_like(r[2])
    return r[0], r[1], z, z


def left_col(c: Vec) -> Vec:
    """``P_L c``: keeps the upper (left-handed) entries of a column."""
    return left_row(c)
