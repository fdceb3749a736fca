"""A hadron-collider cross section built from parts: partonic matrix elements (e.g. UMAMI
libraries), PDFs, scales, cuts and one phase-space mapping per channel.

``HadronicProcess`` is a :class:`~mcint.channels.MultiChannelIntegrand` in pb::

    sigma = sum_sub sum_(a, b) int dx1 dx2 f_a(x1, muF) f_b(x2, muF) |M_ab|^2 / (2 s_hat) dPhi

Every flavour combination ``(a, b)`` of every subprocess is **summed** at each point with its
PDF luminosity (the matrix element is evaluated once per distinct (flavour index, leg order)),
so the integrand is exact, not a flavour sample; events then pick their flavours with
probability proportional to each combination's share of the point's value, which is exact too.
Channel ``c`` maps ``r`` with ``phase_spaces[c]``; the prior channel weights are MadGraph's
``alpha_c = |M_(d_c)|^2 / sum_c' |M_(d_c')|^2`` from the matrix element's ``diagram_amp2``
(summed over the flavour combinations with their luminosities), or the diagrams' propagator
products where the matrix element does not give them. The features (what channel-weight networks
and event files see) are the point's coordinates in channel 0's chart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..channels import ChannelEval, MultiChannelIntegrand
from ..phasespace import PhaseSpace, channel_prior
from ..phasespace.topology import Diagram
from ..processes.ew import GEV2_TO_PB
from .scales import check_scale, scale

__all__ = ["Flavour", "HadronicProcess", "Subprocess", "mirrored"]


@dataclass(frozen=True)
class Flavour:
    """One partonic initial state of a subprocess.

    ``a``, ``b``: PDG ids of the partons from beam 1 (+z) and beam 2; ``index``: the matrix
    element's flavour index (UMAMI's FLAVOR_INDEX; ``None`` passes none); ``swap``: the matrix
    element's first leg is the parton from beam 2 (MadGraph's mirrored processes).
    """

    a: int
    b: int
    index: int | None = None
    swap: bool = False


def mirrored(flavours: Sequence[Flavour]) -> list[Flavour]:
    """``flavours`` and their mirror images (beams exchanged), without duplicates."""
    out = list(flavours)
    for f in flavours:
        m = Flavour(f.b, f.a, f.index, not f.swap)
        if m not in out:
            out.append(m)
    return out


@dataclass
class Subprocess:
    """A partonic matrix element and the initial states it serves.

    ``matrix_element(p, *, alpha_s=None, flavor=None, outputs=...) -> {"matrix_element": (n,),
    "diagram_amp2": (n, D)}`` with ``p (n, 2 + k, 4)`` in the matrix element's leg order (a
    :class:`mcint.umami.MatrixElement` is one); ``outgoing``: PDG ids of the final state.
    """

    matrix_element: Callable[..., dict[str, np.ndarray]]
    flavours: Sequence[Flavour]
    outgoing: Sequence[int]
    needs_alpha_s: bool = False


class HadronicProcess(MultiChannelIntegrand):
    """``sigma(h1 h2 -> X)`` in pb over the channels' unit hypercubes (see the module docstring).

    Parameters
    ----------
    subprocesses: the partonic matrix elements (same final-state multiplicity).
    phase_spaces: one :class:`~mcint.phasespace.PhaseSpace` per channel (with a luminosity map).
    pdf: anything with ``xfxQ2(pid, x, q2)`` (an :class:`~mcint.pdf.LHAGrid`, a set member).
    diagrams: one :class:`~mcint.phasespace.Diagram` per channel (for propagator priors).
    channel_diagrams: the matrix element's diagram index for each channel (for ``diagram_amp2``
        priors); ``None``: propagator priors.
    scale, factorisation_scale: renormalisation and factorisation scale choices (a number of GeV
        or a name of :data:`mcint.collider.scales.DYNAMIC_SCALES`); ``factorisation_scale``
        defaults to ``scale``.
    alpha_s: ``alpha_s(q2)`` (e.g. ``PDFSet.alpha_s``) passed to the matrix elements that need it.
    cuts: a :class:`~mcint.phasespace.Cuts` on the final state (cut points have value 0).
    """

    def __init__(self, subprocesses: Sequence[Subprocess], phase_spaces: Sequence[PhaseSpace],
                 pdf: Any, *, diagrams: Sequence[Diagram] | None = None,
                 channel_diagrams: Sequence[int] | None = None, scale: float | str = 91.1876,
                 factorisation_scale: float | str | None = None, alpha_s: Any = None,
                 cuts: Any = None, channel_names: Sequence[str] | None = None) -> None:
        if not subprocesses:
            raise ValueError("a HadronicProcess needs at least one subprocess")
        if not phase_spaces:
            raise ValueError("a HadronicProcess needs one phase space per channel")
        dims = {ps.dims for ps in phase_spaces}
        if len(dims) != 1 or any(ps.luminosity is None for ps in phase_spaces):
            raise ValueError("every channel's phase space needs a luminosity map (hadron beams) "
                             f"and the same dimension; got dims {sorted(dims)}")
        n_final = {ps.n_final for ps in phase_spaces} | {len(s.outgoing) for s in subprocesses}
        if len(n_final) != 1:
            raise ValueError(f"subprocesses and phase spaces disagree on the number of final-state "
                             f"particles: {sorted(n_final)}")
        if diagrams is not None and len(diagrams) != len(phase_spaces):
            raise ValueError(f"{len(diagrams)} diagrams for {len(phase_spaces)} channels")
        if channel_diagrams is not None and len(channel_diagrams) != len(phase_spaces):
            raise ValueError(f"{len(channel_diagrams)} channel_diagrams for {len(phase_spaces)} "
                             "channels")
        if len(phase_spaces) > 1 and diagrams is None and channel_diagrams is None:
            raise ValueError("several channels need diagrams or channel_diagrams for their "
                             "prior weights")
        for sp in subprocesses:
            if not sp.flavours:
                raise ValueError("every subprocess needs at least one Flavour")
            if sp.needs_alpha_s and alpha_s is None:
                raise ValueError("a subprocess needs alpha_s: pass alpha_s= (e.g. PDFSet.alpha_s)")
        self.subprocesses = list(subprocesses)
        self.phase_spaces = list(phase_spaces)
        self.pdf = pdf
        self.diagrams = None if diagrams is None else list(diagrams)
        self.channel_diagrams = None if channel_diagrams is None else [int(d) for d in
                                                                       channel_diagrams]
        self.scale = check_scale(scale, "scale")
        self.factorisation_scale = self.scale if factorisation_scale is None else \
            check_scale(factorisation_scale, "factorisation_scale")
        self.alpha_s = alpha_s
        self.cuts = cuts
        self.n_channels = len(self.phase_spaces)
        self.dims = self.phase_spaces[0].dims
        self.sqrt_s = self.phase_spaces[0].sqrt_s
        self.channel_names = list(channel_names) if channel_names is not None else None

    # -- the integrand ----------------------------------------------------------------------
    def _terms(self, mom: np.ndarray, x1: np.ndarray, x2: np.ndarray, amp2: bool
               ) -> tuple[list[tuple[int, Flavour, np.ndarray]], np.ndarray | None]:
        """Per (subprocess, flavour): ``f_a f_b |M|^2 / (x1 x2)``; and the luminosity-weighted
        ``diagram_amp2`` summed over them (when ``amp2``)."""
        muf = scale(self.factorisation_scale, mom)
        mur = muf if self.scale == self.factorisation_scale else scale(self.scale, mom)
        q2f = muf * muf
        lum_cache: dict[tuple[int, int], np.ndarray] = {}

        def xf(pid: int, x: np.ndarray, beam: int) -> np.ndarray:
            key = (pid, beam)
            if key not in lum_cache:
                lum_cache[key] = np.asarray(self.pdf.xfxQ2(pid, x, q2f), dtype=np.float64)
            return lum_cache[key]

        terms: list[tuple[int, Flavour, np.ndarray]] = []
        amp_sum = None
        for k, sp in enumerate(self.subprocesses):
            alpha = None if not sp.needs_alpha_s else np.asarray(self.alpha_s(mur * mur))
            cache: dict[tuple[Any, bool], dict[str, np.ndarray]] = {}
            for fl in sp.flavours:
                key = (fl.index, fl.swap)
                if key not in cache:
                    p = mom[:, [1, 0, *range(2, mom.shape[1])]] if fl.swap else mom
                    kw: dict[str, Any] = {}
                    if fl.index is not None:
                        kw["flavor"] = fl.index
                    if alpha is not None:
                        kw["alpha_s"] = alpha
                    outs = ("matrix_element", "diagram_amp2") if amp2 else ("matrix_element",)
                    cache[key] = sp.matrix_element(p, outputs=outs, **kw)
                lum = xf(fl.a, x1, 1) * xf(fl.b, x2, 2) / (x1 * x2)
                out = cache[key]
                terms.append((k, fl, lum * np.asarray(out["matrix_element"], dtype=np.float64)))
                if amp2:
                    a2 = lum[:, None] * np.asarray(out["diagram_amp2"], dtype=np.float64)
                    amp_sum = a2 if amp_sum is None else amp_sum + a2
        return terms, amp_sum

    def evaluate(self, r: Any, channel: int) -> ChannelEval:
        c = int(channel)
        if not 0 <= c < self.n_channels:
            raise ValueError(f"channel must be in 0..{self.n_channels - 1}, got {channel}")
        r = np.asarray(r, dtype=np.float64)
        mom, x1, x2, lw = self.phase_spaces[c].map(r)
        mom, x1, x2, lw = (np.asarray(a, dtype=np.float64) for a in (mom, x1, x2, lw))
        want_amp2 = self.channel_diagrams is not None and self.n_channels > 1
        terms, amp2 = self._terms(mom, x1, x2, want_amp2)
        total = sum(t for _, _, t in terms)
        s_hat = x1 * x2 * self.sqrt_s ** 2
        value = total * GEV2_TO_PB / (2.0 * s_hat) * np.exp(lw)
        if self.cuts is not None:
            value = value * np.asarray(self.cuts.mask(mom, beams=True), dtype=np.float64)
        return ChannelEval(value=value, alpha_prior=self._prior(mom, amp2),
                           features=self._features(r, c, mom, x1, x2))

    def _prior(self, mom: np.ndarray, amp2: np.ndarray | None) -> np.ndarray | None:
        if self.n_channels == 1:
            return None
        if amp2 is not None:
            a = amp2[:, self.channel_diagrams]
            tot = a.sum(axis=1, keepdims=True)
            if np.all(tot > 0):
                return a / tot
            # where every diagram vanishes, fall back to the propagators (or uniform)
            fall = self._propagator_prior(mom)
            return np.where(tot > 0, a / np.where(tot > 0, tot, 1.0), fall)
        return self._propagator_prior(mom)

    def _propagator_prior(self, mom: np.ndarray) -> np.ndarray:
        if self.diagrams is None:
            return np.full((mom.shape[0], self.n_channels), 1.0 / self.n_channels)
        return np.asarray(channel_prior(self.diagrams, mom), dtype=np.float64)

    def _features(self, r: np.ndarray, c: int, mom: np.ndarray, x1: np.ndarray,
                  x2: np.ndarray) -> np.ndarray:
        if c == 0:
            return r
        return np.asarray(self.phase_spaces[0].map_inverse(mom, x1, x2)[0], dtype=np.float64)

    # -- events ---------------------------------------------------------------------------
    def events(self, r: Any, channel: int = 0, rng: np.random.Generator | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Momenta, PDG ids (the initial state drawn per event by its share of the value),
        ``x1``, ``x2`` and the factorisation scale, for points ``r`` of ``channel``'s chart."""
        r = np.asarray(r, dtype=np.float64)
        mom, x1, x2, _ = (np.asarray(a, dtype=np.float64)
                          for a in self.phase_spaces[int(channel)].map(r))
        terms, _ = self._terms(mom, x1, x2, False)
        w = np.maximum(np.stack([t for _, _, t in terms], axis=1), 0.0)
        tot = w.sum(axis=1, keepdims=True)
        cdf = np.cumsum(w, axis=1) / np.where(tot > 0, tot, 1.0)
        rng = rng or np.random.default_rng(0)
        pick = (cdf < rng.random((len(w), 1))).sum(axis=1).clip(0, len(terms) - 1)
        rows = [[fl.a, fl.b, *self.subprocesses[k].outgoing] for k, fl, _ in terms]
        pdg = np.asarray(rows, dtype=np.int64)[pick]
        return mom, pdg, x1, x2, scale(self.factorisation_scale, mom)

    def __repr__(self) -> str:
        return (f"HadronicProcess({len(self.subprocesses)} subprocesses, {self.n_channels} "
                f"channels, sqrt_s={self.sqrt_s})")
