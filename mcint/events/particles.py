"""Physics events as arrays: what the LHE and LHEH5 writers take.

A batch of ``n`` events with ``k`` particles each (incoming first) is a :class:`ParticleEvents`;
the run-level information of the ``<init>`` block is a :class:`RunInfo`. Everything is numpy
(event files live on the host); per-event arrays may come from any backend and are converted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: PDG codes of quarks (coloured triplets) -- used for the default colour flow
_QUARKS = set(range(1, 7))


def _np(a: Any, dtype: Any = np.float64) -> np.ndarray:
    from ..backends.base import _to_numpy_any

    return np.asarray(_to_numpy_any(a)).astype(dtype, copy=False)


@dataclass
class ParticleEvents:
    """A batch of ``n`` events with ``k`` particles each.

    Attributes
    ----------
    momenta: ``(n, k, 4)`` four-momenta ``(E, px, py, pz)`` in GeV.
    pdg: PDG ids, ``(k,)`` for all events or ``(n, k)`` per event.
    status: LHE status codes ``(k,)``: -1 incoming, 1 outgoing, 2 intermediate.
    weight: ``(n,)`` event weights (XWGTUP).
    mothers: ``(k, 2)`` or ``(n, k, 2)`` 1-based mother indices into the ``k`` columns;
        default: outgoing particles come from 1 and 2.
    colors: ``(k, 2)`` or ``(n, k, 2)`` colour lines; default: a q qbar pair in the initial
        state shares line 501, everything else is colourless.
    masses: ``(k,)`` or ``(n, k)``; default: the invariant mass of each momentum.
    scale: ``(n,)`` event scale SCALUP; default: invariant mass of the outgoing particles.
    aqed, aqcd: couplings (scalars or ``(n,)``); -1 means "not given" (LHE convention).
    process_id: IDPRUP, scalar or ``(n,)``.
    channel: ``(n,)`` channel index (written as an optional ``#`` line / extra dataset).
    trials: ``(n,)`` points drawn since the previous event (LHEH5 ``trials`` column).
    pdf: ``(n, 5)`` ``(id1, id2, x1, x2, scale)`` of the partons taken from the PDFs (written as
        an LHE ``#pdf`` line), or ``None``.
    spin: SPINUP: a number (9.0, "unknown", by default), ``(k,)`` or ``(n, k)``.
    present: ``(n, k)`` booleans, or ``None`` (all): which columns each event holds. Absent
        columns (an intermediate resonance of another channel, or off its mass shell) are not
        written; the writers renumber the mother pointers of what is left.
    """

    momenta: Any
    pdg: Any
    status: Any
    weight: Any
    mothers: Any = None
    colors: Any = None
    masses: Any = None
    scale: Any = None
    aqed: Any = -1.0
    aqcd: Any = -1.0
    process_id: Any = 1
    channel: Any = None
    trials: Any = None
    pdf: Any = None
    spin: Any = 9.0
    lifetime: float = 0.0
    present: Any = None

    def __post_init__(self) -> None:
        p = _np(self.momenta)
        if p.ndim != 3 or p.shape[2] != 4:
            raise ValueError(f"momenta must have shape (n, k, 4) = (E, px, py, pz); got {p.shape}")
        n, k = p.shape[:2]
        self.momenta = p
        self.status = _per_particle(self.status, "status", n, k, np.int64, per_event=False)
        self.pdg = _per_particle(self.pdg, "pdg", n, k, np.int64)
        self.weight = _per_event(self.weight, "weight", n, np.float64)
        if self.mothers is None:
            inc = np.flatnonzero(self.status[0] == -1) + 1
            m = np.zeros((k, 2), dtype=np.int64)
            if inc.size:
                out = self.status[0] != -1
                m[out, 0], m[out, 1] = inc[0], inc[-1]
            self.mothers = m
        self.mothers = _np(self.mothers, np.int64)
        if self.mothers.shape == (k, 2):
            self.mothers = np.broadcast_to(self.mothers, (n, k, 2))
        if self.mothers.shape != (n, k, 2) or np.any(self.mothers < 0) or \
                np.any(self.mothers > k):
            raise ValueError(f"mothers must be indices 0..{k} with shape ({k}, 2) or ({n}, {k}, "
                             f"2), got shape {self.mothers.shape}")
        if self.colors is None:
            self.colors = _default_colors(self.pdg, self.status)
        c = _np(self.colors, np.int64)
        if c.shape == (k, 2):
            c = np.broadcast_to(c, (n, k, 2))
        if c.shape != (n, k, 2):
            raise ValueError(f"colors must have shape ({k}, 2) or ({n}, {k}, 2), got {c.shape}")
        self.colors = c
        if self.masses is None:
            m2 = p[..., 0] ** 2 - np.sum(p[..., 1:] ** 2, axis=-1)
            m = np.sqrt(np.clip(m2, 0.0, None))
            # m^2 from E^2 - p^2 carries rounding ~1e-16 E^2: massless particles get m ~1e-8 E
            self.masses = np.where(m < 1e-6 * np.abs(p[..., 0]), 0.0, m)
        self.masses = _per_particle(self.masses, "masses", n, k, np.float64)
        if self.scale is None:
            out = self.status[0] == 1
            q = p[:, out, :].sum(axis=1)
            self.scale = np.sqrt(np.clip(q[:, 0] ** 2 - np.sum(q[:, 1:] ** 2, axis=-1), 0, None))
        self.scale = _per_event(self.scale, "scale", n, np.float64)
        self.aqed = _per_event(self.aqed, "aqed", n, np.float64)
        self.aqcd = _per_event(self.aqcd, "aqcd", n, np.float64)
        self.process_id = _per_event(self.process_id, "process_id", n, np.int64)
        if self.channel is not None:
            self.channel = _per_event(self.channel, "channel", n, np.int64)
        if self.trials is not None:
            self.trials = _per_event(self.trials, "trials", n, np.float64)
        if self.pdf is not None:
            self.pdf = _np(self.pdf, np.float64)
            if self.pdf.shape != (n, 5) or not np.all(np.isfinite(self.pdf)):
                raise ValueError(f"pdf must be finite with shape ({n}, 5) = (id1, id2, x1, x2, "
                                 f"scale), got {self.pdf.shape}")
        sp = _np(self.spin, np.float64)
        self.spin = np.full((n, k), float(sp)) if sp.ndim == 0 else \
            _per_particle(sp, "spin", n, k, np.float64)
        if self.present is not None:
            pr = _np(self.present, bool)
            if pr.shape != (n, k):
                raise ValueError(f"present must have shape ({n}, {k}), got {pr.shape}")
            if not np.all(pr[:, self.status[0] == -1]):
                raise ValueError("present: incoming particles are in every event")
            self.present = pr
        if not np.all(np.isfinite(self.momenta)):
            raise ValueError("momenta contain NaN or inf")
        if not np.all(np.isfinite(self.weight)):
            raise ValueError("event weights contain NaN or inf")

    def __len__(self) -> int:
        return int(self.momenta.shape[0])

    @property
    def n_particles(self) -> int:
        return int(self.momenta.shape[1])

    def layout(self) -> tuple[np.ndarray, np.ndarray]:
        """``(keep (n, k) bool, mothers (n, k, 2))``: the columns each event writes and their
        mother pointers renumbered to the written lines (1-based; 0: none)."""
        n, k = self.momenta.shape[:2]
        if self.present is None:
            return np.ones((n, k), dtype=bool), np.asarray(self.mothers)
        keep = self.present
        # new 1-based line of each column; a pointer to an absent column is an error
        line = np.cumsum(keep, axis=1) * keep
        lookup = np.concatenate([np.zeros((n, 1), np.int64), line], axis=1)
        m = np.asarray(self.mothers)
        new = np.take_along_axis(lookup, m.reshape(n, -1), axis=1).reshape(n, k, 2)
        if np.any((new == 0) & (m > 0) & keep[..., None]):
            raise ValueError("a written particle's mother is absent from its event")
        return keep, new


def _per_event(a: Any, name: str, n: int, dtype: Any) -> np.ndarray:
    arr = _np(a, dtype)
    if arr.ndim == 0:
        return np.full(n, arr, dtype=dtype)
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {arr.shape}")
    return arr


def _per_particle(a: Any, name: str, n: int, k: int, dtype: Any, per_event: bool = True
                  ) -> np.ndarray:
    arr = _np(a, dtype)
    if arr.shape == (k,):
        return np.broadcast_to(arr, (n, k))
    if per_event and arr.shape == (n, k):
        return arr
    want = f"({k},) or ({n}, {k})" if per_event else f"({k},)"
    raise ValueError(f"{name} must have shape {want}, got {arr.shape}")


def _default_colors(pdg: np.ndarray, status: np.ndarray) -> np.ndarray:
    """Colour line 501 through an incoming q qbar pair (Drell-Yan-like); colourless otherwise."""
    n, k = pdg.shape
    c = np.zeros((n, k, 2), dtype=np.int64)
    inc = status[0] == -1
    quark = inc & np.isin(pdg, list(_QUARKS))
    anti = inc & np.isin(pdg, [-q for q in _QUARKS])
    pair = (quark.sum(axis=1) == 1) & (anti.sum(axis=1) == 1)
    c[..., 0] = np.where(quark & pair[:, None], 501, 0)
    c[..., 1] = np.where(anti & pair[:, None], 501, 0)
    return c


@dataclass
class RunInfo:
    """Run-level information for the ``<init>`` block (and the LHEH5 ``init``/``procInfo``).

    ``weighting`` is LHA's IDWTUP: 3 for unweighted events of weight +XMAXUP, -4 for events with
    signed weights whose average is the cross section. ``xmax`` defaults to ``|xsec|``.
    """

    xsec: float
    xerr: float
    beams: tuple[int, int] = (0, 0)
    energies: tuple[float, float] = (0.0, 0.0)
    pdf_groups: tuple[int, int] = (0, 0)
    pdf_sets: tuple[int, int] = (0, 0)
    weighting: int = 3
    xmax: float | None = None
    process_id: int = 1
    #: free-form metadata stored in the header (JSON)
    meta: dict[str, Any] | None = None
    #: header blocks ``{tag: text}`` (e.g. ``{"MGRunCard": ..., "slha": param_card}``)
    banner: dict[str, str] | None = None

    def __post_init__(self) -> None:
        for name in ("xsec", "xerr"):
            v = float(getattr(self, name))
            if not np.isfinite(v):
                raise ValueError(f"{name} must be finite, got {v}")
            setattr(self, name, v)
        if self.xmax is None:
            self.xmax = abs(self.xsec)
        if self.weighting not in (1, 2, 3, 4, -1, -2, -3, -4):
            raise ValueError(f"weighting (IDWTUP) must be one of +-1..4, got {self.weighting}")
