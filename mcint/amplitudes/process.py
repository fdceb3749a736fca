"""A tree-level process: parse it, plan its recursion and colour sum once, evaluate |M|^2."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device

from . import colour, fourquark
from .couplings import EWParameters, strong_coupling
from .diagrams import Diagram, diagrams
from .helicity import configurations
from .particles import BY_PDG, GLUON, W_PLUS, conjugate, parse_process, symmetry_factor
from .recursion import Program
from .spinors import (
    complex_of,
    components,
    mdot,
    outgoing_antiquark,
    outgoing_quark,
    polarisation,
    weyl_spinors,
)

__all__ = ["Process"]


def _kind(pdg: int) -> str:
    """All-outgoing leg kind: gluon, (anti)quark, (anti)lepton."""
    if pdg == GLUON:
        return "g"
    if abs(pdg) <= 6:
        return "q" if pdg > 0 else "qb"
    return "l" if pdg > 0 else "lb"


def _on_host(p: Any) -> bool:
    """Whether ``p`` lives in host memory (CPU), where cache-sized chunks pay off."""
    dev = device(p)
    name = str(getattr(dev, "type", dev)).lower()
    return name == "cpu" or "cpu_device" in name


class Process:
    """Full-colour, helicity-summed tree-level ``|M|^2`` of a QCD or W process.

    ``Process("g g > g g g", alpha_s=0.118)``; particle names ``g u d s c b`` (``u~`` ...),
    ``e+ e- ve ve~ mu+ mu- vm vm~ ta+ ta- vt vt~`` (MadGraph spelling; a W is written as its
    decay products, e.g. ``"u d~ > e+ ve g"``). Supported: pure gluon processes (4 to 6 legs),
    one quark line with up to 4 gluons, one quark line with a W (charged current, unit CKM)
    decaying to a lepton pair, with up to 4 gluons, and two quark lines without gluons
    (``u d > u d``, ``u u~ > u u~``, ...; pure QCD, see :mod:`.fourquark`).

    Attributes: ``particles`` (PDG ids in the order of the string), ``symmetry_factor``
    (``1/prod n_i!`` for identical final-state particles, *not* included in
    :meth:`matrix_element`), ``diagrams`` (:class:`~mcint.amplitudes.diagrams.Diagram` list),
    ``colour_basis`` (``"ddm"``, ``"line"`` or ``"4q"``), ``orders`` (leg orders of the partial
    amplitudes), ``colour_matrix`` (float64) and ``colour_matrix_exact`` (fractions),
    ``helicities`` (all-outgoing helicity configurations evaluated), ``ew``, ``alpha_s``.
    """

    def __init__(self, process: str, alpha_s: float = 0.118,
                 ew: EWParameters | None = None) -> None:
        incoming, outgoing = parse_process(process)
        self.process = " ".join(process.split())
        self.particles: tuple[int, ...] = incoming + outgoing
        self.n_incoming = len(incoming)
        self.symmetry_factor = symmetry_factor(outgoing)
        self.alpha_s = float(alpha_s)
        self.ew = ew if ew is not None else EWParameters()
        self._gs2 = strong_coupling(alpha_s)
        # crossing: an incoming particle is an outgoing antiparticle of momentum -p
        self.flavours = tuple(conjugate(p) if i < self.n_incoming else p
                              for i, p in enumerate(self.particles))
        self.kinds = tuple(_kind(f) for f in self.flavours)
        self._classify()
        if self.colour_basis == "4q":
            hels, self._parity = fourquark.configurations(len(self.kinds), self.lines)
        else:
            hels, self._parity = configurations(self.kinds, self.has_w)
        self.helicities: tuple[tuple[int, ...], ...] = tuple(hels)
        self.diagrams: list[Diagram] = diagrams(self.flavours, {W_PLUS: (self.ew.mw, self.ew.ww)})
        if not self.has_w:  # |M|^2 is pure QCD: no W exchanged between quark lines either
            self.diagrams = [d for d in self.diagrams
                             if all(abs(ln.pdg) != W_PLUS for ln in d.lines)]
        if not self.diagrams:
            raise ValueError(f"{process!r} has no tree diagram in this model")
        self._programs: dict[tuple, Program] = {}
        self._colour_arrays: dict[tuple[str, str], Any] = {}
        if self.colour_basis != "4q":
            self._plan(self.helicities)
        n_in = [BY_PDG[p] for p in incoming]
        self._average = 1.0 / math.prod(2 * abs(p.colour) for p in n_in)
        #: events per pass on CPU backends: the currents of a chunk stay in cache (about 3x
        #: faster than one pass over 10^4 events with numpy); GPU arrays go in one pass
        self.chunk_size = 1024

    # -- structure -----------------------------------------------------------------------------
    def _classify(self) -> None:
        legs = {k: [i for i, kk in enumerate(self.kinds) if kk == k]
                for k in ("g", "q", "qb", "l", "lb")}
        self.gluons = tuple(legs["g"])
        nq, nqb, nl, nlb = (len(legs[k]) for k in ("q", "qb", "l", "lb"))
        self.has_w = nl + nlb > 0
        if nq == nqb == 0 and not self.has_w:
            if not 4 <= len(self.gluons) <= colour.MAX_STRING + 2:
                raise NotImplementedError(f"pure gluon processes with 4 to "
                                          f"{colour.MAX_STRING + 2} gluons, got "
                                          f"{len(self.gluons)}")
            self.colour_basis = "ddm"
            first, *middle, last = self.gluons
            self.orders = [(first,) + tuple(middle[i] for i in o) + (last,)
                           for o in colour.orderings(len(middle))]
            m = len(middle)
            self._coupling = self._gs2 ** (len(self.gluons) - 2)
        elif nq == nqb == 1 and nl + nlb in (0, 2) and nl == nlb:
            q, qb = self.flavours[legs["q"][0]], self.flavours[legs["qb"][0]]
            if self.has_w:
                lf, lb = self.flavours[legs["l"][0]], self.flavours[legs["lb"][0]]
                if BY_PDG[q].partner != -qb or BY_PDG[lf].partner != -lb:
                    raise ValueError(f"{self.process!r}: the W couples to doublet partners of "
                                     f"one generation (unit CKM) only")
            elif q != -qb:
                raise ValueError(f"{self.process!r}: the quark and antiquark of one line need "
                                 f"the same flavour")
            if len(self.gluons) > colour.MAX_STRING:
                raise NotImplementedError(f"at most {colour.MAX_STRING} gluons on a quark line")
            self.colour_basis = "line"
            self.orders = [tuple(self.gluons[i] for i in o)
                           for o in colour.orderings(len(self.gluons))]
            m = len(self.gluons)
            self._coupling = self._gs2 ** m * (self.ew.gw2 / 2.0) ** 2 if self.has_w \
                else self._gs2 ** m
        elif nq == nqb == 2 and not self.has_w and not self.gluons:
            self._four_quarks(legs["q"], legs["qb"])
            return
        else:
            raise NotImplementedError(
                f"{self.process!r}: only pure gluon processes, one quark line (+ gluons), one "
                f"quark line with a W -> lepton pair (+ gluons), or two quark lines without "
                f"gluons are implemented")
        self.colour_matrix: np.ndarray = colour.colour_matrix(self.colour_basis, m)
        self.colour_matrix_exact: tuple[tuple[Fraction, ...], ...] = \
            colour.colour_matrix_exact(self.colour_basis, m)

    def _four_quarks(self, quarks: list[int], antiquarks: list[int]) -> None:
        """Two quark lines, one gluon exchanged (see :mod:`.fourquark`)."""
        self.colour_basis = "4q"
        self.lines = fourquark.pairings(self.flavours, quarks, antiquarks)
        if not self.lines:
            raise ValueError(f"{self.process!r}: the quarks and antiquarks do not pair into "
                             f"same-flavour lines")
        self.orders = [(0,), (1,)]  # basis elements, see fourquark.COLOUR_MATRIX
        self._coupling = self._gs2 ** 2
        self.colour_matrix = fourquark.COLOUR_MATRIX
        self.colour_matrix_exact = fourquark.COLOUR_MATRIX_EXACT

    def _plan(self, helicities: tuple[tuple[int, ...], ...],
              orders: tuple[tuple[int, ...], ...] | None = None) -> Program:
        key = (helicities, orders)
        if key not in self._programs:
            self._programs[key] = Program(self.kinds, helicities, orders or self.orders)
        return self._programs[key]

    @property
    def average(self) -> float:
        """``1 / prod(spin and colour states)`` of the incoming particles."""
        return self._average

    @property
    def factor(self) -> float:
        """``matrix_element(p) == colour_sum(helicity_amplitudes(p)) * factor``: couplings
        (``g_s^2`` per QCD vertex pair, ``(g_w^2 / 2)^2`` for the W), the parity doubling of
        the helicity sum (2 for pure QCD, see :mod:`.helicity`) and :attr:`average`."""
        return self._coupling * self._parity * self._average

    def references(self) -> tuple[int | None, ...]:
        """The reference leg of each gluon's polarisation: an incoming gluon uses the other
        incoming leg; ``None`` (final-state gluons) means, per event, the incoming leg at the
        larger angle to the gluon (larger ``k.p_in``), which keeps ``<qk>`` away from zero
        near the beams. Other legs: ``-1``. (Gauge invariance makes ``|M|^2`` independent of
        the choice.)"""
        return tuple((1 - i if i < self.n_incoming else None) if k == "g" else -1
                     for i, k in enumerate(self.kinds))

    # -- evaluation ----------------------------------------------------------------------------
    def _check(self, p: Any) -> tuple[Any, Any]:
        xp = array_namespace(p)
        n = len(self.particles)
        if p.ndim != 3 or tuple(p.shape[1:]) != (n, 4):
            raise ValueError(f"momenta for {self.process!r} must have shape (n, {n}, 4), got "
                             f"{tuple(p.shape)}")
        if p.dtype != xp.float64:
            p = xp.astype(p, xp.float64)
        return xp, p

    def helicity_amplitudes(self, p: Any, helicities: Sequence[Sequence[int]] | None = None,
                            references: Sequence[int | None] | None = None,
                            gauge_leg: int | None = None,
                            orders: Sequence[Sequence[int]] | None = None) -> Any:
        """Colour-ordered partial amplitudes ``(n, H, len(orders))`` complex, couplings
        stripped.

        ``helicities``: all-outgoing configurations to evaluate (default ``self.helicities``);
        ``orders``: colour orders to evaluate instead of ``self.orders`` (pure gluons: all gluon
        legs in order; a quark line: its gluons from the quark to the antiquark);
        ``references``: reference leg per gluon (see :meth:`references`); ``gauge_leg``: replace
        that gluon's polarisation by its momentum (a Ward-identity check: the result vanishes).
        """
        xp, p = self._check(p)
        if gauge_leg is not None and gauge_leg not in self.gluons:
            raise ValueError(f"gauge_leg must be a gluon leg {self.gluons}, got {gauge_leg}")
        sign = xp.asarray([-1.0] * self.n_incoming + [1.0] * (len(self.particles)
                                                               - self.n_incoming),
                          dtype=xp.float64, device=device(p))
        mom = p * sign[None, :, None]
        hels = tuple(tuple(int(h) for h in c) for c in (helicities if helicities is not None
                                                         else self.helicities))
        if self.colour_basis == "4q":
            if orders is not None or gauge_leg is not None:
                raise ValueError("four-quark processes take neither orders nor gauge_leg")
            spinors = [weyl_spinors(components(p[:, i, :])) for i in range(len(self.particles))]
            return fourquark.amplitudes(xp, mom, spinors, self.lines, hels)
        prog = self._plan(hels, None if orders is None else
                          tuple(tuple(int(i) for i in o) for o in orders))
        refs = tuple(references) if references is not None else self.references()
        spinors = [weyl_spinors(components(p[:, i, :])) for i in range(len(self.particles))]
        wf = {}
        for i, kind in enumerate(self.kinds):
            if kind == "g":
                if i == gauge_leg:
                    k = components(complex_of(p[:, i, :]))
                    wf[i] = tuple(xp.stack([c, c], axis=0) for c in k)
                    continue
                ref = self._reference(xp, p, spinors, i, refs[i])
                make = lambda h, i=i, ref=ref: polarisation(spinors[i], ref, h)
            elif kind in ("q", "l"):
                make = lambda h, i=i: outgoing_quark(spinors[i], h)
            else:
                make = lambda h, i=i: outgoing_antiquark(spinors[i], h)
            wf[i] = tuple(xp.stack([a, b], axis=0) for a, b in zip(make(1), make(-1)))
        return prog.run(mom, wf, self.ew.mw, self.ew.ww)

    def _reference(self, xp: Any, p: Any, spinors: list, i: int, ref: int | None) -> Any:
        """The reference spinors of gluon ``i`` (see :meth:`references`)."""
        if ref is None:
            k = components(p[:, i, :])
            near0 = mdot(k, components(p[:, 0, :])) < mdot(k, components(p[:, 1, :]))
            return tuple(tuple(xp.where(near0, b, a) for a, b in zip(w0, w1))
                         for w0, w1 in zip(spinors[0], spinors[1]))
        if not (0 <= ref < len(self.particles)) or ref == i:
            raise ValueError(f"gluon {i} needs another leg as reference, got {ref}")
        return spinors[ref]

    def colour_sum(self, amplitudes: Any) -> Any:
        """``sum_h A_h^dagger C A_h`` of partial amplitudes ``(n, H, n_orders)`` -> ``(n,)``."""
        xp = array_namespace(amplitudes)
        key = (xp.__name__, str(device(amplitudes)))
        if key not in self._colour_arrays:
            self._colour_arrays[key] = xp.asarray(np.array(self.colour_matrix),
                                                  dtype=xp.float64, device=device(amplitudes))
        c = self._colour_arrays[key]
        # C is real symmetric: Re(A^+ C A) = Re(A)^T C Re(A) + Im(A)^T C Im(A)
        re, im = xp.real(amplitudes), xp.imag(amplitudes)
        out = xp.sum(xp.matmul(re, c) * re + xp.matmul(im, c) * im, axis=-1)
        return xp.sum(out, axis=-1)

    def matrix_element(self, p: Any) -> Any:
        """``|M|^2`` ``(n,)`` float64 for momenta ``p (n, particles, 4)`` (E, px, py, pz; GeV;
        incoming first, physical momenta): averaged over initial and summed over final
        helicities and colours, without :attr:`symmetry_factor`."""
        xp, p = self._check(p)
        n = p.shape[0]
        step = self.chunk_size if _on_host(p) else n
        parts = [self.colour_sum(self.helicity_amplitudes(p[i:min(i + step, n), ...]))
                 * self.factor
                 for i in range(0, n, max(step, 1))]
        if len(parts) == 1:
            return parts[0]
        return xp.concat(parts, axis=0) if parts else xp.zeros((0,), dtype=xp.float64,
                                                                 device=device(p))

    def __repr__(self) -> str:
        return (f"Process({self.process!r}, alpha_s={self.alpha_s}, basis={self.colour_basis!r}, "
                f"orders={len(self.orders)}, helicities={len(self.helicities)}, "
                f"diagrams={len(self.diagrams)})")
