"""Phase-space channels from a process' Feynman diagrams: a multi-channel partonic integrand.

:func:`to_topology` turns one :class:`~.diagrams.Diagram` (internal lines named by the
external legs on the side without leg 0) into an :class:`mcint.phasespace.Diagram`: s-channel
lines become nested :class:`~mcint.phasespace.Decay` nodes, t-channel lines a
:class:`~mcint.phasespace.TChain` between the beams. Only cubic vertices map onto those blocks,
so diagrams with a four-gluon vertex raise :class:`UnmappableDiagram` (their phase space is
covered by the other channels). :class:`PartonicProcess` is the multi-channel integrand at a
fixed partonic energy (no PDFs), one channel per mappable diagram, with MadGraph's propagator
prior and MadNIS symmetry groups (channels equal up to a permutation of identical final-state
particles). Values are in pb.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ..channels import ChannelEval, MultiChannelIntegrand
from ..phasespace import Decay, DiagramMapping, PhaseSpace, Propagator, TChain, channel_prior
from ..phasespace import Diagram as Topology
from ..phasespace.topology import Node
from ..processes.ew import GEV2_TO_PB
from .diagrams import Diagram, Line
from .process import Process

__all__ = ["PartonicProcess", "UnmappableDiagram", "to_topology", "symmetry_groups"]

#: default power of massless propagators' ``1/s^nu`` mapping: below 1 because the mapping
#: needs a positive lower limit at ``nu >= 1`` and massless daughters reach ``s = 0``
DEFAULT_NU = 0.8


class UnmappableDiagram(ValueError):
    """A diagram the mcint channel mappings cannot represent (e.g. a four-gluon vertex)."""


def _propagator(line: Line, nu: float | None) -> Propagator:
    """The line's propagator: Breit-Wigner if massive with a width, ``1/s^nu`` if massless."""
    if line.mass > 0:
        return Propagator(line.mass, line.width)
    return Propagator(0.0, 0.0, nu)


def _node(legs: frozenset[int], s_lines: dict[frozenset[int], Line], nu: float | None,
          what: Diagram) -> Node:
    """The node spanning final-state ``legs`` (process indices): a leaf or an s-channel tree."""
    if len(legs) == 1:
        return next(iter(legs)) - 2
    if legs not in s_lines:
        raise UnmappableDiagram(f"diagram {what}: final-state legs {sorted(legs)} meet at one "
                                "vertex (a four-point vertex); not a cubic tree")
    inner = [k for k in s_lines if k < legs]
    # the children are the largest s-lines inside, plus legs no inner line covers
    tops = [k for k in inner if not any(k < o for o in inner)]
    rest = legs - frozenset().union(*tops)
    children = [frozenset([i]) for i in sorted(rest)] + sorted(tops, key=sorted)
    if len(children) != 2:
        raise UnmappableDiagram(f"diagram {what}: the s-channel line over legs {sorted(legs)} "
                                f"splits into {len(children)} (a four-point vertex)")
    a, b = (_node(c, s_lines, nu, what) for c in children)
    return Decay((a, b), _propagator(s_lines[legs], nu))


def channel_topologies(process: Process, nu: float | None = DEFAULT_NU
                       ) -> tuple[list[Diagram], list[Topology], list[tuple[Diagram, str]]]:
    """The process's diagrams that map onto channels, their topologies, and the others with the
    reason (:class:`UnmappableDiagram` if none maps)."""
    diagrams, topologies, skipped = [], [], []
    for d in process.diagrams:
        try:
            topologies.append(to_topology(d, process, nu))
            diagrams.append(d)
        except UnmappableDiagram as err:
            skipped.append((d, str(err)))
    if not topologies:
        raise UnmappableDiagram(f"{process.process!r}: no diagram maps onto a channel")
    return diagrams, topologies, skipped


