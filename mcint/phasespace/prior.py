"""MadGraph's channel-weight prior: ``alpha_i ∝ prod_props |p^2 - m^2 + i m Gamma|^-2`` (x |M_i|^2).

For channel ``i`` (a :class:`~.topology.Diagram`) the un-normalised weight is the product over
its propagators of ``1 / ((p^2 - m^2)^2 + m^2 Gamma^2)`` at the event's momenta, optionally
times a user-given ``|M_i|^2`` (the single-diagram squared amplitude). Rows are normalised in
log space, so huge or tiny propagators never overflow; denominators are floored at 1e-300 so an
exactly on-shell massless propagator gives a large finite weight instead of ``inf``/NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from array_api_compat import array_namespace

from .kinematics import mass2
from .topology import Diagram

__all__ = ["log_propagator_weight", "channel_prior"]

_FLOOR = 1e-300


def log_propagator_weight(diagram: Diagram, momenta: Any) -> Any:
    """``sum_props -log|p^2 - m^2 + i m Gamma|^2`` for ``momenta (n, 2 + n_final, 4)``."""
    xp = array_namespace(momenta)
    pa = momenta[:, 0, :]
    out = xp.zeros_like(momenta[:, 0, 0])
    for prop, kind, parts in diagram.propagators():
        q = momenta[:, 2 + parts[0], :]
        for i in parts[1:]:
            q = q + momenta[:, 2 + i, :]
        if kind == "t":
            q = pa - q
        d = mass2(q) - prop.mass ** 2
        den = d * d + (prop.mass * prop.width) ** 2
        out = out - xp.log(xp.maximum(den, xp.zeros_like(den) + _FLOOR))
    return out


def channel_prior(diagrams: Sequence[Diagram], momenta: Any,
                  me2: Sequence[Any] | None = None) -> Any:
    """Prior channel weights ``(n, C)`` (rows sum to 1) for the events ``momenta``.

    ``me2``: optional per-channel ``|M_i|^2`` arrays ``(n,)`` multiplying the propagator factors
    (channels whose ``|M_i|^2`` vanish everywhere get zero weight; an all-zero row falls back to
    the propagator-only weights).
    """
    xp = array_namespace(momenta)
    if me2 is not None and len(me2) != len(diagrams):
        raise ValueError(f"me2 has {len(me2)} entries but there are {len(diagrams)} channels")
    logs = [log_propagator_weight(d, momenta) for d in diagrams]
    props = xp.stack(logs, axis=1)
    lw = props
    if me2 is not None:
        m = xp.stack([xp.asarray(a) + xp.zeros_like(logs[0]) for a in me2], axis=1)
        if bool(xp.any(m < 0)):
            raise ValueError("me2 (the channels' |M_i|^2) must be >= 0")
        pos = m > 0
        logm = xp.log(xp.where(pos, m, xp.ones_like(m)))
        lw = xp.where(pos, props + logm, xp.zeros_like(m) - math.inf)
        dead = xp.all(m <= 0, axis=1)[:, None]
        lw = xp.where(dead, props, lw)
    top = xp.max(lw, axis=1, keepdims=True)
    e = xp.exp(lw - top)
    return e / xp.sum(e, axis=1, keepdims=True)
