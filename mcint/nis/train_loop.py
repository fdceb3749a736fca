"""The training loop: fresh and buffered optimisation steps on torch, the optimiser and its
schedule, VEGAS pre-training, tempering updates and channel dropping between steps."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends import Backend, get_backend
from .checks import _check_int
from .draws import _mix_log, _Sampler


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


class TrainingMixin:
    """Training of the flows and the channel-weight network."""

    # -- torch parameters ------------------------------------------------------------------
    def _leaves(self) -> list[Any]:
        """Torch leaf tensors of every trainable array (flows, channel-weight net)."""
        if self._opt is not None:
            return self._opt.params
        tb = self._torch

        def leaf(a: Any) -> Any:
            # a private copy: torch.as_tensor would share memory with the numpy arrays
            t = tb.asarray(a, self.dtype) if not tb.is_array(a) else a.to(tb.dtype(self.dtype))
            return t.detach().clone().requires_grad_(True)

        params: list[Any] = []
        for s in self.samplers:
            if s.flow is not None:
                s.flow = s.flow.to(tb, self.dtype).map_arrays(leaf)
                params += s.flow.torch_parameters()
            if s.vmap is not None:
                s.vmap = s.vmap.to(self._torch)
        self._cw_params: list[Any] = []
        if self.cw is not None:
            self.cw.params = [(leaf(w), leaf(b)) for w, b in self.cw.params]
            self.cw.beta = self._torch.asarray(self._torch.to_numpy(self.cw.beta), self.dtype)
            self._cw_params = [p for wb in self.cw.params for p in wb]
            params += self._cw_params
        from .optim import Optimizer

        self._opt = Optimizer(params, self.lr, clip=self.clip)
        return params

    def _no_grad(self) -> Any:
        if self._torch is None:
            return contextlib.nullcontext()
        return self._torch.torch.no_grad()
    # -- training ---------------------------------------------------------------------------
    def train(self, calls: int | None = None,
              callback: Callable[[TrainingStatus], Any] | None = None, *,
              checkpoint_path: str | None = None, checkpoint_every: int | None = 100
              ) -> list[dict]:
        """Train for a budget of ``calls`` integrand evaluations; returns the step log.

        On the first call with ``vegas_init``, ``vegas_fraction`` of the budget pre-trains the
        VEGAS maps. ``callback(status)`` runs after every optimisation step.

        With ``checkpoint_path`` a checkpoint is written there atomically every
        ``checkpoint_every`` fresh steps (``None``: only at the end), at the end, and when
        SIGINT or SIGTERM arrives (then the run stops with ``KeyboardInterrupt`` or
        ``SystemExit``; the handlers are installed only during this call). A checkpoint
        written mid-call remembers the call: after :meth:`resume`, ``train()`` (or ``train``
        with the same ``calls``) finishes it, and the result equals an uninterrupted run.
        """
        from ..interrupt import SignalGuard

        pending = self._pending_train
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
        if checkpoint_every is not None:
            _check_int(checkpoint_every, "checkpoint_every", 1)
        if self._torch is None:
            raise RuntimeError("training needs torch (pip install torch); integrate() and "
                               "sample() of a loaded model do not")
        t0 = time.perf_counter()
        tb = self._torch
        with SignalGuard() if checkpoint_path is not None else contextlib.nullcontext() as guard:
            if pending is None:
                budget = int(calls)
                if self.vegas_init and self.vegas_calls == 0 and self.step == 0:
                    used = self._pretrain_vegas(int(budget * self.vegas_fraction))
                    budget -= used
                budget = max(budget, 0)
                pending = dict(calls=int(calls), n_fresh=len(self._batch_plan(budget)),
                               start_step=self.step, done=0, budget=budget)
                self._pending_train = pending
            self._leaves()
            self._exported = {}
            n_fresh = int(pending["n_fresh"])
            # checkpoints written before batch growth existed hold no budget: constant batches
            plan = self._batch_plan(int(pending.get("budget", n_fresh * self.batch_size)))
            # the LR schedule runs over the run's share of fresh calls (= the step share for
            # constant batches), buffered steps spread evenly between fresh ones
            edges = np.concatenate([[0], np.cumsum(plan)]) / max(sum(plan), 1)
            nb = 1 + self.buffered_steps
            for k in range(int(pending["done"]), n_fresh):
                if guard is not None and guard.caught:
                    break
                self._step_batch = plan[k]
                self._set_lr(edges[k])
                status = self._fresh_step()
                if callback is not None:
                    callback(status)
                # buffered steps only in the first share of the call: later the fit is limited
                # by gradient noise, which re-used points do not lower (see buffered_until)
                n_buf = self.buffered_steps if k < self.buffered_until * n_fresh else 0
                for j in range(n_buf):
                    if len(self.buffer) < self._step_batch:
                        break
                    self._set_lr(edges[k] + (edges[k + 1] - edges[k]) * (j + 1) / nb)
                    status = self._buffered_step()
                    if callback is not None:
                        callback(status)
                pending["done"] = k + 1
                if (checkpoint_path is not None and checkpoint_every is not None
                        and pending["done"] % int(checkpoint_every) == 0
                        and pending["done"] < n_fresh):
                    self.save(checkpoint_path)
            if guard is not None and guard.caught:
                self.save(checkpoint_path)
                guard.raise_if_caught()
            self._pending_train = None
            # the integration plan (defensive share, channel allocation) of the trained
            # sampler, now: a checkpoint then carries it to processes without torch
            self._eps_integrate()
            tb.synchronize()
            self.train_time += time.perf_counter() - t0
            if checkpoint_path is not None:
                self.save(checkpoint_path)
        return self.log

    def _batch_plan(self, budget: int) -> list[int]:
        """Fresh batch sizes of a train() call with ``budget`` calls: constant, or growing
        geometrically from ``batch_growth[0]`` to ``batch_growth[1]`` with the share of the
        budget used (rounded to multiples of 8); the remainder below one batch is not spent.
        Large budgets take the default's ``_large_budget_batch`` plan."""
        b0, b1 = self.batch_growth or (self.batch_size, self.batch_size)
        large = getattr(self, "_large_budget_batch", None)
        if large is not None and budget >= LARGE_BUDGET:
            b0, b1 = large
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

        self._opt.set_lr_factor(schedule_factor(self.schedule, t))

    def _pretrain_vegas(self, calls: int) -> int:
        """VEGAS maps per group (on numpy: cheap), trained on ``alpha_prior_c * f``."""
        from .vegas_init import pretrain_map

        if calls < 20 * self.n_groups:
            return 0
        be = get_backend("numpy")
        rng = be.rng(self._seeds[3])
        used_total = 0
        members = [[c for c in range(self.n_channels) if self.groups[c] == g]
                   for g in range(self.n_groups)]
        per_group = calls // self.n_groups
        betas: list[float] = []
        for g in range(self.n_groups):
            c = members[g][0]

            def f(x: Any, c: int = c) -> Any:
                ev = self.caller(x, c, be)
                v = ev.value
                if ev.alpha_prior is not None:
                    v = v * ev.alpha_prior[:, c]
                return np.abs(v)

            amap, used, beta = pretrain_map(f, self.dims, per_group, be, rng,
                                            ninc=self._ninc_for(per_group), dtype=self.dtype,
                                            temper=self.temper)
            betas.append(beta)
            self.samplers[g].vmap = amap
            used_total += used
        self.vegas_calls += used_total
        self.calls += used_total
        if self.temper > 0:
            self.beta = min(betas)
        return used_total

    def _ninc_for(self, calls: int) -> int:
        """Grid increments for a VEGAS pre-training of ``calls`` points: ``vegas_ninc``, but a
        default grid above 2 dims stays at 64 increments until each of the 8 rounds has 100
        points per increment (see the integrator's ``vegas_ninc``)."""
        if getattr(self, "_ninc_auto", False) and self.dims > 2 and calls // 8 < 100 * \
                self.vegas_ninc:
            return min(self.vegas_ninc, 64)
        return self.vegas_ninc

    def _draw_view(self) -> tuple[Backend, list[_Sampler], Any]:
        """Where fresh training points are drawn: numba views of the torch parameters.

        Drawing needs no gradients, so it runs through the numba backend's fused coupling
        kernels on numpy arrays that share memory with the torch leaves (the optimiser updates
        them in place), with a stream sharing the training generator: the same draws as on
        torch, several times faster. Without numba it stays on torch.
        """
        # keyed on the optimiser object itself (held here, so its id cannot be reused): a new
        # optimiser means new leaf tensors, whose memory the views must follow
        key = self._opt
        cached = getattr(self, "_view", None)
        if cached is not None and cached[0] is key:
            return cached[1]
        tb = self._torch
        out: tuple[Backend, list[_Sampler], Any] = (tb, self.samplers, self.rng_train)
        be = None
        try:
            be = get_backend("numba")
        except Exception:  # numba not installed: draw on torch
            be = None
        if be is not None and str(tb.device) == "cpu" and hasattr(self.rng_train, "_gen"):
            import copy

            def view(a: Any) -> Any:
                return a.detach().numpy()

            smp = []
            for sm in self.samplers:
                fl = None
                if sm.flow is not None:
                    fl = sm.flow.map_arrays(view)
                    fl.backend = be
                smp.append(_Sampler(fl, None if sm.vmap is None else sm.vmap.to(be)))
            rng = copy.copy(self.rng_train)
            rng.backend = be
            out = (be, smp, rng)
        self._view = (key, out)
        return out

    def _fresh_step(self) -> TrainingStatus:
        from ..backends import use

        tb = self._torch
        counts = self._alloc(self._step_batch, self.uniform_ratio)
        be, samplers, rng = self._draw_view()
        with self._no_grad(), use(be):
            batch = self._collect(counts, self.defensive, be, rng, samplers, need_logq=False)
        if be is not tb:
            batch = {k: (None if v is None else tb.asarray(v)) for k, v in batch.items()}
        n = int(batch["target"].shape[0])
        self.calls += n
        self.train_calls += n
        if self.multichannel:
            self._ensure_cw(int(batch["features"].shape[1]))
            if self._opt is not None and self.cw is not None and not self._cw_params \
                    and self.cw.params:
                self._opt = None
                self._leaves()
        loss, means, variances = self._optimise(batch, fresh=True)
        batch["log_q_sample"] = self._last_log_q_sample
        self.history.add(means, variances, counts)
        if self.split_sign == "auto":
            self._note_sign_support(means, counts)
        store = {k: batch[k] for k in ("u", "channels", "target", "log_q_sample",
                                       "alpha_prior", "features")}
        self.buffer.store(store)
        self._recent.append({k: v for k, v in store.items()})
        # enough recent points (>= 16k) for the variance-based choice of the defensive share
        if len(self._recent) > max(8, -(-16384 // self._step_batch)):
            del self._recent[0]
        self._maybe_drop()
        I = float(np.nansum(self.history.channel_means()))
        err = float(np.sqrt(np.nansum(variances / np.maximum(counts, 1))))
        rel = (float(np.sqrt(np.nansum(variances / np.maximum(counts, 1)) * n)) / abs(I)
               if I != 0 else math.inf)
        # the batches hold f / value_scale: the status is in the integrand's units
        s = self.caller.value_scale.value
        return self._status(loss, False, I * s, err * s, rel)

    def _update_beta(self, batch: dict[str, Any], f: Any) -> None:
        from .tempering import next_beta

        tb = self._torch
        # the channel-weighted f each channel's flow learns (the bare integrand is far from
        # any channel's sampler where its alpha_c is small: its ESS would keep beta below 1)
        t = np.abs(tb.to_numpy(f.detach() if hasattr(f, "detach") else f))
        with np.errstate(divide="ignore"):
            lf = np.log(t)
        ch = tb.to_numpy(batch["channels"]) if self.multichannel else None
        self.beta = next_beta(lf, tb.to_numpy(batch["log_q_sample"]), self.beta, self.temper,
                              channels=ch)

    def _buffered_step(self) -> TrainingStatus:
        batch = self.buffer.sample(self._step_batch, self.rng_train)
        loss, _, _ = self._optimise(batch, fresh=False)
        return self._status(loss, True, math.nan, math.nan, math.nan)

    def _status(self, loss: float, buffered: bool, I: float, err: float,
                rel: float) -> TrainingStatus:
        self.step += 1
        st = TrainingStatus(step=self.step, calls=self.calls, loss=loss, lr=self._opt.lr,
                            buffered=buffered, integral=I, error=err, rel_std=rel,
                            active_channels=int(self.active.sum()),
                            skipped_steps=self._opt.skipped,
                            nonfinite_points=self.nonfinite_points)
        self.log.append({k: v for k, v in st.__dict__.items()})
        if self.freeze_at is not None and self.step == int(self.freeze_at) and self.cw:
            self.cw.freeze()
        return st

    def _optimise(self, batch: dict[str, Any], fresh: bool) -> tuple[float, Any, Any]:
        tb = self._torch
        xp = tb.xp
        channels = batch["channels"]
        groups = tb.asarray(np.asarray(self.groups), "int64")
        batch = dict(batch)
        batch["group_of"] = xp.take(groups, channels, axis=0)
        active = tb.asarray(self.active)
        eps_fit = self.defensive if self.defensive_in_loss else 0.0
        f, log_q = self._batch_terms(batch, channels, self.cw, active, self.samplers,
                                     eps_fit, True)
        if fresh:
            # fresh points were drawn from the current model: its density is the sampling one
            batch["log_q_sample"] = _mix_log(xp, log_q.detach(), self.defensive) \
                if eps_fit != self.defensive else log_q.detach()
            if self.beta < 1.0:
                self._update_beta(batch, f)
        f_fit = f
        if self.beta < 1.0:
            # tempered target |f|^beta (sign kept); zeros stay zero
            a = xp.abs(f)
            pos = a > 0
            f_fit = xp.where(pos, xp.exp(self.beta * xp.log(xp.where(pos, a, xp.ones_like(a)))),
                             xp.zeros_like(a)) * xp.sign(f)
        # the refinement loss (the variance itself) once the target is the integrand
        loss_fn = self.loss if (self.refine_loss is None or self.beta < 1.0) else self.refine_loss
        loss = loss_fn(f_fit, log_q, batch["log_q_sample"], channels if self.multichannel else None,
                         self.n_channels)
        self._last_log_q_sample = batch["log_q_sample"]
        frozen = self._cw_params if (self.cw is not None and not self.cw.trainable) else ()
        self._opt.step(loss, frozen)
        lv = float(loss.detach()) if hasattr(loss, "detach") else float(loss)
        means = variances = None
        if fresh:
            w = tb.to_numpy((f.detach() if hasattr(f, "detach") else f)
                            / xp.exp(batch["log_q_sample"]))
            ch = tb.to_numpy(channels)
            C = self.n_channels
            cnt = np.bincount(ch, minlength=C)
            s1 = np.bincount(ch, w, minlength=C)
            means = np.where(cnt > 0, s1 / np.maximum(cnt, 1), np.nan)
            dev = w - np.nan_to_num(means)[ch]
            variances = np.where(cnt > 1, np.bincount(ch, dev * dev, minlength=C)
                                 / np.maximum(cnt - 1, 1), np.nan)
        return lv, means, variances

