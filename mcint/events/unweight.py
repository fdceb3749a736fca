"""Unweighting: turn weighted points into events of equal weight by accept/reject.

A point of weight ``w`` is kept with probability ``min(1, |w| / w_max)`` and carries the weight
``sign(w) * sigma_abs`` (``sigma_abs = <|w|>``), so the kept events reproduce the integrand,
negative regions included. Choosing ``w_max`` as the largest weight is exact but, for the heavy
tails of importance sampling, very inefficient; as in MadGraph, ``w_max`` is instead the smallest
value whose *truncated overweights* -- ``sum(max(|w| - w_max, 0))`` -- stay below a budget, by
default 0.1% of ``sum |w|`` (the bias on any distribution is then below 0.1%).

This is host-side bookkeeping for event output (the kept events go to files), so it works on
numpy arrays; weights of any backend are copied to the host first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..results import pow2_scale
from ..vegas._util import check_seed

#: MadGraph's default: 0.1% of the cross section may sit in truncated overweights
DEFAULT_BUDGET = 1e-3


def _host(a: Any) -> np.ndarray:
    from ..backends.base import _to_numpy_any

    return np.asarray(_to_numpy_any(a), dtype=np.float64)


def max_weight(weights: Any, budget: float = DEFAULT_BUDGET) -> float:
    """The smallest ``w_max`` with ``sum(max(|w| - w_max, 0)) <= budget * sum(|w|)``.

    ``budget=0`` gives ``max |w|`` (no truncation). Raises ``ValueError`` for empty, all-zero or
    non-finite weights, and for a budget outside ``[0, 1)``.
    """
    if not 0.0 <= budget < 1.0:
        raise ValueError(f"the overweight budget must be in [0, 1), got {budget}")
    a = np.abs(_host(weights)).ravel()
    if a.size == 0:
        raise ValueError("cannot choose a maximum weight from an empty set of weights")
    if not np.all(np.isfinite(a)):
        raise ValueError("weights contain NaN or inf; cannot choose a maximum weight")
    # in units of a power of two near max |w| (exact): sums of 1e305 weights must not overflow
    scale = pow2_scale(float(a.max()))
    if scale != 1.0:
        a = a / scale
    total = float(a.sum())
    if total <= 0.0:
        raise ValueError("all weights are zero (the integrand vanished at every sampled point): "
                         "no events can be generated")
    a = np.sort(a)[::-1]
    allowed = budget * total
    top = np.cumsum(a)                              # S_k: sum of the k largest
    k = np.arange(1, a.size + 1)
    # excess over threshold a[k] (next value) with the k largest above it
    nxt = np.append(a[1:], 0.0)
    excess_at_next = top - k * nxt
    # first k whose threshold a[k] would exceed the budget; the answer lies in [a[k], a[k-1]]
    j = int(np.searchsorted(excess_at_next, allowed, side="right"))
    j = min(j, a.size - 1)
    w = (top[j] - allowed) / (j + 1)
    return float(min(max(w, nxt[j]), a[0])) * scale


@dataclass
class UnweightStats:
    """Running statistics of an unweighting pass."""

    #: points tried
    trials: int = 0
    #: events kept
    accepted: int = 0
    #: kept events with negative weight
    negative: int = 0
    #: points with weight exactly zero (cut away / outside the integrand's support)
    zero: int = 0
    #: kept events whose weight exceeded ``w_max``
    overweight_events: int = 0
    #: ``sum(max(|w| - w_max, 0))`` over all trials
    truncated: float = 0.0
    #: ``sum |w|`` and ``sum w`` over all trials
    abs_sum: float = 0.0
    sum: float = 0.0
    #: ``sum (w / sq_scale)**2`` over all trials (see :meth:`add_squares`)
    sum_sq: float = 0.0
    w_max: float = float("nan")
    #: power of two the squares are summed in units of (fixed by the first non-zero weights):
    #: squares of 1e-200 weights would underflow to 0, of 1e200 weights overflow
    sq_scale: float = 0.0

    def add_squares(self, w: np.ndarray) -> None:
        """Add ``sum w**2`` of a batch to :attr:`sum_sq` (in units of :attr:`sq_scale`)."""
        if not self.sq_scale:
            m = float(np.max(np.abs(w), initial=0.0))
            if m == 0.0:
                return
            self.sq_scale = pow2_scale(m)
        u = w / self.sq_scale if self.sq_scale != 1.0 else w
        self.sum_sq += float(np.dot(u, u))

    @property
    def efficiency(self) -> float:
        """Unweighting efficiency: kept events per trial."""
        return self.accepted / self.trials if self.trials else float("nan")

    @property
    def cut_efficiency(self) -> float:
        """Fraction of trials with a non-zero weight."""
        return 1.0 - self.zero / self.trials if self.trials else float("nan")

    @property
    def overweight_fraction(self) -> float:
        """Share of ``sum |w|`` lost to truncation (kept below the budget by construction)."""
        return self.truncated / self.abs_sum if self.abs_sum else 0.0

    @property
    def negative_fraction(self) -> float:
        return self.negative / self.accepted if self.accepted else 0.0

    @property
    def sigma(self) -> tuple[float, float]:
        """The integral estimated from every trial (mean weight) and its standard error."""
        n = self.trials
        if n < 2:
            return float("nan"), float("nan")
        mean = self.sum / n
        unit = self.sq_scale or 1.0
        m = mean / unit      # the variance in units of sq_scale**2: no under/overflow
        var = max(self.sum_sq / n - m * m, 0.0)
        return mean, float(np.sqrt(var / (n - 1))) * unit

    @property
    def sigma_abs(self) -> float:
        """``<|w|>`` over every trial."""
        return self.abs_sum / self.trials if self.trials else float("nan")

    def as_dict(self) -> dict[str, float]:
        s, e = self.sigma
        return {"trials": self.trials, "accepted": self.accepted, "w_max": self.w_max,
                "efficiency": self.efficiency, "cut_efficiency": self.cut_efficiency,
                "overweight_events": self.overweight_events,
                "overweight_fraction": self.overweight_fraction,
                "negative_fraction": self.negative_fraction, "sigma": s, "sigma_err": e}


@dataclass
class Unweighter:
    """Accept/reject against a fixed ``w_max``, batch by batch, keeping :class:`UnweightStats`.

    ``select(weights)`` returns the indices of the kept points (increasing) and their signs.
    """

    w_max: float
    seed: int | np.random.Generator | None = None
    stats: UnweightStats = field(default_factory=UnweightStats)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.w_max) and self.w_max > 0):
            raise ValueError(f"w_max must be a positive finite number, got {self.w_max}")
        # the integrators' one seed check (True, 1.5, -1 or "1" are no seeds); a Generator
        # given by the caller is used as it is
        self._rng = (self.seed if isinstance(self.seed, np.random.Generator)
                     else np.random.default_rng(check_seed(self.seed)))
        self.stats.w_max = float(self.w_max)

    def select(self, weights: Any, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Accept/reject ``weights``; with ``limit``, stop at the ``limit``-th kept point.

        Points after the last one needed are not consumed: they count in no statistic, so the
        efficiency is kept events per point actually used.
        """
        w = _host(weights).ravel()
        if not np.all(np.isfinite(w)):
            raise ValueError("weights contain NaN or inf; cannot unweight")
        a = np.abs(w)
        u = self._rng.random(a.shape[0])
        keep = np.flatnonzero(u * self.w_max < a)
        if limit is not None and keep.size > limit:
            keep = keep[:limit]
            used = int(keep[-1]) + 1 if limit > 0 else 0
            w, a = w[:used], a[:used]
        s = self.stats
        s.trials += int(a.shape[0])
        s.zero += int(np.count_nonzero(a == 0.0))
        s.abs_sum += float(a.sum())
        s.sum += float(w.sum())
        s.add_squares(w)
        over = a > self.w_max
        s.truncated += float((a[over] - self.w_max).sum())
        s.overweight_events += int(np.count_nonzero(over[keep]))
        sign = np.where(w[keep] < 0, -1.0, 1.0)
        s.accepted += int(keep.size)
        s.negative += int(np.count_nonzero(sign < 0))
        return keep, sign


