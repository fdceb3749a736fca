"""A hadron-collider multi-channel integrand from a :class:`~.process.Process`: PDFs, cuts,
one channel per mappable diagram, beam-mirror symmetry groups.

``sigma = int dx1 dx2 f_a(x1, mu_F) f_b(x2, mu_F) |M|^2 / (2 s_hat) dPhi * symmetry_factor``
in pb, for the partons of the process string (parton ``a`` from beam 1 along +z; no flavour
sum, no mirrored initial state: ``g g`` is symmetric anyway). It composes the parts mcint
already has: the channels are :func:`~.channels.to_topology` of the process' diagrams, each a
:class:`~mcint.phasespace.PhaseSpace` with a :class:`~mcint.phasespace.Luminosity` map (the
s-hat sampler follows the root propagator, as ``mcint.collider.card`` does), the cuts are
:class:`mcint.collider.ParticleCuts`, the PDF anything with ``xfxQ2`` (default the **toy**
:class:`mcint.pdf.ToyPDF`, labelled as such in ``repr`` and in the LHE header), and the prior
channel weights MadGraph's propagator products (:func:`mcint.phasespace.channel_prior`).

**Symmetry groups with identical beams.** When both incoming partons are the same flavour from
the same beams, swapping the beams (``z -> -z``) maps the integrand onto itself and a diagram
onto its mirror image (a t-channel chain read from the other end). Mirror channels then share
one flow *exactly* when their charts are mirror images of one another in ``r``: a channel whose
diagram is the mirror of a channel listed before it is generated as the reflection of that
mirror image's chart (same ``r``, momenta reflected, ``x1 <-> x2``), so both channels have the
same integrand as a function of ``r``. Groups also merge channels related by permutations of
identical final-state particles (as in :class:`~.channels.PartonicProcess`).

**Features** are ``(final-state momenta / sqrt(s_hat), log x1, log x2)``: channel-independent,
of order one, exact (no inverse chart), and what :meth:`HadronCollision.events` rebuilds events
from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..channels import ChannelEval, MultiChannelIntegrand
from ..collider.cuts import ParticleCuts
from ..phasespace import Decay, DiagramMapping, Luminosity, PhaseSpace, Propagator, TChain
from ..phasespace import Diagram as Topology
from ..processes.ew import GEV2_TO_PB
from .channels import DEFAULT_NU, _key, _permutations, channel_topologies
from .process import Process

__all__ = ["HadronCollision", "mirror", "WJETS_CUTS"]

#: the seeds' W + 2 jets generator cuts: jets pT > 20 GeV, |eta| < 5, Delta R(j, j) > 0.4
WJETS_CUTS: dict[str, Any] = {"pt_min": {"jet": 20.0}, "eta_max": {"jet": 5.0},
                              "dr_min": {"jet_jet": 0.4}}


def mirror(topology: Topology) -> Topology:
    """The beam-swapped topology: a t-channel chain read from ``p_b``'s end; s-channel
    productions are their own mirror image."""
    root = topology.root
    if isinstance(root, TChain):
        root = TChain(tuple(root.legs[::-1]), tuple(root.propagators[::-1]))
    return Topology(root, list(topology.masses))


def _canonical(topology: Topology, final_pdgs: Sequence[int]) -> str:
    return min(_key(topology.root, perm) for perm in _permutations(final_pdgs))


def _reflect(mom: np.ndarray, x1: np.ndarray, x2: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``z -> -z`` and the beams exchanged (leg 0 stays the parton along +z)."""
    out = mom[:, [1, 0, *range(2, mom.shape[1])], :].copy()
    out[..., 3] = -out[..., 3]
    return out, x2, x1


def _propagator_table(topologies: Sequence[Topology], n_final: int
                      ) -> tuple[np.ndarray, ...]:
    """The distinct propagators of ``topologies``: final-state membership ``(P, k)``, t-channel
    flags ``(P,)``, ``m^2`` and ``(m Gamma)^2`` ``(P,)``, and how often each channel has each
    ``(C, P)``."""
    index: dict[tuple, int] = {}
    rows: list[tuple[tuple[int, ...], bool, float, float]] = []
    counts: list[dict[int, int]] = []
    for t in topologies:
        cnt: dict[int, int] = {}
        for prop, kind, parts in t.propagators():
            key = (tuple(sorted(parts)), kind == "t", prop.mass, prop.width)
            if key not in index:
                index[key] = len(rows)
                rows.append(key)
            cnt[index[key]] = cnt.get(index[key], 0) + 1
        counts.append(cnt)
    members = np.zeros((len(rows), n_final))
    for i, (parts, *_) in enumerate(rows):
        members[i, list(parts)] = 1.0
    is_t = np.array([r[1] for r in rows], dtype=bool)
    m2 = np.array([r[2] ** 2 for r in rows])
    mg2 = np.array([(r[2] * r[3]) ** 2 for r in rows])
    table = np.zeros((len(topologies), len(rows)))
    for c, cnt in enumerate(counts):
        for i, k in cnt.items():
            table[c, i] = k
    return members, is_t, m2, mg2, table


