"""Multi-channel bookkeeping: the recent per-channel means and variances (history), allocation
of points over channels, and channel dropping on |I_c| or on a sign channel's empty support."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class _History:
    """Recent per-channel means and variances of fresh training batches."""

    length: int
    means: list = field(default_factory=list)
    variances: list = field(default_factory=list)
    counts: list = field(default_factory=list)

    def add(self, means: np.ndarray, variances: np.ndarray, counts: np.ndarray) -> None:
        self.means.append(means)
        self.variances.append(variances)
        self.counts.append(counts)
        if len(self.means) > self.length:
            del self.means[0], self.variances[0], self.counts[0]

    def _avg(self, rows: list) -> np.ndarray:
        c = np.asarray(self.counts, dtype=np.float64)
        v = np.asarray(rows, dtype=np.float64)
        tot = c.sum(axis=0)
        return np.where(tot > 0, (v * c).sum(axis=0) / np.where(tot > 0, tot, 1), np.nan)

    def channel_means(self) -> np.ndarray:
        return self._avg(self.means)

    def channel_stds(self) -> np.ndarray:
        return np.sqrt(self._avg(self.variances))

    def to_json(self) -> dict:
        return {"length": self.length, "means": [m.tolist() for m in self.means],
                "variances": [v.tolist() for v in self.variances],
                "counts": [c.tolist() for c in self.counts]}

    @classmethod
    def from_json(cls, d: dict) -> _History:
        h = cls(int(d["length"]))
        for m, v, c in zip(d["means"], d["variances"], d["counts"]):
            h.add(np.asarray(m), np.asarray(v), np.asarray(c))
        return h



def round_counts(shares: np.ndarray, n: int) -> np.ndarray:
    """``n`` points split by ``shares`` (summing to 1), rounded by largest remainders."""
    raw = shares * n
    cnt = np.floor(raw).astype(np.int64)
    rest = n - int(cnt.sum())
    if rest > 0:
        order = np.argsort(-(raw - cnt), kind="stable")
        cnt[order[:rest]] += 1
    return cnt


class ChannelBook:
    """Which channels are active, their recent means and spreads, and the allocation of
    points over them.

    ``drop_threshold`` and ``drop_interval``: see :meth:`to_drop`; ``split_sign`` and
    ``sign_probe``: see :meth:`note_sign_support`.
    """

    def __init__(self, n_channels: int, multichannel: bool, *, history_length: int = 20,
                 drop_threshold: float = 0.0, drop_interval: int = 100,
                 split_sign: bool | str = False, sign_probe: int = 4096) -> None:
        self.n_channels = int(n_channels)
        self.multichannel = bool(multichannel)
        self.history = _History(int(history_length))
        self.drop_threshold = float(drop_threshold)
        self.drop_interval = int(drop_interval)
        #: ``False``, ``True`` or ``"auto"`` (see the integrator's ``split_sign``)
        self.split_sign = split_sign
        self.sign_probe = int(sign_probe)
        self.active = np.ones(self.n_channels, dtype=bool)
        #: per sign channel: training points seen, all zero so far (-1: support was seen)
        self.sign_zero = np.zeros(self.n_channels, dtype=np.int64)

    def shares(self, uniform_ratio: float, scores: np.ndarray | None = None) -> np.ndarray:
        """Each channel's share of the points: a uniform part over the active channels plus
        the rest in proportion to ``scores`` (non-negative per channel, NaN for unknown;
        default the training history's stds). Sums to 1; inactive channels get 0."""
        act = self.active
        na = int(act.sum())
        share = np.where(act, 1.0, 0.0) / na
        stds = scores
        if stds is None:
            stds = self.history.channel_stds() if self.history.means else None
        if stds is not None and uniform_ratio < 1.0:
            s = np.where(act & np.isfinite(stds), np.nan_to_num(stds), 0.0)
            if s.sum() > 0:
                share = uniform_ratio * share + (1.0 - uniform_ratio) * s / s.sum()
        return share

    def alloc(self, n: int, uniform_ratio: float,
              scores: np.ndarray | None = None) -> np.ndarray:
        """Points per channel: :meth:`shares` of ``n``, rounded (largest remainders)."""
        return round_counts(self.shares(uniform_ratio, scores), n)

    def to_drop(self, step: int) -> list[int]:
        """At every ``drop_interval``-th step: the active channels whose ``|I_c|`` (from the
        history) together make less than ``drop_threshold`` of ``sum |I_c|`` (never all)."""
        if self.drop_threshold <= 0 or not self.multichannel or step % self.drop_interval:
            return []
        a = np.abs(np.nan_to_num(self.history.channel_means()))
        a = np.where(self.active, a, 0.0)
        total = a.sum()
        if total <= 0:
            return []
        order = np.argsort(a, kind="stable")      # smallest |I_c| first
        order = [c for c in order if self.active[c]]
        cum = np.cumsum(a[order]) / total
        drop = [c for c, s in zip(order, cum) if s < self.drop_threshold]
        if len(drop) >= int(self.active.sum()):
            drop = drop[:-1]
        return drop

    def note_sign_support(self, means: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """``split_sign="auto"``: the sign channels to drop, whose first ``sign_probe`` points
        were all zero. A sign channel's weights all have one sign, so a zero mean means no
        point was in its support."""
        if self.split_sign != "auto":
            return np.zeros(0, dtype=np.int64)
        z = self.sign_zero
        seen = (counts > 0) & np.isfinite(means) & (means != 0)
        z[:] = np.where(seen | (z < 0), -1, z + counts)
        drop = self.active & (z >= self.sign_probe)
        if drop.any() and (self.active & ~drop).any():
            return np.flatnonzero(drop)
        return np.zeros(0, dtype=np.int64)

    def deactivate(self, drop: Any) -> None:
        """Mark the channels ``drop`` inactive (they get no more points, alpha 0)."""
        self.active[drop] = False
