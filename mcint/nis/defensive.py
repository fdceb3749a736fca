"""The defensive share used at integration: chosen by the variance estimated from the recent
training points (importance-sampled from the training mixture), or fixed by the user."""

from __future__ import annotations

import math

import numpy as np


class DefensiveMixin:
    """Choice of the integration defensive share ``eps``."""

    def _eps_integrate(self) -> float:
        if self.defensive_integrate != "auto":
            return float(self.defensive_integrate)
        if all(s.flow is None for s in self.samplers):
            return 1.0
        if not self._recent or self._torch is None:
            return max(self.defensive, self.defensive_min) if self.step == 0 \
                else max(self.defensive_min, getattr(self, "_eps_auto", self.defensive))
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
        best, best_v = None, math.inf
        grid = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 0.003, 0.01, 0.03, 0.1, 0.2, 0.3)
        cands = sorted({self.defensive_min} | {x for x in grid if x >= self.defensive_min})
        for e in cands:
            lm = np.logaddexp(np.log1p(-e) + lflow, np.log(e)) if e > 0 else lflow
            # E_m[w^2] per channel, importance-sampled from the training mixture
            w2 = f * f * np.exp(-lm - lqs)
            w1 = f * np.exp(-lqs)
            v = 0.0
            for c in np.unique(ch):
                m = ch == c
                v += math.sqrt(max(float(np.mean(w2[m]) - np.mean(w1[m]) ** 2), 0.0))
            if v < best_v * (1 - 1e-9):
                best, best_v = e, v
        self._eps_auto = float(best if best is not None else self.defensive)
        return self._eps_auto

