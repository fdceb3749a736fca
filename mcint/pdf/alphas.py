"""The running strong coupling alpha_s(Q^2), as a PDF set defines it.

* :class:`AlphaSGrid` -- LHAPDF's ``ipol``: values on Q knots (``AlphaS_Qs`` / ``AlphaS_Vals`` of
  a set's ``.info``), interpolated by cubic Hermite polynomials in ``log Q^2`` with central
  difference slopes, the knots split into subgrids where a Q value repeats (flavour thresholds);
  outside the knots the value is frozen at the edge.
* :class:`AlphaSRunning` -- the renormalisation-group equation solved numerically from
  ``alpha_s(M_Z)`` at 1 to 3 loops in the MS-bar scheme, with the number of active flavours
  changing at the quark masses (continuous matching, as LHAPDF's ``ode`` solver at these orders).

Both are callables ``alpha_s(q2)`` on numpy arrays (or numbers) of ``Q^2`` in GeV^2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["AlphaSGrid", "AlphaSRunning", "beta_coefficients"]

_ZETA3 = 1.2020569031595942


def beta_coefficients(nf: int) -> tuple[float, float, float]:
    """``beta_0..beta_2`` of ``d a / d log Q^2 = -a^2 (beta_0 + beta_1 a + beta_2 a^2)`` with
    ``a = alpha_s / (4 pi)``; here ``beta_0 = 11 - 2 nf / 3`` etc. (MS-bar)."""
    b0 = 11.0 - 2.0 * nf / 3.0
    b1 = 102.0 - 38.0 * nf / 3.0
    b2 = 2857.0 / 2.0 - 5033.0 * nf / 18.0 + 325.0 * nf * nf / 54.0
    return b0, b1, b2


class AlphaSRunning:
    """``alpha_s(Q^2)`` from the RGE at ``loops`` (1-3) loops, starting at ``alpha_s(M_Z)``.

    ``masses``: the charm, bottom and top masses (GeV) where the flavour number changes
    (``nf`` = 3 below ``m_c``, up to ``nf_max``, 5 for most sets). As LHAPDF's ``ode`` solver,
    the equation is integrated once (4th-order Runge-Kutta in ``log Q^2``) onto knots between
    ``q_min`` and ``q_max`` and then interpolated (:class:`AlphaSGrid`, relative accuracy ~1e-9).
    """

    def __init__(self, alpha_s_mz: float = 0.118, mz: float = 91.1876, loops: int = 2,
                 masses: Sequence[float] = (1.51, 4.92, 172.5), nf_max: int = 5,
                 q_min: float = 1.0, q_max: float = 1e5) -> None:
        if not (0.0 < alpha_s_mz < 1.0):
            raise ValueError(f"alpha_s(M_Z) must be in (0, 1), got {alpha_s_mz}")
        if loops not in (1, 2, 3):
            raise ValueError(f"loops must be 1, 2 or 3, got {loops}")
        if not (0 < q_min < mz < q_max):
            raise ValueError(f"need 0 < q_min < M_Z < q_max, got {q_min}, {mz}, {q_max}")
        m = [float(x) for x in masses]
        if len(m) != 3 or any(not (x > 0) for x in m) or m != sorted(m):
            raise ValueError(f"masses must be increasing positive (m_c, m_b, m_t), got {masses}")
        if nf_max not in (3, 4, 5, 6):
            raise ValueError(f"nf_max must be 3..6, got {nf_max}")
        self.alpha_s_mz, self.mz, self.loops, self.nf_max = float(alpha_s_mz), float(mz), loops, \
            int(nf_max)
        # thresholds where nf changes, inside the range: (log Q^2 of the edge, nf above it)
        edges = [(math.log(x * x), 4 + i) for i, x in enumerate(m)
                 if 4 + i <= nf_max and q_min < x < q_max]
        lo, hi, t_mz = math.log(q_min ** 2), math.log(q_max ** 2), math.log(mz * mz)
        bounds = [lo] + [e for e, _ in edges] + [hi]
        nfs = [min(3 + sum(1 for i, x in enumerate(m) if x <= q_min), nf_max)]
        nfs += [nf for _, nf in edges]
        a_mz = self.alpha_s_mz / (4 * math.pi)
        k_mz = sum(1 for e, _ in edges if e < t_mz)
        knots: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # run up and down from M_Z, interval by interval (continuous at the thresholds)
        a = a_mz
        for k in range(k_mz, len(nfs)):
            t0 = t_mz if k == k_mz else bounds[k]
            up = self._run(a, t0, bounds[k + 1], nfs[k])
            knots[k] = up
            a = float(up[1][-1])
        a = a_mz
        for k in range(k_mz, -1, -1):
            down = self._run(a, t_mz if k == k_mz else bounds[k + 1], bounds[k], nfs[k])
            if k == k_mz:
                t_up, a_up = knots[k]
                knots[k] = (np.concatenate([down[0][::-1], t_up[1:]]),
                            np.concatenate([down[1][::-1], a_up[1:]]))
            else:
                knots[k] = (down[0][::-1], down[1][::-1])
            a = float(down[1][-1])
        qs = np.concatenate([np.exp(0.5 * knots[k][0]) for k in range(len(nfs))])
        vals = np.concatenate([4 * math.pi * knots[k][1] for k in range(len(nfs))])
        self.grid = AlphaSGrid(qs, vals)

    def _run(self, a: float, t0: float, t1: float, nf: int) -> tuple[np.ndarray, np.ndarray]:
        """Knots ``(log Q^2, a = alpha_s / 4 pi)`` from ``t0`` to ``t1`` by Runge-Kutta."""
        b = beta_coefficients(nf)[: self.loops]
        steps = max(16, int(math.ceil(abs(t1 - t0) * 100)))
        h = (t1 - t0) / steps

        def f(x: float) -> float:
            return -x * x * sum(bi * x ** i for i, bi in enumerate(b))

        ts, As = [t0], [a]
        sub = 4                          # Runge-Kutta steps between stored knots
        for _ in range(steps):
            for _ in range(sub):
                hh = h / sub
                k1 = f(a)
                k2 = f(a + 0.5 * hh * k1)
                k3 = f(a + 0.5 * hh * k2)
                k4 = f(a + hh * k3)
                a += hh * (k1 + 2 * k2 + 2 * k3 + k4) / 6.0
            ts.append(ts[-1] + h)
            As.append(a)
        ts[-1] = t1
        return np.array(ts), np.array(As)

    def __call__(self, q2: Any) -> Any:
        """``alpha_s`` at ``Q^2`` (GeV^2)."""
        return self.grid(q2)

    def __repr__(self) -> str:
        return f"AlphaSRunning(alpha_s_mz={self.alpha_s_mz}, loops={self.loops})"


class AlphaSGrid:
    """``alpha_s`` interpolated on a grid of ``(Q, alpha_s)`` (LHAPDF's ``ipol`` scheme)."""

    def __init__(self, qs: Sequence[float], values: Sequence[float]) -> None:
        q = np.asarray(qs, dtype=np.float64)
        v = np.asarray(values, dtype=np.float64)
        if q.ndim != 1 or q.shape != v.shape or q.size < 2:
            raise ValueError(f"alpha_s grid: need matching 1-d Q and value lists of length >= 2, "
                             f"got {q.shape} and {v.shape}")
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(v)) and np.all(q > 0)
                and np.all(v > 0)):
            raise ValueError("alpha_s grid: Q knots and values must be positive and finite")
        if np.any(np.diff(q) < 0):
            raise ValueError("alpha_s grid: Q knots must be non-decreasing")
        # a repeated Q is a flavour threshold: split into subgrids there
        cut = np.flatnonzero(np.diff(q) == 0) + 1
        self.subgrids = [(np.log(qq * qq), vv) for qq, vv in zip(np.split(q, cut),
                                                                 np.split(v, cut))]
        for lq, _ in self.subgrids:
            if lq.size < 2:
                raise ValueError("alpha_s grid: every subgrid between thresholds needs >= 2 knots")
        self.q2_min, self.q2_max = float(q[0] ** 2), float(q[-1] ** 2)

    def __call__(self, q2: Any) -> Any:
        """``alpha_s`` at ``Q^2`` (GeV^2), frozen at the grid's edges."""
        arr = np.asarray(q2, dtype=np.float64)
        if np.any(~(arr > 0)):
            raise ValueError("alpha_s needs positive Q^2")
        t = np.log(np.clip(arr, self.q2_min, self.q2_max))
        out = np.empty_like(t)
        lows = [lq[0] for lq, _ in self.subgrids]
        which = np.clip(np.searchsorted(lows, t, side="right") - 1, 0, len(self.subgrids) - 1)
        for k, (lq, vv) in enumerate(self.subgrids):
            m = which == k
            if np.any(m):
                out[m] = _hermite(lq, vv, t[m])
        return float(out) if out.ndim == 0 else out


def _hermite(x: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cubic Hermite interpolation with central-difference slopes (one-sided at the ends)."""
    slope = np.diff(y) / np.diff(x)
    d = np.empty_like(y)
    d[0], d[-1] = slope[0], slope[-1]
    d[1:-1] = 0.5 * (slope[:-1] + slope[1:])
    i = np.clip(np.searchsorted(x, t, side="right") - 1, 0, x.size - 2)
    h = x[i + 1] - x[i]
    u = (t - x[i]) / h
    h00 = 2 * u ** 3 - 3 * u ** 2 + 1
    h10 = u ** 3 - 2 * u ** 2 + u
    h01 = -2 * u ** 3 + 3 * u ** 2
    h11 = u ** 3 - u ** 2
    return h00 * y[i] + h10 * h * d[i] + h01 * y[i + 1] + h11 * h * d[i + 1]
