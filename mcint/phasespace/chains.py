"""Phase-space mappings built from a :class:`~.topology.Diagram` (one per channel).

Each s-channel propagator's invariant is drawn with its own sampler (Breit–Wigner for massive
unstable lines, ``1/s^nu`` or flat otherwise) and decayed with :func:`~.twobody.decay`; each
t-channel line is unrolled into 2 -> 2 blocks (:func:`~.tchannel.t_channel`) in ``t = (p_a -
sum emitted)^2``, with the invariant masses of the not-yet-emitted remainders drawn flat. The
random numbers are consumed in a fixed depth-first order, which :meth:`DiagramMapping.invert`
reproduces. Every internal invariant contributes ``ds/dr / (2 pi)`` to the weight (conventions
in :mod:`mcint.phasespace.base`).

**Transverse-momentum cuts** (``pt_min``, GeV per final-state particle) narrow the first block of
a t-channel chain at the root, the one whose incoming momenta are the beams: the particle it
emits, and for a two-leg chain the other leg too (their pT are equal), are drawn only with
pT above their cut (:mod:`.tchannel`), so a jet emitted from the beam, which the ``1/t`` map
would mostly put below the cut, always passes. The weight is that of the narrowed map: the
mapping integrates exactly the cut region of those particles. Later blocks are left whole
(their frame is not longitudinal), and so are s-channel decays: the cuts there still apply
in the integrand. This assumes beams along the z axis, as :class:`~.base.PhaseSpace` gives them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ..backends import fusable
from .base import FinalStateMapping
from .invariants import InvariantSampler, Uniform
from .kinematics import mass2
from .tchannel import t_channel, t_channel_inverse
from .topology import Decay, Diagram, Node, TChain, leaves
from .twobody import decay, decay_inverse, decay_log_weight

__all__ = ["DiagramMapping", "diagram_forward"]

_LOG_2PI = math.log(2 * math.pi)


class DiagramMapping(FinalStateMapping):
    """The channel mapping of ``diagram`` (``n_random = 3 n - 4``).

    ``rest_sampler`` draws the invariant masses of t-channel remainders (default flat);
    ``pt_min`` maps final-state indices to transverse-momentum cuts in GeV (module docstring).
    """

    def __init__(self, diagram: Diagram, rest_sampler: InvariantSampler | None = None,
                 pt_min: Mapping[int, float] | None = None) -> None:
        if not isinstance(diagram, Diagram):
            raise TypeError(f"DiagramMapping takes a Diagram, got {type(diagram).__name__}")
        self.diagram = diagram
        self.masses = diagram.masses
        n = len(self.masses)
        if n < 2:
            raise ValueError("a diagram needs at least two final-state particles")
        self.n_random = 3 * n - 4
        self.rest_sampler = rest_sampler or Uniform()
        self.pt_min = _check_pt_min(pt_min, n)
        self._check(diagram.root, top=True)

    def first_block_pt_min(self, node: TChain) -> float | None:
        """The pT cut of the root chain's first block (module docstring), or ``None``."""
        legs = node.legs
        cuts = [self.pt_min.get(legs[0], 0.0) if isinstance(legs[0], int) else 0.0]
        if len(legs) == 2 and isinstance(legs[1], int):
            cuts.append(self.pt_min.get(legs[1], 0.0))
        return max(cuts) or None

    def _check(self, node: Node, top: bool = False) -> None:
        """Static checks: power-law samplers need a positive lower limit."""
        if isinstance(node, Decay):
            if not top:
                lo = self.diagram.min_mass(node) ** 2
                samp = node.propagator.sampler()
                if samp.needs_positive_lower and lo <= 0:
                    raise ValueError(
                        f"s-channel propagator over particles {leaves(node)}: {samp!r} needs a "
                        "positive lower limit but the particles are massless; use nu < 1 or nu=None")
            for c in node.children:
                self._check(c)
        elif isinstance(node, TChain):
            for leg, prop in zip(node.legs, node.propagators):
                samp = prop.sampler()
                if samp.needs_positive_lower and prop.mass == 0:
                    raise ValueError(f"massless t-channel propagator after leg {leaves(leg)}: "
                                     f"{samp!r} needs a positive lower limit; use nu < 1 or None")
            for leg in node.legs:
                self._check(leg)

    # -- forward -------------------------------------------------------------------------
    def generate(self, r: Any, pa: Any, pb: Any) -> tuple[Any, Any]:
        return diagram_forward(r, pa, pb, self)

    def _generate(self, r: Any, pa: Any, pb: Any) -> tuple[Any, Any]:
        """The reference of :func:`diagram_forward`: the blocks, one propagator at a time."""
        xp = array_namespace(r, pa)
        st = _State(r, xp, self.n_final)
        root = self.diagram.root
        if isinstance(root, Decay):
            self._gen_decay(st, root, pa + pb)
        else:
            self._gen_tchain(st, root, pa, pb)
        return xp.stack(st.out, axis=1), st.log_w

    def _child_m2(self, st: _State, node: Node, lo: Any, hi: Any) -> Any:
        if isinstance(node, int):
            return self.masses[node] ** 2 + st.zero
        s, ld = node.propagator.sampler().forward(st.take(1)[:, 0], lo, hi)
        st.log_w = st.log_w + ld - _LOG_2PI
        return s

    def _place(self, st: _State, node: Node, p: Any, s: Any) -> None:
        if isinstance(node, int):
            st.out[node] = p
        else:
            self._gen_decay(st, node, p, s)

    def _gen_decay(self, st: _State, node: Decay, p: Any, s: Any = None) -> None:
        xp = st.xp
        a, b = node.children
        s = mass2(p) if s is None else s
        rs = xp.sqrt(s)
        mmin_a, mmin_b = self.diagram.min_mass(a), self.diagram.min_mass(b)
        ma2 = self._child_m2(st, a, mmin_a ** 2, (rs - mmin_b) ** 2)
        mb2 = self._child_m2(st, b, mmin_b ** 2, (rs - xp.sqrt(ma2)) ** 2)
        pa_, pb_, lw = decay(st.take(2), p, ma2, mb2, s)
        st.log_w = st.log_w + lw
        self._place(st, a, pa_, ma2)
        self._place(st, b, pb_, mb2)

    def _gen_tchain(self, st: _State, node: TChain, pa: Any, pb: Any) -> None:
        xp = st.xp
        first_cut = self.first_block_pt_min(node) if node is self.diagram.root else None
        legs, n_legs = node.legs, len(node.legs)
        rs = xp.sqrt(mass2(pa + pb))
        mins = [self.diagram.min_mass(leg) for leg in legs]
        m2, used = [], st.zero
        for j, leg in enumerate(legs):
            m2.append(self._child_m2(st, leg, mins[j] ** 2, (rs - used - sum(mins[j + 1:])) ** 2))
            used = used + xp.sqrt(m2[-1])
        rest = []
        cur = rs
        for i in range(n_legs - 2):
            lo = sum(xp.sqrt(m2[j]) for j in range(i + 1, n_legs)) ** 2
            hi = (cur - xp.sqrt(m2[i])) ** 2
            s, ld = self.rest_sampler.forward(st.take(1)[:, 0], lo, hi)
            st.log_w = st.log_w + ld - _LOG_2PI
            rest.append(s)
            cur = xp.sqrt(s)
        pa_i = pa
        p_rest = None
        for i in range(n_legs - 1):
            mr2 = rest[i] if i < n_legs - 2 else m2[n_legs - 1]
            prop = node.propagators[i]
            p_leg, p_rest, lw = t_channel(st.take(2), pa_i, pb, m2[i], mr2, prop.sampler(),
                                          prop.mass ** 2, first_cut if i == 0 else None)
            st.log_w = st.log_w + lw
            self._place(st, legs[i], p_leg, m2[i])
            pa_i = pa_i - p_leg
        self._place(st, legs[-1], p_rest, m2[-1])

    # -- inverse -------------------------------------------------------------------------
    def invert(self, p: Any, pa: Any, pb: Any) -> tuple[Any, Any]:
        xp = array_namespace(p, pa)
        st = _State(None, xp, self.n_final, zero=xp.zeros_like(p[:, 0, 0]))
        st.p = p
        root = self.diagram.root
        if isinstance(root, Decay):
            self._inv_decay(st, root, pa + pb)
        else:
            self._inv_tchain(st, root, pa, pb)
        return xp.concat(st.cols, axis=1), st.log_w

    def _mom(self, st: _State, node: Node) -> Any:
        idx = leaves(node)
        out = st.p[:, idx[0], :]
        for i in idx[1:]:
            out = out + st.p[:, i, :]
        return out

    def _child_m2_inv(self, st: _State, node: Node, p: Any, lo: Any, hi: Any) -> Any:
        if isinstance(node, int):
            return self.masses[node] ** 2 + st.zero
        s = mass2(p)
        r, ld = node.propagator.sampler().inverse(s, lo, hi)
        st.cols.append(r[:, None])
        st.log_w = st.log_w - ld - _LOG_2PI
        return s

    def _inv_place(self, st: _State, node: Node, p: Any) -> None:
        if isinstance(node, Decay):
            self._inv_decay(st, node, p)

    def _inv_decay(self, st: _State, node: Decay, p: Any) -> None:
        xp = st.xp
        a, b = node.children
        rs = xp.sqrt(mass2(p))
        pa_, pb_ = self._mom(st, a), self._mom(st, b)
        mmin_a, mmin_b = self.diagram.min_mass(a), self.diagram.min_mass(b)
        ma2 = self._child_m2_inv(st, a, pa_, mmin_a ** 2, (rs - mmin_b) ** 2)
        mb2 = self._child_m2_inv(st, b, pb_, mmin_b ** 2, (rs - xp.sqrt(ma2)) ** 2)
        ang, _ = decay_inverse(pa_, p)
        st.cols.append(ang)
        st.log_w = st.log_w + decay_log_weight(mass2(p), ma2, mb2)
        self._inv_place(st, a, pa_)
        self._inv_place(st, b, pb_)

    def _inv_tchain(self, st: _State, node: TChain, pa: Any, pb: Any) -> None:
        xp = st.xp
        first_cut = self.first_block_pt_min(node) if node is self.diagram.root else None
        legs, n_legs = node.legs, len(node.legs)
        rs = xp.sqrt(mass2(pa + pb))
        mins = [self.diagram.min_mass(leg) for leg in legs]
        moms = [self._mom(st, leg) for leg in legs]
        m2, used = [], st.zero
        for j, leg in enumerate(legs):
            m2.append(self._child_m2_inv(st, leg, moms[j], mins[j] ** 2,
                                         (rs - used - sum(mins[j + 1:])) ** 2))
            used = used + xp.sqrt(m2[-1])
        rest = []
        cur = rs
        for i in range(n_legs - 2):
            lo = sum(xp.sqrt(m2[j]) for j in range(i + 1, n_legs)) ** 2
            hi = (cur - xp.sqrt(m2[i])) ** 2
            p_r = moms[i + 1]
            for j in range(i + 2, n_legs):
                p_r = p_r + moms[j]
            s = mass2(p_r)
            r, ld = self.rest_sampler.inverse(s, lo, hi)
            st.cols.append(r[:, None])
            st.log_w = st.log_w - ld - _LOG_2PI
            rest.append(s)
            cur = xp.sqrt(s)
        pa_i = pa
        for i in range(n_legs - 1):
            mr2 = rest[i] if i < n_legs - 2 else m2[n_legs - 1]
            prop = node.propagators[i]
            rr, lw = t_channel_inverse(moms[i], pa_i, pb, prop.sampler(), prop.mass ** 2,
                                       m2[i], mr2, first_cut if i == 0 else None)
            st.cols.append(rr)
            st.log_w = st.log_w + lw
            self._inv_place(st, legs[i], moms[i])
            pa_i = pa_i - moms[i]
        self._inv_place(st, legs[-1], moms[-1])

    def __repr__(self) -> str:
        cuts = f", pt_min={self.pt_min}" if self.pt_min else ""
        return f"DiagramMapping({self.diagram!r}{cuts})"


