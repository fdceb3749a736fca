"""Reader for LHAPDF ``lhagrid1`` data files, with bilinear interpolation in ``(log x, log Q^2)``.

Point ``LHAPDF_DATA_PATH`` (``os.pathsep``-separated directories) at real sets and load one by
name: ``LHAGrid.load("NNPDF31_nnlo_as_0118", member=0)``; or pass a set directory or a
``*_NNNN.dat`` file path. The file holds a YAML-like header, then one or more subgrids (split at
flavour thresholds), each: a line of x knots, a line of Q knots, a line of PDG ids, then
``n_x * n_Q`` lines of ``x f`` values (x is the slow index).

Interpolation is bilinear in ``(log x, log Q^2)`` of ``x f`` (LHAPDF's default is log-bicubic, so
values between knots differ from LHAPDF at the per-mille level on typical grids); outside the
grid the values are frozen at the edge (LHAPDF's ``nearest`` extrapolator). Evaluation is
array-API code, so it runs on every backend.
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
        self.q2_lo, self.q2_hi = float(q[0] ** 2), float(q[-1] ** 2)
        self.pids = pids
        self.vals = vals


class LHAGrid:
    """One PDF member read from an ``lhagrid1`` file: ``xfxQ2(pid, x, q2)``."""

    def __init__(self, subgrids: list[_Subgrid], meta: dict[str, str], path: str = "") -> None:
        if not subgrids:
            raise ValueError(f"{path}: no subgrids in the PDF file")
        self.subgrids, self.meta, self.path = subgrids, meta, path
        self.flavours = tuple(sorted(set().union(*[g.pids for g in subgrids])))
        self.x_min = float(min(math.exp(g.logx[0]) for g in subgrids))
        self.q2_min = subgrids[0].q2_lo
        self.q2_max = subgrids[-1].q2_hi

    @classmethod
    def load(cls, name: str, member: int = 0) -> LHAGrid:
        """Load a set member by name (via ``LHAPDF_DATA_PATH``), directory or file path."""
        return cls.read(find_set(name, member))

    @classmethod
    def read(cls, path: str | Path) -> LHAGrid:
        """Parse an ``lhagrid1`` ``.dat`` file."""
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
        return cls(grids, meta, str(path))

    def _interp(self, g: _Subgrid, col: int, xp: Any, lx: Any, lq: Any) -> Any:
        dev = device(lx)
        kx = xp.asarray(g.logx, dtype=lx.dtype, device=dev)
        kq = xp.asarray(g.logq2, dtype=lx.dtype, device=dev)
        v = xp.asarray(np.ascontiguousarray(g.vals[:, col]), dtype=lx.dtype, device=dev)
        nx, nq = len(g.logx), len(g.logq2)
        ix = xp.clip(xp.searchsorted(kx, lx, side="right") - 1, 0, nx - 2)
        iq = xp.clip(xp.searchsorted(kq, lq, side="right") - 1, 0, nq - 2)
        x0, x1 = xp.take(kx, ix), xp.take(kx, ix + 1)
        q0, q1 = xp.take(kq, iq), xp.take(kq, iq + 1)
        fx = xp.clip((lx - x0) / (x1 - x0), 0.0, 1.0)
        fq = xp.clip((lq - q0) / (q1 - q0), 0.0, 1.0)
        base = ix * nq + iq
        v00, v01 = xp.take(v, base), xp.take(v, base + 1)
        v10, v11 = xp.take(v, base + nq), xp.take(v, base + nq + 1)
        return ((1 - fx) * ((1 - fq) * v00 + fq * v01) + fx * ((1 - fq) * v10 + fq * v11))

    def xfxQ2(self, pid: int, x: Any, q2: Any) -> Any:  # noqa: N802 (LHAPDF's name)
        """``x f(x, Q^2)`` for PDG id ``pid`` (``0`` = gluon); zero for absent flavours."""
        xp = array_namespace(x)
        pid = 21 if pid == 0 else int(pid)
        q2 = q2 + xp.zeros_like(x)
        lx, lq = xp.log(x), xp.log(q2)
        out = xp.zeros_like(x)
        for k, g in enumerate(self.subgrids):
            val = self._interp(g, g.pids.index(pid), xp, lx, lq) if pid in g.pids \
                else xp.zeros_like(x)
            if k == 0:
                out = val
            else:
                out = xp.where(q2 >= g.q2_lo, val, out)
        return out

    def __repr__(self) -> str:
        return f"LHAGrid({self.path!r}, {len(self.subgrids)} subgrids)"
