"""Chili: hadron-collider phase space from transverse momenta, rapidities and azimuths.

Bothmann, Giele, Hoeche, Isaacson, Knobbe, arXiv:2302.10449 (SciPost Phys. 15 (2023) 169).
For ``n`` final-state particles of masses ``m_i`` and a collider energy ``sqrt(S)``:

* particles ``1 .. n-1``: ``pT_i`` from ``r`` by ``pT = pT_min + 2 c D r / (2 c + pT_max (1 - r))``
  (``c = m_i``, or ``pT_min`` for a massless particle; ``D = pT_max - pT_min``,
  ``pT_max = sqrt(S) / 2``), which follows a ``1/pT^2``-like tail; rapidity ``y_i`` flat in
  ``|y_i| <= min(y_max_i, log(sqrt(S) / mT_i))``; azimuth flat;
* particle ``n``: ``pT_n = -sum pT_i`` (momentum conservation), rapidity flat between the
  limits that keep ``x1, x2 <= 1`` (and ``|y_n| <= y_max_n``);
* ``x1 sqrt(S) = sum (E + pz)``, ``x2 sqrt(S) = sum (E - pz)``: the beams follow.

So cuts ``pT_i >= pT_min_i`` (``i < n``) and ``|y_i| <= y_max_i`` (all ``i``) are *native*: every
sampled point passes them and the whole cut region is covered (for massless particles ``y`` is
the pseudorapidity ``eta``). The last particle's ``pT`` is not sampled; cut it with a mask
(:class:`~.cuts.Cuts`) or put a particle without a ``pT`` cut last.

Weight (the conventions of :mod:`.base`: ``(2 pi)^(4 - 3n)`` included, and ``dx1 dx2``):

    dx1 dx2 dPhi_n = (2 pi)^(4 - 3n) (2 / S) prod_{i<n} (pT_i dpT_i dy_i dphi_i / 2) dy_n / 2,

since ``d^3p / (2E) = pT dpT dy dphi / 2``, the transverse delta function removes
``d^2 pT_n`` and ``dx1 dx2 delta(E) delta(pz) = 2 / S``. Points whose ``y_n`` range is empty
(the first ``n - 1`` particles already need ``x1`` or ``x2 > 1``) get weight 0
(``log_weight = -inf``), finite momenta, and ``x1`` or ``x2`` above 1: mask them before
evaluating PDFs. Random numbers: ``r[:, :n-1]`` the ``pT``'s, ``r[:, n-1:2n-1]`` the
rapidities (the last one ``y_n``), ``r[:, 2n-1:]`` the azimuths.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from array_api_compat import array_namespace, device

from ..backends import fusable
from ..transforms import check_batch
from .base import check_masses
from .kinematics import four

__all__ = ["Chili", "chili_forward"]


def _per_particle(value: float | Sequence[float], n: int, name: str) -> tuple[float, ...]:
    if isinstance(value, (int, float)):
        return (float(value),) * n
    out = tuple(float(v) for v in value)
    if len(out) != n:
        raise ValueError(f"{name}: expected one value per final-state particle ({n}), "
                         f"got {len(out)}")
    return out


class Chili:
    """Chili phase space for ``n >= 2`` final-state particles at a hadron collider.

    ``map(r) -> (momenta (n_ev, 2 + n, 4), x1, x2, log_weight)`` and ``map_inverse`` as
    :class:`~.base.PhaseSpace` (``dims = 3n - 2``: no separate luminosity map; the weight
    includes ``dx1 dx2``).

    Parameters
    ----------
    masses: on-shell masses of the final-state particles.
    sqrt_s: hadronic collider energy (GeV).
    pt_min: ``pT`` cut per particle (or one for all); the last particle's must be 0.
    y_max: rapidity cut ``|y| <= y_max`` per particle (or one for all); ``inf``: none.
    """

    #: no separate luminosity map (the beams follow from the final state); code that needs one
    #: (``mcint.collider.HadronicProcess``) refuses Chili for now
    luminosity = None

    def __init__(self, masses: Sequence[float], sqrt_s: float,
                 pt_min: float | Sequence[float] = 0.0,
                 y_max: float | Sequence[float] = math.inf) -> None:
        self.masses = check_masses(masses)
        n = len(self.masses)
        if n < 2:
            raise ValueError(f"Chili needs at least 2 final-state particles, got {n}")
        sqrt_s = float(sqrt_s)
        if not (math.isfinite(sqrt_s) and sqrt_s > sum(self.masses)):
            raise ValueError(f"sqrt_s must be finite and above the final-state masses "
                             f"({sum(self.masses)} GeV), got {sqrt_s}")
        self.pt_min = _per_particle(pt_min, n, "pt_min")
        self.y_max = _per_particle(y_max, n, "y_max")
        for i, (p, y) in enumerate(zip(self.pt_min, self.y_max)):
            if not (math.isfinite(p) and 0.0 <= p < 0.5 * sqrt_s):
                raise ValueError(f"pt_min of particle {i} must be in [0, sqrt_s / 2), got {p}")
            if not y > 0:
                raise ValueError(f"y_max of particle {i} must be positive, got {y}")
        if self.pt_min[-1] != 0.0:
            raise ValueError("the last particle's pT is fixed by momentum conservation and "
                             "cannot be cut natively: put a particle without a pT cut last, "
                             "or cut it with a mask (mcint.phasespace.Cuts)")
        # the pT map's scale: the mass, else the cut (a massless particle needs a cut: the
        # uncut massless pT spectrum is not integrable at 0 against this map)
        self._c = tuple(m if m > 0 else p for m, p in zip(self.masses[:-1], self.pt_min[:-1]))
        for i, c in enumerate(self._c):
            if c <= 0:
                raise ValueError(f"particle {i} is massless without a pT cut: Chili needs "
                                 "pt_min > 0 for it (or a mass)")
        self.sqrt_s = sqrt_s
        self.dims = 3 * n - 2
        self._log_const = ((4 - 3 * n) * math.log(2 * math.pi) + math.log(2.0 / sqrt_s ** 2)
                           - n * math.log(2.0) + (n - 1) * math.log(2 * math.pi))

    @property
    def n_final(self) -> int:
        return len(self.masses)

    def _consts(self, like: Any) -> tuple[Any, ...]:
        xp = array_namespace(like)
        n = self.n_final

        def row(v: Sequence[float]) -> Any:
            return xp.asarray(list(v), dtype=like.dtype, device=device(like))

        c = row(self._c)
        pmin = row(self.pt_min[:-1])
        m2 = row([m * m for m in self.masses[:-1]])
        ymax = row(self.y_max[:-1])
        return c, pmin, m2, ymax, n

    def _ylim(self, xp: Any, mt: Any, ymax: Any) -> Any:
        """``|y| <= log(sqrt(S) / mT)`` (each particle's ``E +- pz <= sqrt(S)``), and the cut."""
        lim = xp.log(self.sqrt_s / mt)
        lim = xp.minimum(lim, ymax)
        return xp.maximum(lim, xp.zeros_like(lim))

    def _last_range(self, xp: Any, kp: Any, km: Any, qt: Any) -> tuple[Any, Any, Any]:
        """``y_n`` limits from ``x1, x2 <= 1`` and the cut; ``valid`` where the range is not
        empty. ``kp, km``: ``sum (E +- pz)`` of the first ``n - 1`` particles."""
        e = self.sqrt_s
        with_plus, with_minus = e - kp, e - km
        ok = (with_plus > 0) & (with_minus > 0)
        one = xp.ones_like(kp)
        hi = xp.log(xp.where(ok, with_plus, one) / qt)
        lo = -xp.log(xp.where(ok, with_minus, one) / qt)
        ym = self.y_max[-1]
        if math.isfinite(ym):
            hi, lo = xp.minimum(hi, ym + 0 * hi), xp.maximum(lo, -ym + 0 * lo)
        valid = ok & (hi > lo)
        return lo, hi, valid

    def map(self, r: Any) -> tuple[Any, Any, Any, Any]:
        """``r (n_ev, 3n - 2)`` -> ``(momenta (n_ev, 2 + n, 4), x1, x2, log_weight)``."""
        check_batch(r, self.dims, "Chili random numbers")
        return chili_forward(r, self)

    def map_inverse(self, momenta: Any, x1: Any = None, x2: Any = None) -> tuple[Any, Any]:
        """Momenta ``(n_ev, 2 + n, 4)`` -> ``(r, log_weight)``, ``log_weight`` as :meth:`map`'s.

        ``x1, x2`` are not needed (the final state fixes them); accepted for
        :class:`~.base.PhaseSpace` compatibility.
        """
        xp = array_namespace(momenta)
        n = self.n_final
        if momenta.ndim != 3 or momenta.shape[1:] != (2 + n, 4):
            raise ValueError(f"momenta must have shape (n, {2 + n}, 4), "
                             f"got {tuple(momenta.shape)}")
        c, pmin, m2, ymax, _ = self._consts(momenta)
        pmax = 0.5 * self.sqrt_s
        p = momenta[:, 2:2 + n - 1, :]
        px, py, pz = p[..., 1], p[..., 2], p[..., 3]
        pt = xp.sqrt(px * px + py * py)
        mt = xp.sqrt(pt * pt + m2)
        y = xp.asinh(pz / mt)
        delta = pmax - pmin
        u = pt - pmin
        den_r = 2.0 * delta * c + pmax * u
        r_pt = (2.0 * c + pmax) * u / den_r
        den = 2.0 * c + pmax * (1.0 - r_pt)
        ld_pt = xp.log(2.0 * c * delta * (2.0 * c + pmax)) - 2.0 * xp.log(den)
        ylim = self._ylim(xp, mt, ymax)
        r_y = 0.5 * (y / ylim + 1.0)
        r_phi = xp.atan2(py, px) / (2 * math.pi) + 0.5
        ep, em = mt * xp.exp(y), mt * xp.exp(-y)
        kp, km = xp.sum(ep, axis=1), xp.sum(em, axis=1)
        pxj, pyj = xp.sum(px, axis=1), xp.sum(py, axis=1)
        mn = self.masses[-1]
        qt = xp.sqrt(pxj * pxj + pyj * pyj + mn * mn)
        lo, hi, valid = self._last_range(xp, kp, km, qt)
        width = xp.where(valid, hi - lo, xp.ones_like(lo))
        yn = xp.asinh(momenta[:, 1 + n, 3] / qt)
        r_n = (yn - lo) / width
        r = xp.concat([r_pt, r_y, r_n[:, None], r_phi], axis=1)
        log_w = (self._log_const + xp.sum(xp.log(pt) + ld_pt + xp.log(2.0 * ylim), axis=1)
                 + xp.log(width))
        log_w = xp.where(valid, log_w, xp.full_like(log_w, -math.inf))
        return r, log_w

    def __repr__(self) -> str:
        return (f"Chili(masses={list(self.masses)}, sqrt_s={self.sqrt_s}, "
                f"pt_min={list(self.pt_min)}, y_max={list(self.y_max)})")


@fusable("phasespace-chili-forward")
def chili_forward(r: Any, ps: Chili) -> tuple[Any, Any, Any, Any]:
    """:meth:`Chili.map` on a checked batch (the numba backend fuses it,
    ``backends/mcint_numba/kernels/ps_chili.py``; this is the reference)."""
    xp = array_namespace(r)
    c, pmin, m2, ymax, n = ps._consts(r)
    e = ps.sqrt_s
    pmax = 0.5 * e
    r_pt, r_y, r_phi = r[:, :n - 1], r[:, n - 1:2 * n - 2], r[:, 2 * n - 1:]
    den = 2.0 * c + pmax * (1.0 - r_pt)
    delta = pmax - pmin
    pt = pmin + 2.0 * c * delta * r_pt / den
    ld_pt = xp.log(2.0 * c * delta * (2.0 * c + pmax)) - 2.0 * xp.log(den)
    mt = xp.sqrt(pt * pt + m2)
    ylim = ps._ylim(xp, mt, ymax)
    y = ylim * (2.0 * r_y - 1.0)
    phi = math.pi * (2.0 * r_phi - 1.0)
    px, py = pt * xp.cos(phi), pt * xp.sin(phi)
    # light-cone components E +- pz = mT exp(+-y): no cancellation for backward particles
    ep, em = mt * xp.exp(y), mt * xp.exp(-y)
    first = xp.stack([0.5 * (ep + em), px, py, 0.5 * (ep - em)], axis=-1)
    kp, km = xp.sum(ep, axis=1), xp.sum(em, axis=1)
    pxj, pyj = xp.sum(px, axis=1), xp.sum(py, axis=1)
    mn = ps.masses[-1]
    qt = xp.sqrt(pxj * pxj + pyj * pyj + mn * mn)
    lo, hi, valid = ps._last_range(xp, kp, km, qt)
    zero = xp.zeros_like(lo)
    width = xp.where(valid, hi - lo, xp.ones_like(lo))
    yn = xp.where(valid, lo, zero) + width * r[:, 2 * n - 2]
    epn, emn = qt * xp.exp(yn), qt * xp.exp(-yn)
    last = four(0.5 * (epn + emn), -pxj, -pyj, 0.5 * (epn - emn))
    x1, x2 = (kp + epn) / e, (km + emn) / e
    pa = four(0.5 * e * x1, zero, zero, 0.5 * e * x1)
    pb = four(0.5 * e * x2, zero, zero, -0.5 * e * x2)
    momenta = xp.concat([pa[:, None, :], pb[:, None, :], first, last[:, None, :]], axis=1)
    log_w = (ps._log_const + xp.sum(xp.log(pt) + ld_pt + xp.log(2.0 * ylim), axis=1)
             + xp.log(width))
    log_w = xp.where(valid, log_w, xp.full_like(log_w, -math.inf))
    return momenta, x1, x2, log_w
