"""Leading-colour flows for event files: which partons a shower should treat as colour-connected.

A full-colour ``|M|^2`` has no single colour flow; a shower needs one per event. As MadGraph
does, we pick one leading-colour flow per event with probability proportional to its
leading-colour weight ``sum_h |A_sigma(h)|^2``, the helicity-summed square of the
colour-ordered partial amplitude of that ordering (at leading colour the colour matrix is
diagonal with equal entries, so these are the flows' relative shares):

* one quark line, ``m`` gluons: the ``m!`` orderings ``q, g_s1, ..., g_sm, qbar`` (all legs
  outgoing); colour lines join neighbours: ``q = (c1, 0)``, ``g_si = (c_(i+1), c_i)``,
  ``qbar = (0, c_(m+1))``;
* pure gluons: the ``(n-1)!`` cyclic orderings with leg 0 first, each gluon
  ``(c_i, c_(i-1))`` around the cycle;
* two quark lines (:mod:`.fourquark`): the two colour-basis elements ``delta_(i0 j0)
  delta_(i1 j1)`` and ``delta_(i0 j1) delta_(i1 j0)`` (each quark's colour line ends on the
  antiquark it is joined to), weighted by the helicity-summed square of their full
  coefficients (the leading ``1/2`` term plus the ``-1/(2N)`` one of the other pairing).

An incoming parton is an outgoing antiparticle, so its LHE tags are the swapped ``(anticolour,
colour)`` of its all-outgoing ones; colourless legs get ``(0, 0)``. Tags start at 501.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .process import Process

__all__ = ["colour_orderings", "colour_flows", "flow_tags"]

FIRST_TAG = 501


def colour_orderings(proc: Process) -> list[tuple[int, ...]]:
    """The leading-colour orderings: for a quark line its gluons from the quark to the
    antiquark (``proc.orders``, every permutation); for pure gluons the full cyclic orders
    starting at leg 0."""
    if proc.colour_basis in ("line", "4q"):
        return [tuple(o) for o in proc.orders]
    first, *rest = proc.gluons
    return [(first, *perm) for perm in itertools.permutations(rest)]


def flow_tags(proc: Process, order: tuple[int, ...]) -> np.ndarray:
    """LHE ``(colour, anticolour)`` tags ``(legs, 2)`` of one leading-colour ordering."""
    n = len(proc.particles)
    tags = np.zeros((n, 2), dtype=np.int64)  # all-outgoing (colour, anticolour)
    if proc.colour_basis == "4q":
        q = [i for i, k in enumerate(proc.kinds) if k == "q"]
        qb = [i for i, k in enumerate(proc.kinds) if k == "qb"]
        partner = qb if order == (0,) else qb[::-1]
        for j, (a, b) in enumerate(zip(q, partner)):
            tags[a] = (FIRST_TAG + j, 0)
            tags[b] = (0, FIRST_TAG + j)
    elif proc.colour_basis == "line":
        quark = proc.kinds.index("q")
        antiquark = proc.kinds.index("qb")
        tags[quark] = (FIRST_TAG, 0)
        for i, g in enumerate(order):
            tags[g] = (FIRST_TAG + i + 1, FIRST_TAG + i)
        tags[antiquark] = (0, FIRST_TAG + len(order))
    else:
        k = len(order)
        for i, g in enumerate(order):
            tags[g] = (FIRST_TAG + i, FIRST_TAG + (i - 1) % k)
    tags[:proc.n_incoming] = tags[:proc.n_incoming, ::-1].copy()  # crossing: swap for incoming
    return tags


def colour_flows(proc: Process, p: Any, rng: np.random.Generator | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per event a leading-colour flow drawn by its weight: ``(tags (n, legs, 2) int64,
    chosen ordering index (n,))`` for momenta ``p (n, legs, 4)`` (numpy)."""
    p = np.asarray(p, dtype=np.float64)
    orders = colour_orderings(proc)
    if proc.colour_basis == "line" and len(orders) == 1:
        pick = np.zeros(len(p), dtype=np.int64)
    else:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            amps = np.asarray(proc.helicity_amplitudes(p) if proc.colour_basis == "4q"
                              else proc.helicity_amplitudes(p, orders=orders))
        w = (np.abs(amps) ** 2).sum(axis=1)  # (n, orders)
        w = np.where(np.isfinite(w), w, 0.0)
        tot = w.sum(axis=1, keepdims=True)
        # an event whose weights all vanish (cannot happen at a physical point) gets a uniform
        # choice rather than an error
        cdf = np.cumsum(np.where(tot > 0, w, 1.0), axis=1)
        u = (rng or np.random.default_rng(0)).random((len(p), 1)) * cdf[:, -1:]
        pick = np.minimum((cdf <= u).sum(axis=1), len(orders) - 1)
    table = np.stack([flow_tags(proc, o) for o in orders])  # (orders, legs, 2)
    return table[pick], pick
