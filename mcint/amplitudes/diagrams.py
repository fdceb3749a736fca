"""Tree-level Feynman diagrams (topologies) of a process, for building phase-space channels.

The model is the one the amplitudes use: QCD (``ggg``, ``gggg``, ``q qbar g``) and the W
coupled to quark and lepton doublets (unit CKM). A diagram is the list of its internal lines;
each :class:`Line` names the external legs on one side of it (process order, incoming legs
0 and 1 included), always the side **without leg 0**, so its momentum is ``sum_{i in legs}
P_i`` with ``P_i`` the all-outgoing momenta (incoming ones negated). ``kind`` is ``"s"`` when
those legs are all outgoing (momentum ``sum p_i`` of final-state particles) and ``"t"`` when the
side contains incoming leg 1 (momentum ``p_0 - sum of the final-state legs on leg 0's side``).
Quartic gluon vertices give diagrams with fewer lines. ``pdg`` is the flavour flowing into the
``legs`` side in the all-outgoing sense (its sign matters only for quarks and the W).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .particles import BY_PDG, GLUON, W_PLUS, conjugate

__all__ = ["Line", "Diagram", "diagrams"]


@dataclass(frozen=True)
class Line:
    """An internal line: external ``legs`` on its side (without leg 0), ``pdg`` of the
    propagating particle, ``mass`` and ``width`` (GeV), ``kind`` ``"s"`` or ``"t"``."""

    legs: tuple[int, ...]
    pdg: int
    mass: float
    width: float
    kind: str


@dataclass(frozen=True)
class Diagram:
    """One tree diagram: its internal ``lines`` (ordered by number of legs, then legs)."""

    lines: tuple[Line, ...]

    def __str__(self) -> str:
        return " ".join(f"{ln.kind}{list(ln.legs)}:{ln.pdg}" for ln in self.lines) or "contact"


def _combine(flavours: Sequence[int]) -> list[int]:
    """Flavours ``c`` of the line joining sub-trees of outgoing flavours ``flavours`` to the
    rest, i.e. those with a vertex ``(*flavours, conj(c))``."""
    if len(flavours) == 3:
        return [GLUON] if all(f == GLUON for f in flavours) else []
    a, b = flavours
    if a == GLUON and b == GLUON:
        return [GLUON]
    if GLUON in (a, b):
        f = b if a == GLUON else a
        return [f] if abs(f) <= 6 else []
    if abs(a) == W_PLUS or abs(b) == W_PLUS:
        w, f = (a, b) if abs(a) == W_PLUS else (b, a)
        if abs(f) == W_PLUS:
            return []
        part = BY_PDG[f].partner
        if part and BY_PDG[f].charge3 + 3 * (1 if w > 0 else -1) == BY_PDG[part].charge3:
            return [part]
        return []
    if a * b > 0:
        return []  # two fermions or two antifermions
    if a == -b and abs(a) <= 6:
        return [GLUON]
    pa, pb = BY_PDG[a], BY_PDG[b]
    if pa.partner == -b:  # a doublet pair: a W
        q3 = pa.charge3 + pb.charge3
        return [W_PLUS if q3 > 0 else -W_PLUS]
    return []


def _splits(items: tuple[int, ...], parts: int) -> Iterator[tuple[tuple[int, ...], ...]]:
    """Unordered partitions of ``items`` into ``parts`` non-empty blocks."""
    first, rest = items[0], items[1:]
    if parts == 1:
        yield (items,)
        return
    for k in range(len(rest) + 1):
        for comb in itertools.combinations(rest, k):
            block = (first,) + comb
            left = tuple(i for i in rest if i not in comb)
            if len(left) >= parts - 1:
                for tail in _splits(left, parts - 1):
                    yield (block,) + tail


def diagrams(flavours: Sequence[int], masses: dict[int, tuple[float, float]]) -> list[Diagram]:
    """Every tree diagram for all-outgoing ``flavours`` (PDG ids; leg 0 is the root).
    ``masses`` maps ``abs(pdg)`` of massive internal particles to ``(mass, width)``."""
    flavours = tuple(flavours)

    @functools.cache
    def trees(legs: tuple[int, ...]) -> tuple[tuple[int, tuple[Line, ...]], ...]:
        if len(legs) == 1:
            return ((flavours[legs[0]], ()),)
        out = []
        for parts in (2, 3):
            for blocks in _splits(legs, parts):
                for combo in itertools.product(*(trees(b) for b in blocks)):
                    for c in _combine([f for f, _ in combo]):
                        lines = tuple(ln for _, sub in combo for ln in sub)
                        m, w = masses.get(abs(c), (0.0, 0.0))
                        kind = "t" if 1 in legs else "s"
                        out.append((c, lines + (Line(legs, c, m, w, kind),)))
        return tuple(out)

    rest = tuple(range(1, len(flavours)))
    out = []
    for c, lines in trees(rest):
        if c == conjugate(flavours[0]):
            inner = sorted(lines[:-1], key=lambda ln: (len(ln.legs), ln.legs))  # drop the root
            out.append(Diagram(tuple(inner)))
    return out
