"""RAMBO on diet (S. Plätzer, arXiv:1308.2922): n-body phase space from ``3n - 4`` numbers.

The n-body system is built as a chain of two-body decays ``Q_{i-1} -> p_{i-1} Q_i`` whose
intermediate masses are drawn so that, for massless particles, the weight is the same for every
event: with ``u_i = M_i^2 / M_{i-1}^2`` the CDF is ``r = (k+1) u^k - k u^(k+1)``, ``k = n - i``
(solved by a bracketed Halley iteration in ``+ - * /`` only, see :func:`solve_u`; a zero-valued
Newton correction gives autograd the right ``du/dr``).
For massive particles the massless construction runs on ``K_i = M_i - sum_{j>=i} m_j``
(Plätzer's prescription) and the weight is the exact Jacobian of that map (no longer flat).

Random-number layout: ``r[:, :n-2]`` the intermediate masses, then two angles per decay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from array_api_compat import array_namespace

from ..backends import fusable
from .base import FinalStateMapping, check_masses
from .kinematics import mass2
from .twobody import decay, decay_inverse, decay_log_weight

__all__ = ["RamboOnDiet", "massless_volume", "rambo_forward"]


def massless_volume(n: int, s: float) -> float:
    """``(2pi)^(4-3n) (pi/2)^(n-1) s^(n-2) / ((n-1)! (n-2)!)``: the massless n-body volume."""
    return ((2 * math.pi) ** (4 - 3 * n) * (math.pi / 2) ** (n - 1) * s ** (n - 2)
            / (math.factorial(n - 1) * math.factorial(n - 2)))


def _cdf(u: Any, k: int) -> Any:
    return u ** k * ((k + 1) - k * u)


def _log_pdf(u: Any, k: int) -> Any:
    xp = array_namespace(u)
    return math.log(k * (k + 1)) + (k - 1) * xp.log(u) + xp.log1p(-u)


def _poly_coefficients(k: int) -> tuple[list[float], list[float]]:
    """Coefficients (lowest power first) of ``F(u)`` and of ``G(v) = 1 - F(1 - v)``."""
    f = [0.0] * (k + 2)
    f[k] += k + 1.0
    f[k + 1] -= float(k)
    g = [0.0] * (k + 2)
    for j in range(2, k + 2):
        g[j] = float((-1) ** j * (k * math.comb(k, j - 1) - math.comb(k, j)))
    return f, g


def _split_point(k: int) -> float:
    """``u`` where the solver switches from ``u`` to ``v = 1 - u``: F's inflection point."""
    return (k - 1) / k if k > 1 else 0.5


def _n_bisect(k: int) -> int:
    """Linear bisections after the exponent search: start within ~1/(2k) for 3 Halley steps."""
    return max(3, math.ceil(math.log2(k + 1)) + 1)


def solve_u(r: Any, k: int) -> Any:
    """Solve ``r = (k+1) u^k - k u^(k+1)`` for ``u in [0, 1]``, vectorised.

    Safeguard-free Halley iteration on a convex branch: below F's inflection point ``u* =
    (k-1)/k`` solve ``F(u) = r``; above it solve ``G(v) = 1 - r`` for ``v = 1 - u`` with ``G``
    expanded in powers of ``v`` (no cancellation at the double root ``u = 1``, where Newton on
    ``F`` is only linear). Both are increasing and convex on their branch, so iterates from the
    right of the root approach it monotonically. Start: a binary search on the power of two of
    the root (6 steps, down to ``2^-64``), then a few linear bisections, then 3 Halley steps
    (relative error ~1e-16, checked against 40-digit roots in the tests for k = 1..12). Only
    ``+ - * /`` and comparisons, so every CPU backend gives bit-identical ``u`` (libm-style
    ``pow``/``sqrt`` differ in the last bit between numpy and torch). A zero-valued Newton
    correction gives autograd the right ``du/dr = 1/F'(u)`` (torch); the iteration itself runs
    on ``r`` cut from the graph.
    """
    xp = array_namespace(r)
    rd = _stop_gradient(r)
    f, g = _poly_coefficients(k)
    us = _split_point(k)
    r_split = us ** k * ((k + 1) - k * us)
    low = rd <= r_split
    high = xp.astype(xp.logical_not(low), rd.dtype)
    # per-element coefficients: exact, since they are small integers times 0 or 1
    c = [fj if fj == gj else fj + (gj - fj) * high for fj, gj in zip(f, g)]
    t = xp.where(low, rd, 1.0 - rd)

    def horner(y: Any, n_deriv: int) -> list[Any]:
        # value and first n_deriv derivatives (the 2nd one halved), skipping zero coefficients
        out = [c[k + 1] + 0.0 * y] + [0.0 * y] * n_deriv
        for j in range(k, -1, -1):
            for m in range(n_deriv, 0, -1):
                out[m] = out[m] * y + out[m - 1]
            out[0] = out[0] * y if isinstance(c[j], float) and c[j] == 0.0 else out[0] * y + c[j]
        return out

    top = us + (1.0 - 2.0 * us) * high  # u* on the low branch, 1 - u* (exact) on the high one
    hi = top
    for step in (32, 16, 8, 4, 2, 1):
        y = hi * 2.0 ** -step
        hi = xp.where(horner(y, 0)[0] >= t, y, hi)
    lo = 0.5 * hi
    for _ in range(_n_bisect(k)):
        mid = 0.5 * (lo + hi)
        below = horner(mid, 0)[0] < t
        lo = xp.where(below, mid, lo)
        hi = xp.where(below, hi, mid)
    y = hi
    for _ in range(3):
        p0, p1, p2h = horner(y, 2)
        fy = p0 - t
        den = p1 * p1 - fy * p2h  # Halley: y - f f' / (f'^2 - f f''/2)
        ok = den > 0
        y = xp.where(ok, y - fy * p1 / xp.where(ok, den, xp.ones_like(den)), y)
    u0 = xp.where(low, y, 1.0 - y)
    u0 = xp.clip(u0, 0.0, 1.0 - xp.finfo(u0.dtype).eps / 2)
    # Zero-valued correction whose autograd derivative is du/dr = 1/F'(u) (torch).
    fp = k * (k + 1) * u0 ** (k - 1) * (1.0 - u0)
    ok = fp > 1e-12
    step = (r - _cdf(u0, k)) / xp.where(ok, fp, xp.ones_like(fp))
    step = xp.where(ok, step, xp.zeros_like(step))
    return u0 + (step - _stop_gradient(step))


