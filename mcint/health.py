"""Honest results: diagnostics of the weights that reveal a sampler which missed part of the
integrand, and the :class:`SamplerWarning` raised when they look bad.

An importance-sampling estimate ``mean(w)`` with ``w = f / g`` is only as good as ``g``'s
coverage of ``f``. When ``g`` nearly misses a region (a peak the map or flow never learnt), the
few points that land there carry huge weights: the weight distribution grows a heavy tail and
its sample variance -- hence the quoted error -- becomes unreliable. These statistics look for
that tail:

* ``khat``: the shape of a generalized Pareto distribution fitted to the largest weights, as in
  Pareto-smoothed importance sampling (Vehtari, Simpson, Gelman, Yao, Gabry, arXiv:1507.02646).
  With ``k > 1/2`` the weights have infinite variance; above 0.7 the error estimate is not to
  be trusted (the estimate converges too slowly to be of use). Flagged together with the next
  statistic: a separable VEGAS map's few mildly heavy corners give ``k > 0.7`` on large
  samples without making the error wrong.
* ``largest_weight_share``: ``max |w| / sum |w|`` -- one point carrying a visible share of the
  integral.
* ``top_variance_share``: the share of ``sum w^2`` (the variance) from the top 0.1% of weights
  (flagged with ``k > 0.7`` when above one half).
* ``ess``: Kish's effective sample size ``(sum |w|)^2 / sum w^2``; ``max_over_mean``.
* per-channel coverage: channels that received no points, or whose integral is exactly zero.

A sampler that missed a region *entirely* (no point ever lands there) leaves no trace in its
weights; no weight statistic can reveal it. The defensive mixtures of the NIS integrator and
the VEGAS map's non-zero density everywhere make "no point at all" improbable for large
samples, which is when these diagnostics see the tail.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["KHAT_BAD", "SamplerWarning", "WeightDiagnostics", "diagnose", "pareto_khat",
           "warn_if_bad"]

#: k-hat above which the variance estimate is unreliable (PSIS, Vehtari et al.)
KHAT_BAD = 0.7
#: share of sum w^2 from the top 0.1% of the weights above which a heavy tail is flagged
TOP_SHARE_BAD = 0.5
#: largest single weight's share of sum |w| that is flagged
LARGEST_SHARE_BAD = 0.05
#: fewest effective points for which an error estimate is trusted
ESS_BAD = 30.0
#: fewest non-zero weights needed to fit the tail
MIN_TAIL_POINTS = 100


class SamplerWarning(UserWarning):
    """The weights of a result suggest the sampler under-samples part of the integrand."""


@dataclass
class WeightDiagnostics:
    """Statistics of one sample's weights, and what looks wrong with them (``problems``)."""

    n: int
    nonzero: int
    ess: float
    ess_fraction: float
    max_over_mean: float
    largest_weight_share: float
    top_variance_share: float
    khat: float
    #: active channels that received no points
    empty_channels: list[int] = field(default_factory=list)
    #: channels with points whose integral is exactly zero (not flagged: may be cut away)
    zero_channels: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        head = (f"n={self.n} ESS={self.ess:.4g} ({100 * self.ess_fraction:.3g}%) "
                f"max/mean={self.max_over_mean:.3g} largest share={self.largest_weight_share:.3g}"
                f" top-0.1% variance share={self.top_variance_share:.3g} k-hat={self.khat:.2f}")
        return head + ("" if self.ok else "\n  " + "\n  ".join(self.problems))