@dataclass
class UnweightResult:
    """Kept indices and signs of one unweighting pass, with its statistics."""

    indices: np.ndarray
    sign: np.ndarray
    w_max: float
    stats: UnweightStats


def unweight(weights: Any, *, w_max: float | None = None, budget: float = DEFAULT_BUDGET,
             seed: int | np.random.Generator | None = None) -> UnweightResult:
    """Unweight one set of weights. ``w_max`` defaults to :func:`max_weight` of these weights.

    Choosing ``w_max`` from the same points that are unweighted biases the result slightly
    (the largest weights decide their own threshold); for production, choose it on a separate
    calibration sample, as :func:`unweighted_events` does.
    """
    if w_max is None:
        w_max = max_weight(weights, budget)
    uw = Unweighter(w_max, seed)
    idx, sign = uw.select(weights)
    return UnweightResult(idx, sign, float(w_max), uw.stats)


@dataclass
class EventBatch:
    """Kept events of one sampled batch: the batch rows, their signs and trials per event."""

    batch: Any
    sign: np.ndarray
    trials: np.ndarray


def iid_source(sampler: Any) -> Callable[[int], Any]:
    """``n -> Batch`` of independent, identically distributed points from ``sampler``.

    ``sampler`` is an mcint sampler (anything with ``sample(n, stratified=...)``: VEGAS, the
    NIS :class:`~mcint.nis.Integrator`) or already a callable ``n -> Batch``. Stratified draws
    are refused for event generation: their weights depend on ``n`` and on the position in the
    batch (fixed counts per channel or hypercube), so the events kept from a part of a batch,
    or accepted against a ``w_max`` chosen on another sample, would be biased.
    """
    fn = getattr(sampler, "sample", None)
    if fn is None:
        if not callable(sampler):
            raise TypeError(f"expected a sampler with sample(n) or a callable n -> Batch, got "
                            f"{type(sampler).__name__}")
        return sampler
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    if "stratified" in params:
        return lambda n: fn(n, stratified=False)
    return fn


