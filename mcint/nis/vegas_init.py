"""VEGAS initialisation: pre-train one VEGAS map per channel group, cheaply, before the flows.

The flow of a channel then lives in the map's ``y`` space: ``x = V(flow(z))``, so a new (identity)
flow already samples like the trained VEGAS grid, with the peaks VEGAS found along the axes, and
the flow only has to learn what a separable grid cannot (correlations, removing phantom peaks).
The map is fixed during flow training: the flow's density in ``y`` times ``|dy/dx|`` is the
channel's density.

The same map is the defensive component of the sampler: a fraction ``eps`` of the points is
drawn uniformly in ``y`` (i.e. from VEGAS), which keeps every region VEGAS found populated
while the flow trains and bounds the weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..backends import Backend


def pretrain_map(evaluate: Callable[[Any], Any], dims: int, calls: int, be: Backend, rng: Any,
                 *, ninc: int = 64, nitn: int = 8, alpha: float = 0.5,
                 dtype: str = "float64", temper: float = 0.0) -> tuple[Any, int, float]:
    """Train an :class:`mcint.vegas.AdaptiveMap` on ``evaluate(x) -> f(x)`` (backend arrays).

    ``calls`` integrand evaluations split over ``nitn`` adaptation rounds; the grid has
    ``ninc`` increments per axis, at most a tenth of the points of one round (finer grids are
    a better base for the flow as long as each increment gets enough points: see the
    integrator's ``vegas_ninc``). With ``temper > 0`` each round trains on ``|f|^beta``, ``beta`` raised
    towards 1 only as far as the weights' ESS stays above ``temper`` of the round
    (:mod:`mcint.nis.tempering`), so VEGAS does not collapse onto the first peak it meets.
    Returns ``(map, calls used, final beta)``.
    """
    import numpy as np

    from ..vegas import AdaptiveMap
    from .tempering import next_beta

    nitn = max(1, int(nitn))
    per = max(int(calls) // nitn, 1)
    ninc = int(max(2, min(ninc, per // 10)))
    amap = AdaptiveMap(dims, ninc=ninc, backend=be)
    xp = be.xp
    used = 0
    beta = 0.0 if temper > 0 else 1.0
    for _ in range(nitn):
        y = rng.uniform((per, dims), dtype)
        x, jac = amap.forward_jac(y)
        f = xp.abs(xp.astype(evaluate(x), xp.float64))
        jac = xp.astype(jac, xp.float64)
        used += per
        if beta < 1.0:
            with np.errstate(divide="ignore"):
                lf = np.log(be.to_numpy(f))
            beta = next_beta(lf, -np.log(be.to_numpy(jac)), beta, temper)
            f = f if beta >= 1.0 else xp.where(f > 0, xp.exp(beta * xp.log(
                xp.where(f > 0, f, xp.ones_like(f)))), xp.zeros_like(f))
        fj = f * jac
        amap.add_training_data(y, fj * fj)
        amap.adapt(alpha=alpha)
    return amap, used, beta


class VegasStage:
    """The VEGAS pre-training of an integrator: whether it runs, its share of the first
    train() budget, its grid size, and its random stream's seed.

    ``ninc=None`` chooses the grid by dimension (512 increments up to 2 dims, 128 up to 8, 64
    above), and above 2 dims keeps it at 64 while the budget is small (see
    ``docs/integrator.md``).
    """

    def __init__(self, enabled: bool, fraction: float, ninc: int | None, dims: int,
                 seed: int) -> None:
        self.enabled = bool(enabled)
        self.fraction = float(fraction)
        #: whether ``ninc`` is the default (then budget-dependent above 2 dims)
        self.ninc_auto = ninc is None
        # finer grids gave the flows a better base at every budget measured
        self.ninc = int(ninc) if ninc is not None else (
            512 if dims <= 2 else (128 if dims <= 8 else 64))
        self.dims = int(dims)
        self.seed = int(seed)

    def ninc_for(self, calls: int) -> int:
        """Grid increments for a pre-training of ``calls`` points: ``ninc``, but a default
        grid above 2 dims stays at 64 increments until each of the 8 rounds has 100 points per
        increment (finer grids biased corr6 at 1e5 calls)."""
        if self.ninc_auto and self.dims > 2 and calls // 8 < 100 * self.ninc:
            return min(self.ninc, 64)
        return self.ninc

    def pretrain(self, evaluators: list[Callable[[Any], Any]], calls: int, dtype: str,
                 temper: float) -> tuple[list[Any], int, float] | None:
        """One map per group, each trained on ``evaluators[g]`` (``|alpha_prior_c f|`` of its
        first channel, numpy arrays) with an equal share of ``calls``; returns ``(maps, calls
        used, least final beta)``, or None when ``calls`` is too small to train."""
        from ..backends import get_backend

        n = len(evaluators)
        if calls < 20 * n:
            return None
        be = get_backend("numpy")
        rng = be.rng(self.seed)
        per_group = calls // n
        maps, used_total, betas = [], 0, []
        for f in evaluators:
            amap, used, beta = pretrain_map(f, self.dims, per_group, be, rng,
                                            ninc=self.ninc_for(per_group), dtype=dtype,
                                            temper=temper)
            maps.append(amap)
            betas.append(beta)
            used_total += used
        return maps, used_total, min(betas)
