"""Reader for LHAPDF ``lhagrid1`` data files, interpolated log-bicubically in ``(log x, log Q^2)``.

Point ``LHAPDF_DATA_PATH`` (``os.pathsep``-separated directories) at real sets and load one by
name: ``LHAGrid.load("NNPDF31_nnlo_as_0118", member=0)``; or pass a set directory or a
``*_NNNN.dat`` file path. The file holds a YAML-like header, then one or more subgrids (split at
flavour thresholds), each: a line of x knots, a line of Q knots, a line of PDG ids, then
``n_x * n_Q`` lines of ``x f`` values (x is the slow index).

Interpolation of ``x f`` (``interpolation=``):

* ``"logcubic"`` (default, as LHAPDF's default ``LogBicubicInterpolator``): in each ``log x``
  interval a cubic Hermite polynomial through the two knot values, with knot derivatives from
  finite differences on the ``log x`` knots (mean of the left and right slopes inside, one-sided
  at the first and last knot); in ``log Q^2`` a cubic Hermite between the two x-interpolated
  values, with derivatives likewise (the mean of neighbouring slopes, one-sided at a subgrid's
  first and last Q knot: flavour thresholds are subgrid edges, so no difference crosses them). A
  subgrid with only 2 Q knots falls back to bilinear, as in LHAPDF. The scheme is exact for
  functions linear in ``log x`` (and in ``log Q^2``); on equally spaced knots, away from the two
  edge intervals, also for quadratics; not for cubics (the central difference of a cubic is off
  by ``h^2 f3 / 6``, ``f3`` its third derivative), so the error between knots falls as ``h^3``
  rather than bilinear's ``h^2``.
* ``"linear"``: bilinear in ``(log x, log Q^2)`` (LHAPDF's ``loglinear``).

Outside the grid the values are frozen at the edge, i.e. ``x`` and ``Q^2`` are clamped into the
grid (LHAPDF's ``nearest`` extrapolator; LHAPDF's own default is ``continuation``, which instead
extrapolates log-linearly to small x / large Q^2 and with a power law to small Q^2), so no input
``x`` or ``Q^2`` outside the grid, including ``x <= 0``, gives NaN. Evaluation is array-API code,
so it runs (and differentiates) on every backend; the grid arrays are moved to a backend's
device once and cached.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device

__all__ = ["LHAGrid", "find_set"]


def find_set(name: str, member: int = 0) -> Path:
    """Path of member ``member`` of set ``name`` (a set name, set directory or .dat file)."""
    p = Path(name)
    if p.is_file():
        return p
    if p.is_dir():
        cand = p / f"{p.name}_{member:04d}.dat"
        if cand.is_file():
            return cand
        raise FileNotFoundError(f"PDF set directory {p} has no member file {cand.name}")
    paths = [d for d in os.environ.get("LHAPDF_DATA_PATH", "").split(os.pathsep) if d]
    for d in paths:
        cand = Path(d) / name / f"{name}_{member:04d}.dat"
        if cand.is_file():
            return cand
    where = ", ".join(paths) if paths else "nowhere: LHAPDF_DATA_PATH is not set"
    raise FileNotFoundError(f"PDF set {name!r} member {member} not found (searched {where}); "
                            "set LHAPDF_DATA_PATH to the directory holding the set")


class _Subgrid:
    def __init__(self, x: np.ndarray, q: np.ndarray, pids: list[int], vals: np.ndarray,
                 where: str) -> None:
        if x.ndim != 1 or len(x) < 2 or np.any(np.diff(x) <= 0) or x[0] <= 0:
            raise ValueError(f"{where}: x knots must be >= 2 increasing positive values")
        if q.ndim != 1 or len(q) < 2 or np.any(np.diff(q) <= 0) or q[0] <= 0:
            raise ValueError(f"{where}: Q knots must be >= 2 increasing positive values")
        if vals.shape != (len(x) * len(q), len(pids)):
            raise ValueError(f"{where}: expected {len(x) * len(q)} rows of {len(pids)} values "
                             f"(n_x * n_Q, n_flavours), got shape {vals.shape}")
        if not np.all(np.isfinite(vals)):
            raise ValueError(f"{where}: non-finite x f values in the grid")
        self.logx, self.logq2 = np.log(x), 2.0 * np.log(q)
        self.x_lo, self.x_hi = float(x[0]), float(x[-1])
        self.q2_lo, self.q2_hi = float(q[0] ** 2), float(q[-1] ** 2)
        self.pids = pids
        self.vals = vals
        self._cache: dict[tuple, Any] = {}

    def cubic_in_logx(self, col: int) -> np.ndarray:
        """``((n_x - 1) n_Q, 4)`` coefficients ``a_0..a_3`` of the Hermite cubic in ``t`` on each
        (x interval, Q knot), ``t`` the fractional position in the ``log x`` interval."""
        nx, nq = len(self.logx), len(self.logq2)
        v = self.vals[:, col].reshape(nx, nq)
        h = np.diff(self.logx)[:, None]
        slope = np.diff(v, axis=0) / h
        d = np.empty_like(v)
        d[0], d[-1] = slope[0], slope[-1]  # one-sided at the edges, as LHAPDF's _ddlogx
        d[1:-1] = 0.5 * (slope[:-1] + slope[1:])
        vl, vh = v[:-1], v[1:]
        dl, dh = d[:-1] * h, d[1:] * h
        a = np.stack([vl, dl, -3 * vl - 2 * dl + 3 * vh - dh, 2 * vl + dl - 2 * vh + dh], axis=-1)
        return np.ascontiguousarray(a.reshape(-1, 4))

    def q_weights(self) -> np.ndarray:
        """Per Q interval: ``dq_1/dq_0``, ``dq_1/dq_2`` and the weights (0 one-sided at an edge,
        1/2 central) of the neighbouring slope in the low and high knot derivatives."""
        dq = np.diff(self.logq2)
        nq = len(self.logq2)
        out = np.zeros((4, nq - 1))
        out[0, 1:] = dq[1:] / dq[:-1]
        out[1, :-1] = dq[:-1] / dq[1:]
        out[2, 1:] = 0.5
        out[3, :-1] = 0.5
        return out


class LHAGrid:
    """One PDF member read from an ``lhagrid1`` file: ``xfxQ2(pid, x, q2)``."""

    def __init__(self, subgrids: list[_Subgrid], meta: dict[str, str], path: str = "",
                 interpolation: str = "logcubic") -> None:
        if not subgrids:
            raise ValueError(f"{path}: no subgrids in the PDF file")
        if interpolation not in ("logcubic", "linear"):
            raise ValueError(f"interpolation must be 'logcubic' or 'linear', got {interpolation!r}")
        if interpolation == "logcubic":
            for k, g in enumerate(subgrids):
                if len(g.logx) < 4:
                    raise ValueError(f"{path} subgrid {k}: logcubic interpolation needs >= 4 x "
                                     f"knots, got {len(g.logx)} (use interpolation='linear')")
        self.interpolation = interpolation
        self.subgrids, self.meta, self.path = subgrids, meta, path
        self.flavours = tuple(sorted(set().union(*[g.pids for g in subgrids])))
        self.x_min = float(min(math.exp(g.logx[0]) for g in subgrids))
        self.q2_min = subgrids[0].q2_lo
        self.q2_max = subgrids[-1].q2_hi

    @classmethod
    def load(cls, name: str, member: int = 0, interpolation: str = "logcubic") -> LHAGrid:
        """Load a set member by name (via ``LHAPDF_DATA_PATH``), directory or file path."""
        return cls.read(find_set(name, member), interpolation)

    @classmethod
    def read(cls, path: str | Path, interpolation: str = "logcubic") -> LHAGrid:
        """Parse an ``lhagrid1`` ``.dat`` file (``interpolation``: "logcubic" or "linear")."""
        path = Path(path)
        text = path.read_text()
        blocks = [b.strip() for b in text.split("---")]
        header, data = blocks[0], [b for b in blocks[1:] if b]
        meta = {}
        for line in header.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                meta[k.strip()] = v.strip()
        fmt = meta.get("Format", "lhagrid1")
        if fmt != "lhagrid1":
            raise ValueError(f"{path}: unsupported PDF format {fmt!r} (only lhagrid1)")
        grids = []
        for k, block in enumerate(data):
            where = f"{path} subgrid {k}"
            lines = block.splitlines()
            if len(lines) < 4:
                raise ValueError(f"{where}: expected x, Q, flavour lines and values")
            try:
                x = np.array(lines[0].split(), dtype=np.float64)
                q = np.array(lines[1].split(), dtype=np.float64)
                pids = [21 if int(f) == 0 else int(f) for f in lines[2].split()]
                vals = np.array([ln.split() for ln in lines[3:] if ln.strip()], dtype=np.float64)
            except ValueError as exc:
                raise ValueError(f"{where}: malformed numbers ({exc})") from exc
            grids.append(_Subgrid(x, q, pids, vals, where))
        return cls(grids, meta, str(path), interpolation)

    @staticmethod
    def _on(g: _Subgrid, key: str, host: Any, like: Any) -> Any:
        """``host`` (numpy, or a thunk making it) as an array like ``like``, cached per backend."""
        xp = array_namespace(like)
        ck = (key, xp.__name__, str(like.dtype), str(device(like)))
        if ck not in g._cache:
            a = host() if callable(host) else host
            g._cache[ck] = xp.asarray(a, dtype=like.dtype, device=device(like))
        return g._cache[ck]

    def _locate(self, g: _Subgrid, xp: Any, lx: Any, lq: Any) -> tuple[Any, Any, Any, Any]:
        kx = self._on(g, "logx", g.logx, lx)
        kq = self._on(g, "logq2", g.logq2, lx)
        nx, nq = len(g.logx), len(g.logq2)
        ix = xp.clip(xp.searchsorted(kx, lx, side="right") - 1, 0, nx - 2)
        iq = xp.clip(xp.searchsorted(kq, lq, side="right") - 1, 0, nq - 2)
        x0, x1 = xp.take(kx, ix), xp.take(kx, ix + 1)
        q0, q1 = xp.take(kq, iq), xp.take(kq, iq + 1)
        tx = xp.clip((lx - x0) / (x1 - x0), 0.0, 1.0)
        tq = xp.clip((lq - q0) / (q1 - q0), 0.0, 1.0)
        return ix, iq, tx, tq

    def _interp_linear(self, g: _Subgrid, col: int, xp: Any, lx: Any, lq: Any) -> Any:
        ix, iq, fx, fq = self._locate(g, xp, lx, lq)
        v = self._on(g, f"v{col}", lambda: np.ascontiguousarray(g.vals[:, col]), lx)
        nq = len(g.logq2)
        base = ix * nq + iq
        v00, v01 = xp.take(v, base), xp.take(v, base + 1)
        v10, v11 = xp.take(v, base + nq), xp.take(v, base + nq + 1)
        return ((1 - fx) * ((1 - fq) * v00 + fq * v01) + fx * ((1 - fq) * v10 + fq * v11))

    def _interp_cubic(self, g: _Subgrid, col: int, xp: Any, lx: Any, lq: Any) -> Any:
        nq = len(g.logq2)
        if nq < 3:  # LHAPDF's fallback: one Q interval gives no cubic Q derivatives
            return self._interp_linear(g, col, xp, lx, lq)
        ix, iq, tx, tq = self._locate(g, xp, lx, lq)
        coef = self._on(g, f"c{col}", lambda: g.cubic_in_logx(col), lx)
        qw = self._on(g, "qw", g.q_weights, lx)
        r0, r2, wl, wh = (xp.take(qw[i, :], iq) for i in range(4))
        base = ix * nq

        def at(j: Any) -> Any:  # the x-interpolated value at Q knot j
            a = xp.take(coef, base + j, axis=0)
            return ((a[:, 3] * tx + a[:, 2]) * tx + a[:, 1]) * tx + a[:, 0]

        vll, vl = at(xp.clip(iq - 1, 0, nq - 1)), at(iq)
        vh, vhh = at(iq + 1), at(xp.clip(iq + 2, 0, nq - 1))
        s1 = vh - vl
        vdl = s1 + wl * ((vl - vll) * r0 - s1)
        vdh = s1 + wh * ((vhh - vh) * r2 - s1)
        t2 = tq * tq
        t3 = t2 * tq
        return ((2 * t3 - 3 * t2 + 1) * vl + (t3 - 2 * t2 + tq) * vdl
                + (3 * t2 - 2 * t3) * vh + (t3 - t2) * vdh)

    def xfxQ2(self, pid: int, x: Any, q2: Any) -> Any:  # noqa: N802 (LHAPDF's name)
        """``x f(x, Q^2)`` for PDG id ``pid`` (``0`` = gluon); zero for absent flavours."""
        xp = array_namespace(x)
        pid = 21 if pid == 0 else int(pid)
        shape = x.shape
        q2 = xp.reshape(xp.clip(q2 + xp.zeros_like(x), self.q2_min, self.q2_max), (-1,))
        x = xp.reshape(x, (-1,))  # the gathers below index one flat batch
        lq = xp.log(q2)
        interp = self._interp_cubic if self.interpolation == "logcubic" else self._interp_linear
        out = xp.zeros_like(x)
        for k, g in enumerate(self.subgrids):
            # clamping x into the grid before the log is the "nearest" extrapolation, and keeps
            # x <= 0 away from the log
            lx = xp.log(xp.clip(x, g.x_lo, g.x_hi))
            val = interp(g, g.pids.index(pid), xp, lx, lq) if pid in g.pids \
                else xp.zeros_like(x)
            if k == 0:
                out = val
            else:
                out = xp.where(q2 >= g.q2_lo, val, out)
        return xp.reshape(out, shape)

    def __repr__(self) -> str:
        return f"LHAGrid({self.path!r}, {len(self.subgrids)} subgrids, {self.interpolation})"
