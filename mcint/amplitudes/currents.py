"""Berends-Giele vertex kernels: colour-ordered Feynman rules applied to off-shell currents.

Colour-ordered rules (couplings stripped; ``Tr(T^a T^b) = delta^ab``; from the QCD Lagrangian
with ``D = d - i g A``, i.e. quark vertex ``i g gamma^mu t^a``), all momenta outgoing, and the
common factor ``i`` of every vertex-propagator pair already multiplied out:

* gluon current ``J(P) = (1 / P^2) [ (1/sqrt 2) sum V3(J_L, J_R) + (1/2) sum V4(J_1, J_2, J_3) ]``
  over the ordered splits of the current's gluons (Feynman gauge, ``-i g_mn / P^2``);
* ``V3 = (J_L.J_R)(P_L - P_R) + ((P_L + 2 P_R).J_L) J_R - ((2 P_L + P_R).J_R) J_L`` (the full
  vertex: it does not assume the sub-currents are conserved, so the Ward identity test is
  meaningful);
* ``V4 = 2 (J_1.J_3) J_2 - (J_1.J_2) J_3 - (J_2.J_3) J_1``;
* quark row current (outgoing quark absorbing ordered gluons) ``U' = -(1/sqrt 2) U J-slash
  P-slash / P^2`` with ``P`` the momentum along the fermion flow (``i P-slash / P^2``);
* W insertion on a quark line ``U' = -(U W-slash P_L) P-slash / P^2`` (unit coupling: the
  ``g_w / sqrt 2`` of both W vertices go into the overall factor), with
  ``W^mu = ubar(l) gamma^mu P_L v(lbar) / (P_W^2 - M_W^2 + i M_W Gamma_W)``; the
  ``k^mu k^nu / M_W^2`` part of the propagator vanishes against the massless lepton current.

Currents and momenta are tuples of component arrays (see :mod:`.spinors`): currents
``(h, n)`` complex (helicity states, events), momenta ``(1, n)`` complex so they broadcast.
"""

from __future__ import annotations

import math
from typing import Any

from .spinors import (
    Vec,
    complex_of,
    left_col,
    left_row,
    mdot,
    row_col,
    row_slash,
    slash_col,
    vector_current,
)

__all__ = ["v3", "v4", "GLUON_V3", "GLUON_V4", "QUARK_VERTEX", "quark_gluon", "quark_w",
           "propagate_row", "w_current", "amplitude_gluon", "amplitude_w"]

#: coefficients of the colour-ordered vertices (times the ``i`` of their propagators)
GLUON_V3 = 1.0 / math.sqrt(2.0)
GLUON_V4 = 0.5
QUARK_VERTEX = 1.0 / math.sqrt(2.0)


def v3(jl: Vec, jr: Vec, pl: Vec, pr: Vec, a: Any = None, b: Any = None) -> Vec:
    """Three-gluon vertex contracted with two currents (momenta ``pl``, ``pr``).

    ``a = (P_L + 2 P_R).J_L`` and ``b = (2 P_L + P_R).J_R`` may be passed in precomputed (the
    recursion evaluates them on the children's fewer helicity states)."""
    if a is None:
        a = mdot(tuple(x + 2 * y for x, y in zip(pl, pr)), jl)
    if b is None:
        b = mdot(tuple(2 * x + y for x, y in zip(pl, pr)), jr)
    d = mdot(jl, jr)
    return tuple(d * (x - y) + a * r - b * q for x, y, q, r in zip(pl, pr, jl, jr))


def v4(j1: Vec, j2: Vec, j3: Vec, scale: float = 1.0) -> Vec:
    """Four-gluon vertex contracted with three currents in colour order, times ``scale``."""
    d13, d12, d23 = (2 * scale) * mdot(j1, j3), scale * mdot(j1, j2), scale * mdot(j2, j3)
    return tuple(d13 * b - d12 * c - d23 * a for a, b, c in zip(j1, j2, j3))


def quark_gluon(u: Vec, j: Vec) -> Vec:
    """``U J-slash`` times the vertex and propagator phase: ``-(1/sqrt 2) U J-slash``."""
    return tuple(x * (-QUARK_VERTEX) for x in row_slash(u, j))


def quark_w(u: Vec, w: Vec) -> Vec:
    """``-(U W-slash P_L)``: the W insertion on the row current."""
    return tuple(-x for x in left_row(row_slash(u, w)))


def propagate_row(u: Vec, p: Vec, p2: Any) -> Vec:
    """``U P-slash / P^2`` (quark propagator on a row current)."""
    inv = 1 / p2
    return tuple(x * inv for x in row_slash(u, p))


def w_current(lepton_row: Vec, antilepton_col: Vec, pw2: Any, mass: float, width: float) -> Vec:
    """``W^mu`` from the lepton pair and the W momentum squared ``pw2`` (real)."""
    # complex_of first: a Python complex scalar may not mix with a real array (array API)
    inv = 1 / (complex_of(pw2 - mass * mass) + 1j * mass * width)
    return tuple(x * inv for x in vector_current(lepton_row, left_col(antilepton_col)))


def amplitude_gluon(u: Vec, j: Vec, v: Vec) -> Any:
    """Last vertex on a quark line: ``(1/sqrt 2) U J-slash v``."""
    return row_col(u, slash_col(j, v)) * QUARK_VERTEX


def amplitude_w(u: Vec, w: Vec, v: Vec) -> Any:
    """Last vertex on a quark line being the W: ``U W-slash P_L v``."""
    return row_col(u, slash_col(w, left_col(v)))
