"""Event records of a :class:`~mcint.collider.HadronicProcess` for LHE / LHEH5 files.

:class:`ColliderEvents` is the ``physics`` of a run-card target: it turns sampled points into
:class:`~mcint.events.ParticleEvents` with

* the initial state drawn by its share of the point's value, the library's colour flow
  (ICOLUP) and helicities (SPINUP) where the subprocess gives their tables;
* the intermediate resonances of the event's channel as status-2 lines (as MadGraph writes
  them): a :class:`Resonance` with a PDG id whose invariant mass lies within ``bw_cutoff``
  widths of its pole; its momentum is the sum of its daughters', its mass the invariant mass
  of that sum, its colour the daughters' open colour lines, and the daughters point to it
  (MOTHUP), it to its own written parent or to the two incoming partons;
* ``#pdf`` lines (id1 id2 x1 x2 muF), SCALUP = muF, AQCDUP = alpha_s(muR) where the process runs
  alpha_s.

Columns: the two incoming partons, every channel's resonances (parents first), the final state
in the libraries' order; an event writes its channel's resonances only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..events.particles import ParticleEvents, RunInfo, _default_colors
from .color import SINGLET, color_type, net_color

__all__ = ["ColliderEvents", "Resonance"]

#: MadGraph's default ``bwcutoff``: resonances within 15 widths of their pole are written
BW_CUTOFF = 15.0


@dataclass(frozen=True)
class Resonance:
    """An s-channel propagator of a channel's diagram: PDG id, pole mass and width (GeV), the
    final-state indices it decays to, and its parent resonance (index in the channel's list,
    parents first) or ``None``."""

    pdg: int
    mass: float
    width: float
    daughters: tuple[int, ...]
    parent: int | None = None


class ColliderEvents:
    """The ``physics`` object of a collider run (see the module docstring).

    Parameters
    ----------
    process: the :class:`~mcint.collider.HadronicProcess`.
    beams, energies: beam PDG ids and energies (GeV).
    resonances: per channel, its :class:`Resonance` list (empty lists: none written).
    bw_cutoff: resonances are written within ``bw_cutoff`` widths of their pole.
    pdf_sets: LHAGLUE ids of the beams' PDFs; banner: header blocks.
    """

    def __init__(self, process: Any, beams: tuple[int, int], energies: tuple[float, float], *,
                 resonances: list[list[Resonance]] | None = None, bw_cutoff: float = BW_CUTOFF,
                 pdf_sets: tuple[int, int] = (0, 0), banner: dict[str, str] | None = None,
                 seed: int = 0) -> None:
        self.process = process
        self.beams, self.energies = beams, energies
        self.resonances = resonances or [[] for _ in range(process.n_channels)]
        if len(self.resonances) != process.n_channels:
            raise ValueError(f"{len(self.resonances)} resonance lists for "
                             f"{process.n_channels} channels")
        if not bw_cutoff > 0:
            raise ValueError(f"bw_cutoff must be > 0, got {bw_cutoff!r}")
        self.bw_cutoff = float(bw_cutoff)
        self.pdf_sets = pdf_sets
        self.banner = banner
        self.rng = np.random.default_rng(seed)
        self._offset = np.concatenate([[0], np.cumsum([len(r) for r in self.resonances])])
        self.n_resonances = int(self._offset[-1])

    def to_particles(self, batch: Any, weight: Any, trials: Any = None) -> ParticleEvents:
        """Events of the sampled points of ``batch`` (in channel 0's chart, as the run's
        sampler gives them; ``batch.channels`` names each point's channel)."""
        x = np.asarray(batch.x, dtype=np.float64)
        rec = self.process.record(x, 0, self.rng)
        n, legs = rec.pdg.shape
        chan = np.zeros(n, np.int64) if batch.channels is None else \
            np.asarray(batch.channels, np.int64)
        R, nf = self.n_resonances, legs - 2
        k = 2 + R + nf
        fin = 2 + R + np.arange(nf)               # columns of the final state
        mom = np.zeros((n, k, 4))
        mom[:, :2], mom[:, fin] = rec.momenta[:, :2], rec.momenta[:, 2:]
        pdg = np.zeros((n, k), np.int64)
        pdg[:, :2], pdg[:, fin] = rec.pdg[:, :2], rec.pdg[:, 2:]
        status = np.array([-1, -1] + [2] * R + [1] * nf)
        legs_status = np.array([-1, -1] + [1] * nf)
        leg_col = rec.colors if rec.colors is not None else \
            _default_colors(rec.pdg, legs_status[None, :])
        col = np.zeros((n, k, 2), np.int64)
        col[:, :2], col[:, fin] = leg_col[:, :2], leg_col[:, 2:]
        spin = np.full((n, k), 9.0)
        spin[:, :2], spin[:, fin] = rec.helicities[:, :2], rec.helicities[:, 2:]
        present = np.ones((n, k), bool)
        mothers = np.zeros((n, k, 2), np.int64)
        mothers[:, 2:] = [1, 2]
        for c, res in enumerate(self.resonances):
            for j, r in enumerate(res):
                col_j = 2 + int(self._offset[c]) + j
                p = rec.momenta[:, [2 + d for d in r.daughters]].sum(axis=1)
                mom[:, col_j] = p
                pdg[:, col_j] = r.pdg
                m = np.sqrt(np.maximum(p[:, 0] ** 2 - np.sum(p[:, 1:] ** 2, axis=1), 0.0))
                on = (chan == c) & (r.width > 0) & (np.abs(m - r.mass) <= self.bw_cutoff *
                                                       r.width)
                present[:, col_j] = on
                # parents come first: a daughter resonance overwrites its parent as mother
                if r.parent is not None:
                    pc = 2 + int(self._offset[c]) + r.parent
                    mothers[:, col_j] = np.where(present[:, pc, None], pc + 1,
                                                 mothers[:, pc])
                for d in r.daughters:
                    mothers[:, fin[d]] = np.where(on[:, None], col_j + 1, mothers[:, fin[d]])
                if color_type(r.pdg) != SINGLET:
                    for e in np.flatnonzero(on):
                        col[e, col_j] = net_color(leg_col[e, [2 + d for d in r.daughters]])
        pdf = None
        if abs(self.beams[0]) == 2212:
            pdf = np.column_stack([rec.pdg[:, 0], rec.pdg[:, 1], rec.x1, rec.x2, rec.muf])
        aqcd = -1.0 if rec.alpha_s is None else rec.alpha_s
        return ParticleEvents(mom, pdg, status, weight, mothers=mothers, colors=col,
                              scale=rec.muf, aqcd=aqcd, channel=batch.channels, trials=trials,
                              pdf=pdf, spin=spin, present=present)

    def run_info(self, xsec: float, xerr: float, weighting: int, *, xmax: float | None = None,
                 meta: dict[str, Any] | None = None) -> RunInfo:
        """The ``<init>`` information for a cross section ``xsec +- xerr`` (pb)."""
        return RunInfo(xsec, xerr, beams=self.beams, energies=self.energies,
                       pdf_sets=self.pdf_sets, weighting=weighting, xmax=xmax, meta=meta,
                       banner=self.banner)