def unweighted_events(sample: Any, n_events: int, *, w_max: float,
                      seed: int | np.random.Generator | None = None, batch_size: int = 100_000,
                      max_trials: int | None = None,
                      progress: Callable[[UnweightStats], None] | None = None,
                      stats: UnweightStats | None = None,
                      expected_efficiency: float | None = None) -> Iterator[EventBatch]:
    """Draw batches from ``sample`` and yield the kept events until ``n_events``.

    ``sample`` is a sampler (VEGAS, NIS: drawn i.i.d. through :func:`iid_source`) or a callable
    ``n -> Batch`` that must return independent, identically distributed points: the run stops
    at the ``n_events``-th accepted point, so every accepted event is then an independent draw
    from ``|f|`` (truncated above ``w_max``) whatever the batch sizes or where the run stops.
    Each yielded :class:`EventBatch` holds the kept rows (a numpy :class:`~mcint.Batch`), their
    signs and the number of points drawn since the previous kept event (LHEH5's ``trials``).
    ``max_trials`` (default ``1000 * n_events + 10 * batch_size``) stops a hopeless run with a
    clear error instead of looping for ever. Pass ``stats`` to read the running statistics.
    Batches shrink towards the end (sized from the efficiency so far, or
    ``expected_efficiency`` at the start) so that few integrand calls are wasted.
    """
    if not isinstance(n_events, (int, np.integer)) or n_events < 1:
        raise ValueError(f"the number of events must be a positive integer, got {n_events!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    draw = iid_source(sample)
    uw = Unweighter(w_max, seed, stats if stats is not None else UnweightStats())
    limit = max_trials if max_trials is not None else 1000 * int(n_events) + 10 * batch_size
    done, last = 0, -1
    while done < n_events:
        if uw.stats.trials >= limit:
            raise RuntimeError(
                f"unweighting stopped after {uw.stats.trials} points with only {done} of "
                f"{n_events} events (efficiency {uw.stats.efficiency:.2e}); train the sampler "
                "longer or raise max_trials")
        eff = (uw.stats.accepted / uw.stats.trials if uw.stats.accepted else
               expected_efficiency)
        n = batch_size
        if eff is not None and eff > 0:
            n = min(batch_size, max(1024, int(1.3 * (n_events - done) / eff) + 100))
        b = draw(n).to_numpy()
        offset = uw.stats.trials
        idx, sign = uw.select(b.weights, limit=n_events - done)
        if idx.size:
            glob = offset + idx
            trials = np.diff(np.concatenate([[last], glob])).astype(np.float64)
            last = int(glob[-1])
            done += int(idx.size)
            yield EventBatch(_take(b, idx), sign, trials)
        if progress is not None:
            progress(uw.stats)


def _take(b: Any, idx: np.ndarray) -> Any:
    from ..batch import Batch

    return Batch(**{k: None if v is None else v[idx] for k, v in b.__dict__.items()})
