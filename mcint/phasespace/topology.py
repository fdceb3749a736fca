"""Diagram (topology) descriptions: which propagators a channel has, with masses and widths.

A final-state particle is its index ``0..n-1``. Internal lines:

* :class:`Decay` -- an s-channel propagator decaying to two nodes (binary trees, as from
  three-point vertices);
* :class:`TChain` -- a t-channel line between the beams, emitting ``legs`` (nodes) from the
  ``p_a`` side to the ``p_b`` side, with ``len(legs) - 1`` t-channel propagators.

:class:`Diagram` = a root (a ``Decay``: s-channel production whose propagator carries the full
``p_a + p_b``; or a ``TChain``) plus the final-state masses. Example, ``e+ e- -> Z -> mu+ mu-``::

    Diagram(Decay((0, 1), Propagator(91.19, 2.49)), masses=[0, 0])

and ``q q -> q q`` through a t-channel gluon: ``Diagram(TChain((0, 1), [Propagator()]), [0, 0])``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from .base import check_masses
from .invariants import InvariantSampler, propagator_sampler

__all__ = ["Propagator", "Decay", "TChain", "Diagram", "Node"]


@dataclass(frozen=True)
class Propagator:
    """An internal line: ``mass``, ``width`` (GeV) and, for massless lines, a power-law ``nu``
    used by the phase-space mapping (``None``: flat)."""

    mass: float = 0.0
    width: float = 0.0
    nu: float | None = None

    def __post_init__(self) -> None:
        propagator_sampler(self.mass, self.width, self.nu)  # validates

    def sampler(self) -> InvariantSampler:
        return propagator_sampler(self.mass, self.width, self.nu)


@dataclass(frozen=True)
class Decay:
    """s-channel propagator decaying into two nodes."""

    children: tuple[Node, Node]
    propagator: Propagator = field(default_factory=Propagator)

    def __post_init__(self) -> None:
        if len(self.children) != 2:
            raise ValueError(f"a Decay has exactly two children, got {len(self.children)}")
        object.__setattr__(self, "children", tuple(self.children))


@dataclass(frozen=True)
class TChain:
    """t-channel line emitting ``legs`` (at least 2), with ``len(legs) - 1`` propagators."""

    legs: tuple[Node, ...]
    propagators: tuple[Propagator, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "legs", tuple(self.legs))
        object.__setattr__(self, "propagators", tuple(self.propagators))
        if len(self.legs) < 2:
            raise ValueError(f"a TChain needs at least two legs, got {len(self.legs)}")
        if len(self.propagators) != len(self.legs) - 1:
            raise ValueError(f"a TChain with {len(self.legs)} legs needs "
                             f"{len(self.legs) - 1} propagators, got {len(self.propagators)}")


Node = int | Decay


def leaves(node: Node) -> tuple[int, ...]:
    """Final-state indices below ``node``."""
    if isinstance(node, int):
        return (node,)
    if isinstance(node, Decay):
        return leaves(node.children[0]) + leaves(node.children[1])
    if isinstance(node, TChain):
        out: tuple[int, ...] = ()
        for leg in node.legs:
            out += leaves(leg)
        return out
    raise TypeError(f"diagram nodes are ints, Decay or TChain, got {type(node).__name__}")


@dataclass(frozen=True)
class Diagram:
    """A channel's topology: ``root`` (``Decay`` or ``TChain``) and final-state ``masses``."""

    root: Decay | TChain
    masses: tuple[float, ...]

    def __init__(self, root: Decay | TChain, masses: Sequence[float]) -> None:
        if not isinstance(root, (Decay, TChain)):
            raise TypeError(f"a diagram root is a Decay or a TChain, got {type(root).__name__}")
        masses = check_masses(masses)
        got = sorted(leaves(root))
        if got != list(range(len(masses))):
            raise ValueError(f"the diagram's final-state particles {got} must be exactly "
                             f"0..{len(masses) - 1} (one per mass), each once")
        object.__setattr__(self, "root", root)
        object.__setattr__(self, "masses", masses)

    def min_mass(self, node: Node) -> float:
        """Smallest invariant mass of ``node`` (sum of its final-state masses)."""
        return float(math.fsum(self.masses[i] for i in leaves(node)))

    def propagators(self) -> list[tuple[Propagator, str, tuple[int, ...]]]:
        """Every propagator as ``(propagator, kind, particles)``.

        ``kind = "s"``: momentum ``sum(p[i] for i in particles)`` (the root included);
        ``kind = "t"``: momentum ``p_a - sum(p[i] for i in particles)``.
        """
        out: list[tuple[Propagator, str, tuple[int, ...]]] = []

        def walk(node: Node) -> None:
            if isinstance(node, Decay):
                out.append((node.propagator, "s", leaves(node)))
                walk(node.children[0])
                walk(node.children[1])
            elif isinstance(node, TChain):
                emitted: tuple[int, ...] = ()
                for leg, prop in zip(node.legs, node.propagators + (None,)):
                    emitted += leaves(leg)
                    if prop is not None:
                        out.append((prop, "t", emitted))
                    walk(leg)

        walk(self.root)
        return out
