"""SU(3) colour algebra and the colour bases of the partial amplitudes.

Generators are normalised as ``Tr(T^a T^b) = delta^ab`` (``T = lambda / sqrt(2)``, Dixon's
convention, so the colour-ordered vertices carry ``1/sqrt(2)``), ``ft^abc = Tr([T^a, T^b] T^c)
= i sqrt(2) f^abc``.

Bases (``m`` gluons in the strings):

* ``"ddm"`` -- pure gluon amplitudes in the Del Duca-Dixon-Maltoni basis,
  ``M = g^(n-2) sum_sigma (F^s1 ... F^sm)_{a_first a_last} A(first, sigma, last)`` with
  ``(F^x)_ab = ft^{a x b}`` and ``m = n - 2`` orderings of the middle gluons;
* ``"line"`` -- one quark line, ``M = g^m sum_sigma (T^s1 ... T^sm)_{i jbar} A(q, sigma, qbar)``
  over the ``m!`` orderings of the gluons (``m = 0``: ``delta_ij``).

The colour matrix ``C[s, s'] = sum_colours c_s c_s'^*`` is summed numerically in float64 over
explicit SU(3) matrices (once per basis, cached), then recognised as exact fractions (the check
that float and fraction agree to 1e-9 guards the recognition).
"""

from __future__ import annotations

import functools
import itertools
from fractions import Fraction

import numpy as np

__all__ = ["MAX_STRING", "generators", "structure_constants", "orderings", "colour_matrix",
           "colour_matrix_exact", "colour_factor", "N_COLOURS"]

N_COLOURS = 3


@functools.cache
def generators() -> np.ndarray:
    """``T^a``, shape ``(8, 3, 3)`` complex, ``Tr(T^a T^b) = delta^ab``."""
    lam = np.zeros((8, 3, 3), dtype=complex)
    lam[0][0, 1] = lam[0][1, 0] = 1
    lam[1][0, 1], lam[1][1, 0] = -1j, 1j
    lam[2][0, 0], lam[2][1, 1] = 1, -1
    lam[3][0, 2] = lam[3][2, 0] = 1
    lam[4][0, 2], lam[4][2, 0] = -1j, 1j
    lam[5][1, 2] = lam[5][2, 1] = 1
    lam[6][1, 2], lam[6][2, 1] = -1j, 1j
    lam[7] = np.diag([1, 1, -2]) / np.sqrt(3)
    return lam / np.sqrt(2)


@functools.cache
def structure_constants() -> np.ndarray:
    """Real ``f^abc`` with ``[t^a, t^b] = i f^abc t^c`` (``t = T / sqrt(2)``), shape (8, 8, 8)."""
    t = generators()
    comm = np.einsum("aij,bjk->abik", t, t) - np.einsum("bij,ajk->abik", t, t)
    ft = np.einsum("abij,cji->abc", comm, t)  # Tr([T^a, T^b] T^c) = i sqrt(2) f^abc
    f = (ft / (1j * np.sqrt(2))).real
    return f


def orderings(m: int) -> list[tuple[int, ...]]:
    """The ``m!`` orderings (permutations of ``0..m-1``) labelling the basis elements."""
    return list(itertools.permutations(range(m)))


#: largest number of gluons in a colour string (the dense tensors grow as 8^(m+2))
MAX_STRING = 4


def _chains(kind: str, m: int) -> np.ndarray:
    """Every basis element as a dense tensor over the external colours, flattened: shape
    ``(m!, dim^2 8^m)`` with axes ``(first, x_0, ..., x_{m-1}, last)``."""
    # ddm: (F^x)_ab = ft^{a x b} = i sqrt(2) f^{axb}; the i sqrt(2) factors are common to every
    # element (m of them), so they are left out here and |i sqrt(2)|^(2m) = 2^m goes in C.
    op = structure_constants() if kind == "ddm" else np.transpose(generators(), (1, 0, 2))
    dim = op.shape[0]
    rows = []
    for order in orderings(m):
        t = np.eye(dim, dtype=op.dtype)  # axes (first, current)
        for _ in order:
            t = np.tensordot(t, op, axes=([-1], [0]))  # appends (x, next)
        # chain axes are (first, y_0, ..., y_{m-1}, last) with y_pos the label of order[pos]
        perm = [0] + [1 + order.index(g) for g in range(m)] + [m + 1]
        rows.append(np.transpose(t, perm).reshape(-1))
    return np.stack(rows)


@functools.cache
def _matrix(kind: str, m: int) -> tuple[np.ndarray, tuple[tuple[Fraction, ...], ...]]:
    if kind not in ("ddm", "line"):
        raise ValueError(f"colour basis is 'ddm' or 'line', got {kind!r}")
    if not 0 <= m <= MAX_STRING:
        raise NotImplementedError(f"colour strings of {m} gluons: at most {MAX_STRING} "
                                  f"are supported (dense colour tensors)")
    chains = _chains(kind, m)
    full = chains @ chains.conj().T
    if kind == "ddm":
        full = full * 2.0 ** m
    if np.abs(full.imag).max() > 1e-9 * max(1.0, np.abs(full.real).max()):
        raise AssertionError("colour matrix is not real")
    c = full.real
    exact = tuple(tuple(Fraction(x).limit_denominator(3 ** (m + 2)) for x in row) for row in c)
    back = np.array([[float(x) for x in row] for row in exact])
    if not np.allclose(back, c, rtol=1e-9, atol=1e-9):
        raise AssertionError("colour matrix is not a matrix of small fractions")
    back.setflags(write=False)
    return back, exact


def colour_matrix(kind: str, m: int) -> np.ndarray:
    """The (read-only, float64) colour matrix of basis ``kind`` with ``m`` gluons in the strings
    (``m = n - 2`` for ``"ddm"``), rows in the order of :func:`orderings`."""
    return _matrix(kind, m)[0]


def colour_matrix_exact(kind: str, m: int) -> tuple[tuple[Fraction, ...], ...]:
    """:func:`colour_matrix` as exact fractions."""
    return _matrix(kind, m)[1]


def colour_factor(kind: str, order: tuple[int, ...], colours: tuple[int, ...]) -> complex:
    """One basis element for explicit colours: ``"ddm"``: ``colours = (a_first, x_0..x_{m-1},
    a_last)`` adjoint indices (0..7); ``"line"``: ``(i, x_0..x_{m-1}, j)`` with ``i, j`` in 0..2.
    ``order`` lists the string's gluons (by position 0..m-1). Used by tests."""
    first, *xs, last = colours
    if kind == "ddm":
        ft = 1j * np.sqrt(2) * structure_constants()
        mat = np.eye(8, dtype=complex)
        for g in order:
            mat = mat @ ft[:, xs[g], :]
    else:
        mat = np.eye(3, dtype=complex)
        for g in order:
            mat = mat @ generators()[xs[g]]
    return complex(mat[first, last])
