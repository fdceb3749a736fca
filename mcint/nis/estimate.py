"""Integration and sampling with the trained model (frozen): weighted batches, the estimate with
its per-channel table, metrics and health diagnostics."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends import Backend
from ..batch import Batch
from ..results import IterationResult, Result
from .checks import _check_int
from .model import SamplerModel
from .multichannel import ChannelBook, round_counts


class NISResult(Result):
    """A :class:`mcint.results.Result` plus the per-channel table and sample metrics."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: per-channel integrals, errors, spreads, counts (:class:`mcint.diagnostics.ChannelStats`)
        self.channels: Any = None
        #: ``rel_std`` (as sampled), ``rel_std_opt`` (optimal stratification),
        #: ``unweighting_efficiency``, ``ess``, ``largest_weight_share``, ``defensive``, ...
        self.metrics: dict[str, Any] = {}


@dataclass
class CallCount:
    """Integrand calls made so far by every part (training, integration, sampling)."""

    total: int = 0


class Estimator:
    """Integration and sampling with the frozen ``model``: points allocated over the active
    channels of ``book``, drawn on ``backend`` from the stream ``rng``; every integrand call
    is added to ``counter``."""

    def __init__(self, model: SamplerModel, book: ChannelBook, backend: Backend, rng: Any,
                 counter: CallCount, channel_names: list[str] | None = None) -> None:
        self.model = model
        self.book = book
        self.backend = backend
        self.rng = rng
        self.counter = counter
        self.channel_names = list(channel_names or [])

    def _sample_raw(self, n: int, eps: float, plan: dict | None, uniform_ratio: float,
                    by: str, iid: bool = False
                    ) -> tuple[dict[str, Any], np.ndarray, Any, np.ndarray]:
        """``by="stds"`` (least variance) or ``"means"`` (equal mean event weights) picks the
        channel shares from ``plan`` (the integration plan's channel estimates for ``eps``).

        Stratified (``iid=False``): fixed counts per channel, rows grouped by channel. I.i.d.:
        each row's channel is drawn from the shares, rows in the order drawn. Returns the batch,
        the counts, the per-channel weights ``alpha_c f / g_c`` and the shares.
        """
        m, be, rng = self.model, self.backend, self.rng
        samplers, _ = m.exported(be)
        scores = None if plan is None else np.abs(plan[by])
        shares = self.book.shares(uniform_ratio, scores)
        if iid and m.n_channels > 1:
            # the channel of every row, drawn in order; rows are drawn grouped and put back
            seq = be.to_numpy(rng.categorical(be.asarray(shares, dtype="float64"), n))
            seq = np.asarray(seq, dtype=np.int64)
            counts = np.bincount(seq, minlength=m.n_channels)
        else:
            counts = round_counts(shares, n)
        batch = m.collect(counts, eps, be, rng, samplers)
        if iid and m.n_channels > 1:
            # grouped row k goes to the k-th position (in order) of its channel in seq
            back = be.asarray(np.argsort(np.argsort(seq, kind="stable"), kind="stable"))
            batch = {k: None if v is None else be.xp.take(v, back, axis=0)
                     for k, v in batch.items()}
        xp = be.xp
        f = batch["target"]
        if m.multichannel:
            # before the first training batch: the prior weights alone
            cw = m.weights_on(be)
            la = cw.log_alpha(batch["features"], batch["alpha_prior"],
                              be.asarray(self.book.active))
            a = xp.take_along_axis(la, batch["channels"][:, None], axis=1)[:, 0]
            f = f * xp.exp(a)
        w = f * xp.exp(-batch["log_q_sample"])
        return batch, counts, w, shares

    def integrate(self, calls: int, eps: float, plan: dict | None, *,
                  uniform_ratio: float = 0.1, iterations: int = 1) -> NISResult:
        """Estimate the integral with ``calls`` integrand evaluations, defensive share ``eps``.

        Channels get points by their standard deviation in ``plan`` (optimal stratification),
        with ``uniform_ratio`` spread equally so that every active channel is sampled.
        """
        from .. import diagnostics as D

        _check_int(calls, "calls", 2)
        be = self.backend
        C = self.model.n_channels
        res = NISResult(weighted=False, label="mcint NIS")
        per = int(calls) // int(iterations)
        all_w, all_c = [], []
        for _ in range(int(iterations)):
            try:
                batch, counts, w, _ = self._sample_raw(per, eps, plan, uniform_ratio, "stds")
            except MemoryError as exc:
                raise MemoryError(f"integrate(calls={calls}) draws {per} points at once and ran "
                                  f"out of memory ({exc}); pass iterations=k to draw calls/k "
                                  "points at a time") from exc
            wn = be.to_numpy(w).astype(np.float64)
            ch = be.to_numpy(batch["channels"]).astype(np.int64)
            self.counter.total += per
            tab = D.channel_table(wn, ch, C)
            res.add(IterationResult(tab.total, tab.total_error, per,
                                    info={"nonfinite": self.model.caller.skipped}))
            all_w.append(wn)
            all_c.append(ch)
        wn = np.concatenate(all_w)
        ch = np.concatenate(all_c)
        tab = D.channel_table(wn, ch, C, names=self.channel_names)
        res.channels = tab
        # stratification factor n/n_c turns per-channel terms into event weights
        cnt = np.bincount(ch, minlength=C)
        ev_w = wn * (wn.size / np.maximum(cnt, 1))[ch]
        u = D.unweighting_efficiency(ev_w)
        res.metrics = dict(
            rel_std=float(tab.total_error * math.sqrt(wn.size) / abs(tab.total))
            if tab.total else math.inf,
            rel_std_opt=D.stratified_relative_std(tab.stds, tab.total),
            unweighting_efficiency=u.efficiency, unweighting_partial=u.efficiency_partial,
            ess=D.effective_sample_size(ev_w), largest_weight_share=D.largest_weight_share(ev_w),
            defensive=eps, nonfinite_points=self.model.caller.skipped,
            active_channels=int(self.book.active.sum()))
        from ..health import diagnose, warn_if_bad

        res.diagnostics = diagnose(ev_w, ch, C, active=self.book.active)
        warn_if_bad(res.diagnostics, "NIS integral")
        return res

    def sample(self, n: int, eps: float, plan: dict | None, *, uniform_ratio: float = 0.1,
               stratified: bool = False) -> Batch:
        """``n`` weighted points with defensive share ``eps`` and channel ``plan``:
        :meth:`mcint.nis.Integrator.sample` describes the points, the channel shares and the
        i.i.d. / ``stratified`` weights."""
        _check_int(n, "n", 1)
        be = self.backend
        try:
            batch, counts, w, shares = self._sample_raw(int(n), eps, plan, uniform_ratio,
                                                        "means", iid=not stratified)
        except MemoryError as exc:
            raise MemoryError(f"sample({n}) ran out of memory ({exc}); draw fewer points per "
                              "call (e.g. in a loop) or write them to an event file as you go"
                              ) from exc
        self.counter.total += int(n)
        xp = be.xp
        if stratified:
            factor = n / np.maximum(counts, 1)
        else:
            factor = np.where(shares > 0, 1.0 / np.where(shares > 0, shares, 1.0), 0.0)
        factor = be.asarray(factor.astype(np.float64), self.model.dtype)
        w = w * xp.take(factor, batch["channels"], axis=0)
        if self.model.multichannel:
            x = batch["features"]
            prob = None
        else:
            x = batch["r"]
            prob = self.model.density_r(batch, be)
        return Batch(x=x, weights=w, prob=prob, channels=batch["channels"])
