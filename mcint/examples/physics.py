"""Collider examples from :mod:`mcint.processes`, with what LHE output needs.

``ee-mumu`` (``e+ e- -> mu+ mu-`` at the Z pole, 2 dims, exact), ``drell-yan`` (``p p -> l+ l-``
through gamma/Z/Z', 3 channels in 4 dims, quadrature reference) and ``ee-qqg`` (``e+ e- -> q qbar
g`` with a y-cut, 5 dims, exact). Sampled points become particles through the process's
``events`` method; for the multi-channel Drell-Yan sampler the points are the integrand's
channel-independent *features*, which equal the photon channel's random numbers (its ``s_hat``
map is flat in ``log s_hat``, like the first feature), so momenta come from channel 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..events import ParticleEvents, RunInfo
from . import Example

__all__ = ["ProcessEvents", "examples"]


class ProcessEvents:
    """Turns sampled points of a process into :class:`~mcint.events.ParticleEvents`.

    Parameters
    ----------
    process: an object with ``events(x[, channel, rng]) -> (momenta, pdg, x1, x2, scale)``.
    beams, energies: beam PDG ids and energies (GeV) for ``<init>``.
    status: LHE status of each particle (incoming -1 first).
    channel_arg: pass ``channel_arg`` as the channel to ``events`` (multi-channel processes
        whose sampled points are features: see the module docstring).
    colors: ``(k, 2)`` colour lines, or ``None`` for the default (q qbar pair in the initial
        state).
    aqed, aqcd: couplings written to each event (-1: not given).
    pdf_sets: LHAPDF ids of the beams' PDFs (0: none / a toy PDF).
    banner: header blocks for LHE files (e.g. the run card and the param card as ``slha``).
    """

    def __init__(self, process: Any, beams: tuple[int, int], energies: tuple[float, float],
                 status: tuple[int, ...], *, channel_arg: int | None = None,
                 colors: Any = None, aqed: float = -1.0, aqcd: float = -1.0,
                 pdf_sets: tuple[int, int] = (0, 0), seed: int = 0,
                 banner: dict[str, str] | None = None) -> None:
        self.process = process
        self.beams, self.energies = beams, energies
        self.status = np.asarray(status, dtype=np.int64)
        self.channel_arg = channel_arg
        self.colors = colors
        self.aqed, self.aqcd = aqed, aqcd
        self.pdf_sets = pdf_sets
        self.banner = banner
        self.rng = np.random.default_rng(seed)

    def momenta(self, x: Any) -> tuple[Any, Any, Any]:
        """``(momenta (n, k, 4), pdg, scale)`` for sampled points ``x``."""
        mom, pdg, _, _, scale = self._events(x)
        return mom, pdg, scale

    def _events(self, x: Any) -> tuple[Any, Any, Any, Any, Any]:
        # Kinematics in float64 even for a float32 sampler: event files need momentum
        # conservation and on-shell masses to full precision.
        x = np.asarray(x, dtype=np.float64)
        if self.channel_arg is None:
            return self.process.events(x)
        return self.process.events(x, self.channel_arg, self.rng)

    def to_particles(self, batch: Any, weight: Any, trials: Any = None) -> ParticleEvents:
        """Events of a (numpy) :class:`~mcint.Batch` with the given event weights; hadron
        beams also get the ``#pdf`` record (partons, x1, x2, scale)."""
        mom, pdg, x1, x2, scale = self._events(batch.x)
        pdf = None
        if abs(self.beams[0]) == 2212:
            ids = np.broadcast_to(np.asarray(pdg), (len(mom), np.shape(pdg)[-1]))
            pdf = np.column_stack([ids[:, 0], ids[:, 1], np.asarray(x1, np.float64),
                                   np.asarray(x2, np.float64), np.asarray(scale, np.float64)])
        return ParticleEvents(mom, pdg, self.status, weight, colors=self.colors, scale=scale,
                              aqed=self.aqed, aqcd=self.aqcd, channel=batch.channels,
                              trials=trials, pdf=pdf)

    def run_info(self, xsec: float, xerr: float, weighting: int, *, xmax: float | None = None,
                 meta: dict[str, Any] | None = None) -> RunInfo:
        """The ``<init>`` information for a cross section ``xsec +- xerr`` (pb)."""
        return RunInfo(xsec, xerr, beams=self.beams, energies=self.energies,
                       pdf_sets=self.pdf_sets, weighting=weighting, xmax=xmax, meta=meta,
                       banner=self.banner)


def _ee_mumu(dims: int) -> Any:
    from ..processes import EEMuMu

    return EEMuMu()


def _drell_yan(dims: int) -> Any:
    from ..processes import DrellYan

    return DrellYan()


def _ee_qqg(dims: int) -> Any:
    from ..processes import EEQQG

    return EEQQG()


def examples() -> list[Example]:
    """The collider examples (imports :mod:`mcint.processes`)."""
    from ..processes import EEQQG, DrellYan, EEMuMu

    ee = EEMuMu()
    dy = DrellYan()
    qqg = EEQQG()
    alpha = float(ee.params.alpha)
    half = ee.sqrt_s / 2
    out = [
        Example("ee-mumu", "e+ e- -> mu+ mu- via gamma/Z at sqrt(s) = m_Z, cross section in pb",
                EEMuMu.dims, _ee_mumu, lambda d: EEMuMu().exact(), event_format="lhe",
                defaults={"train_calls": 50_000, "sampler": "vegas"}, unit="pb",
                physics=ProcessEvents(ee, (11, -11), (half, half), (-1, -1, 1, 1), aqed=alpha)),
        Example("drell-yan", "p p -> l+ l- via gamma/Z/Z' at 13 TeV, 60 < m_ll < 2000 GeV, "
                "3 channels (toy PDF), pb", dy.dims, _drell_yan, lambda d: DrellYan().exact(),
                event_format="lhe", unit="pb",
                defaults={"train_calls": 60_000, "sampler": "nis"},
                physics=ProcessEvents(dy, (2212, 2212), (dy.sqrt_s / 2, dy.sqrt_s / 2),
                                      (-1, -1, 1, 1), channel_arg=0, aqed=alpha)),
    ]
    # q (501, 0), g (502, 501), qbar (0, 502): one colour line through the gluon
    qqg_colors = np.array([[0, 0], [0, 0], [501, 0], [0, 502], [502, 501]])
    out.append(Example(
        "ee-qqg", "e+ e- -> q qbar g at sqrt(s) = m_Z with a y-cut of 0.1, pb", 5, _ee_qqg,
        lambda d: EEQQG().exact(), event_format="lhe", unit="pb",
        defaults={"train_calls": 100_000, "sampler": "vegas"},
        physics=ProcessEvents(qqg, (11, -11), (qqg.sqrt_s / 2, qqg.sqrt_s / 2),
                              (-1, -1, 1, 1, 1), colors=qqg_colors, aqed=alpha,
                              aqcd=float(getattr(qqg, "alpha_s", -1.0)))))
    return out
