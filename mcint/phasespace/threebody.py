"""Three-body decays ``P -> p_1 p_2 p_3`` from 5 random numbers: one invariant, two decays.

The pair invariant ``s_ij = (p_i + p_j)^2`` (``pair = (i, j)``, 0-based; the third particle is
``k``) is drawn by an invariant sampler (default flat) in ``[(m_i + m_j)^2, (sqrt(s) - m_k)^2]``;
then ``P -> (ij) + k`` and ``(ij) -> i + j`` are two-body decays (:func:`~.twobody.decay`).
The weight is the exact phase-space density

    dPhi_3 = ds_ij / (2 pi) * dPhi_2(P -> (ij) k) * dPhi_2((ij) -> i j),

with the ``(2 pi)^(4 - 3*3)`` factors of :mod:`.base`, so integrating 1 over the unit
hypercube gives the three-body volume (massless: ``s / (256 pi^3)``).

Random-number layout: ``r[:, 0]`` the invariant, ``r[:, 1:3]`` the angles of ``(ij)`` in the
rest frame of ``P``, ``r[:, 3:5]`` those of ``i`` in the rest frame of ``(ij)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from array_api_compat import array_namespace

from ..backends import fusable
from .base import FinalStateMapping, check_masses
from .invariants import InvariantSampler, Uniform
from .kinematics import mass2
from .twobody import decay, decay_inverse, decay_log_weight

__all__ = ["ThreeBodyDecay", "three_body_decay", "three_body_decay_inverse"]

_LOG_2PI = math.log(2 * math.pi)


def _order(pair: Sequence[int]) -> tuple[int, int, int]:
    """``(i, j, k)``: the sampled pair and the spectator."""
    i, j = (int(a) for a in pair)
    if i == j or not {i, j} <= {0, 1, 2}:
        raise ValueError(f"pair must be two different indices out of 0, 1, 2; got {tuple(pair)}")
    return i, j, 3 - i - j


@fusable("phasespace-three-body-forward")
def three_body_decay(r: Any, p: Any, masses: Sequence[float], pair: Sequence[int] = (0, 1),
                     sampler: InvariantSampler | None = None, s: Any = None
                     ) -> tuple[Any, Any]:
    """Decay ``p (n, 4)`` into three particles of ``masses``: ``(momenta (n, 3, 4), log_weight)``.

    ``r (n, 5)`` in the unit hypercube; ``s`` is ``p^2`` when the caller knows it exactly.
    Momentum is conserved exactly (the last daughter of each decay is a difference). The
    numba backend fuses it for the built-in samplers (``kernels/ps_threebody.py``).
    """
    xp = array_namespace(r, p)
    i, j, k = _order(pair)
    m = [float(a) for a in masses]
    sampler = sampler or Uniform()
    s = mass2(p) if s is None else s + xp.zeros_like(p[:, 0])
    z = xp.zeros_like(s)
    hi = (xp.sqrt(s) - m[k]) ** 2
    s_ij, ld = sampler.forward(r[:, 0], (m[i] + m[j]) ** 2 + z, hi)
    p_ij, p_k, lw1 = decay(r[:, 1:3], p, s_ij, m[k] ** 2 + z, s)
    p_i, p_j, lw2 = decay(r[:, 3:5], p_ij, m[i] ** 2 + z, m[j] ** 2 + z, s_ij)
    out: list[Any] = [None, None, None]
    out[i], out[j], out[k] = p_i, p_j, p_k
    return xp.stack(out, axis=1), ld - _LOG_2PI + lw1 + lw2


def three_body_decay_inverse(q: Any, p: Any, masses: Sequence[float],
                             pair: Sequence[int] = (0, 1), sampler: InvariantSampler | None = None
                             ) -> tuple[Any, Any]:
    """``(r (n, 5), log_weight)`` that :func:`three_body_decay` maps to ``q (n, 3, 4)``.

    ``log_weight`` is the forward one (not its negative), evaluated with the nominal masses.
    """
    xp = array_namespace(q, p)
    i, j, k = _order(pair)
    m = [float(a) for a in masses]
    sampler = sampler or Uniform()
    s = mass2(p)
    z = xp.zeros_like(s)
    p_ij = q[:, i, :] + q[:, j, :]
    s_ij = mass2(p_ij)
    r0, ld = sampler.inverse(s_ij, (m[i] + m[j]) ** 2 + z, (xp.sqrt(s) - m[k]) ** 2)
    a1, _ = decay_inverse(p_ij, p)
    a2, _ = decay_inverse(q[:, i, :], p_ij)
    # the weight from the nominal masses: recomputing m_k^2 = (p - p_ij)^2 would lose digits
    log_w = (-ld - _LOG_2PI + decay_log_weight(s, s_ij, m[k] ** 2 + z)
             + decay_log_weight(s_ij, m[i] ** 2 + z, m[j] ** 2 + z))
    return xp.concat([r0[:, None], a1, a2], axis=1), log_w


class ThreeBodyDecay(FinalStateMapping):
    """Three-body final state (``n_random = 5``): ``P = pa + pb`` decayed by :func:`three_body_decay`.

    ``pair`` picks the invariant that ``sampler`` draws (e.g. a :class:`~.invariants.BreitWigner`
    for a resonance in ``(i, j)``, or a :class:`~.cutranges.Narrowed` one for a mass cut).
    """

    n_random = 5

    def __init__(self, masses: Sequence[float], pair: Sequence[int] = (0, 1),
                 sampler: InvariantSampler | None = None) -> None:
        self.masses = check_masses(masses)
        if len(self.masses) != 3:
            raise ValueError(f"ThreeBodyDecay needs 3 masses, got {len(self.masses)}")
        self.pair = _order(pair)[:2]
        self.sampler = sampler or Uniform()
        i, j, _ = _order(pair)
        if self.sampler.needs_positive_lower and self.masses[i] + self.masses[j] <= 0:
            raise ValueError(f"{self.sampler!r} needs a positive lower limit but particles "
                             f"{i}, {j} are massless; use nu < 1 or narrow the range to a cut")

    def generate(self, r: Any, pa: Any, pb: Any) -> tuple[Any, Any]:
        return three_body_decay(r, pa + pb, self.masses, self.pair, self.sampler)

    def invert(self, p: Any, pa: Any, pb: Any) -> tuple[Any, Any]:
        return three_body_decay_inverse(p, pa + pb, self.masses, self.pair, self.sampler)

    def __repr__(self) -> str:
        return (f"ThreeBodyDecay(masses={list(self.masses)}, pair={self.pair}, "
                f"sampler={self.sampler!r})")
