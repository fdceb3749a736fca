"""ESS-controlled tempering: train on ``|f|^beta`` with ``beta`` rising to 1 as fast as the
current sampler allows.

Why: a sampler trained on a sharp multi-modal ``f`` from a broad start is taught by its few
largest weights, i.e. by whichever peak it happened to land nearest -- and then samples only
there (this is how madnis loses a peak of the 16-d camel). ``|f|^beta`` with small ``beta`` is
broad and keeps the symmetry between peaks; raising ``beta`` only as far as the effective
sample size of the weights ``|f|^beta / q`` stays above a fraction of the batch keeps every
stage's sampler covering the next stage's target, so all peaks are carried to ``beta = 1``
(the idea of annealed importance sampling / SMC, with the adaptive step of Jasra et al. 2011).
"""

from __future__ import annotations

import numpy as np


def ess_fraction(log_w: np.ndarray, channels: np.ndarray | None = None) -> float:
    """Kish ESS / n of weights given by their logs (``-inf`` = zero weight).

    With ``channels`` (the channel of each point): the per-channel ESS fractions averaged
    with each channel's share of the integral. Pooling channels would measure how unequal
    the channel integrals are (a channel holding 97% of the integral on a third of the batch
    caps the pooled ESS near 1/3), not how well each channel's sampler fits its target.
    """
    finite = np.isfinite(log_w)
    if not finite.any():
        return 1.0
    if channels is None:
        lw = log_w[finite] - np.max(log_w[finite])
        w = np.exp(lw)
        return float(w.sum() ** 2 / (w @ w)) / log_w.size
    w = np.where(finite, np.exp(np.where(finite, log_w - np.max(log_w[finite]), 0.0)), 0.0)
    num = den = 0.0
    for c in np.unique(channels):
        wc = w[channels == c]
        s1 = float(wc.sum())
        if s1 <= 0:
            continue
        share = s1 / wc.size
        num += share * (s1 * s1 / float(wc @ wc)) / wc.size
        den += share
    return num / den if den > 0 else 1.0


def next_beta(log_abs_f: np.ndarray, log_q: np.ndarray, beta: float, target: float,
              iters: int = 30, channels: np.ndarray | None = None) -> float:
    """The largest ``b`` in ``[beta, 1]`` with ``ESS(|f|^b / q) >= target * n``.

    Returns 1 once that holds at ``b = 1``, and ``beta`` itself if even ``beta`` fails (never
    decreases: the sampler has already adapted that far). ``channels``: see
    :func:`ess_fraction`.
    """
    lf = np.asarray(log_abs_f, dtype=np.float64)
    lq = np.asarray(log_q, dtype=np.float64)
    # zero weights stay zero at every beta (0 * -inf would be nan)
    lf = np.where(np.isfinite(lf), lf, -np.inf)
    lq = np.where(np.isfinite(lf), lq, 0.0)
    if beta >= 1.0 or not np.isfinite(lf).any():
        return 1.0
    if ess_fraction(lf - lq, channels) >= target:
        return 1.0
    if ess_fraction(_scale(lf, beta) - lq, channels) < target:
        return beta
    lo, hi = beta, 1.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if ess_fraction(_scale(lf, mid) - lq, channels) >= target:
            lo = mid
        else:
            hi = mid
    return lo


def _scale(lf: np.ndarray, b: float) -> np.ndarray:
    return np.where(np.isfinite(lf), b * np.where(np.isfinite(lf), lf, 0.0), -np.inf)
