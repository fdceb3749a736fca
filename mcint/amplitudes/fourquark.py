"""Two massless quark lines exchanging one gluon: ``q qbar -> Q Qbar``, ``q Q -> q Q``,
``q q -> q q`` and their crossings (no further gluons, no W).

All legs outgoing: quarks ``q0, q1`` (colour indices ``i0, i1``), antiquarks ``qb0, qb1``
(``j0, j1``). A *pairing* joins each quark to a same-flavour antiquark; for identical flavours
there are two, with a relative Fermi sign ``-1``. The gluon exchanged along a pairing ``P``
gives, by the Fierz identity ``sum_a t^a_ij t^a_kl = (delta_il delta_kj - delta_ij delta_kl /
N) / 2``, the colour factor ``(e_swap(P) - e_P / N) / 2`` in the basis
``e_0 = delta_(i0 j0) delta_(i1 j1)``, ``e_1 = delta_(i0 j1) delta_(i1 j0)``, whose colour
matrix is ``[[N^2, N], [N, N^2]]``; the kinematic part is ``J_0 . J_1 / s_line`` with
``J = ubar(q) gamma^mu v(qbar)`` of each line of the pairing.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from .spinors import mdot, outgoing_antiquark, outgoing_quark, vector_current

__all__ = ["pairings", "configurations", "amplitudes", "COLOUR_MATRIX", "COLOUR_MATRIX_EXACT"]

N = 3
COLOUR_MATRIX = np.array([[N * N, N], [N, N * N]], dtype=np.float64)
COLOUR_MATRIX.setflags(write=False)
COLOUR_MATRIX_EXACT = tuple(tuple(Fraction(int(x)) for x in row) for row in COLOUR_MATRIX)

Pairing = tuple[int, tuple[tuple[int, int], tuple[int, int]], int]


def pairings(flavours: Sequence[int], quarks: Sequence[int], antiquarks: Sequence[int]
             ) -> list[Pairing]:
    """``(sign, ((q0, qb), (q1, qb')), basis index of the pairing)`` for every way of joining
    the quarks to same-flavour antiquarks (all-outgoing flavours)."""
    out = []
    q0, q1 = quarks
    for perm, sign in (((0, 1), 1), ((1, 0), -1)):
        a, b = antiquarks[perm[0]], antiquarks[perm[1]]
        if flavours[a] == -flavours[q0] and flavours[b] == -flavours[q1]:
            out.append((sign, ((q0, a), (q1, b)), 0 if perm == (0, 1) else 1))
    return out


def configurations(n_legs: int, lines: Sequence[Pairing]) -> tuple[list[tuple[int, ...]], int]:
    """Helicities (all outgoing) with opposite quark and antiquark helicity on both lines of
    some pairing; parity: only ``h_0 = +1``, counted twice."""
    out = []
    for h in itertools.product((1, -1), repeat=n_legs):
        if h[0] != 1:
            continue
        if any(all(h[q] == -h[qb] for q, qb in pair) for _, pair, _ in lines):
            out.append(h)
    return out, 2


def amplitudes(xp: Any, mom: Any, spinors: list, lines: Sequence[Pairing],
               helicities: Sequence[Sequence[int]]) -> Any:
    """Basis amplitudes ``(n, H, 2)`` complex (couplings stripped; ``mom`` all-outgoing
    ``(n, legs, 4)``)."""
    cols = []
    for h in helicities:
        basis: list[Any] = [0.0, 0.0]
        for sign, pair, own in lines:
            currents = [vector_current(outgoing_quark(spinors[q], h[q]),
                                       outgoing_antiquark(spinors[qb], h[qb]))
                        for q, qb in pair]
            q, qb = pair[0]
            p = mom[:, q, :] + mom[:, qb, :]
            s = p[:, 0] ** 2 - p[:, 1] ** 2 - p[:, 2] ** 2 - p[:, 3] ** 2
            k = sign * mdot(currents[0], currents[1]) / s
            # (e_other - e_own / N) / 2
            basis[1 - own] = basis[1 - own] + 0.5 * k
            basis[own] = basis[own] - (0.5 / N) * k
        cols.append(xp.stack([b + xp.zeros_like(k) for b in basis], axis=-1))  # (n, 2)
    return xp.stack(cols, axis=1)