def _stop_gradient(a: Any) -> Any:
    """``a`` cut from the autograd graph (torch tensors); other arrays carry no graph."""
    detach = getattr(a, "detach", None)
    return detach() if callable(detach) and type(a).__module__.startswith("torch") else a


class RamboOnDiet(FinalStateMapping):
    """n-body phase space (n >= 2) with masses ``masses`` by RAMBO on diet.

    ``generate(r, pa, pb)`` decays ``P = pa + pb`` (any frame); massless weights are all equal
    to :func:`massless_volume` (``n_random = 3n - 4``).
    """

    def __init__(self, masses: Sequence[float] | int) -> None:
        if isinstance(masses, int):
            masses = [0.0] * masses
        self.masses = check_masses(masses)
        n = len(self.masses)
        if n < 2:
            raise ValueError(f"RAMBO needs at least 2 final-state particles, got {n}")
        self.n_random = 3 * n - 4
        self.massless = all(m == 0 for m in self.masses)
        # tail sums sum_{j >= i} m_j (0-based i)
        self._tail = _tail_sums(self.masses)

    def generate(self, r: Any, pa: Any, pb: Any) -> tuple[Any, Any]:
        return rambo_forward(r, pa, pb, self.masses)

    def invert(self, p: Any, pa: Any, pb: Any) -> tuple[Any, Any]:
        xp = array_namespace(p, pa)
        n, m = self.n_final, self.masses
        q = pa + pb
        big_m = xp.sqrt(mass2(q))
        k_prev = big_m - self._tail[0]
        log_w = xp.zeros_like(big_m)
        r_u, r_ang = [], []
        tails = [p[:, n - 1, :]]
        for j in range(n - 2, 0, -1):
            tails.append(tails[-1] + p[:, j, :])
        tails = tails[::-1]  # tails[i-1] = sum_{j >= i} p_j for i = 1..n-1
        for i in range(1, n):
            q_i = tails[i - 1]
            if i < n - 1:
                kk = n - 1 - i
                m_i = xp.sqrt(mass2(q_i))
                k_i = m_i - self._tail[i]
                u = (k_i / k_prev) ** 2
                r_u.append(_cdf(u, kk))
                log_w = log_w + 2 * xp.log(k_prev) - _log_pdf(u, kk) - math.log(2 * math.pi)
                if not self.massless:
                    log_w = log_w + xp.log(m_i) - xp.log(k_i)
            else:
                k_i = None
                m_i = m[n - 1]
            ang, _ = decay_inverse(p[:, i - 1, :], q)
            log_w = log_w + decay_log_weight(mass2(q), m[i - 1] ** 2, m_i * m_i + 0.0 * big_m)
            r_ang.append(ang)
            q, k_prev = q_i, k_i
        cols = [c[:, None] for c in r_u] + r_ang
        return xp.concat(cols, axis=1), log_w

    def __repr__(self) -> str:
        return f"RamboOnDiet(masses={list(self.masses)})"


def _tail_sums(masses: Sequence[float]) -> list[float]:
    """``sum_{j >= i} m_j`` for ``i = 0..n`` (0-based)."""
    return [float(sum(masses[i:])) for i in range(len(masses) + 1)]


@fusable("phasespace-rambo-forward")
def rambo_forward(r: Any, pa: Any, pb: Any, masses: tuple[float, ...]) -> tuple[Any, Any]:
    """:meth:`RamboOnDiet.generate`: ``(p (n, len(masses), 4), log_weight)``.

    The numba backend fuses it (``backends/mcint_numba/kernels/ps_rambo.py``); this is the
    reference.
    """
    xp = array_namespace(r, pa)
    n, m = len(masses), masses
    tail = _tail_sums(masses)
    massless = all(mi == 0 for mi in masses)
    q = pa + pb
    big_m = xp.sqrt(mass2(q))
    k_prev = big_m - tail[0]
    log_w = xp.zeros_like(big_m)
    m_prev = big_m
    out = []
    for i in range(1, n):  # decay Q_{i-1} -> p_{i-1} + Q_i (0-based particle i-1)
        if i < n - 1:
            kk = n - 1 - i
            u = solve_u(r[:, i - 1], kk)
            k_i = xp.sqrt(u) * k_prev
            m_i = k_i + tail[i]
            log_w = log_w + 2 * xp.log(k_prev) - _log_pdf(u, kk) - math.log(2 * math.pi)
            if not massless:
                log_w = log_w + xp.log(m_i) - xp.log(k_i)
        else:
            k_i = xp.zeros_like(big_m)
            m_i = k_i + m[n - 1]
        ang = r[:, n - 2 + 2 * (i - 1): n + 2 * (i - 1)]
        p_i, q, lw = decay(ang, q, m[i - 1] ** 2, m_i * m_i, m_prev * m_prev)
        log_w = log_w + lw
        out.append(p_i)
        k_prev, m_prev = k_i, m_i
    out.append(q)
    return xp.stack(out, axis=1), log_w
