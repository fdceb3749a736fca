"""Colour representations of PDG ids and the rules a Les Houches colour flow obeys.

In an LHE event ``ICOLUP = (colour, anticolour)`` tags name colour lines (0: none). A quark
(PDG 1..6) carries a colour, an antiquark an anticolour, a gluon both (different), everything
else neither. An incoming particle's colour flows *into* the event, so its colour counts as an
outgoing anticolour and vice versa: every tag of the external particles then appears exactly
twice, once as an (outgoing-counted) colour and once as an anticolour.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

__all__ = ["check_color_flow", "color_type", "net_color"]

TRIPLET, ANTITRIPLET, OCTET, SINGLET = 3, -3, 8, 1


def color_type(pdg: int) -> int:
    """``3`` (quark), ``-3`` (antiquark), ``8`` (gluon) or ``1`` (colour singlet)."""
    a = abs(int(pdg))
    if 1 <= a <= 6:
        return TRIPLET if pdg > 0 else ANTITRIPLET
    return OCTET if a == 21 else SINGLET


def check_color_flow(pdg: Sequence[int], incoming: Sequence[bool],
                     colors: Sequence[Sequence[int]]) -> None:
    """Raise ``ValueError`` (saying why) unless ``colors`` is a valid flow of the particles."""
    flows: list[int] = []      # tags counted as outgoing colour
    antis: list[int] = []      # ... as outgoing anticolour
    for i, (pid, inc, (c, a)) in enumerate(zip(pdg, incoming, colors)):
        c, a = int(c), int(a)
        if c < 0 or a < 0:
            raise ValueError(f"leg {i} (PDG {pid}): colour tags must be >= 0, got ({c}, {a})")
        t = color_type(pid)
        want = {TRIPLET: (True, False), ANTITRIPLET: (False, True), OCTET: (True, True),
                SINGLET: (False, False)}[t]
        if (c > 0, a > 0) != want:
            raise ValueError(f"leg {i} (PDG {pid}, colour type {t}) cannot carry colour tags "
                             f"({c}, {a})")
        if t == OCTET and c == a:
            raise ValueError(f"leg {i} (gluon) has the same colour and anticolour tag {c}")
        for tag, as_colour in ((c, not inc), (a, inc)):
            if tag:
                (flows if as_colour else antis).append(tag)
    fc, ac = Counter(flows), Counter(antis)
    for tag in set(fc) | set(ac):
        if fc[tag] != 1 or ac[tag] != 1:
            raise ValueError(f"colour tag {tag} must join exactly one colour to one anticolour "
                             f"(each tag appears twice); it appears {fc[tag]} + {ac[tag]} times")


def net_color(colors: Sequence[Sequence[int]]) -> tuple[int, int]:
    """The ``(colour, anticolour)`` of a resonance decaying to outgoing particles with these
    tags: the tags not joined among the daughters (``ValueError`` if more than one of each)."""
    cs = Counter(int(c) for c, _ in colors if c)
    aa = Counter(int(a) for _, a in colors if a)
    free_c = sorted((cs - aa).elements())
    free_a = sorted((aa - cs).elements())
    if len(free_c) > 1 or len(free_a) > 1:
        raise ValueError(f"daughters with open colours {free_c} / anticolours {free_a} cannot come "
                         "from one resonance")
    return (free_c[0] if free_c else 0, free_a[0] if free_a else 0)
