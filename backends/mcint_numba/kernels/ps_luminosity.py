"""Fused parton-luminosity map (reference: :func:`mcint.phasespace.luminosity.
luminosity_forward`): ``(r1, r2) -> (x1, x2)`` through ``(tau, y)``, the ``s_hat`` sampler
included, in one pass (for ``1/s_hat`` with fewer transcendental calls: ``log s_hat`` is linear
in ``r``). The batch was checked by :meth:`Luminosity.forward` (``check_batch``);
numpy float64 and the built-in samplers only, else ``NotImplemented``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import kernel
from . import ps_math as M


@M.jit
def _luminosity(x, kind, c0, c1, lo, hi, log_s, out, ld):  # pragma: no cover - compiled
    if kind == M.POWER_LAW and c0 == 1.0 and lo > 0.0:
        # 1/s_hat (the common choice): log s_hat = log lo + r L is known without a log, and
        # x2 = tau / x1; one exp for s_hat dropped too. 3 libm calls instead of 7
        big_l = math.log(hi / lo)
        log_lo = math.log(lo)
        c = math.log(big_l) - log_s
        for i in range(x.shape[0]):
            log_sh = log_lo + x[i, 0] * big_l
            log_tau = log_sh - log_s
            y = (x[i, 1] - 0.5) * (-log_tau)
            out[i, 0] = math.exp(0.5 * log_tau + y)
            out[i, 1] = math.exp(0.5 * log_tau - y)
            ld[i] = log_sh + c + math.log(-log_tau)
        return
    for i in range(x.shape[0]):
        s_hat, d = M.sample_invariant(kind, c0, c1, x[i, 0], lo, hi)
        log_tau = math.log(s_hat) - log_s
        y = (x[i, 1] - 0.5) * (-log_tau)
        out[i, 0] = math.exp(0.5 * log_tau + y)
        out[i, 1] = math.exp(0.5 * log_tau - y)
        ld[i] = d - log_s + math.log(-log_tau)


@kernel("phasespace-luminosity-forward")
def luminosity_forward(x: Any, s_hadronic: float, sampler: Any, s_hat_min: float,
                       s_hat_max: float) -> Any:
    code = M.sampler_code(sampler)
    if code is None or not M.is_f64(x, None, 2):
        return NotImplemented
    n = x.shape[0]
    out, ld = np.empty((n, 2)), np.empty(n)
    _luminosity(x, *code, float(s_hat_min), float(s_hat_max), math.log(s_hadronic), out, ld)
    return out, ld
