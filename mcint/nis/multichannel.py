"""Multi-channel bookkeeping: the recent per-channel means and variances (history), allocation
of points over channels, channel dropping on |I_c|, and the channel-weight network's set-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .channel_weights import ChannelWeights


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


class ChannelBookMixin:
    """Allocation, dropping and channel weights of the integrator's channels."""

    def _ensure_cw(self, features_dim: int) -> None:
        if self.cw is not None or not self.multichannel:
            return
        o = self._cw_options
        self._features_dim = features_dim
        self.cw = ChannelWeights(self.n_channels, features_dim if o["train"] else None,
                                 prior=o["prior"], hidden=o["hidden"], seed=o["seed"],
                                 dtype=self.dtype)


    def _shares(self, uniform_ratio: float, scores: np.ndarray | None = None) -> np.ndarray:
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

    def _alloc(self, n: int, uniform_ratio: float,
               scores: np.ndarray | None = None) -> np.ndarray:
        """Points per channel: :meth:`_shares` of ``n``, rounded (largest remainders)."""
        return round_counts(self._shares(uniform_ratio, scores), n)

    def _maybe_drop(self) -> None:
        if self.drop_threshold <= 0 or not self.multichannel or self.step % self.drop_interval:
            return
        a = np.abs(np.nan_to_num(self.history.channel_means()))
        a = np.where(self.active, a, 0.0)
        total = a.sum()
        if total <= 0:
            return
        order = np.argsort(a, kind="stable")      # smallest |I_c| first
        order = [c for c in order if self.active[c]]
        cum = np.cumsum(a[order]) / total
        drop = [c for c, s in zip(order, cum) if s < self.drop_threshold]
        if len(drop) >= int(self.active.sum()):
            drop = drop[:-1]
        if not drop:
            return
        self._drop_channels(drop)

    def _note_sign_support(self, means: np.ndarray, counts: np.ndarray) -> None:
        """``split_sign="auto"``: drop a sign channel whose first ``sign_probe`` points were
        all zero. A sign channel's weights all have one sign, so a zero mean means no point
        was in its support."""
        if self.split_sign != "auto":
            return
        z = self._sign_zero
        seen = (counts > 0) & np.isfinite(means) & (means != 0)
        z[:] = np.where(seen | (z < 0), -1, z + counts)
        drop = self.active & (z >= self.sign_probe)
        if drop.any() and (self.active & ~drop).any():
            self._drop_channels(np.flatnonzero(drop))

    def _drop_channels(self, drop: Any) -> None:
        self.active[drop] = False
        if len(self.buffer):
            keep = self._torch.xp.take(self._torch.asarray(self.active),
                                       self.buffer.data["channels"], axis=0)
            self.buffer.keep(keep)
        self._recent = []

    def freeze_channel_weights(self) -> None:
        """Stop training the channel-weight network."""
        if self.cw is not None:
            self.cw.freeze()

