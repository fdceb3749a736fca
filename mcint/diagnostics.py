"""Quality metrics of weighted samples: relative spread, per-channel tables, unweighting efficiency.

These are host-side summaries of a finished sample (any backend's arrays are copied to numpy
once), so they are plain numpy code.

* :func:`relative_std` -- ``std(w) / |mean(w)|``, the figure of merit of importance sampling
  (the error of the mean of ``n`` weights is ``relative_std / sqrt(n)`` relative).
* :func:`channel_table` -- per-channel integrals, errors and spreads of a multi-channel sample.
* :func:`stratified_relative_std` -- the relative std reachable with the optimal allocation of
  samples over channels (``n_c`` proportional to ``sigma_c``): ``sum_c sigma_c / |I|``.
* :func:`effective_sample_size`, :func:`largest_weight_share` -- how many weights carry the sum.
* :func:`unweighting_efficiency` -- ``<w> / w_max`` with the maximum weight taken as the median of
  the bootstrap distribution of the sample maximum (arXiv:2001.10028), computed exactly from the
  order statistics instead of by drawing replicas.

Every metric is independent of the weights' scale: weights far from 1 are divided by a power of
two (exact) before their squares are formed, so ``1e-200`` or ``1e200`` weights give the same
digits as weights of order one, times the scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .results import pow2_scale

__all__ = [
    "ChannelStats",
    "UnweightingStats",
    "bootstrap_max_weight",
    "channel_table",
    "effective_sample_size",
    "largest_weight_share",
    "relative_std",
    "stratified_relative_std",
    "summary",
    "unweighting_efficiency",
]


def _host(a: Any, what: str = "weights") -> np.ndarray:
    from .backends.base import _to_numpy_any

    arr = np.asarray(_to_numpy_any(a))
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-d array, got shape {arr.shape}")
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{what} must be real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _nonempty(w: np.ndarray) -> None:
    if w.size == 0:
        raise ValueError("weights must not be empty")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"weights contain {int((~np.isfinite(w)).sum())} non-finite values")


def _unit(w: np.ndarray) -> tuple[np.ndarray, float]:
    """``(w / s, s)`` with ``s`` a power of two bringing finite ``|w|`` near 1 (1 if already)."""
    s = pow2_scale(_absmax(w))
    return (w / s if s != 1.0 else w), s


def _absmax(w: np.ndarray) -> float:
    """Largest finite ``|w|`` (0 for none); two reductions, no temporary in the usual case."""
    m = max(float(w.max()), -float(w.min())) if w.size else 0.0
    if not math.isfinite(m):
        fin = w[np.isfinite(w)]
        m = max(float(fin.max()), -float(fin.min())) if fin.size else 0.0
    return m


def relative_std(weights: Any) -> float:
    """``std(w) / |mean(w)|`` (population std); ``inf`` when the mean is zero."""
    w = _host(weights)
    _nonempty(w)
    w = _unit(w)[0]  # a ratio: the scale cancels, the squares must not under/overflow
    mean = float(np.mean(w))
    std = float(np.std(w))
    return std / abs(mean) if mean != 0 else math.inf


def effective_sample_size(weights: Any) -> float:
    """Kish's effective sample size ``(sum |w|)^2 / sum w^2`` (``n`` for equal weights)."""
    w = np.abs(_host(weights))
    _nonempty(w)
    m = float(np.max(w))
    if m == 0:
        return 0.0
    w = w / m  # scale-free; w**2 of tiny weights would underflow to 0
    return float(np.sum(w)) ** 2 / float(np.sum(w * w))


def largest_weight_share(weights: Any) -> float:
    """``max |w| / sum |w|``: the share of the total carried by the single largest weight."""
    w = np.abs(_host(weights))
    _nonempty(w)
    s = float(np.sum(w))
    return float(np.max(w)) / s if s > 0 else 0.0


def bootstrap_max_weight(weights: Any, replica_size: int | None = None,
                         quantile: float = 0.5) -> float:
    """Median (or another ``quantile``) of the maximum of ``replica_size`` weights resampled
    with replacement from ``|w|``.

    This is the replica construction of arXiv:2001.10028 with infinitely many replicas: the
    maximum of ``m`` draws is ``<= w_(k)`` (the ``k``-th smallest) with probability
    ``(k/n)^m``, so the quantile is read off the sorted weights without any random numbers.
    ``replica_size`` defaults to ``n``; smaller replicas give a maximum less driven by single
    outliers.
    """
    w = np.sort(np.abs(_host(weights)))
    _nonempty(w)
    n = w.size
    m = n if replica_size is None else int(replica_size)
    if m < 1:
        raise ValueError(f"replica_size must be >= 1, got {replica_size}")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    # smallest k with (k/n)^m >= quantile  <=>  k >= n * quantile^(1/m)
    k = math.ceil(n * math.exp(math.log(quantile) / m) - 1e-12)
    k = min(max(k, 1), n)
    return float(w[k - 1])


