"""VEGAS+ adaptive stratified sampling: hypercubes in y-space and their point allocation.

The unit hypercube of ``y`` is cut into ``prod(nstrat)`` hypercubes. Each iteration gives cube
``h`` ``n_h = floor(sigf_h * neval_frac * neval / sum(sigf)) + n_min`` points (capped at
``max_neval_hcube``), where ``sigf_h = sigma_h ** beta`` is the damped standard deviation of the
cube's estimate in the previous adapting iteration (Lepage, arXiv:2009.05112). ``beta = 0``
gives classic VEGAS with equal points per cube.

Host-side bookkeeping (stratification counts) uses plain Python/numpy; per-cube arrays
(``sigf``, allocations) live on the backend, so GPU runs need no per-point transfers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backends import Backend
from ._util import check_int


def choose_nstrat(neval: int, dims: int, neval_frac: float, beta: float,
                  max_nhcube: int = 10**7) -> tuple[int, ...]:
    """Strata per axis for ``neval`` points per iteration (vegas' rule: >= 2 per cube).

    ``ns = floor(((1 - neval_frac) * neval / 2) ** (1 / dims))`` on every axis, plus one more on
    the first axes while that still fits; at most ``max_nhcube`` cubes in all.
    """
    frac = neval_frac if beta > 0 else 0.0
    base = (1.0 - frac) * neval / 2.0
    ns = max(1, int(abs(base) ** (1.0 / dims)))
    if base > 1:
        nplus = int((math.log(base) - dims * math.log(ns)) / math.log(1.0 + 1.0 / ns))
    else:
        nplus = 0
    nplus = min(max(nplus, 0), dims)
    nstrat = [ns + 1] * nplus + [ns] * (dims - nplus)
    if math.prod(nstrat) > max_nhcube:
        # jump to the all-(cap + 1) state the one-by-one loop passes through anyway (one step
        # at a time it would take ~neval^(1/dims) steps: hours for absurd neval)
        cap = max(int(round(max_nhcube ** (1.0 / dims))), 1)
        while cap > 1 and cap**dims > max_nhcube:
            cap -= 1
        while (cap + 1) ** dims <= max_nhcube:
            cap += 1
        nstrat = [min(n, cap + 1) for n in nstrat]
    while math.prod(nstrat) > max_nhcube:
        i = int(np.argmax(nstrat))
        nstrat[i] -= 1
    return tuple(nstrat)


def choose_ninc(neval: int, nstrat: tuple[int, ...], max_ninc: int
                ) -> tuple[int, tuple[int, ...]]:
    """Map increments per axis and the (possibly coarsened) strata, as vegas chooses them.

    ``ninc = min(neval / 10, max_ninc)`` rounded down to a multiple of the largest stratum
    count, so that hypercube walls sit on increment edges; strata finer than ``max_ninc`` are
    coarsened to a multiple of ``ninc``.
    """
    ni = max(min(int(neval / 10), max_ninc), 2)
    ns = list(nstrat)
    for d, n in enumerate(ns):
        if n > ni and n > max_ninc:
            ns[d] = (n // ni) * ni
    top = max(ns)
    if ni >= top:
        ninc = (ni // top) * top
    else:
        ninc = top if top <= max_ninc else ni
    return max(ninc, 2), tuple(ns)


class Stratification:
    """Hypercubes and the adaptive allocation of ``neval`` points among them."""

    def __init__(self, nstrat: tuple[int, ...], neval: int, *, neval_frac: float, beta: float,
                 max_neval_hcube: int, backend: Backend) -> None:
        self.nstrat = tuple(int(n) for n in nstrat)
        if any(n < 1 for n in self.nstrat):
            raise ValueError(f"nstrat must be >= 1 on every axis, got {list(self.nstrat)}")
        self.nhcube = math.prod(self.nstrat)
        self.beta = float(beta)
        self.neval = int(neval)
        self.adaptive = self.beta > 0 and self.nhcube > 1
        self.neval_frac = float(neval_frac) if self.adaptive else 0.0
        need = 2.0 * self.nhcube / (1.0 - self.neval_frac)
        if self.neval < need:
            raise ValueError(
                f"{self.neval} calls per iteration are too few for {self.nhcube} hypercubes "
                f"(nstrat={list(self.nstrat)}, neval_frac={self.neval_frac}): need at least "
                f"{math.ceil(need)}")
        if self.nhcube == 1:
            self.min_neval_hcube = self.neval
        else:
            self.min_neval_hcube = max(int((1.0 - self.neval_frac) * self.neval / self.nhcube),
                                       2)
        self.max_neval_hcube = max(check_int(max_neval_hcube, "max_neval_hcube", 2),
                                   self.min_neval_hcube)
        self.backend = backend
        xp = backend.xp
        self.sigf = xp.ones(self.nhcube, dtype=xp.float64, device=backend.device)
        self.sum_sigf = float(self.nhcube)
        #: volume of one hypercube in y-space
        self.dv_y = 1.0 / self.nhcube

    def allocation(self) -> Any:
        """Points per hypercube for the next iteration (backend int64 array, each >= 2)."""
        xp = self.backend.xp
        if not self.adaptive:
            n = self.neval // self.nhcube if self.nhcube > 1 else self.neval
            return xp.full(self.nhcube, n, dtype=xp.int64, device=self.backend.device)
        scale = self.neval_frac * self.neval / self.sum_sigf
        nh = xp.astype(xp.floor(self.sigf * scale), xp.int64) + self.min_neval_hcube
        return xp.clip(nh, self.min_neval_hcube, self.max_neval_hcube)

    def update(self, sigma2: Any) -> None:
        """Set ``sigf = sigma2 ** (beta / 2)`` from the per-cube variances of an iteration."""
        if not self.adaptive:
            return
        xp = self.backend.xp
        sigf = xp.abs(sigma2) ** (self.beta / 2.0)
        total = float(xp.sum(sigf))
        if total > 0 and math.isfinite(total):
            self.sigf, self.sum_sigf = sigf, total
        else:
            # constant (or zero) integrand: spread points evenly, as vegas does
            self.sigf = xp.ones_like(sigf)
            self.sum_sigf = float(self.nhcube)

    def __repr__(self) -> str:
        return (f"Stratification(nstrat={list(self.nstrat)}, nhcube={self.nhcube}, "
                f"neval={self.neval}, beta={self.beta})")
