"""The trainer: fresh and buffered optimisation steps on torch, the optimiser and its schedule,
the batch plan, the buffer, tempering, VEGAS pre-training and channel dropping between steps.

It trains a :class:`~mcint.nis.model.SamplerModel` and keeps a
:class:`~mcint.nis.multichannel.ChannelBook` of its channels, both given to it.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends import Backend, get_backend
from .buffer import Buffer
from .checks import _check_int
from .estimate import CallCount
from .losses import get_loss
from .model import Sampler, SamplerModel, mix_log
from .multichannel import ChannelBook
from .options import TrainingOptions, batch_sizes
from .vegas_init import VegasStage


@dataclass
class TrainingStatus:
    """Passed to the ``callback`` of :meth:`Integrator.train` after every optimisation step."""

    step: int
    calls: int
    loss: float
    lr: float
    buffered: bool
    #: running estimate of the integral from the training batches (fresh steps only)
    integral: float = math.nan
    error: float = math.nan
    rel_std: float = math.nan
    active_channels: int = 1
    skipped_steps: int = 0
    nonfinite_points: int = 0



#: fresh training calls of one train() call (after the VEGAS share: 5e5 calls with the default
#: 20%) from which default batches follow ``_large_budget_batch``
LARGE_BUDGET = 400_000


class Trainer:
    """Trains ``model`` (flows and channel weights) with the options ``options``.

    ``book``: the channels (allocation, history, dropping); ``counter``: every integrand
    call; ``vegas``: the VEGAS pre-training; ``tb``: the torch backend training runs on (None
    without torch: nothing can train); ``rng``: the training stream; ``defensive``: the
    defensive share of fresh training points; ``freeze_at``: the step after which the
    channel weights stop training (None: never).
    """

    def __init__(self, model: SamplerModel, book: ChannelBook, counter: CallCount,
                 options: TrainingOptions, vegas: VegasStage, tb: Backend | None, rng: Any,
                 *, defensive: float = 0.1, freeze_at: int | None = None) -> None:
        self.model, self.book, self.counter, self.vegas = model, book, counter, vegas
        self.tb, self.rng, self.defensive, self.freeze_at = tb, rng, defensive, freeze_at
        multi, dims, t = model.multichannel, model.dims, options
        self.loss, self.refine_loss, self.loss_name = _losses(t, multi)
        # above 8 dims the tempered stage needs small steps (see docs/integrator.md)
        lr = t.lr if t.lr is not None else (1e-2 if (multi or dims <= 8) else 3e-3)
        self.lr, self.schedule, self.clip = float(lr), t.schedule, t.clip
        #: the default batch plan (start, end) for train() budgets of at least LARGE_BUDGET
        #: fresh calls, or None
        self.large_budget_batch = large_budget_batch(multi, dims) \
            if t.batch_size is None else None
        sizes = batch_sizes(t.batch_size if t.batch_size is not None
                            else (1024 if multi else ((256, 1024) if dims <= 2 else 256)))
        #: fresh points per step at the start of each train() call (the first of batch_size)
        self.batch_size = sizes[0]
        #: ``(start, end)`` of the geometric batch growth over each train() call, or None
        self.batch_growth = sizes if sizes[0] != sizes[1] else None
        self.step_batch = self.batch_size
        # several channels, or one from 8 dims on: extra steps on stored points
        deep = multi or dims >= 8
        cap = t.buffer_capacity if t.buffer_capacity is not None else (8192 if deep else 0)
        self.buffer = Buffer(int(cap))
        self.buffered_steps = int(t.buffered_steps if t.buffered_steps is not None
                                  else (1 if deep else 0))
        self.buffered_until = float(t.buffered_until if t.buffered_until is not None
                                    else (0.6 if multi else 1.0))
        self.uniform_ratio = float(t.uniform_ratio)
        self.temper = float(t.temper)
        # the loss fits the flow alone by default (see docs/integrator.md)
        self.defensive_in_loss = bool(t.defensive_in_loss)
        #: tempering exponent: training targets |f|^beta (1 = the integrand itself)
        self.beta = 0.0 if self.temper > 0 else 1.0
        self.step = 0
        self.train_calls = 0
        self.vegas_calls = 0
        self.train_time = 0.0
        self.log: list[dict] = []
        #: the latest fresh batches (>= 16k points): what the integration plan estimates from
        self.recent: list[dict] = []
        #: a train() call in progress (written into checkpoints, so resume can finish it)
        self.pending: dict[str, int] | None = None
        self.opt: Any = None
        self.cw_params: list[Any] = []
        self._last_log_q_sample: Any = None
        self._view: Any = None

    # -- torch parameters ------------------------------------------------------------------
    def leaves(self) -> list[Any]:
        """Torch leaf tensors of every trainable array (flows, channel-weight net); makes the
        optimiser on the first call."""
        if self.opt is not None:
            return self.opt.params
        tb, dt, m = self.tb, self.model.dtype, self.model

        def leaf(a: Any) -> Any:
            # a private copy: torch.as_tensor would share memory with the numpy arrays
            t = tb.asarray(a, dt) if not tb.is_array(a) else a.to(tb.dtype(dt))
            return t.detach().clone().requires_grad_(True)

        params: list[Any] = []
        for s in m.samplers:
            if s.flow is not None:
                s.flow = s.flow.to(tb, dt).map_arrays(leaf)
                params += s.flow.torch_parameters()
            if s.vmap is not None:
                s.vmap = s.vmap.to(tb)
        self.cw_params = []
        if m.cw is not None:
            m.cw.params = [(leaf(w), leaf(b)) for w, b in m.cw.params]
            m.cw.beta = tb.asarray(tb.to_numpy(m.cw.beta), dt)
            self.cw_params = [p for wb in m.cw.params for p in wb]
            params += self.cw_params
        from .optim import Optimizer

        self.opt = Optimizer(params, self.lr, clip=self.clip)
        return params

    # -- training ---------------------------------------------------------------------------
    def train(self, calls: int | None, callback: Callable[[TrainingStatus], Any] | None = None,
              *, save: Callable[[], None] | None = None, save_every: int | None = 100
              ) -> None:
        """Train for a budget of ``calls`` integrand evaluations (see
        :meth:`mcint.nis.Integrator.train`). ``save()`` writes a checkpoint: every
        ``save_every`` fresh steps and when SIGINT or SIGTERM arrives (handlers installed only
        with ``save``; then the run stops with ``KeyboardInterrupt`` or ``SystemExit``)."""
        from ..interrupt import SignalGuard

        pending = self.pending
        if pending is not None:
            if calls is not None and int(calls) != pending["calls"]:
                raise ValueError(
                    f"this integrator was checkpointed in the middle of train(calls="
                    f"{pending['calls']}) ({pending['done']} of {pending['n_fresh']} steps "
                    f"done); call train() or train({pending['calls']}) to finish it first, "
                    f"got calls={calls}")
            calls = pending["calls"]
        if calls is None:
            raise TypeError("train() needs calls (the integrand-call budget)")
        _check_int(calls, "calls", 1)
        if save_every is not None:
            _check_int(save_every, "checkpoint_every", 1)
        if self.tb is None:
            raise RuntimeError("training needs torch (pip install torch); integrate() and "
                               "sample() of a loaded model do not")
        t0 = time.perf_counter()
        with SignalGuard() if save is not None else contextlib.nullcontext() as guard:
            if pending is None:
                budget = int(calls)
                stage = self.vegas.enabled and self.vegas_calls == 0 and self.step == 0
                if stage:
                    budget -= self._pretrain_vegas(int(budget * self.vegas.fraction))
                budget = max(budget, 0)
                pending = dict(calls=int(calls), n_fresh=len(self.batch_plan(budget)),
                               start_step=self.step, done=0, budget=budget)
                if pending["n_fresh"] == 0:
                    self._warn_no_step(int(calls), budget, stage)
                self.pending = pending
            self.leaves()
            self.model.changed()
            self._steps(pending, callback, guard, save, save_every)
            if guard is not None and guard.caught:
                save()
                guard.raise_if_caught()
            self.pending = None
            self.tb.synchronize()
            self.train_time += time.perf_counter() - t0

    def _steps(self, pending: dict[str, int], callback: Any, guard: Any,
               save: Callable[[], None] | None, save_every: int | None) -> None:
        """The fresh steps ``pending["done"]..n_fresh`` and their buffered steps."""
        n_fresh = int(pending["n_fresh"])
        # checkpoints written before batch growth existed hold no budget: constant batches
        plan = self.batch_plan(int(pending.get("budget", n_fresh * self.batch_size)))
        # the LR schedule runs over the run's share of fresh calls (= the step share for
        # constant batches), buffered steps spread evenly between fresh ones
        edges = np.concatenate([[0], np.cumsum(plan)]) / max(sum(plan), 1)
        nb = 1 + self.buffered_steps
        for k in range(int(pending["done"]), n_fresh):
            if guard is not None and guard.caught:
                break
            self.step_batch = plan[k]
            self._set_lr(edges[k])
            status = self._fresh_step()
            if callback is not None:
                callback(status)
            # buffered steps only in the first share of the call: later the fit is limited
            # by gradient noise, which re-used points do not lower (see buffered_until)
            n_buf = self.buffered_steps if k < self.buffered_until * n_fresh else 0
            for j in range(n_buf):
                if len(self.buffer) < self.step_batch:
                    break
                self._set_lr(edges[k] + (edges[k + 1] - edges[k]) * (j + 1) / nb)
                status = self._buffered_step()
                if callback is not None:
                    callback(status)
            pending["done"] = k + 1
            if (save is not None and save_every is not None
                    and pending["done"] % int(save_every) == 0 and pending["done"] < n_fresh):
                save()

    def _warn_no_step(self, calls: int, budget: int, stage: bool) -> None:
        """A :class:`mcint.SamplerWarning`: ``train(calls)`` left fewer calls than one batch,
        so it made no optimisation step (``stage``: the VEGAS stage took its share first)."""
        from ..health import SamplerWarning

        b = (self.batch_growth or (self.batch_size,))[0]
        vegas = calls - budget
        need = b
        while stage and need - int(need * self.vegas.fraction) < b:   # the stage's share too
            need += 1
        share = f" ({vegas} of them trained the VEGAS map first)" if vegas else ""
        warnings.warn(f"train(calls={calls}) made no optimisation step: {calls} calls{share} "
                      f"are fewer than one step's batch ({b}); the sampler is untrained "
                      f"(give calls >= {need})", SamplerWarning, stacklevel=4)

    def planned_steps(self, calls: int) -> int:
        """About the fresh steps of ``train(calls)`` (the VEGAS stage counted as its whole
        share); the remaining ones of an unfinished call."""
        if self.pending is not None:
            return int(self.pending["n_fresh"]) - int(self.pending["done"])
        budget = int(calls)
        if self.vegas.enabled and self.vegas_calls == 0 and self.step == 0:
            budget -= int(budget * self.vegas.fraction)
        return len(self.batch_plan(max(budget, 0)))

    def batch_plan(self, budget: int) -> list[int]:
        """Fresh batch sizes of a train() call with ``budget`` calls: constant, or growing
        geometrically from ``batch_growth[0]`` to ``batch_growth[1]`` with the share of the
        budget used (rounded to multiples of 8); the remainder below one batch is not spent.
        Large budgets take the default's ``large_budget_batch`` plan."""
        b0, b1 = self.batch_growth or (self.batch_size, self.batch_size)
        if self.large_budget_batch is not None and budget >= LARGE_BUDGET:
            b0, b1 = self.large_budget_batch
        if b0 == b1:
            return [b0] * (budget // b0)
        sizes: list[int] = []
        done = 0
        while True:
            b = max(8, 8 * round(b0 * (b1 / b0) ** (done / max(budget, 1)) / 8))
            if done + b > budget:
                return sizes
            sizes.append(b)
            done += b

    def _set_lr(self, t: float) -> None:
        from .optim import schedule_factor

        self.opt.set_lr_factor(schedule_factor(self.schedule, t))

    def _pretrain_vegas(self, calls: int) -> int:
        """VEGAS maps per group (on numpy: cheap), trained on ``alpha_prior_c * f``."""
        m = self.model
        be = get_backend("numpy")

        def target(c: int) -> Callable[[Any], Any]:
            def f(x: Any) -> Any:
                ev = m.caller(x, c, be)
                v = ev.value
                if ev.alpha_prior is not None:
                    v = v * ev.alpha_prior[:, c]
                return np.abs(v)
            return f

        first = [m.groups.index(g) for g in range(m.n_groups)]
        out = self.vegas.pretrain([target(c) for c in first], calls, m.dtype, self.temper)
        if out is None:
            return 0
        maps, used, beta = out
        for s, amap in zip(m.samplers, maps):
            s.vmap = amap
        self.vegas_calls += used
        self.counter.total += used
        if self.temper > 0:
            self.beta = beta
        return used

    def draw_view(self) -> tuple[Backend, list[Sampler], Any]:
        """Where fresh training points are drawn: numba views of the torch parameters.

        Drawing needs no gradients, so it runs through the numba backend's fused coupling
        kernels on numpy arrays that share memory with the torch leaves (the optimiser updates
        them in place), with a stream sharing the training generator: the same draws as on
        torch, several times faster. Without numba it stays on torch.
        """
        # keyed on the optimiser object itself (held here, so its id cannot be reused): a new
        # optimiser means new leaf tensors, whose memory the views must follow
        key = self.opt
        if self._view is not None and self._view[0] is key:
            return self._view[1]
        tb = self.tb
        out: tuple[Backend, list[Sampler], Any] = (tb, self.model.samplers, self.rng)
        try:
            be = get_backend("numba")
        except Exception:  # numba not installed: draw on torch
            be = None
        if be is not None and str(tb.device) == "cpu" and hasattr(self.rng, "_gen"):
            import copy

            def view(a: Any) -> Any:
                return a.detach().numpy()

            smp = []
            for sm in self.model.samplers:
                fl = None
                if sm.flow is not None:
                    fl = sm.flow.map_arrays(view)
                    fl.backend = be
                smp.append(Sampler(fl, None if sm.vmap is None else sm.vmap.to(be)))
            rng = copy.copy(self.rng)
            rng.backend = be
            out = (be, smp, rng)
        self._view = (key, out)
        return out

    def _fresh_step(self) -> TrainingStatus:
        from ..backends import use

        tb, m, book = self.tb, self.model, self.book
        counts = book.alloc(self.step_batch, self.uniform_ratio)
        be, samplers, rng = self.draw_view()
        with tb.torch.no_grad(), use(be):
            batch = m.collect(counts, self.defensive, be, rng, samplers, need_logq=False)
        if be is not tb:
            batch = {k: (None if v is None else tb.asarray(v)) for k, v in batch.items()}
        n = int(batch["target"].shape[0])
        self.counter.total += n
        self.train_calls += n
        if m.multichannel:
            m.ensure_weights(int(batch["features"].shape[1]))
            if self.opt is not None and m.cw is not None and not self.cw_params \
                    and m.cw.params:
                self.opt = None
                self.leaves()
        loss, means, variances = self._optimise(batch, fresh=True)
        batch["log_q_sample"] = self._last_log_q_sample
        book.history.add(means, variances, counts)
        drop = book.note_sign_support(means, counts)
        if len(drop):
            self._drop(drop)
        store = {k: batch[k] for k in ("u", "channels", "target", "log_q_sample",
                                       "alpha_prior", "features")}
        self.buffer.store(store)
        self.recent.append({k: v for k, v in store.items()})
        # enough recent points (>= 16k) for the variance-based choice of the defensive share
        if len(self.recent) > max(8, -(-16384 // self.step_batch)):
            del self.recent[0]
        drop = book.to_drop(self.step)
        if drop:
            self._drop(drop)
        I = float(np.nansum(book.history.channel_means()))
        err = float(np.sqrt(np.nansum(variances / np.maximum(counts, 1))))
        rel = (float(np.sqrt(np.nansum(variances / np.maximum(counts, 1)) * n)) / abs(I)
               if I != 0 else math.inf)
        # the batches hold f / value_scale: the status is in the integrand's units
        s = m.caller.value_scale.value
        return self._status(loss, False, I * s, err * s, rel)

    def _drop(self, drop: Any) -> None:
        """Deactivate channels ``drop``; their stored points go."""
        self.book.deactivate(drop)
        if len(self.buffer):
            keep = self.tb.xp.take(self.tb.asarray(self.book.active),
                                   self.buffer.data["channels"], axis=0)
            self.buffer.keep(keep)
        self.recent = []

    def _update_beta(self, batch: dict[str, Any], f: Any) -> None:
        from .tempering import next_beta

        tb = self.tb
        # the channel-weighted f each channel's flow learns (the bare integrand is far from
        # any channel's sampler where its alpha_c is small: its ESS would keep beta below 1)
        t = np.abs(tb.to_numpy(f.detach() if hasattr(f, "detach") else f))
        with np.errstate(divide="ignore"):
            lf = np.log(t)
        ch = tb.to_numpy(batch["channels"]) if self.model.multichannel else None
        self.beta = next_beta(lf, tb.to_numpy(batch["log_q_sample"]), self.beta, self.temper,
                              channels=ch)

    def _buffered_step(self) -> TrainingStatus:
        batch = self.buffer.sample(self.step_batch, self.rng)
        loss, _, _ = self._optimise(batch, fresh=False)
        return self._status(loss, True, math.nan, math.nan, math.nan)

    def _status(self, loss: float, buffered: bool, I: float, err: float,
                rel: float) -> TrainingStatus:
        self.step += 1
        st = TrainingStatus(step=self.step, calls=self.counter.total, loss=loss,
                            lr=self.opt.lr, buffered=buffered, integral=I, error=err,
                            rel_std=rel, active_channels=int(self.book.active.sum()),
                            skipped_steps=self.opt.skipped,
                            nonfinite_points=self.model.caller.skipped)
        self.log.append({k: v for k, v in st.__dict__.items()})
        cw = self.model.cw
        if self.freeze_at is not None and self.step == int(self.freeze_at) and cw:
            cw.freeze()
        return st

    def _optimise(self, batch: dict[str, Any], fresh: bool) -> tuple[float, Any, Any]:
        tb, m = self.tb, self.model
        xp = tb.xp
        channels = batch["channels"]
        batch = dict(batch)
        batch["group_of"] = m.group_index(tb, channels)
        active = tb.asarray(self.book.active)
        eps_fit = self.defensive if self.defensive_in_loss else 0.0
        f, log_q = m.batch_terms(batch, channels, m.cw, active, m.samplers, eps_fit, True)
        if fresh:
            # fresh points were drawn from the current model: its density is the sampling one
            batch["log_q_sample"] = mix_log(xp, log_q.detach(), self.defensive) \
                if eps_fit != self.defensive else log_q.detach()
            if self.beta < 1.0:
                self._update_beta(batch, f)
        f_fit = f
        if self.beta < 1.0:
            # tempered target |f|^beta (sign kept); zeros stay zero. The channel weights do
            # not learn from it (f detached): sum_c |alpha_c t_c|^beta is no fixed integral
            # (t_c holds channel c's Jacobian, and sum_c alpha_c^beta >= 1), so its variance
            # falls by moving alpha to channels that sample x worst (docs/multi-channel.md)
            f = _detach(f)
            a = xp.abs(f)
            pos = a > 0
            f_fit = xp.where(pos, xp.exp(self.beta * xp.log(xp.where(pos, a, xp.ones_like(a)))),
                             xp.zeros_like(a)) * xp.sign(f)
        # the refinement loss (the variance itself) once the target is the integrand
        loss_fn = self.loss if (self.refine_loss is None or self.beta < 1.0) else self.refine_loss
        loss = loss_fn(f_fit, log_q, batch["log_q_sample"], channels if m.multichannel else None,
                       m.n_channels)
        self._last_log_q_sample = batch["log_q_sample"]
        frozen = self.cw_params if (m.cw is not None and not m.cw.trainable) else ()
        self.opt.step(loss, frozen)
        lv = float(loss.detach()) if hasattr(loss, "detach") else float(loss)
        means = variances = None
        if fresh:
            w = tb.to_numpy((f.detach() if hasattr(f, "detach") else f)
                            / xp.exp(batch["log_q_sample"]))
            ch = tb.to_numpy(channels)
            C = m.n_channels
            cnt = np.bincount(ch, minlength=C)
            s1 = np.bincount(ch, w, minlength=C)
            means = np.where(cnt > 0, s1 / np.maximum(cnt, 1), np.nan)
            dev = w - np.nan_to_num(means)[ch]
            variances = np.where(cnt > 1, np.bincount(ch, dev * dev, minlength=C)
                                 / np.maximum(cnt - 1, 1), np.nan)
        return lv, means, variances


def _detach(a: Any) -> Any:
    d = getattr(a, "detach", None)
    return d() if callable(d) else a


def _losses(t: TrainingOptions, multichannel: bool) -> tuple[Any, Any, str]:
    """``(loss, refine loss or None, loss name)`` with the defaults for one or several
    channels (see docs/integrator.md)."""
    refine = t.refine_loss
    if refine is None:
        refine = False if multichannel else "variance_softclip"
    loss = t.loss
    name = loss if isinstance(loss, str) else getattr(loss, "__name__", "custom")
    if loss is None:
        loss = name = "stratified_variance" if multichannel else "kl"
    return get_loss(loss), (None if refine is False else get_loss(refine)), name


def large_budget_batch(multichannel: bool, dims: int) -> tuple[int, int] | None:
    """Default ``(start, end)`` batches for large train() budgets (see docs/integrator.md)."""
    if multichannel:
        return (1024, 4096)
    if dims <= 4:
        return (1024, 1024)
    if dims <= 8:
        return (512, 512)
    return None
