"""Physics observables of four-momenta ``(..., 4) = (E, px, py, pz)`` in GeV, for event files.

The formulas are those of :mod:`mcint.phasespace.kinematics` (array-API code, also used by
cuts); this module adds the host-side checks and the standard set of observables.

* :func:`invariant_mass`, :func:`pt`, :func:`rapidity`, :func:`pseudorapidity`, :func:`phi`,
  :func:`cos_theta` -- of one momentum (or a sum of momenta) per event;
* :func:`delta_phi`, :func:`delta_r` -- separations of two particles;
* :func:`standard_observables` -- the usual set for the final state of an event sample (what
  ``mcint plot EVENTS.lhe`` draws).

Observable names use 1-based particle indices in the event record, as LHE does: ``m_34`` is the
invariant mass of particles 3 and 4, ``pt_3`` the transverse momentum of particle 3.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .phasespace import kinematics as K

__all__ = ["cos_theta", "delta_phi", "delta_r", "invariant_mass", "phi", "pseudorapidity", "pt",
           "rapidity", "standard_observables"]


def _p(p: Any) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    if a.shape[-1:] != (4,):
        raise ValueError(f"four-momenta need a last axis of length 4 (E, px, py, pz); got shape "
                         f"{a.shape}")
    return a


def invariant_mass(p: Any) -> np.ndarray:
    """``sqrt(E^2 - |p|^2)``, clipped at 0 (rounding makes massless momenta slightly spacelike)."""
    return K.mass(_p(p))


def pt(p: Any) -> np.ndarray:
    """Transverse momentum ``sqrt(px^2 + py^2)``."""
    return K.pt(_p(p))


def rapidity(p: Any) -> np.ndarray:
    """``y = 1/2 log((E + pz) / (E - pz))`` (``+-inf`` along the beam)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return K.rapidity(_p(p))