def to_topology(diagram: Diagram, process: Process, nu: float | None = DEFAULT_NU) -> Topology:
    """The :class:`mcint.phasespace.Diagram` of an amplitude ``diagram`` of ``process``.

    Final-state particle ``i`` is process leg ``i + 2``. ``nu``: the power-law exponent of
    massless propagators (``None``: flat). Raises :class:`UnmappableDiagram` for diagrams with
    a four-point vertex.
    """
    if process.n_incoming != 2:
        raise ValueError("channels need a 2 -> n process")
    n = len(process.particles)
    final = frozenset(range(2, n))
    s_lines = {frozenset(ln.legs): ln for ln in diagram.lines if ln.kind == "s"}
    # t-lines sit on the path from leg 1 to leg 0, so their leg sets are nested
    t_lines = sorted((ln for ln in diagram.lines if ln.kind == "t"), key=lambda ln: len(ln.legs))
    masses = [0.0] * (n - 2)  # every external particle of the model is massless
    if not t_lines:
        if final not in s_lines:
            raise UnmappableDiagram(f"diagram {diagram}: the beams meet the final state at a "
                                    "four-point vertex")
        root = _node(final, s_lines, nu, diagram)
        return Topology(root, masses)
    sides = [frozenset(ln.legs) - {1} for ln in t_lines]  # final-state legs on leg 1's side
    for small, big in zip(sides, sides[1:]):
        if not small < big:
            raise UnmappableDiagram(f"diagram {diagram}: t-channel lines are not nested")
    # emitted from p_b's end inwards: S_1, S_2 - S_1, ..., then the rest on p_a's side
    bounds = [frozenset()] + sides + [final]
    emitted = [hi - lo for lo, hi in zip(bounds, bounds[1:])]
    if any(not e for e in emitted):
        raise UnmappableDiagram(f"diagram {diagram}: a t-channel vertex emits nothing")
    legs = [_node(e, s_lines, nu, diagram) for e in reversed(emitted)]  # from p_a's side
    props = [_propagator(ln, nu) for ln in reversed(t_lines)]  # p_a - (first legs emitted)
    return Topology(TChain(tuple(legs), tuple(props)), masses)


# -- symmetry groups ---------------------------------------------------------------------
def _key(node: Node | TChain, perm: Sequence[int]) -> str:
    """A string for ``node`` with leaves relabelled by ``perm``, blind to Decay child order."""
    if isinstance(node, int):
        return str(perm[node])
    if isinstance(node, Decay):
        p = node.propagator
        kids = sorted(_key(c, perm) for c in node.children)
        return f"({kids[0]},{kids[1]})[{p.mass},{p.width},{p.nu}]"
    props = ",".join(f"[{p.mass},{p.width},{p.nu}]" for p in node.propagators)
    return "T(" + ";".join(_key(leg, perm) for leg in node.legs) + ")" + props


