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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..channels import ChannelEval, MultiChannelIntegrand
from ..phasespace import PhaseSpace, channel_prior
from ..phasespace.topology import Diagram
from ..processes.ew import GEV2_TO_PB
from .color import check_color_flow
from .scales import check_scale, scale

__all__ = ["EventRecord", "Flavour", "HadronicProcess", "Subprocess", "mirrored"]


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

    UMAMI libraries choose a colour flow and a helicity configuration per event (from uniform
    random numbers) but return only their *indices*; what an index means is the process
    generator's bookkeeping (madspace's ``SubprocArgs.color_flows`` / ``helicities``), so it is
    given here, in the library's leg order: ``color_flows[c]`` is the ``(colour, anticolour)``
    tag pair of every leg for COLOR_INDEX ``c``, ``helicities[h]`` the helicity of every leg
    for HELICITY_INDEX ``h``. Without them events get the default colour line of a q qbar
    initial state and SPINUP 9 (unknown).
    """

    matrix_element: Callable[..., dict[str, np.ndarray]]
    flavours: Sequence[Flavour]
    outgoing: Sequence[int]
    needs_alpha_s: bool = False
    color_flows: Any = None
    helicities: Any = None
    _legs: int = field(init=False, repr=False, default=0)

    def __post_init__(self) -> None:
        legs = 2 + len(self.outgoing)
        self._legs = legs
        count = getattr(self.matrix_element, "color_count", None)
        if self.color_flows is not None:
            cf = np.asarray(self.color_flows)
            if cf.ndim != 3 or cf.shape[1:] != (legs, 2) or cf.shape[0] == 0 or \
                    not np.issubdtype(cf.dtype, np.integer):
                raise ValueError(f"color_flows must list, per colour index, {legs} [colour, "
                                 f"anticolour] integer pairs (one per leg); got shape {cf.shape}")
            if count is not None and count != cf.shape[0]:
                raise ValueError(f"color_flows has {cf.shape[0]} flows, the matrix element "
                                 f"{count} (COLOR_COUNT)")
            for fl in self.flavours:
                pdg = [fl.b, fl.a] if fl.swap else [fl.a, fl.b]
                for c, flow in enumerate(cf):
                    try:
                        check_color_flow(pdg + list(self.outgoing), [True, True] +
                                         [False] * len(self.outgoing), flow)
                    except ValueError as exc:
                        raise ValueError(f"color_flows[{c}] for initial state {fl.a} {fl.b}: "
                                         f"{exc}") from None
            self.color_flows = cf.astype(np.int64)
        count = getattr(self.matrix_element, "helicity_count", None)
        if self.helicities is not None:
            h = np.asarray(self.helicities, dtype=np.float64)
            if h.ndim != 2 or h.shape[1] != legs or h.shape[0] == 0 or \
                    not np.all((np.abs(h) <= 1) | (h == 9)):
                raise ValueError(f"helicities must list, per helicity index, {legs} helicities "
                                 f"in [-1, 1] (or 9: unknown); got {self.helicities!r}")
            if count is not None and count != h.shape[0]:
                raise ValueError(f"helicities has {h.shape[0]} rows, the matrix element {count} "
                                 "(HELICITY_COUNT)")
            self.helicities = h


@dataclass
class EventRecord:
    """What an event file needs of a batch of points (see :meth:`HadronicProcess.record`):
    momenta ``(n, 2 + k, 4)``, PDG ids ``(n, 2 + k)``, ``x1``, ``x2``, the factorisation scale
    ``muf`` and ``alpha_s(muR)`` (``None`` without a running coupling), colour tags
    ``(n, 2 + k, 2)`` (``None``: not known) and helicities ``(n, 2 + k)`` (9: unknown), in the
    event's order (beam 1's parton first)."""

    momenta: np.ndarray
    pdg: np.ndarray
    x1: np.ndarray
    x2: np.ndarray
    muf: np.ndarray
    alpha_s: np.ndarray | None
    colors: np.ndarray | None
    helicities: np.ndarray


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
        if channel_diagrams is not None and any(
                getattr(sp.matrix_element, "diagram_count", 0) is None for sp in subprocesses):
            raise ValueError("channel_diagrams (|M_i|^2 priors) need DIAGRAM_AMP2, which a "
                             "matrix element does not give (diagram_count None): pass "
                             "diagrams= alone for the propagator priors")
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
        return self._at(mom, x1, x2, lw, self._features(r, c, mom, x1, x2))

    def evaluate_batch(self, r: Any, channels: Any) -> ChannelEval:
        """:meth:`evaluate` for rows of several channels (``channels``: each row's channel):
        the charts map their own rows, the libraries, PDFs, cuts and priors run once for the
        whole batch (one matrix-element call per subprocess instead of one per channel)."""
        r = np.asarray(r, dtype=np.float64)
        ch = np.asarray(channels)
        if ch.shape != (len(r),):
            raise ValueError(f"channels must have shape ({len(r)},), got {ch.shape}")
        parts = {}
        for c in np.unique(ch):
            if not 0 <= c < self.n_channels:
                raise ValueError(f"channel must be in 0..{self.n_channels - 1}, got {c}")
            m = ch == c
            got = tuple(np.asarray(a, dtype=np.float64)
                        for a in self.phase_spaces[int(c)].map(r[m]))
            parts[int(c)] = (m, got, self._features(r[m], int(c), *got[:3]))
        first = next(iter(parts.values()))
        mom = np.empty((len(r),) + first[1][0].shape[1:])
        x1, x2, lw = np.empty(len(r)), np.empty(len(r)), np.empty(len(r))
        feats = np.empty((len(r), first[2].shape[1]))
        for m, (pm, p1, p2, pl), pf in parts.values():
            mom[m], x1[m], x2[m], lw[m], feats[m] = pm, p1, p2, pl, pf
        return self._at(mom, x1, x2, lw, feats)

    def _at(self, mom: np.ndarray, x1: np.ndarray, x2: np.ndarray, lw: np.ndarray,
            features: np.ndarray) -> ChannelEval:
        want_amp2 = self.channel_diagrams is not None and self.n_channels > 1
        terms, amp2 = self._terms(mom, x1, x2, want_amp2)
        total = sum(t for _, _, t in terms)
        s_hat = x1 * x2 * self.sqrt_s ** 2
        value = total * GEV2_TO_PB / (2.0 * s_hat) * np.exp(lw)
        if self.cuts is not None:
            value = value * np.asarray(self.cuts.mask(mom, beams=True), dtype=np.float64)
        return ChannelEval(value=value, alpha_prior=self._prior(mom, amp2), features=features)

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
        rec = self.record(r, channel, rng, details=False)
        return rec.momenta, rec.pdg, rec.x1, rec.x2, rec.muf

    def record(self, r: Any, channel: int = 0, rng: np.random.Generator | None = None,
               details: bool = True) -> EventRecord:
        """The :class:`EventRecord` of points ``r`` of ``channel``'s chart: each event draws
        its initial state by its share of the value, then (``details``) the library draws its
        colour flow and helicities from uniform random numbers (RANDOM_COLOR,
        RANDOM_HELICITY), which the subprocess's tables turn into tags and SPINUP."""
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
        muf = scale(self.factorisation_scale, mom)
        mur = muf if self.scale == self.factorisation_scale else scale(self.scale, mom)
        a_s = None if self.alpha_s is None else np.asarray(self.alpha_s(mur * mur), np.float64)
        n, legs = mom.shape[:2]
        colors = np.zeros((n, legs, 2), dtype=np.int64)
        hel = np.full((n, legs), 9.0)
        known = np.zeros(n, dtype=bool)
        if details:
            for t, (k, fl, _) in enumerate(terms):
                sel = np.flatnonzero(pick == t)
                sp = self.subprocesses[k]
                if sel.size == 0 or (sp.color_flows is None and sp.helicities is None):
                    continue
                c, h = self._choose(sp, fl, mom[sel], None if a_s is None else a_s[sel], rng)
                order = [1, 0, *range(2, legs)] if fl.swap else list(range(legs))
                if c is not None:
                    colors[sel[:, None], order] = sp.color_flows[c]
                    known[sel] = True
                if h is not None:
                    hel[sel[:, None], order] = sp.helicities[h]
        return EventRecord(mom, pdg, x1, x2, muf, a_s, colors if known.all() else
                           (None if not known.any() else _fill_default(colors, known, pdg)),
                           hel)

    @staticmethod
    def _choose(sp: Subprocess, fl: Flavour, mom: np.ndarray, a_s: np.ndarray | None,
                rng: np.random.Generator) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The library's colour and helicity indices for these events (one call)."""
        p = mom[:, [1, 0, *range(2, mom.shape[1])]] if fl.swap else mom
        kw: dict[str, Any] = {}
        outs = []
        if sp.color_flows is not None:
            kw["random_color"] = rng.random(len(p))
            outs.append("color_index")
        if sp.helicities is not None:
            kw["random_helicity"] = rng.random(len(p))
            outs.append("helicity_index")
        if fl.index is not None:
            kw["flavor"] = fl.index
        if sp.needs_alpha_s and a_s is not None:
            kw["alpha_s"] = a_s
        out = sp.matrix_element(p, outputs=tuple(outs), **kw)
        res = []
        for name, table in (("color_index", sp.color_flows), ("helicity_index", sp.helicities)):
            if table is None:
                res.append(None)
                continue
            idx = np.asarray(out[name], dtype=np.int64)
            if np.any((idx < 0) | (idx >= len(table))):
                bad = idx[(idx < 0) | (idx >= len(table))][0]
                raise ValueError(f"the matrix element returned {name} {bad}, outside the "
                                 f"subprocess's table of {len(table)}")
            res.append(idx)
        return res[0], res[1]

    def __repr__(self) -> str:
        return (f"HadronicProcess({len(self.subprocesses)} subprocesses, {self.n_channels} "
                f"channels, sqrt_s={self.sqrt_s})")


def _fill_default(colors: np.ndarray, known: np.ndarray, pdg: np.ndarray) -> np.ndarray:
    """``colors`` where ``known``; the default q qbar line (as ``ParticleEvents``) elsewhere."""
    from ..events.particles import _default_colors

    status = np.array([-1, -1] + [1] * (pdg.shape[1] - 2))
    return np.where(known[:, None, None], colors, _default_colors(pdg, status[None, :]))