class HadronCollision(MultiChannelIntegrand):
    """``sigma(p p -> process)`` in pb over the channels' unit hypercubes (module docstring).

    Parameters
    ----------
    process: a process string or :class:`Process` (its two partons come from beams 1 and 2).
    sqrt_s: hadronic collider energy (GeV).
    pdf: ``xfxQ2(pid, x, q2)``; default the toy :class:`mcint.pdf.ToyPDF`.
    cuts: a :class:`mcint.collider.ParticleCuts` specification mapping (e.g.
        :data:`WJETS_CUTS`) or ``None``.
    mu_f: fixed factorisation scale (GeV); ``alpha_s`` is the process' fixed one.
    sqrt_s_hat_min: lowest partonic energy sampled (GeV); it must not remove events the cuts
        keep (default: the sum of the jets' ``pt_min``, since ``s_hat >= (sum_i |pT_i|)^2``).
    nu: power of massless propagators' mappings; ``mirror_groups``: group beam-mirror channels
        (only when both partons are the same flavour).
    cut_aware: build the particles' pT cuts into the charts
        (:class:`~mcint.phasespace.DiagramMapping`'s ``pt_min``: a jet emitted from a beam is
        drawn only above its cut); the integral is the same, fewer points are wasted.
    """

    def __init__(self, process: str | Process, sqrt_s: float = 13000.0, pdf: Any = None, *,
                 cuts: Mapping[str, Any] | None = None, mu_f: float = 91.1876,
                 sqrt_s_hat_min: float | None = None, nu: float | None = DEFAULT_NU,
                 mirror_groups: bool = True, cut_aware: bool = True) -> None:
        from ..pdf import ToyPDF

        self.process = process if isinstance(process, Process) else Process(process)
        if self.process.n_incoming != 2:
            raise ValueError("a hadron collision needs two incoming partons")
        self.sqrt_s, self.mu_f = float(sqrt_s), float(mu_f)
        if not (math.isfinite(self.sqrt_s) and self.sqrt_s > 0 and math.isfinite(self.mu_f)
                and self.mu_f > 0):
            raise ValueError(f"sqrt_s and mu_f must be positive, got {sqrt_s}, {mu_f}")
        self.pdf = pdf if pdf is not None else ToyPDF()
        self.outgoing = tuple(self.process.particles[2:])
        self.cut_spec = dict(cuts) if cuts else {}
        self.cuts = ParticleCuts(self.outgoing, self.cut_spec) if self.cut_spec else None
        if sqrt_s_hat_min is None:
            n_jets = len(self.cuts.members["jet"]) if self.cuts else 0
            sqrt_s_hat_min = n_jets * float(self.cut_spec.get("pt_min", {}).get("jet", 0.0))
        if not sqrt_s_hat_min > 0:
            raise ValueError("a massless final state needs sqrt_s_hat_min > 0 (or jet pT cuts)")
        self.sqrt_s_hat_min = float(sqrt_s_hat_min)
        a, b = self.process.particles[:2]
        self.mirror_symmetric = bool(mirror_groups) and a == b
        self.pt_min = self.cuts.particle_pt_min() if (cut_aware and self.cuts) else {}
        self.diagrams, self.topologies, self.skipped = channel_topologies(self.process, nu)
        self._build_channels()
        self.n_channels = len(self.topologies)
        self.dims = self.phase_spaces[0].dims
        self.channel_names = [str(d) for d in self.diagrams]
        self.features_dim = 4 * len(self.outgoing) + 2
        self._props = _propagator_table(self.topologies, len(self.outgoing))
        self._norm = self.process.symmetry_factor * GEV2_TO_PB
        #: points whose |M|^2 was not finite (set to zero; see :meth:`weight`)
        self.nonfinite = 0

    def _build_channels(self) -> None:
        """Charts, reflection flags and groups (see the module docstring)."""
        pdgs = self.outgoing
        index: dict[str, int] = {}
        self.reflected: list[bool] = []
        self.phase_spaces: list[PhaseSpace] = []
        self.groups: list[int] = []
        s_hadronic = self.sqrt_s ** 2
        for t in self.topologies:
            key, chart, flip = _canonical(t, pdgs), t, False
            if self.mirror_symmetric:
                m_key = _canonical(mirror(t), pdgs)
                # the member whose mirror image has the smaller key uses the reflection of that
                # image's chart: both members of a pair then stand on the same canonical chart
                if m_key < key:
                    key, chart, flip = m_key, mirror(t), True
            self.groups.append(index.setdefault(key, len(index)))
            root = chart.root
            sampler = root.propagator.sampler() if isinstance(root, Decay) else \
                Propagator(nu=1.0).sampler()
            lum = Luminosity(s_hadronic, sampler, self.sqrt_s_hat_min ** 2 * (1 + 1e-12))
            self.phase_spaces.append(PhaseSpace(DiagramMapping(chart, pt_min=self.pt_min),
                                                self.sqrt_s, lum))
            self.reflected.append(flip)

    # -- the integrand ----------------------------------------------------------------------
    def point(self, r: Any, channel: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                    np.ndarray]:
        """``(momenta (n, 2 + k, 4), x1, x2, log_weight)`` of channel ``channel``'s chart."""
        c = int(channel)
        if not 0 <= c < self.n_channels:
            raise ValueError(f"channel must be in 0..{self.n_channels - 1}, got {channel}")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            mom, x1, x2, lw = (np.asarray(v, dtype=np.float64) for v in
                               self.phase_spaces[c].map(np.asarray(r, dtype=np.float64)))
        if self.reflected[c]:
            mom, x1, x2 = _reflect(mom, x1, x2)
        return mom, x1, x2, lw

    def weight(self, mom: np.ndarray, x1: np.ndarray, x2: np.ndarray,
               valid: np.ndarray | None = None) -> np.ndarray:
        """``dsigma / dPhi dx1 dx2`` in pb (cuts applied) at lab-frame ``mom``; zero where
        ``valid`` is False."""
        a, b = self.process.particles[:2]
        q2 = self.mu_f ** 2
        lum = (np.asarray(self.pdf.xfxQ2(a, x1, q2), dtype=np.float64)
               * np.asarray(self.pdf.xfxQ2(b, x2, q2), dtype=np.float64) / (x1 * x2))
        s_hat = x1 * x2 * self.sqrt_s ** 2
        keep = np.ones(len(mom), dtype=bool) if valid is None else np.asarray(valid, bool)
        if self.cuts is not None:
            keep = keep & self.cuts.mask(mom)
        out = np.zeros(len(mom))
        if keep.any():  # |M|^2 only where the cuts keep the point (and collinear poles are cut)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                me = np.asarray(self.process.matrix_element(mom[keep]), dtype=np.float64)
            # exactly collinear massless pairs drawn at the edge of a chart (a propagator at
            # p^2 = 0 in floating point: measure zero) give inf/NaN: counted, and zero
            bad = ~np.isfinite(me)
            if bad.any():
                self.nonfinite += int(bad.sum())
                me = np.where(bad, 0.0, me)
            out[keep] = lum[keep] * me * self._norm / (2.0 * s_hat[keep])
        return out

    def evaluate(self, r: Any, channel: int) -> ChannelEval:
        return self._at(*self.point(r, channel))

    def evaluate_batch(self, r: Any, channels: Any) -> ChannelEval:
        """:meth:`evaluate` for rows of several channels (``channels``: each row's channel): the
        charts map their own rows, then PDFs, cuts, matrix element, priors and features run
        once for the whole batch (one call instead of one per channel)."""
        r = np.asarray(r, dtype=np.float64)
        ch = np.asarray(channels)
        if ch.shape != (len(r),):
            raise ValueError(f"channels must have shape ({len(r)},), got {ch.shape}")
        mom = np.empty((len(r), 2 + len(self.outgoing), 4))
        x1, x2, lw = np.empty(len(r)), np.empty(len(r)), np.empty(len(r))
        for c in np.unique(ch):
            m = ch == c
            mom[m], x1[m], x2[m], lw[m] = self.point(r[m], int(c))
        return self._at(mom, x1, x2, lw)

    def _at(self, mom: np.ndarray, x1: np.ndarray, x2: np.ndarray, lw: np.ndarray
            ) -> ChannelEval:
        # a zero-weight chart point (log_weight -inf: PhaseSpace.map gives it the chart centre's
        # finite momenta) contributes nothing: its matrix element is not evaluated
        ok = np.isfinite(lw)
        value = self.weight(mom, x1, x2, ok) * np.exp(lw)
        return ChannelEval(value=value, alpha_prior=self.prior(mom),
                           features=self.features(mom, x1, x2))

    def prior(self, mom: np.ndarray) -> np.ndarray | None:
        """MadGraph's propagator-product channel weights ``(n, C)`` of each channel's own
        diagram: :func:`mcint.phasespace.channel_prior`, vectorised over channels (the
        distinct propagators are evaluated once and summed per channel by one matrix product,
        so hundreds of channels cost no Python loop per evaluation)."""
        if self.n_channels == 1:
            return None
        members, is_t, m2, mg2, counts = self._props
        q = np.einsum("pk,nkd->npd", members, mom[:, 2:, :])
        q = np.where(is_t[None, :, None], mom[:, :1, :] - q, q)
        d = q[..., 0] ** 2 - (q[..., 1:] ** 2).sum(axis=-1) - m2
        with np.errstate(invalid="ignore", over="ignore"):
            lw = -np.log(np.maximum(d * d + mg2, 1e-300)) @ counts.T  # (n, C)
            e = np.exp(lw - lw.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

    def features(self, mom: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        """``(n, 4 k + 2)``: final-state momenta / sqrt(s_hat), log x1, log x2."""
        rs = np.sqrt(x1 * x2) * self.sqrt_s
        fs = mom[:, 2:, :].reshape(len(mom), -1) / rs[:, None]
        return np.concatenate([fs, np.log(x1)[:, None], np.log(x2)[:, None]], axis=1)

    def momenta(self, x: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lab-frame momenta, ``x1``, ``x2`` rebuilt from :meth:`features` ``x``.

        Samplers may hand the features back in float32 (7 digits): the final state is made
        massless again (``E = |p|``), its transverse momentum (the rounding residual) is boosted
        away, and the beams are set from ``sum (E +- pz)``, so events conserve momentum and are
        on shell to float64 rounding whatever the features' precision."""
        f = np.asarray(x, dtype=np.float64)
        k = len(self.outgoing)
        if f.ndim != 2 or f.shape[1] != 4 * k + 2:
            raise ValueError(f"features must have shape (n, {4 * k + 2}), got {f.shape}")
        rs = np.sqrt(np.exp(f[:, -2] + f[:, -1])) * self.sqrt_s
        vec = f[:, :-2].reshape(len(f), k, 4)[..., 1:] * rs[:, None, None]
        e = np.linalg.norm(vec, axis=-1)
        beta = np.zeros((len(f), 3))
        beta[:, :2] = -vec[..., :2].sum(axis=1) / e.sum(axis=1)[:, None]
        b2 = (beta * beta).sum(axis=1)
        gamma = 1.0 / np.sqrt(1.0 - b2)
        bp = (vec * beta[:, None, :]).sum(axis=-1)
        # gamma - 1 = b2 gamma^2 / (gamma + 1): no cancellation for the tiny boosts used here
        coef = np.where(b2 > 0, gamma * gamma / (gamma + 1.0), 0.0)[:, None] * bp \
            + gamma[:, None] * e
        fs = np.empty((len(f), k, 4))
        fs[..., 0] = gamma[:, None] * (e + bp)
        fs[..., 1:] = vec + coef[..., None] * beta[:, None, :]
        plus = (fs[..., 0] + fs[..., 3]).sum(axis=1)
        minus = (fs[..., 0] - fs[..., 3]).sum(axis=1)
        mom = np.zeros((len(f), k + 2, 4))
        mom[:, 0, 0] = mom[:, 0, 3] = 0.5 * plus
        mom[:, 1, 0], mom[:, 1, 3] = 0.5 * minus, -0.5 * minus
        mom[:, 2:] = fs
        return mom, plus / self.sqrt_s, minus / self.sqrt_s

    def events(self, x: Any, channel: int = 0, rng: Any = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(momenta, pdg, x1, x2, scale)`` of sampled points ``x`` (their features)."""
        mom, x1, x2 = self.momenta(x)
        return (mom, np.asarray(self.process.particles, dtype=np.int64), x1, x2,
                np.full(len(mom), self.mu_f))

    def __repr__(self) -> str:
        pdf = "TOY PDF" if getattr(self.pdf, "is_toy", False) else repr(self.pdf)
        return (f"HadronCollision({self.process.process!r}, sqrt_s={self.sqrt_s}, {pdf}, "
                f"channels={self.n_channels}, groups={len(set(self.groups))}, "
                f"skipped={len(self.skipped)})")