def _check_pt_min(pt_min: Mapping[int, float] | None, n: int) -> dict[int, float]:
    out: dict[int, float] = {}
    for k, v in (pt_min or {}).items():
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) \
                or not 0 <= k < n:
            raise ValueError(f"pt_min: final-state index must be an integer in 0..{n - 1}, "
                             f"got {k!r}")
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer,
                                                                  np.floating)) \
                or not 0 <= v < math.inf:
            raise ValueError(f"pt_min[{k}] must be a finite number of GeV >= 0, got {v!r}")
        if v > 0:
            out[int(k)] = float(v)
    return out


@fusable("phasespace-diagram-forward")
def diagram_forward(r: Any, pa: Any, pb: Any, mapping: DiagramMapping) -> tuple[Any, Any]:
    """:meth:`DiagramMapping.generate`; the numba backend runs the whole channel in one pass
    (``backends/mcint_numba/kernels/ps_diagram.py``), this is the reference."""
    return mapping._generate(r, pa, pb)


class _State:
    """Mutable bookkeeping of one generate/invert call (cursor, outputs, log-weight)."""

    def __init__(self, r: Any, xp: Any, n: int, zero: Any = None) -> None:
        self.r, self.xp, self.cur = r, xp, 0
        self.zero = xp.zeros_like(r[:, 0]) if zero is None else zero
        self.log_w = self.zero
        self.out: list[Any] = [None] * n
        self.cols: list[Any] = []
        self.p: Any = None

    def take(self, k: int) -> Any:
        c = self.cur
        self.cur += k
        return self.r[:, c:c + k]
