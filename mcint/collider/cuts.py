"""Generator cuts on particle groups, as a run card states them.

Groups of final-state particles by PDG id: ``jet`` (gluons and u, d, s, c quarks), ``bottom``,
``lepton`` (charged leptons), ``photon``, ``missing`` (neutrinos; their pT is the vector sum,
the missing transverse momentum). A specification is a mapping::

    {"pt_min": {"jet": 20, "lepton": 10}, "eta_max": {"jet": 5.0},
     "dr_min": {"jet_jet": 0.4, "lepton_jet": 0.4}, "mass_min": {"lepton_lepton": 50},
     "sqrt_s_min": 100}

``pt_min``/``pt_max``/``eta_max`` apply to every particle of the group (``missing``: to the summed
neutrino momentum), ``dr_min``/``dr_max`` and ``mass_min``/``mass_max`` to every pair of the two
groups named ``a_b``, ``sqrt_s_min``/``sqrt_s_max`` to the partonic energy. Cut points count as
zero in the integrand (their phase space is still sampled: a cut-aware mapping narrows it).
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..phasespace import kinematics as K

__all__ = ["GROUPS", "ParticleCuts", "group_of"]

GROUPS = ("jet", "bottom", "lepton", "photon", "missing")
_PER_GROUP = ("pt_min", "pt_max", "eta_max")
_PER_PAIR = ("dr_min", "dr_max", "mass_min", "mass_max")
_GLOBAL = ("sqrt_s_min", "sqrt_s_max")


def group_of(pdg: int) -> str | None:
    """The cut group of a final-state particle (``None``: no group, e.g. a W or a top)."""
    a = abs(int(pdg))
    if a in (1, 2, 3, 4, 21):
        return "jet"
    if a == 5:
        return "bottom"
    if a in (11, 13, 15):
        return "lepton"
    if a == 22:
        return "photon"
    if a in (12, 14, 16):
        return "missing"
    return None


def _hint(word: str, options: Sequence[str]) -> str:
    near = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


class ParticleCuts:
    """Cuts for a final state ``outgoing`` (PDG ids) from a specification (module docstring).

    ``mask(momenta, beams=True)`` gives a boolean per event (``momenta (n, 2 + k, 4)``, or the
    final state alone with ``beams=False``).
    """

    def __init__(self, outgoing: Sequence[int], spec: Mapping[str, Any],
                 where: str = "cuts") -> None:
        self.outgoing = tuple(int(p) for p in outgoing)
        self.members = {g: [i for i, p in enumerate(self.outgoing) if group_of(p) == g]
                        for g in GROUPS}
        self.per_group: list[tuple[str, str, float]] = []
        self.per_pair: list[tuple[str, str, str, float]] = []
        self.globals: list[tuple[str, float]] = []
        for key, val in spec.items():
            if key in _GLOBAL:
                self.globals.append((key, self._number(val, f"{where}.{key}")))
                continue
            if key not in _PER_GROUP + _PER_PAIR:
                raise ValueError(f"{where}: unknown cut {key!r}"
                                 f"{_hint(key, _PER_GROUP + _PER_PAIR + _GLOBAL)}; cuts are "
                                 f"{', '.join(_PER_GROUP + _PER_PAIR + _GLOBAL)}")
            if not isinstance(val, Mapping):
                raise ValueError(f"{where}.{key} must map groups to values, e.g. "
                                 f"{{jet = 20}}, got {val!r}")
            for g, v in val.items():
                x = self._number(v, f"{where}.{key}.{g}")
                if key in _PER_GROUP:
                    if g not in GROUPS:
                        raise ValueError(f"{where}.{key}: unknown group {g!r}{_hint(g, GROUPS)}; "
                                         f"groups are {', '.join(GROUPS)}")
                    self.per_group.append((key, g, x))
                else:
                    pair = str(g).split("_")
                    pairs = [f"{a}_{b}" for a in GROUPS for b in GROUPS]
                    if len(pair) != 2 or any(p not in GROUPS for p in pair):
                        raise ValueError(f"{where}.{key}: {g!r} is not a pair of groups like "
                                         f"'jet_jet' or 'lepton_jet'{_hint(str(g), pairs)}")
                    self.per_pair.append((key, pair[0], pair[1], x))

    def particle_pt_min(self) -> dict[int, float]:
        """Each final-state particle's own lower pT cut (GeV, by index in ``outgoing``): what a
        cut-aware mapping may build in (``missing`` cuts a vector sum, not a particle)."""
        out: dict[int, float] = {}
        for key, g, x in self.per_group:
            if key == "pt_min" and g != "missing":
                for i in self.members[g]:
                    out[i] = max(out.get(i, 0.0), x)
        return out

    @staticmethod
    def _number(v: Any, what: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or v < 0:
            raise ValueError(f"{what} must be a finite number >= 0, got {v!r}")
        return float(v)

    def _group_momenta(self, fs: np.ndarray, g: str) -> list[np.ndarray]:
        idx = self.members[g]
        if g == "missing" and idx:
            return [fs[:, idx, :].sum(axis=1)]
        return [fs[:, i, :] for i in idx]

    def mask(self, momenta: Any, beams: bool = True) -> np.ndarray:
        p = np.asarray(momenta, dtype=np.float64)
        fs = p[:, 2:] if beams else p
        if fs.shape[1] != len(self.outgoing):
            raise ValueError(f"cuts for {len(self.outgoing)} final-state particles got momenta "
                             f"with {fs.shape[1]}")
        ok = np.ones(p.shape[0], dtype=bool)
        with np.errstate(divide="ignore", invalid="ignore"):
            for key, g, x in self.per_group:
                for q in self._group_momenta(fs, g):
                    if key == "pt_min":
                        ok &= K.pt(q) > x
                    elif key == "pt_max":
                        ok &= K.pt(q) < x
                    else:
                        ok &= np.abs(K.eta(q)) < x
            for key, a, b, x in self.per_pair:
                qa, qb = self._group_momenta(fs, a), self._group_momenta(fs, b)
                pairs = (itertools.combinations(qa, 2) if a == b else
                         itertools.product(qa, qb))
                for u, v in pairs:
                    val = K.delta_r(u, v) if key.startswith("dr") else K.mass(u + v)
                    ok &= val > x if key.endswith("min") else val < x
            if self.globals:
                tot = p[:, 0] + p[:, 1] if beams else fs.sum(axis=1)
                rs = K.mass(tot)
                for key, x in self.globals:
                    ok &= rs > x if key == "sqrt_s_min" else rs < x
        return ok

    def __repr__(self) -> str:
        return (f"ParticleCuts({len(self.per_group)} per-particle, {len(self.per_pair)} per-pair, "
                f"{len(self.globals)} global)")