def _permutations(pdgs: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """Every relabelling of final-state indices that only swaps identical particles."""
    classes = [[i for i, q in enumerate(pdgs) if q == p] for p in dict.fromkeys(pdgs)]
    for choice in itertools.product(*(itertools.permutations(c) for c in classes)):
        perm = list(range(len(pdgs)))
        for cls, image in zip(classes, choice):
            for i, j in zip(cls, image):
                perm[i] = j
        yield tuple(perm)


def canonical_key(topology: Topology, final_pdgs: Sequence[int]) -> str:
    """The smallest key of ``topology`` over permutations of identical final-state particles."""
    return min(_key(topology.root, perm) for perm in _permutations(final_pdgs))


def symmetry_groups(topologies: Sequence[Topology], final_pdgs: Sequence[int]) -> list[int]:
    """Group index per channel: equal for topologies related by swapping identical particles
    (numbered in order of first appearance)."""
    index: dict[str, int] = {}
    return [index.setdefault(canonical_key(t, final_pdgs), len(index)) for t in topologies]


# -- the integrand -----------------------------------------------------------------------
class PartonicProcess(MultiChannelIntegrand):
    """``sigma(process)`` in pb at fixed partonic ``sqrt_s``, one channel per mappable diagram.

    ``value = |M|^2 / (2 s) * phase-space weight * symmetry_factor * GEV2_TO_PB`` (zero where
    ``cuts(momenta)`` is False; ``momenta (n, 2 + n_final, 4)``, incoming first, process
    order). ``alpha_prior``: :func:`mcint.phasespace.channel_prior` of the topologies;
    ``features``: the point's random numbers in channel 0's chart; ``groups``: see
    :func:`symmetry_groups`. ``process`` is a string or a :class:`Process`.
    """

    def __init__(self, process: str | Process, sqrt_s: float,
                 cuts: Callable[[Any], Any] | None = None, nu: float | None = DEFAULT_NU
                 ) -> None:
        self.process = process if isinstance(process, Process) else Process(process)
        self.sqrt_s, self.cuts = float(sqrt_s), cuts
        # skipped: the unmappable diagrams and why
        self.diagrams, self.topologies, self.skipped = channel_topologies(self.process, nu)
        self.phase_spaces = [PhaseSpace(DiagramMapping(t), self.sqrt_s) for t in self.topologies]
        self.n_channels = len(self.topologies)
        self.dims = self.phase_spaces[0].dims
        self.groups = symmetry_groups(self.topologies, self.process.particles[2:])
        self.channel_names = [str(d) for d in self.diagrams]
        self._norm = self.process.symmetry_factor * GEV2_TO_PB / (2.0 * self.sqrt_s ** 2)

    def weight(self, momenta: Any, log_weight: Any) -> Any:
        """The integrand at ``momenta`` times ``exp(log_weight)``, cuts applied (pb)."""
        xp = array_namespace(momenta)
        # exactly on-shell massless propagators (t = 0 drawn at the edge of a power law, a
        # collinear gluon) give inf/NaN in |M|^2 at points the cuts remove: no numpy warning
        with np.errstate(divide="ignore", invalid="ignore"):
            me = self.process.matrix_element(momenta)
        value = me * xp.exp(log_weight) * self._norm
        if self.cuts is None:
            return value
        return xp.where(self.cuts(momenta), value, xp.zeros_like(value))

    def evaluate(self, r: Any, channel: int) -> ChannelEval:
        if not 0 <= int(channel) < self.n_channels:
            raise ValueError(f"channel must be in 0..{self.n_channels - 1}, got {channel}")
        mom, _, _, log_w = self.phase_spaces[int(channel)].map(r)
        return ChannelEval(value=self.weight(mom, log_w),
                           alpha_prior=channel_prior(self.topologies, mom),
                           features=self.features(mom))

    def features(self, momenta: Any) -> Any:
        """The final-state momenta in units of the beam energy, ``(n, 4 n_final)``: the same for
        a physical point whatever channel drew it, exact (no inverse mapping: inverting a
        t-channel chart loses the digits of nearly collinear pairs), and what events are
        rebuilt from (:meth:`events`)."""
        xp = array_namespace(momenta)
        fs = momenta[:, 2:, :]
        return xp.reshape(fs, (fs.shape[0], -1)) / (0.5 * self.sqrt_s)

    def events(self, x: Any, channel: int = 0, rng: Any = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(momenta, pdg, x1, x2, scale)`` of sampled points ``x`` (their :meth:`features`):
        the beams along +-z at ``sqrt_s / 2`` and the final state read back from ``x``."""
        f = np.asarray(x, dtype=np.float64)
        n, k = f.shape[0], len(self.process.particles) - 2
        e = 0.5 * self.sqrt_s
        mom = np.zeros((n, k + 2, 4))
        mom[:, 0] = (e, 0.0, 0.0, e)
        mom[:, 1] = (e, 0.0, 0.0, -e)
        mom[:, 2:] = f.reshape(n, k, 4) * e
        one = np.ones(n)
        return mom, np.asarray(self.process.particles, dtype=np.int64), one, one, one * self.sqrt_s

    def __repr__(self) -> str:
        return (f"PartonicProcess({self.process.process!r}, sqrt_s={self.sqrt_s}, "
                f"channels={self.n_channels}, groups={len(set(self.groups))}, "
                f"skipped={len(self.skipped)})")

