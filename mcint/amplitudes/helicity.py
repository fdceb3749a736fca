"""Which helicity configurations are summed (all-outgoing helicity labels, +1 / -1).

Only configurations that can be non-zero at tree level are kept, by three rules:

1. a massless quark line conserves chirality: outgoing quark and antiquark have opposite
   helicities (``q^+- qbar^-+``), and likewise a lepton line;
2. the W couples to left-handed fields: on the W's quark and lepton lines the fermion has
   helicity -1 and the antifermion +1;
3. without a W (pure QCD, at least 4 legs) an amplitude needs at least two legs of each
   helicity (all-plus and one-minus amplitudes vanish; the quark pair counts one of each).

For pure QCD, parity makes ``|M(-h)|^2 = |M(h)|^2`` after the colour sum (the colour matrix is
real), so only configurations with ``h_0 = +1`` are evaluated and counted twice. The tests check
that every dropped configuration really vanishes and that the parity doubling is exact.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

__all__ = ["configurations"]


def configurations(kinds: Sequence[str], w: bool, use_parity: bool = True
                   ) -> tuple[list[tuple[int, ...]], int]:
    """``(configs, multiplicity)`` for legs of the given kinds (``"g"``, ``"q"``, ``"qb"``,
    ``"l"``, ``"lb"``; all outgoing). ``multiplicity`` (1 or 2) multiplies the summed
    ``|M|^2`` to account for the parity partners left out."""
    kinds = list(kinds)
    idx = {k: [i for i, kk in enumerate(kinds) if kk == k] for k in ("q", "qb", "l", "lb")}
    out = []
    for h in itertools.product((1, -1), repeat=len(kinds)):
        if any(h[q] != -h[qb] for q, qb in zip(idx["q"], idx["qb"])):
            continue
        if any(h[lf] != -h[lb] for lf, lb in zip(idx["l"], idx["lb"])):
            continue
        if w:
            if any(h[i] != -1 for i in idx["q"] + idx["l"]):
                continue
        elif len(kinds) >= 4 and (h.count(1) < 2 or h.count(-1) < 2):
            continue
        out.append(h)
    parity = use_parity and not w
    if parity:
        out = [h for h in out if h[0] == 1]
    return out, 2 if parity else 1