@dataclass
class UnweightingStats:
    """Unweighting efficiency of a weighted sample."""

    #: ``<|w|> / w_max`` over all points (zero weights count: they are cut events)
    efficiency: float
    #: ``<min(|w|/w_max, 1)>``: the acceptance when over-weights are accepted with weight 1
    efficiency_partial: float
    #: fraction of points with ``|w| > w_max``
    overweight_fraction: float
    #: fraction of points with non-zero weight
    cut_efficiency: float
    #: the maximum weight used
    w_max: float


def unweighting_efficiency(weights: Any, replica_size: int | None = None) -> UnweightingStats:
    """Unweighting efficiency with the bootstrap-median maximum weight (arXiv:2001.10028).

    Uses ``|w|`` (signed samples are unweighted on ``|w|`` and keep the sign).
    """
    w = np.abs(_host(weights))
    _nonempty(w)
    w_max = bootstrap_max_weight(w, replica_size)
    if w_max <= 0:
        return UnweightingStats(0.0, 0.0, 0.0, 0.0, 0.0)
    ratio = w / w_max
    return UnweightingStats(
        efficiency=float(np.mean(ratio)),
        efficiency_partial=float(np.mean(np.minimum(ratio, 1.0))),
        overweight_fraction=float(np.mean(ratio > 1.0)),
        cut_efficiency=float(np.mean(w != 0)),
        w_max=w_max,
    )


@dataclass
class ChannelStats:
    """Per-channel integrals of a stratified multi-channel sample."""

    #: integral per channel ``I_c = <w>_c`` (weights drawn in channel c, not renormalised)
    integrals: np.ndarray
    #: Monte Carlo error of each ``I_c``
    errors: np.ndarray
    #: standard deviation of the weights in each channel
    stds: np.ndarray
    #: points per channel
    counts: np.ndarray
    #: ``sum_c I_c`` and its error ``sqrt(sum_c sigma_c^2 / n_c)``
    total: float = 0.0
    total_error: float = 0.0
    names: list[str] = field(default_factory=list)

    @property
    def shares(self) -> np.ndarray:
        """``|I_c| / sum |I_c|``."""
        a = np.abs(self.integrals)
        s = a.sum()
        return a / s if s > 0 else np.zeros_like(a)

    def rows(self) -> list[dict[str, float]]:
        """One dict per channel (for printing or JSON)."""
        names = self.names or [str(i) for i in range(len(self.counts))]
        return [dict(channel=names[i], integral=float(self.integrals[i]),
                     error=float(self.errors[i]), rel_std=_safe_div(self.stds[i],
                                                                     abs(self.integrals[i])),
                     count=int(self.counts[i]), share=float(self.shares[i]))
                for i in range(len(self.counts))]


def _safe_div(a: float, b: float) -> float:
    return float(a) / float(b) if b != 0 else math.inf


def channel_table(weights: Any, channels: Any, n_channels: int,
                  names: list[str] | None = None) -> ChannelStats:
    """Per-channel integrals and errors of a stratified sample.

    ``weights`` are the per-channel estimator terms ``alpha_c f / g_c`` *without* the
    ``n / n_c`` stratification factor, so ``I_c = mean`` of the channel's weights and the total
    is ``sum_c I_c``. Channels without points get integral 0 and error ``nan``.
    """
    w = _host(weights)
    c = _host(channels, "channels").astype(np.int64)
    if w.shape != c.shape:
        raise ValueError(f"weights {w.shape} and channels {c.shape} must have the same shape")
    if c.size and (c.min() < 0 or c.max() >= n_channels):
        raise ValueError(f"channel indices must be in [0, {n_channels}), got "
                         f"[{c.min()}, {c.max()}]")
    w, scale = _unit(w)   # squares of 1e-200 weights would underflow; scaled back below
    counts = np.bincount(c, minlength=n_channels)
    s1 = np.bincount(c, w, minlength=n_channels)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, s1 / np.maximum(counts, 1), 0.0)
        dev2 = np.bincount(c, (w - means[c]) ** 2, minlength=n_channels)
        var = np.where(counts > 0, dev2 / np.maximum(counts, 1), np.nan)
        err = np.where(counts > 1, np.sqrt(var / np.maximum(counts - 1, 1)), np.nan)
    total = float(means.sum()) * scale
    total_err = float(np.sqrt(np.nansum(np.where(counts > 1, var / np.maximum(counts - 1, 1),
                                                 0.0)))) * scale
    return ChannelStats(integrals=means * scale, errors=err * scale, stds=np.sqrt(var) * scale,
                        counts=counts, total=total, total_error=total_err,
                        names=list(names or []))


def stratified_relative_std(stds: Any, integral: float) -> float:
    """``sum_c sigma_c / |I|``: the relative std with the optimal allocation ``n_c ~ sigma_c``."""
    s = np.nan_to_num(np.asarray(stds, dtype=np.float64))
    return float(np.sum(s)) / abs(integral) if integral != 0 else math.inf


def summary(weights: Any, replica_size: int | None = None) -> dict[str, float]:
    """All single-sample metrics at once (for printing and benchmarks)."""
    u = unweighting_efficiency(weights, replica_size)
    return dict(rel_std=relative_std(weights), ess=effective_sample_size(weights),
                largest_weight_share=largest_weight_share(weights),
                unweighting_efficiency=u.efficiency, unweighting_partial=u.efficiency_partial,
                overweight_fraction=u.overweight_fraction)