def _gpd_fit(x: np.ndarray) -> float:
    """Shape ``k`` of a generalized Pareto distribution fitted to exceedances ``x > 0`` (sorted
    ascending) by the empirical-Bayes method of Zhang & Stephens (2009), with the weakly
    informative prior on ``k`` of PSIS (10 pseudo-observations at 0.5)."""
    n = x.size
    m = 80 + int(math.sqrt(n))
    b = 1.0 - np.sqrt(m / (np.arange(1, m + 1) - 0.5))
    b = b / (3.0 * x[max(int(n / 4 + 0.5) - 1, 0)]) + 1.0 / x[-1]
    k = np.mean(np.log1p(-b[:, None] * x[None, :]), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = n * (np.log(-b / k) - k - 1.0)
    ok = np.isfinite(ll)
    if not ok.any():
        return math.nan
    b, ll = b[ok], ll[ok]
    with np.errstate(over="ignore"):
        w = 1.0 / np.sum(np.exp(ll[None, :] - ll[:, None]), axis=1)
    keep = w >= 10 * np.finfo(np.float64).eps
    b, w = b[keep], w[keep] / np.sum(w[keep])
    b_post = float(np.sum(b * w))
    k_post = float(np.mean(np.log1p(-b_post * x)))
    return (n * k_post + 10 * 0.5) / (n + 10)


def pareto_khat(weights: Any) -> float:
    """PSIS tail-shape ``k`` of ``|weights|`` (``nan`` with fewer than 100 non-zero weights).

    Fits the largest ``M = min(n/5, 3 sqrt(n))`` weights above the next one. ``k < 0.5``: finite
    variance, the error is honest; ``0.5 < k < 0.7``: slow convergence; ``k > 0.7``: unreliable.
    """
    w = np.abs(np.asarray(weights, dtype=np.float64).ravel())
    w = w[w > 0]
    n = w.size
    if n < MIN_TAIL_POINTS or not np.all(np.isfinite(w)):
        return math.nan
    m = int(math.ceil(min(0.2 * n, 3.0 * math.sqrt(n))))
    top = np.partition(w, n - m - 1)[n - m - 1:]
    top.sort()
    exc = top[1:] - top[0]
    if exc[-1] <= 0:
        return -math.inf  # a flat tail: all the largest weights are equal
    exc = exc[exc > 0]
    if exc.size < 5:
        return -math.inf
    return _gpd_fit(exc)


def diagnose(weights: Any, channels: Any = None, n_channels: int | None = None,
             active: Any = None) -> WeightDiagnostics:
    """Weight-tail statistics of a sample of event weights (``mean(w)`` = the integral).

    ``channels``/``n_channels`` (and ``active``, a boolean mask of channels in use) add the
    per-channel coverage. Accepts arrays of any backend.
    """
    from .backends.base import _to_numpy_any

    w = np.asarray(_to_numpy_any(weights), dtype=np.float64).ravel()
    a = np.abs(w)
    n = int(a.size)
    finite = np.isfinite(a)
    if n == 0 or not finite.all():
        bad = n - int(finite.sum())
        return WeightDiagnostics(n, 0, math.nan, math.nan, math.nan, math.nan, math.nan,
                                 math.nan, problems=[f"{bad} non-finite weight(s)" if bad
                                                     else "no weights"])
    nz = int(np.count_nonzero(a))
    amax = float(np.max(a))
    if amax > 0:
        a = a / amax  # scale-free; squares of tiny weights would underflow
    s1 = float(np.sum(a))
    s2 = float(np.sum(a * a))
    if s1 == 0:
        ess, lshare, mom, top = float(n), 0.0, 0.0, 0.0
    else:
        ess = s1 * s1 / s2
        lshare = 1.0 / s1
        mom = n / s1
        k = max(int(math.ceil(0.001 * n)), 1)
        top = float(np.sum(np.partition(a * a, n - k)[n - k:])) / s2
    khat = pareto_khat(a)
    d = WeightDiagnostics(n=n, nonzero=nz, ess=ess, ess_fraction=ess / n, max_over_mean=mom,
                          largest_weight_share=lshare, top_variance_share=top, khat=khat)
    if channels is not None and n_channels:
        c = np.asarray(_to_numpy_any(channels)).astype(np.int64).ravel()
        cnt = np.bincount(c, minlength=n_channels)[:n_channels]
        sums = np.bincount(c, a, minlength=n_channels)[:n_channels]
        act = np.ones(n_channels, bool) if active is None else np.asarray(active, bool)
        d.empty_channels = [int(i) for i in np.flatnonzero(act & (cnt == 0))]
        d.zero_channels = [int(i) for i in np.flatnonzero((cnt > 0) & (sums == 0))]
    d.problems = _problems(d)
    return d


def _problems(d: WeightDiagnostics) -> list[str]:
    out = []
    if d.khat > KHAT_BAD and d.top_variance_share > TOP_SHARE_BAD:
        # both: a heavy tail that also dominates the variance (a separable VEGAS map has a few
        # mildly heavy corners on a fine sample; those alone do not make the error wrong)
        out.append(f"Pareto k-hat of the weight tail is {d.khat:.2f} > {KHAT_BAD} and the top "
                   f"0.1% of the weights make {100 * d.top_variance_share:.3g}% of the variance: "
                   "the error estimate is unreliable")
    if d.n >= 1000 and d.largest_weight_share > LARGEST_SHARE_BAD:
        out.append(f"the largest weight carries {100 * d.largest_weight_share:.3g}% of the "
                   f"total (max/mean = {d.max_over_mean:.3g}) out of {d.n} points")
    if d.nonzero > 0 and d.ess < ESS_BAD and d.n >= 1000:
        out.append(f"effective sample size {d.ess:.3g} of {d.n} points is too small for an "
                   "error estimate")
    if d.empty_channels:
        out.append(f"channel(s) {d.empty_channels} received no points: their contribution is "
                   "missing")
    return out


def warn_if_bad(diag: WeightDiagnostics, what: str = "result", stacklevel: int = 3) -> None:
    """Emit one :class:`SamplerWarning` listing ``diag.problems`` (nothing if there are none)."""
    if diag.ok:
        return
    warnings.warn(
        f"the {what} may be wrong: the sampler looks like it misses part of the integrand "
        f"(a peak or region it rarely visits). " + "; ".join(diag.problems)
        + ". Train longer, add a channel or mapping for that region, or raise the defensive "
        "fraction; `result.diagnostics` has the statistics.",
        SamplerWarning, stacklevel=stacklevel)
