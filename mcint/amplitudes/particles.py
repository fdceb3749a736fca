"""The particle table and MadGraph-style process strings (``"u d~ > e+ ve g"``).

Every particle here is massless (five-flavour QCD, massless leptons); the only massive state is
the internal W boson. Colour: 1 (singlet), 3 (quark), -3 (antiquark), 8 (gluon).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

__all__ = ["Particle", "PARTICLES", "BY_PDG", "parse_process", "symmetry_factor", "conjugate",
           "GLUON", "W_PLUS"]

GLUON = 21
W_PLUS = 24


@dataclass(frozen=True)
class Particle:
    """An external particle: ``name`` (MadGraph spelling), PDG id, colour representation,
    three times its electric charge, and its weak-isospin partner (PDG id, 0 for none)."""

    name: str
    pdg: int
    colour: int
    charge3: int
    partner: int


def _table() -> dict[str, Particle]:
    out = {"g": Particle("g", 21, 8, 0, 0)}
    quarks = {"d": (1, -1, 2), "u": (2, 2, 1), "s": (3, -1, 4), "c": (4, 2, 3), "b": (5, -1, 6)}
    for name, (pdg, q3, partner) in quarks.items():
        out[name] = Particle(name, pdg, 3, q3, partner)
        out[name + "~"] = Particle(name + "~", -pdg, -3, -q3, -partner)
    leptons = {"e-": (11, -3, 12), "ve": (12, 0, 11), "mu-": (13, -3, 14), "vm": (14, 0, 13),
               "ta-": (15, -3, 16), "vt": (16, 0, 15)}
    for name, (pdg, q3, partner) in leptons.items():
        out[name] = Particle(name, pdg, 1, q3, partner)
        anti = name[:-1] + "+" if name.endswith("-") else name + "~"
        out[anti] = Particle(anti, -pdg, 1, -q3, -partner)
    return out


#: name -> :class:`Particle`
PARTICLES: dict[str, Particle] = _table()
#: PDG id -> :class:`Particle`
BY_PDG: dict[int, Particle] = {p.pdg: p for p in PARTICLES.values()}


def conjugate(pdg: int) -> int:
    """The antiparticle's PDG id (the gluon is its own)."""
    return pdg if pdg == GLUON else -pdg


def parse_process(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``"g g > g g g"`` -> ``((21, 21), (21, 21, 21))``: incoming and outgoing PDG ids."""
    if not isinstance(text, str) or text.count(">") != 1:
        raise ValueError(f"a process is written 'a b > c d ...' with one '>', got {text!r}")
    left, right = (side.split() for side in text.split(">"))
    out = []
    for side in (left, right):
        ids = []
        for name in side:
            if name not in PARTICLES:
                raise ValueError(f"unknown particle {name!r} in {text!r}; known: "
                                 f"{' '.join(PARTICLES)}")
            ids.append(PARTICLES[name].pdg)
        out.append(tuple(ids))
    if len(out[0]) != 2:
        raise ValueError(f"need exactly two incoming particles, got {len(out[0])} in {text!r}")
    if len(out[1]) < 2:
        raise ValueError(f"need at least two outgoing particles, got {len(out[1])} in {text!r}")
    charge = sum(BY_PDG[p].charge3 for p in out[0]) - sum(BY_PDG[p].charge3 for p in out[1])
    if charge != 0:
        raise ValueError(f"{text!r} does not conserve electric charge")
    return out[0], out[1]


def symmetry_factor(outgoing: tuple[int, ...]) -> float:
    """``1 / prod(n_i!)`` over groups of identical final-state particles."""
    return 1.0 / math.prod(math.factorial(c) for c in Counter(outgoing).values())
