"""The defensive share used at integration: chosen by the variance estimated from the recent
training points (importance-sampled from the training mixture), or fixed by the user."""

from __future__ import annotations

import math

import numpy as np


class DefensiveMixin:
    """Choice of the integration defensive share ``eps``."""

    def _eps_integrate(self) -> float:
        """The defensive share for integration and sampling.

        Also sets ``_channel_plan``: each channel's standard deviation of the weights with
        that share (``"stds"``) and its integral (``"means"``), estimated from the recent
        training points (NaN where a channel has none). Integration allocates points by the
        spreads (the training history's belong to the training mixture, whose larger defensive
        share changes them: drellyan3 rel. std 7.3e-4 by the history's allocation, 5.8e-4
        optimally stratified); sampling allocates by ``|I_c|``, which gives every channel the
        same mean event weight (the unweighting efficiency needs that, not the least variance).
        """
        fixed = self.defensive_integrate != "auto"
        if all(s.flow is None for s in self.samplers):
            return float(self.defensive_integrate) if fixed else 1.0
        if not self._recent or self._torch is None:
            if fixed:
                return float(self.defensive_integrate)
            return max(self.defensive, self.defensive_min) if self.step == 0 \
                else max(self.defensive_min, getattr(self, "_eps_auto", self.defensive))
        # the plan depends only on the model (changed by training steps) and these options:
        # event generation calls sample() batch after batch, each would redo the same pass
        key = (self.step, self.defensive_integrate, self.defensive_min)
        if getattr(self, "_plan_key", None) == key:
            return float(self.defensive_integrate) if fixed else self._eps_auto
        tb = self._torch
        xp = tb.xp
        batch = {k: (xp.concat([r[k] for r in self._recent], axis=0)
                     if self._recent[0][k] is not None else None) for k in self._recent[0]}
        groups = tb.asarray(np.asarray(self.groups), "int64")
        batch["group_of"] = xp.take(groups, batch["channels"], axis=0)
        with self._no_grad():
            f, lq1 = self._batch_terms(batch, batch["channels"], self.cw,
                                       tb.asarray(self.active), self.samplers, 1.0 - 1e-300,
                                       False)
            lflow = self._log_q(batch["u"], batch["group_of"], self.samplers, 0.0)
        f = tb.to_numpy(f)
        lflow = tb.to_numpy(lflow)
        lqs = tb.to_numpy(batch["log_q_sample"])
        ch = tb.to_numpy(batch["channels"])
        del lq1
        best, best_v, best_s = None, math.inf, None
        grid = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 0.003, 0.01, 0.03, 0.1, 0.2, 0.3)
        cands = [float(self.defensive_integrate)] if fixed else \
            sorted({self.defensive_min} | {x for x in grid if x >= self.defensive_min})
        present = np.unique(ch)
        for e in cands:
            means, stds = mixture_channel_moments(f, lflow, lqs, ch, present, e)
            v = float(stds.sum())    # optimal stratification's error is sum_c std_c
            if math.isfinite(v) and v < best_v * (1 - 1e-9):
                best, best_v, best_s = e, v, stds
        if best_s is not None:
            plan = {k: np.full(self.n_channels, np.nan) for k in ("stds", "means")}
            plan["stds"][present] = best_s
            plan["means"][present] = means
            self._channel_plan = plan
        self._plan_key = key
        if fixed:
            return float(self.defensive_integrate)
        self._eps_auto = float(best if best is not None else self.defensive)
        return self._eps_auto


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
