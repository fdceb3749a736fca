"""Drell–Yan ``p p -> l+ l-`` through gamma, Z and a Z' as a 3-channel integrand.

Channel ``c`` draws ``s_hat`` with the mapping flattening its propagator (photon: ``1/s``; Z,
Z': Breit–Wigner), the rapidity flat and the lepton angles flat in the partonic c.m. frame
(4 random numbers). The prior channel weights are MadGraph's ``alpha_c ∝ 1/|s_hat - M_c^2 + i
M_c Gamma_c|^2``; the channel-independent features are ``(log s_hat scaled to [0, 1], r_y,
r_cos, r_phi)``, which are exactly the photon channel's (channel 0's) random numbers, so
``events(features, 0)`` rebuilds an event from its features. Values are in pb.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ..channels import ChannelEval, MultiChannelIntegrand
from ..pdf import ToyPDF
from ..phasespace import (
    BreitWigner,
    Decay,
    Diagram,
    DiagramMapping,
    Luminosity,
    PhaseSpace,
    PowerLaw,
    Propagator,
    channel_prior,
)
from ..phasespace.kinematics import dot
from .ew import DOWN, GEV2_TO_PB, LEPTON, UP, EWParams, amplitudes, sigma_total

__all__ = ["DrellYan"]

_UP_IDS, _DOWN_IDS = (2, 4), (1, 3, 5)


class DrellYan(MultiChannelIntegrand):
    """``sigma(p p -> l+ l-)`` with ``m_min < m_ll < m_max``, in pb, over ``[0, 1]^4``.

    Parameters
    ----------
    sqrt_s: hadronic c.m. energy (GeV).
    m_min, m_max: dilepton mass window (GeV).
    zprime_mass, zprime_width: a sequential Z' (Z couplings); ``zprime_mass=0`` drops it (and
        its channel).
    pdf: anything with ``xfxQ2(pid, x, q2)``; default :class:`mcint.pdf.ToyPDF` (a toy!).
    params: :class:`~mcint.processes.ew.EWParams` (the Z' fields are overridden).

    ``evaluate(r, c)`` -> :class:`~mcint.channels.ChannelEval`; ``exact()`` is a Gauss–Legendre
    quadrature of the analytic partonic cross section (rel. accuracy ~1e-8);
    ``events(r, c, rng)`` -> ``(momenta (n, 4, 4), pdg (n, 4), x1, x2, scale)`` with particles
    ``parton(+z), parton(-z), l-, l+`` and the flavour drawn from its share of ``|M|^2 f f``.
    """

    channel_names = ("photon", "Z", "Zprime")

    def __init__(self, sqrt_s: float = 13000.0, m_min: float = 60.0, m_max: float = 2000.0,
                 zprime_mass: float = 1000.0, zprime_width: float = 30.0, pdf: Any = None,
                 params: EWParams | None = None) -> None:
        sqrt_s, m_min, m_max = float(sqrt_s), float(m_min), float(m_max)
        if not (0 < m_min < m_max <= sqrt_s):
            raise ValueError(f"need 0 < m_min < m_max <= sqrt_s, got m_min={m_min}, "
                             f"m_max={m_max}, sqrt_s={sqrt_s}")
        p = params or EWParams()
        self.params = EWParams(p.alpha, p.sw2, p.mz, p.wz, True, float(zprime_mass),
                               float(zprime_width))
        self.sqrt_s, self.m_min, self.m_max = sqrt_s, m_min, m_max
        self.pdf = pdf if pdf is not None else ToyPDF()
        big_s, lo, hi = sqrt_s ** 2, m_min ** 2, m_max ** 2
        props = [(Propagator(), PowerLaw(1.0)),
                 (Propagator(p.mz, p.wz), BreitWigner(p.mz, p.wz))]
        if zprime_mass > 0:
            props.append((Propagator(zprime_mass, zprime_width),
                          BreitWigner(zprime_mass, zprime_width)))
        self.diagrams = [Diagram(Decay((0, 1), pr), [0.0, 0.0]) for pr, _ in props]
        self.phase_spaces = [PhaseSpace(DiagramMapping(d), sqrt_s, Luminosity(big_s, smp, lo, hi))
                             for d, (_, smp) in zip(self.diagrams, props)]
        self.n_channels = len(self.diagrams)
        self.channel_names = DrellYan.channel_names[:self.n_channels]
        self.dims = 4
        self._log_range = math.log(hi / lo)

    # -- physics -------------------------------------------------------------------------
    def _parton_lumis(self, x1: Any, x2: Any, q2: Any) -> dict[tuple[int, int], Any]:
        out = {}
        for q in _UP_IDS + _DOWN_IDS:
            fq1, fa1 = self.pdf.xfxQ2(q, x1, q2), self.pdf.xfxQ2(-q, x1, q2)
            fq2, fa2 = self.pdf.xfxQ2(q, x2, q2), self.pdf.xfxQ2(-q, x2, q2)
            out[(q, -q)] = fq1 * fa2
            out[(-q, q)] = fa1 * fq2
        return out

    def _terms(self, mom: Any, x1: Any, x2: Any) -> tuple[Any, dict]:
        s_hat = x1 * x2 * self.sqrt_s ** 2
        # massless legs: t = -2 p1.p3 has no cancellation, unlike (p1 - p3)^2
        t = -2 * dot(mom[:, 0, :], mom[:, 2, :])
        u = -2 * dot(mom[:, 0, :], mom[:, 3, :])
        amps = {"u": amplitudes(s_hat, UP, LEPTON, self.params),
                "d": amplitudes(s_hat, DOWN, LEPTON, self.params)}
        lumis = self._parton_lumis(x1, x2, s_hat)
        terms = {}
        for (a, b), lum in lumis.items():
            same, mixed = amps["u" if abs(a) in _UP_IDS else "d"]
            # t is measured from the parton along +z; for an antiquark there, swap t <-> u
            me = same * u * u + mixed * t * t if a > 0 else same * t * t + mixed * u * u
            terms[(a, b)] = lum * me
        norm = GEV2_TO_PB / (3.0 * 2.0 * s_hat * x1 * x2)  # colour average, flux, xf -> f
        return norm, terms

    def evaluate(self, r: Any, channel: int) -> ChannelEval:
        if not 0 <= int(channel) < self.n_channels:
            raise ValueError(f"channel must be in 0..{self.n_channels - 1}, got {channel}")
        ps = self.phase_spaces[int(channel)]
        mom, x1, x2, lw = ps.map(r)
        xp = array_namespace(mom)
        norm, terms = self._terms(mom, x1, x2)
        total = sum(terms.values())
        value = total * norm * xp.exp(lw)
        s_hat = x1 * x2 * self.sqrt_s ** 2
        feat0 = (xp.log(s_hat) - 2 * math.log(self.m_min)) / self._log_range
        features = xp.concat([feat0[:, None], r[:, 1:]], axis=1)
        return ChannelEval(value=value, alpha_prior=channel_prior(self.diagrams, mom),
                           features=features)

    def events(self, r: Any, channel: int, rng: np.random.Generator | None = None
               ) -> tuple[Any, np.ndarray, Any, Any, Any]:
        """Momenta, PDG ids (flavour drawn per event), x1, x2 and the scale ``m_ll``."""
        ps = self.phase_spaces[int(channel)]
        mom, x1, x2, _ = ps.map(r)
        xp = array_namespace(mom)
        _, terms = self._terms(mom, x1, x2)
        keys = list(terms)
        w = np.stack([np.asarray(_host(terms[k]), dtype=np.float64) for k in keys], axis=1)
        w = np.maximum(w, 0.0)
        tot = w.sum(axis=1, keepdims=True)
        cdf = np.cumsum(w, axis=1) / np.where(tot > 0, tot, 1.0)
        rng = rng or np.random.default_rng(0)
        pick = (cdf < rng.random((len(w), 1))).sum(axis=1).clip(0, len(keys) - 1)
        pdg = np.array([[keys[i][0], keys[i][1], 11, -11] for i in pick], dtype=np.int64)
        scale = xp.sqrt(x1 * x2) * self.sqrt_s
        return mom, pdg, x1, x2, scale

    def sigma_hat(self, s_hat: np.ndarray, up: bool) -> np.ndarray:
        """Partonic ``sigma(q qbar -> l+ l-)`` in pb (colour-averaged)."""
        s = np.asarray(s_hat, dtype=np.float64)
        return sigma_total(s, UP if up else DOWN, LEPTON, self.params) * GEV2_TO_PB / 3.0

    def mass_breaks(self) -> np.ndarray:
        """``m_min``, ``m_max`` and points around each resonance (0, 1, 3, 10, 30 widths): the
        edges between which the mass distribution is smooth enough for Gauss-Legendre."""
        breaks = {self.m_min, self.m_max}
        for m, w in self.params.bosons():
            for k in (-30, -10, -3, -1, 0, 1, 3, 10, 30):
                if self.m_min < m + k * w < self.m_max:
                    breaks.add(m + k * w)
        return np.array(sorted(breaks))

    def d2sigma_dm_dy(self, m: Any, y: Any) -> np.ndarray:
        """``d^2 sigma / dm_ll dy_ll`` in pb/GeV at dilepton mass ``m`` and rapidity ``y``
        (broadcast; zero outside the mass window and the kinematic limit ``|y| < log(sqrt_s /
        m)``), from the analytic partonic cross section: ``sum_q f f sigma_hat 2 m / s``."""
        m, y = np.broadcast_arrays(np.asarray(m, np.float64), np.asarray(y, np.float64))
        big_s = self.sqrt_s ** 2
        tau = m * m / big_s
        ok = (m >= self.m_min) & (m <= self.m_max) & (np.abs(y) < -0.5 * np.log(tau))
        mm, yy = np.where(ok, m, self.m_min), np.where(ok, y, 0.0)
        s_hat = mm * mm
        x1 = np.sqrt(s_hat / big_s) * np.exp(yy)
        x2 = np.sqrt(s_hat / big_s) * np.exp(-yy)
        lum = self._parton_lumis(x1, x2, s_hat)
        up = sum(v for k, v in lum.items() if abs(k[0]) in _UP_IDS)
        dn = sum(v for k, v in lum.items() if abs(k[0]) in _DOWN_IDS)
        sig_u = self.sigma_hat(s_hat, True)
        sig_d = self.sigma_hat(s_hat, False)
        # d tau dy = 2 m dm dy / S; f(x) = xf(x) / x
        out = (up * sig_u + dn * sig_d) / (x1 * x2) * 2 * mm / big_s
        return np.where(ok, out, 0.0)

    def dsigma_dm(self, m: Any, n_y: int = 48) -> np.ndarray:
        """``d sigma / dm_ll`` in pb/GeV (rapidity integrated by Gauss-Legendre)."""
        m = np.atleast_1d(np.asarray(m, np.float64))
        yx, yw = np.polynomial.legendre.leggauss(n_y)
        ymax = -0.5 * np.log(np.clip(m * m / self.sqrt_s ** 2, 1e-300, 1.0))
        y = ymax[:, None] * yx[None, :]
        return (self.d2sigma_dm_dy(m[:, None], y) * yw[None, :]).sum(axis=1) * ymax

    def dsigma_dy(self, y: Any, n_mass: int = 24) -> np.ndarray:
        """``d sigma / dy_ll`` in pb (mass integrated by Gauss-Legendre between
        :meth:`mass_breaks`)."""
        y = np.atleast_1d(np.asarray(y, np.float64))
        edges = self.mass_breaks()
        gx, gw = np.polynomial.legendre.leggauss(n_mass)
        total = np.zeros_like(y)
        for a, b in zip(edges[:-1], edges[1:]):
            m = a + (b - a) * (gx + 1) / 2
            total += (self.d2sigma_dm_dy(m[None, :], y[:, None]) * (gw * (b - a) / 2)).sum(1)
        return total

    def exact(self, n_mass: int = 64, n_y: int = 48) -> float:
        """Gauss–Legendre quadrature in ``(m_ll, y)`` with breaks around the resonances."""
        edges = self.mass_breaks()
        gx, gw = np.polynomial.legendre.leggauss(n_mass)
        total = 0.0
        for a, b in zip(edges[:-1], edges[1:]):
            m = a + (b - a) * (gx + 1) / 2
            total += float(np.sum(gw * (b - a) / 2 * self.dsigma_dm(m, n_y)))
        return total

    def exact_distributions(self) -> dict[str, tuple[Any, tuple[float, float]]]:
        """``{observable: (d sigma / d obs in pb per unit, (lo, hi))}`` for event plots
        (:func:`mcint.plots.plot_events`): the dilepton mass ``m_34`` and rapidity ``y_34``
        (particles 3, 4 = l-, l+ in the event record)."""
        y_max = math.log(self.sqrt_s / self.m_min)
        return {"m_34": (self.dsigma_dm, (self.m_min, self.m_max)),
                "y_34": (self.dsigma_dy, (-y_max, y_max))}

    def __repr__(self) -> str:
        return (f"DrellYan(sqrt_s={self.sqrt_s}, m in [{self.m_min}, {self.m_max}], "
                f"Z'={self.params.zprime_mass})")


def _host(a: Any) -> np.ndarray:
    from ..backends.base import _to_numpy_any

    return _to_numpy_any(a)
