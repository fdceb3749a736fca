"""The defensive share used at integration: chosen by the variance estimated from the recent
training points (importance-sampled from the training mixture), or fixed by the user."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..backends import Backend
    from .model import SamplerModel


class IntegrationPlan:
    """The defensive share ``eps`` used at integration and each channel's spread and integral
    with it (``channel_plan``).

    ``defensive_integrate``: ``"auto"`` or a fixed share; ``defensive_min``: the least share
    ``"auto"`` chooses; ``defensive``: the training share (the fallback before any estimate).
    """

    #: the candidate shares of ``"auto"`` (those >= ``defensive_min``, and that one)
    GRID = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 0.003, 0.01, 0.03, 0.1, 0.2, 0.3)

    def __init__(self, defensive_integrate: str | float = "auto", defensive_min: float = 1e-5,
                 defensive: float = 0.1) -> None:
        self.defensive_integrate = defensive_integrate
        self.defensive_min = float(defensive_min)
        self.defensive = float(defensive)
        #: the share chosen by the last estimate (None: none made yet)
        self.eps_auto: float | None = None
        #: per channel ``"stds"`` and ``"means"`` with the chosen share (None: no estimate)
        self.channel_plan: dict[str, np.ndarray] | None = None
        self._key: tuple | None = None

    def eps(self, model: SamplerModel, active: np.ndarray, recent: list[dict[str, Any]],
            step: int, tb: Backend | None) -> float:
        """The defensive share for integration and sampling.

        Also sets :attr:`channel_plan`: each channel's standard deviation of the weights with
        that share (``"stds"``) and its integral (``"means"``), estimated from the ``recent``
        training points (NaN where a channel has none) under ``model`` at training ``step``,
        on the torch backend ``tb`` (None: no estimate, the stored one is used). Integration
        allocates points by the spreads (the training history's belong to the training
        mixture, whose larger defensive share changes them: drellyan3 rel. std 7.3e-4 by the
        history's allocation, 5.8e-4 optimally stratified); sampling allocates by ``|I_c|``,
        which gives every channel the same mean event weight (the unweighting efficiency needs
        that, not the least variance).
        """
        fixed = self.defensive_integrate != "auto"
        if all(s.flow is None for s in model.samplers):
            return float(self.defensive_integrate) if fixed else 1.0
        if not recent or tb is None:
            if fixed:
                return float(self.defensive_integrate)
            last = self.defensive if self.eps_auto is None else self.eps_auto
            return max(self.defensive, self.defensive_min) if step == 0 \
                else max(self.defensive_min, last)
        # the plan depends only on the model (changed by training steps) and these options:
        # event generation calls sample() batch after batch, each would redo the same pass
        key = (step, self.defensive_integrate, self.defensive_min)
        if self._key == key:
            return float(self.defensive_integrate) if fixed else self.eps_auto
        xp = tb.xp
        batch = {k: (xp.concat([r[k] for r in recent], axis=0)
                     if recent[0][k] is not None else None) for k in recent[0]}
        batch["group_of"] = model.group_index(tb, batch["channels"])
        with tb.torch.no_grad():
            f, _ = model.batch_terms(batch, batch["channels"], model.cw, tb.asarray(active),
                                     model.samplers, 1.0 - 1e-300, False)
            lflow = model.log_q(batch["u"], batch["group_of"], model.samplers, 0.0)
        f = tb.to_numpy(f)
        lflow = tb.to_numpy(lflow)
        lqs = tb.to_numpy(batch["log_q_sample"])
        ch = tb.to_numpy(batch["channels"])
        best, best_v, best_s, best_m = None, math.inf, None, None
        cands = [float(self.defensive_integrate)] if fixed else \
            sorted({self.defensive_min} | {x for x in self.GRID if x >= self.defensive_min})
        present = np.unique(ch)
        for e in cands:
            means, stds = mixture_channel_moments(f, lflow, lqs, ch, present, e)
            v = float(stds.sum())    # optimal stratification's error is sum_c std_c
            if math.isfinite(v) and v < best_v * (1 - 1e-9):
                best, best_v, best_s, best_m = e, v, stds, means
        if best_s is not None:
            plan = {k: np.full(model.n_channels, np.nan) for k in ("stds", "means")}
            plan["stds"][present] = best_s
            plan["means"][present] = best_m
            self.channel_plan = plan
        self._key = key
        if fixed:
            return float(self.defensive_integrate)
        self.eps_auto = float(best if best is not None else self.defensive)
        return self.eps_auto


def mixture_channel_moments(f: np.ndarray, log_flow: np.ndarray, log_q_sample: np.ndarray,
                            channels: np.ndarray, present: np.ndarray, eps: float
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Each channel's integral and standard deviation of the weights ``w = f / m`` under the
    mixture ``m = (1 - eps) q + eps`` (``q = exp(log_flow)``), estimated from points drawn
    with density ``s = exp(log_q_sample)``, for the channels in ``present`` (in that order).

    Self-normalised importance sampling with ``r = m / s``: ``I = sum(w r) / sum(r)`` and
    ``Var = sum((w - I)^2 r) / sum(r)``, in float64. Once the flow is good the variance is
    tiny (drellyan3: rel. std 6e-4): ``E[w^2] - I^2`` loses it to rounding, and an integral
    from ``mean(f / s)`` carries the training mixture's noise (~1e-3 of ``I`` from 16k points),
    whose square would swamp it; normalised by ``sum(r)`` that noise cancels, because
    ``f / s ~ I r`` where the flow is good.
    """
    f = np.asarray(f, dtype=np.float64)
    log_flow = np.asarray(log_flow, dtype=np.float64)
    lqs = np.asarray(log_q_sample, dtype=np.float64)
    lm = np.logaddexp(np.log1p(-eps) + log_flow, np.log(eps)) if eps > 0 else log_flow
    means, stds = np.empty(len(present)), np.empty(len(present))
    for i, c in enumerate(present):
        m = channels == c
        r = np.exp(lm[m] - lqs[m])
        w = f[m] * np.exp(-lm[m])
        rs = float(np.sum(r))
        if not (math.isfinite(rs) and rs > 0):
            # no usable point (a density of 0 or inf everywhere): unknown, not a guess
            means[i] = stds[i] = math.nan
            continue
        means[i] = float(np.sum(w * r)) / rs
        stds[i] = math.sqrt(float(np.sum((w - means[i]) ** 2 * r)) / rs)
    return means, stds