def pseudorapidity(p: Any) -> np.ndarray:
    """``eta = asinh(pz / pT)`` = ``-log tan(theta / 2)`` (``+-inf`` along the beam)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return K.eta(_p(p))


def phi(p: Any) -> np.ndarray:
    """Azimuth ``atan2(py, px)`` in ``(-pi, pi]``."""
    return K.phi(_p(p))


def cos_theta(p: Any) -> np.ndarray:
    """Cosine of the polar angle to the ``+z`` axis, ``pz / |p|``."""
    a = _p(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        return a[..., 3] / np.sqrt(np.sum(a[..., 1:] ** 2, axis=-1))


def delta_phi(p1: Any, p2: Any) -> np.ndarray:
    """Azimuthal separation ``|phi1 - phi2|`` wrapped into ``[0, pi]``."""
    d = np.abs(phi(p1) - phi(p2))
    return np.where(d > np.pi, 2 * np.pi - d, d)


def delta_r(p1: Any, p2: Any, *, use_rapidity: bool = False) -> np.ndarray:
    """``sqrt(d_eta^2 + d_phi^2)`` (``use_rapidity``: with the rapidity ``y`` instead of eta)."""
    if not use_rapidity:
        with np.errstate(divide="ignore", invalid="ignore"):
            return K.delta_r(_p(p1), _p(p2))
    return np.hypot(rapidity(p1) - rapidity(p2), delta_phi(p1, p2))


# -- the standard set ---------------------------------------------------------------------
#: mathtext names of common particles, for axis labels
_NAMES = {11: "e^-", -11: "e^+", 12: r"\nu_e", -12: r"\bar\nu_e", 13: r"\mu^-", -13: r"\mu^+",
          14: r"\nu_\mu", -14: r"\bar\nu_\mu", 15: r"\tau^-", -15: r"\tau^+", 16: r"\nu_\tau",
          -16: r"\bar\nu_\tau", 21: "g", 22: r"\gamma", 23: "Z", 24: "W^+", -24: "W^-", 25: "H",
          **{q: n for q, n in zip(range(1, 7), "dusctb")},
          **{-q: rf"\bar{{{n}}}" for q, n in zip(range(1, 7), "dusctb")}}

Observable = tuple[np.ndarray, str, str]


def standard_observables(events: Any) -> dict[str, Observable]:
    """``{name: (values (n,), axis label, unit)}`` for the final state (status 1) of ``events``.

    ``events`` has ``momenta`` ``(n, k, 4)`` and optionally ``status`` and ``pdg`` ``(n, k)`` or
    ``(k,)`` (a :class:`~mcint.events.ReadEvents` or :class:`~mcint.events.ParticleEvents`);
    without ``status`` every particle counts as final state. With final-state particles
    ``i < j < ...`` (1-based), the set is: ``m_ij..`` and ``y_ij..`` (mass and rapidity of the
    whole final state; at least 2 particles), ``m_ij`` of each pair (3 or 4 particles), ``pt_i``,
    ``y_i``, ``eta_i`` of each particle, ``dR_ij`` of each pair (2 to 4 particles) and ``cos_i``,
    the polar angle of the first one to ``+z``. Events without momenta give ``{}``.
    """
    mom = getattr(events, "momenta", None)
    if mom is None:
        return {}
    p = _p(mom)
    if p.ndim != 3:
        raise ValueError(f"momenta must have shape (n, k, 4), got {p.shape}")
    final = _final_state(getattr(events, "status", None), p.shape[1])
    names = _particle_names(getattr(events, "pdg", None), final)
    out: dict[str, Observable] = {}
    if len(final) >= 2:
        tot = p[:, final, :].sum(axis=1)
        tag = _tag(final)
        both = "".join(names[i] for i in final)
        out[f"m_{tag}"] = (invariant_mass(tot), f"$m_{{{both}}}$", "GeV")
        out[f"y_{tag}"] = (rapidity(tot), f"$y_{{{both}}}$", "")
    pairs = list(itertools.combinations(final, 2)) if 2 <= len(final) <= 4 else []
    if len(final) > 2:
        for i, j in pairs:
            out[f"m_{_tag((i, j))}"] = (invariant_mass(p[:, i] + p[:, j]),
                                        f"$m_{{{names[i]}{names[j]}}}$", "GeV")
    for i in final:
        out[f"pt_{i + 1}"] = (pt(p[:, i]), f"$p_T({names[i]})$", "GeV")
        out[f"y_{i + 1}"] = (rapidity(p[:, i]), f"$y({names[i]})$", "")
        out[f"eta_{i + 1}"] = (pseudorapidity(p[:, i]), rf"$\eta({names[i]})$", "")
    for i, j in pairs:
        out[f"dR_{_tag((i, j))}"] = (delta_r(p[:, i], p[:, j]),
                                     rf"$\Delta R({names[i]}, {names[j]})$", "")
    if final:
        i = final[0]
        out[f"cos_{i + 1}"] = (cos_theta(p[:, i]), rf"$\cos\theta({names[i]})$", "")
    return out


def _final_state(status: Any, k: int) -> list[int]:
    """0-based indices of the particles that are final state (status 1) in every event."""
    if status is None:
        return list(range(k))
    s = np.asarray(status)
    s = s.reshape(-1, k) if s.size else np.ones((1, k), dtype=np.int64)
    return [int(i) for i in np.flatnonzero(np.all(s == 1, axis=0))]


def _particle_names(pdg: Any, final: list[int]) -> dict[int, str]:
    """A mathtext name per final-state particle: its species where that is the same in every
    event and unique in the final state, ``p_i`` otherwise."""
    generic = {i: f"p_{{{i + 1}}}" for i in final}
    if pdg is None or not final:
        return generic
    ids = np.asarray(pdg)
    ids = ids.reshape(-1, ids.shape[-1]) if ids.size else ids.reshape(0, 0)
    if ids.shape[0] == 0:
        return generic
    names = {}
    for i in final:
        col = ids[:, i]
        same = bool(np.all(col == col[0]))
        names[i] = _NAMES.get(int(col[0]), generic[i]) if same else generic[i]
    counts = {n: list(names.values()).count(n) for n in names.values()}
    return {i: (n if counts[n] == 1 else generic[i]) for i, n in names.items()}


def _tag(idx: Any) -> str:
    """``(2, 3) -> "34"`` (1-based), with ``_`` between indices once they have two digits."""
    ids = [str(i + 1) for i in idx]
    return ("_" if any(len(s) > 1 for s in ids) else "").join(ids)
