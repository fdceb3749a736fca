"""The neural importance sampling integrator (MadNIS-style), single- and multi-channel.

    I = sum_c < alpha_c(x) f(x) / g_c(x) >_{x ~ g_c}

Each channel ``c`` samples with ``g_c``: a normalizing flow (shared by a group of symmetric
channels) on top of an optional fixed VEGAS map, mixed with a small *defensive* fraction ``eps``
drawn from the VEGAS map alone::

    y ~ (1 - eps) q_flow(y) + eps * Uniform(y),    r = V_c(y)

The defensive fraction is why mcint does not lose peaks: while a flow trains, every region the
VEGAS map found keeps receiving points, so a peak the flow has under-populated still shows up
with a large weight and pulls the flow back (a pure flow sees nothing there and stops learning
it); it also bounds every weight by ``f / (eps g_VEGAS)``, which keeps the error estimate honest.
At integration ``eps`` is re-chosen (``defensive_integrate="auto"``) to minimise the estimated
variance, floored at ``defensive_min``.

Training (on torch, through the same array-API code as sampling) minimises a loss from
:mod:`mcint.nis.losses` over a fixed budget of integrand calls; channel weights
``alpha = beta exp(Delta) / norm`` are trained jointly; samples can be buffered and reused with
importance weights; channels are allocated by their variance and can be dropped when their
``|I_c|`` share is negligible. Sampling and integration run on any backend.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backends import Backend, get_backend
from ..batch import Batch
from ..results import IterationResult, Result
from .buffer import Buffer
from .channel_weights import ChannelWeights
from .evaluate import ChannelCaller, MappedChannels
from .losses import get_loss

__all__ = ["Integrator", "NISResult", "TrainingStatus"]


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
class _Sampler:
    """What samples one group: a flow (or None) and a fixed map (or None)."""

    flow: Any
    vmap: Any


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


def _seed_ints(seed: int | None, n: int) -> list[int]:
    ss = np.random.SeedSequence(seed)
    return [int(s) for s in ss.generate_state(n, dtype=np.uint32)]


class Integrator:
    """Neural importance sampling integrator.

    Parameters
    ----------
    integrand:
        A callable ``f(x)`` on the unit cube ``[0, 1]^dims`` (numpy in, numpy out; see
        :class:`mcint.Integrand`), or a :class:`mcint.channels.MultiChannelIntegrand`.
    dims:
        Dimension (required for a plain callable).
    channels:
        For a plain callable: a list of :class:`mcint.transforms.Transform` mappings of the unit
        cube, one per channel (prior channel weights = the mappings' densities).
    backend:
        Where :meth:`integrate` and :meth:`sample` run (training always runs on torch).
    seed:
        Makes a run repeat exactly on a backend.
    loss:
        Name in :data:`mcint.nis.losses.LOSSES` or a callable; default ``"kl"`` for one
        channel, ``"stratified_variance"`` for several.
    batch_size:
        Integrand calls per fresh training step; default 256 for one channel (small batches,
        many steps, learn more per integrand call: 256 beat 512 and 1024 on every single-channel
        benchmark entry at 1e5 calls) and 1024 for several (each channel still gets enough
        points, and the per-step cost grows with the number of channel groups).
    lr, schedule, clip:
        Adam learning rate (default 3e-3 for one channel, 1e-2 for several: the stratified
        variance loss with per-channel flows learnt 1.4-4x lower rel. std with it on DrellYan and
        the drellyan3 toy at 1e5-1e6 calls, 2 seeds), schedule over each :meth:`train` call (``"constant"``,
        ``"cosine"``, ``"exponential"``, ``"onecycle"`` or a callable of the run fraction) and
        gradient-norm clip (``None``: off).
    dtype:
        ``"float64"`` or ``"float32"`` for training and sampling.
    flow:
        Keyword arguments for :class:`mcint.flows.Flow` (``bins``, ``layers``, ``hidden``, ...),
        or ``False`` for no flow (VEGAS map only).
    channel_weights:
        Train the channel-weight network (multi-channel only).
    prior:
        Channel-weight prior: ``"integrand"`` (its ``alpha_prior``), ``"uniform"`` or numbers.
    cw_hidden:
        Hidden layer sizes of the channel-weight network.
    freeze_channel_weights:
        Freeze the channel-weight network after this many optimisation steps.
    groups:
        Group index of each channel (channels of a group share one flow); default the
        integrand's ``groups``; ``False`` disables sharing.
    defensive:
        Defensive fraction ``eps`` during training.
    defensive_in_loss:
        Whether the loss fits the defensive mixture (``True``) or the flow alone, the defensive
        points entering by importance weights (``False``); default ``True`` for one channel,
        ``False`` for several.
    defensive_integrate:
        ``"auto"`` (choose by estimated variance, at least ``defensive_min``) or a number.
        The estimate importance-samples the recent training points (drawn with ``defensive``),
        so regions the flow misses are in it: a share as small as ``defensive_min`` (1e-5) is
        chosen only where the flow is good everywhere; any ``eps > 0`` keeps every weight
        bounded by ``f / (eps g_VEGAS)``.
    vegas_init:
        Pre-train a VEGAS map per channel group and put the flows on top of it; default on for
        one channel, off for several (their mappings already do that job, better).
    vegas_fraction:
        Share of each :meth:`train` budget spent on VEGAS pre-training (first call only).
    vegas_ninc:
        Increments per axis of the pre-trained maps.
    buffer_capacity, buffered_steps:
        Keep up to this many evaluated points and make ``buffered_steps`` extra optimisation
        steps on them after every fresh step (no integrand calls).
    uniform_ratio:
        Share of each training batch spread equally over active channels; the rest goes by
        each channel's standard deviation (stratified training).
    drop_threshold, drop_interval:
        Every ``drop_interval`` steps drop the channels whose ``|I_c|`` together make less than
        ``drop_threshold`` of ``sum |I_c|``.
    temper:
        ESS fraction for tempering (0: off): VEGAS pre-training and the flows first learn
        ``|f|^beta``, raising ``beta`` to 1 as fast as the weights' effective sample size stays
        above this share of each batch; keeps multi-modal integrands from losing peaks
        (0.3: with 0.1 and small batches the 8-d camel lost a peak for one seed).
    nonfinite:
        ``"raise"``: NaN/inf from the integrand stops with an error; ``"skip"``: such points
        count as zero (they add nothing to the loss) and are counted in :attr:`nonfinite_points`.
    """

    def __init__(self, integrand: Any, dims: int | None = None, *,
                 channels: Sequence[Any] | None = None,
                 backend: str | Backend | None = None, seed: int | None = None,
                 loss: str | Callable[..., Any] | None = None, batch_size: int | None = None,
                 lr: float | None = None, schedule: str | Callable[[float], float] = "cosine",
                 clip: float | None = 10.0, dtype: str = "float32",
                 flow: dict | bool | None = None, channel_weights: bool = True,
                 prior: str | Sequence[float] | None = "integrand",
                 cw_hidden: Sequence[int] = (32, 32),
                 freeze_channel_weights: int | None = None,
                 groups: Sequence[int] | bool | None = None, defensive: float = 0.1,
                 defensive_integrate: str | float = "auto", defensive_min: float = 1e-5,
                 vegas_init: bool | None = None, vegas_fraction: float = 0.2, vegas_ninc: int = 64,
                 buffer_capacity: int = 0, buffered_steps: int = 0,
                 uniform_ratio: float = 1.0, history_length: int = 20,
                 drop_threshold: float = 0.0, drop_interval: int = 100,
                 temper: float = 0.3, nonfinite: str = "raise",
                 defensive_in_loss: bool | None = None) -> None:
        #: constructor options (what a checkpoint needs to rebuild the integrator)
        self.options = dict(
            seed=seed, loss=loss, batch_size=batch_size, lr=lr, schedule=schedule, clip=clip,
            dtype=dtype, flow=flow, channel_weights=channel_weights,
            prior=prior if (prior is None or isinstance(prior, str)) else list(map(float, prior)),
            cw_hidden=list(cw_hidden), freeze_channel_weights=freeze_channel_weights,
            groups=groups if groups is None or isinstance(groups, bool) else list(groups),
            defensive=defensive, defensive_integrate=defensive_integrate,
            defensive_min=defensive_min, vegas_init=vegas_init, vegas_fraction=vegas_fraction,
            vegas_ninc=vegas_ninc, buffer_capacity=buffer_capacity,
            buffered_steps=buffered_steps, uniform_ratio=uniform_ratio,
            history_length=history_length, drop_threshold=drop_threshold,
            drop_interval=drop_interval, temper=temper, nonfinite=nonfinite,
            defensive_in_loss=defensive_in_loss)
        if channels is not None:
            if dims is None:
                raise ValueError("dims is required with channels=")
            integrand = MappedChannels(integrand, dims, channels)
        self.caller = ChannelCaller(integrand, dims, nonfinite)
        self.integrand = integrand
        self.dims = self.caller.dims
        self.n_channels = self.caller.n_channels
        self.multichannel = self.caller.multi is not None
        self.backend = get_backend(backend)
        if dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
        self.dtype = dtype
        self.seed = seed
        if batch_size is None:
            # per-step cost is mostly fixed overhead per channel group: several channels
            # need bigger batches to stay cheap (and each channel still gets enough points)
            batch_size = 256 if not self.multichannel else 1024
        _check_int(batch_size, "batch_size", 8)
        self.batch_size = int(batch_size)
        self.loss_name = loss if isinstance(loss, str) else getattr(loss, "__name__", "custom")
        if loss is None:
            loss = "stratified_variance" if self.multichannel else "kl"
            self.loss_name = loss
        self.loss = get_loss(loss)
        if lr is None:
            lr = 1e-2 if self.multichannel else 3e-3
        self.lr, self.schedule, self.clip = float(lr), schedule, clip
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
        self.defensive = _check_frac(defensive, "defensive", 0.0, 1.0, open_hi=True)
        if defensive_integrate != "auto":
            _check_frac(defensive_integrate, "defensive_integrate", 0.0, 1.0, open_hi=True)
        self.defensive_integrate = defensive_integrate
        self.defensive_min = _check_frac(defensive_min, "defensive_min", 0.0, 1.0, open_hi=True)
        # multi-channel: the channel mappings already flatten the peaks, and a piecewise-constant
        # VEGAS density under each flow made the drellyan3 toy 5x worse (rel. std 0.061 vs
        # 0.010-0.012 at 3e5 calls, 4 seeds) and DrellYan 0.12 vs 0.10; madnis has no VEGAS stage
        self.vegas_init = (not self.multichannel) if vegas_init is None else bool(vegas_init)
        self.vegas_fraction = _check_frac(vegas_fraction, "vegas_fraction", 0.0, 1.0,
                                          open_hi=True)
        self.vegas_ninc = int(vegas_ninc)
        self.buffer = Buffer(int(buffer_capacity))
        _check_int(buffered_steps, "buffered_steps", 0)
        self.buffered_steps = int(buffered_steps)
        self.uniform_ratio = _check_frac(uniform_ratio, "uniform_ratio", 0.0, 1.0)
        self.history = _History(int(history_length))
        self.drop_threshold = _check_frac(drop_threshold, "drop_threshold", 0.0, 1.0,
                                          open_hi=True)
        self.drop_interval = int(drop_interval)
        self.freeze_at = freeze_channel_weights
        self.temper = _check_frac(temper, "temper", 0.0, 1.0, open_hi=True)
        # several channels: the loss fits the flow alone (the defensive share only widens the
        # sampling, weighted by q/q_sample). Fitting the mixture (1-eps) q + eps taught each flow
        # to leave every region where f/I < eps to the uniform share, so the flow could not be
        # used without it: DrellYan 0.110 -> 0.077, drellyan3 0.024 -> 0.011 at 3e5 calls.
        # One channel keeps the mixture fit (at 1e5 calls the 8-/16-d camels were better so).
        self.defensive_in_loss = (not self.multichannel) if defensive_in_loss is None \
            else bool(defensive_in_loss)
        #: tempering exponent: training targets |f|^beta (1 = the integrand itself)
        self.beta = 0.0 if self.temper > 0 else 1.0

        # channel groups (shared flows)
        g = None
        if groups is not False:
            g = groups if groups not in (None, True) else getattr(integrand, "groups", None)
        if g is None:
            g = list(range(self.n_channels))
        g = [int(v) for v in g]
        if len(g) != self.n_channels:
            raise ValueError(f"groups must give one group per channel ({self.n_channels}), "
                             f"got {len(g)}")
        uniq = sorted(set(g))
        self.groups = [uniq.index(v) for v in g]
        self.n_groups = len(uniq)

        seeds = _seed_ints(seed, 8 + self.n_groups)
        self._seeds = seeds
        self._flow_opts = {} if flow in (None, True) else (None if flow is False else dict(flow))
        self._torch = get_backend("torch") if _has_torch() else None
        self.rng_train = self._train_backend().rng(seeds[0])
        self.rng_sample = self.backend.rng(seeds[1])
        self.samplers = [_Sampler(self._make_flow(k, seeds[8 + k]), None)
                         for k in range(self.n_groups)]
        self.cw: ChannelWeights | None = None
        self._features_dim: int | None = None
        self._cw_options = dict(prior=prior, hidden=tuple(cw_hidden), seed=seeds[2],
                                train=bool(channel_weights))
        self.active = np.ones(self.n_channels, dtype=bool)
        self.step = 0
        self.calls = 0
        self.train_calls = 0
        self.vegas_calls = 0
        self.skipped_steps = 0
        self.train_time = 0.0
        self.log: list[dict] = []
        self._opt: Any = None
        self._exported: dict[str, Any] = {}
        self._recent: list[dict] = []
        #: a train() call in progress (written into checkpoints, so resume can finish it)
        self._pending_train: dict[str, int] | None = None

    # -- construction helpers --------------------------------------------------------------
    def _train_backend(self) -> Backend:
        return self._torch if self._torch is not None else get_backend("numpy")

    def _make_flow(self, group: int, seed: int) -> Any:
        if self._flow_opts is None:
            return None
        from ..flows import Flow

        opts = dict(self._flow_opts)
        opts.setdefault("dtype", self.dtype)
        return Flow(self.dims, seed=seed, **opts)

    def _ensure_cw(self, features_dim: int) -> None:
        if self.cw is not None or not self.multichannel:
            return
        o = self._cw_options
        self._features_dim = features_dim
        self.cw = ChannelWeights(self.n_channels, features_dim if o["train"] else None,
                                 prior=o["prior"], hidden=o["hidden"], seed=o["seed"],
                                 dtype=self.dtype)

    @property
    def nonfinite_points(self) -> int:
        """Integrand values that were NaN/inf and counted as zero (``nonfinite="skip"``)."""
        return self.caller.skipped

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
        from .training import Optimizer

        self._opt = Optimizer(params, self.lr, clip=self.clip)
        return params

    def _no_grad(self) -> Any:
        if self._torch is None:
            return contextlib.nullcontext()
        return self._torch.torch.no_grad()

    # -- sampling one channel ---------------------------------------------------------------
    def _draw(self, channel: int, n: int, eps: float, be: Backend, rng: Any,
              samplers: Sequence[_Sampler], need_logq: bool = True) -> dict[str, Any]:
        """Draw ``n`` points in ``channel`` from the defensive mixture; evaluate the integrand.

        Returns backend arrays: ``u`` (flow space), ``r`` (channel chart), ``log_q_sample``
        (mixture density in ``u``), ``target`` (integrand x map Jacobian, i.e. the integrand in
        ``u``), ``alpha_prior``, ``features``.
        """
        xp = be.xp
        s = samplers[self.groups[channel]]
        dt = self.dtype
        d = self.dims
        if s.flow is None or eps >= 1.0:
            n_def = n
        else:
            n_def = int(be.to_numpy(xp.sum(xp.astype(rng.uniform((n,), dt) < eps, xp.int64))))
        parts_u, parts_lq = [], []
        if n - n_def > 0:
            u_f, lq_f = s.flow.sample(n - n_def, rng)
            parts_u.append(u_f)
            parts_lq.append(lq_f)
        if n_def > 0:
            u_d = rng.uniform((n_def, d), dt)
            if s.flow is not None and need_logq:
                lq_d = s.flow.log_prob(u_d)
            else:
                # a fresh training step gets every density from its own pass with gradients
                lq_d = xp.zeros((n_def,), dtype=u_d.dtype)
            parts_u.append(u_d)
            parts_lq.append(lq_d)
        u = xp.concat(parts_u, axis=0) if len(parts_u) > 1 else parts_u[0]
        lq = xp.concat(parts_lq, axis=0) if len(parts_lq) > 1 else parts_lq[0]
        log_m = _mix_log(xp, lq, eps if s.flow is not None else 1.0)
        if s.vmap is not None:
            r, log_jac = s.vmap.forward(u)
        else:
            r, log_jac = u, xp.zeros((n,), dtype=u.dtype)
        ev = self.caller(r, channel, be)
        value = ev.value if ev.value.dtype == u.dtype else xp.astype(ev.value, u.dtype)
        target = value * xp.exp(log_jac)
        feats = ev.features
        if self.multichannel and feats is None:
            feats = r
        return dict(u=u, r=r, log_q_sample=log_m, target=target, alpha_prior=ev.alpha_prior,
                    features=feats)

    def _alloc(self, n: int, uniform_ratio: float) -> np.ndarray:
        """Points per channel: a uniform share plus the rest by each channel's std."""
        act = self.active
        na = int(act.sum())
        weights = np.where(act, 1.0, 0.0)
        stds = self.history.channel_stds() if self.history.means else None
        share = weights / na
        if stds is not None and uniform_ratio < 1.0:
            s = np.where(act & np.isfinite(stds), np.nan_to_num(stds), 0.0)
            if s.sum() > 0:
                share = uniform_ratio * share + (1.0 - uniform_ratio) * s / s.sum()
        raw = share * n
        cnt = np.floor(raw).astype(np.int64)
        rest = n - int(cnt.sum())
        if rest > 0:
            order = np.argsort(-(raw - cnt), kind="stable")
            cnt[order[:rest]] += 1
        return cnt

    # -- the target of one batch -----------------------------------------------------------
    def _batch_terms(self, batch: dict[str, Any], channels: Any, cw: Any, active: Any,
                     samplers: Sequence[_Sampler], eps: float, with_grad_logq: bool
                     ) -> tuple[Any, Any]:
        """``(f = alpha_c * target, log m_theta(u))`` for a concatenated batch."""
        xp = _ns(batch["target"])
        f = batch["target"]
        if self.multichannel and cw is not None:
            la = cw.log_alpha(batch["features"], batch["alpha_prior"], active)
            oh = xp.astype(channels[:, None] == xp.arange(self.n_channels, dtype=channels.dtype,
                                                          device=f.device)[None, :], f.dtype)
            f = f * xp.sum(xp.exp(la) * oh, axis=1)
        if not with_grad_logq:
            return f, batch["log_q_sample"]
        log_q = self._log_q(batch["u"], batch["group_of"], samplers, eps)
        return f, log_q

    def _log_q(self, u: Any, group_of: Any, samplers: Sequence[_Sampler], eps: float) -> Any:
        """Mixture log density of each point under its group's current flow."""
        xp = _ns(u)
        if self.n_groups == 1:
            s = samplers[0]
            if s.flow is None:
                return xp.zeros((u.shape[0],), dtype=u.dtype)
            return _mix_log(xp, s.flow.log_prob(u), eps)
        idx_parts, val_parts = [], []
        for g, smp in enumerate(samplers):
            idx = xp.nonzero(group_of == g)[0]
            if int(idx.shape[0]) == 0:
                continue
            ug = xp.take(u, idx, axis=0)
            lg = xp.zeros((ug.shape[0],), dtype=u.dtype) if smp.flow is None \
                else _mix_log(xp, smp.flow.log_prob(ug), eps)
            idx_parts.append(idx)
            val_parts.append(lg)
        # undo the grouping with a gather (no in-place scatter: autograd, strict)
        perm = xp.concat(idx_parts, axis=0)
        vals = xp.concat(val_parts, axis=0)
        return xp.take(vals, xp.argsort(perm), axis=0)

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
                pending = dict(calls=int(calls), n_fresh=max(budget // self.batch_size, 0),
                               start_step=self.step, done=0)
                self._pending_train = pending
            self._leaves()
            self._exported = {}
            n_fresh, start_step = int(pending["n_fresh"]), int(pending["start_step"])
            total_steps = n_fresh * (1 + self.buffered_steps)
            for k in range(int(pending["done"]), n_fresh):
                if guard is not None and guard.caught:
                    break
                self._set_lr((self.step - start_step) / max(total_steps, 1))
                status = self._fresh_step()
                if callback is not None:
                    callback(status)
                for _ in range(self.buffered_steps):
                    if len(self.buffer) < self.batch_size:
                        break
                    self._set_lr((self.step - start_step) / max(total_steps, 1))
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
            tb.synchronize()
            self.train_time += time.perf_counter() - t0
            if checkpoint_path is not None:
                self.save(checkpoint_path)
        return self.log

    def _set_lr(self, t: float) -> None:
        from .training import schedule_factor

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
                                            ninc=self.vegas_ninc, dtype=self.dtype,
                                            temper=self.temper)
            betas.append(beta)
            self.samplers[g].vmap = amap
            used_total += used
        self.vegas_calls += used_total
        self.calls += used_total
        if self.temper > 0:
            self.beta = min(betas)
        return used_total

    def _collect(self, counts: np.ndarray, eps: float, be: Backend, rng: Any,
                 samplers: Sequence[_Sampler], need_logq: bool = True) -> dict[str, Any]:
        parts = []
        for c in range(self.n_channels):
            if counts[c] == 0:
                continue
            b = self._draw(c, int(counts[c]), eps, be, rng, samplers, need_logq)
            b["channels"] = be.asarray(np.full(int(counts[c]), c, dtype=np.int64))
            parts.append(b)
        xp = be.xp
        out: dict[str, Any] = {}
        for k in parts[0]:
            if parts[0][k] is None:
                out[k] = None
            else:
                out[k] = xp.concat([p[k] for p in parts], axis=0) if len(parts) > 1 \
                    else parts[0][k]
        return out

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
        counts = self._alloc(self.batch_size, self.uniform_ratio)
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
        store = {k: batch[k] for k in ("u", "channels", "target", "log_q_sample",
                                       "alpha_prior", "features")}
        self.buffer.store(store)
        self._recent.append({k: v for k, v in store.items()})
        # enough recent points (>= 16k) for the variance-based choice of the defensive share
        if len(self._recent) > max(8, -(-16384 // self.batch_size)):
            del self._recent[0]
        self._maybe_drop()
        I = float(np.nansum(self.history.channel_means()))
        err = float(np.sqrt(np.nansum(variances / np.maximum(counts, 1))))
        rel = (float(np.sqrt(np.nansum(variances / np.maximum(counts, 1)) * n)) / abs(I)
               if I != 0 else math.inf)
        return self._status(loss, False, I, err, rel)

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
        batch = self.buffer.sample(self.batch_size, self.rng_train)
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
        groups = xp.asarray(self.groups, dtype=xp.int64)
        batch = dict(batch)
        batch["group_of"] = xp.take(groups, channels, axis=0)
        active = xp.asarray(self.active)
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
        loss = self.loss(f_fit, log_q, batch["log_q_sample"], channels if self.multichannel else None,
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
        self.active[drop] = False
        if len(self.buffer):
            keep = self._torch.xp.take(self._torch.xp.asarray(self.active),
                                       self.buffer.data["channels"], axis=0)
            self.buffer.keep(keep)
        self._recent = []

    def freeze_channel_weights(self) -> None:
        """Stop training the channel-weight network."""
        if self.cw is not None:
            self.cw.freeze()

    # -- exported models ----------------------------------------------------------------------
    def _samplers_on(self, be: Backend) -> tuple[list[_Sampler], ChannelWeights | None]:
        key = f"{be.name}:{be.device}"
        if key not in self._exported:
            def detach(a: Any) -> Any:
                return a.detach().clone() if hasattr(a, "detach") else a

            out = []
            for s in self.samplers:
                fl = None if s.flow is None else s.flow.map_arrays(detach).to(be, self.dtype)
                vm = None if s.vmap is None else s.vmap.to(be)
                out.append(_Sampler(fl, vm))
            cw = None
            if self.cw is not None:
                cw = self.cw.to(be, self.dtype) if not self.cw.params else \
                    _cw_detached(self.cw).to(be, self.dtype)
            self._exported[key] = (out, cw)
        return self._exported[key]

    def _eps_integrate(self) -> float:
        if self.defensive_integrate != "auto":
            return float(self.defensive_integrate)
        if all(s.flow is None for s in self.samplers):
            return 1.0
        if not self._recent or self._torch is None:
            return max(self.defensive, self.defensive_min) if self.step == 0 \
                else max(self.defensive_min, getattr(self, "_eps_auto", self.defensive))
        tb = self._torch
        xp = tb.xp
        batch = {k: (xp.concat([r[k] for r in self._recent], axis=0)
                     if self._recent[0][k] is not None else None) for k in self._recent[0]}
        groups = xp.asarray(self.groups, dtype=xp.int64)
        batch["group_of"] = xp.take(groups, batch["channels"], axis=0)
        with self._no_grad():
            f, lq1 = self._batch_terms(batch, batch["channels"], self.cw,
                                       xp.asarray(self.active), self.samplers, 1.0 - 1e-300,
                                       False)
            lflow = self._log_q(batch["u"], batch["group_of"], self.samplers, 0.0)
        f = tb.to_numpy(f)
        lflow = tb.to_numpy(lflow)
        lqs = tb.to_numpy(batch["log_q_sample"])
        ch = tb.to_numpy(batch["channels"])
        del lq1
        best, best_v = None, math.inf
        grid = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 0.003, 0.01, 0.03, 0.1, 0.2, 0.3)
        cands = sorted({self.defensive_min} | {x for x in grid if x >= self.defensive_min})
        for e in cands:
            lm = np.logaddexp(np.log1p(-e) + lflow, np.log(e)) if e > 0 else lflow
            # E_m[w^2] per channel, importance-sampled from the training mixture
            w2 = f * f * np.exp(-lm - lqs)
            w1 = f * np.exp(-lqs)
            v = 0.0
            for c in np.unique(ch):
                m = ch == c
                v += math.sqrt(max(float(np.mean(w2[m]) - np.mean(w1[m]) ** 2), 0.0))
            if v < best_v * (1 - 1e-9):
                best, best_v = e, v
        self._eps_auto = float(best if best is not None else self.defensive)
        return self._eps_auto

    # -- integration and sampling -------------------------------------------------------------
    def _sample_raw(self, n: int, be: Backend, rng: Any, eps: float,
                    uniform_ratio: float) -> tuple[dict[str, Any], np.ndarray, Any]:
        samplers, cw = self._samplers_on(be)
        counts = self._alloc(n, uniform_ratio)
        batch = self._collect(counts, eps, be, rng, samplers)
        xp = be.xp
        f = batch["target"]
        if self.multichannel and cw is not None:
            la = cw.log_alpha(batch["features"], batch["alpha_prior"], xp.asarray(self.active))
            ch = batch["channels"]
            a = xp.take_along_axis(la, ch[:, None], axis=1)[:, 0]
            f = f * xp.exp(a)
        elif self.multichannel:
            # no network yet (never trained): prior weights only
            tmp = ChannelWeights(self.n_channels, None, prior=self._cw_options["prior"],
                                 dtype=self.dtype).to(be, self.dtype)
            la = tmp.log_alpha(batch["features"], batch["alpha_prior"], xp.asarray(self.active))
            a = xp.take_along_axis(la, batch["channels"][:, None], axis=1)[:, 0]
            f = f * xp.exp(a)
        w = f * xp.exp(-batch["log_q_sample"])
        return batch, counts, w

    def integrate(self, calls: int, *, uniform_ratio: float = 0.1,
                  iterations: int = 1) -> NISResult:
        """Estimate the integral with ``calls`` integrand evaluations (model frozen).

        Channels get points by their standard deviation (optimal stratification), with
        ``uniform_ratio`` spread equally so that every active channel is sampled.
        """
        from .. import diagnostics as D

        _check_int(calls, "calls", 2)
        be = self.backend
        eps = self._eps_integrate()
        res = NISResult(weighted=False, label="mcint NIS")
        per = int(calls) // int(iterations)
        all_w, all_c = [], []
        for _ in range(int(iterations)):
            try:
                batch, counts, w = self._sample_raw(per, be, self.rng_sample, eps,
                                                    uniform_ratio)
            except MemoryError as exc:
                raise MemoryError(f"integrate(calls={calls}) draws {per} points at once and ran "
                                  f"out of memory ({exc}); pass iterations=k to draw calls/k "
                                  "points at a time") from exc
            wn = be.to_numpy(w).astype(np.float64)
            ch = be.to_numpy(batch["channels"]).astype(np.int64)
            self.calls += per
            tab = D.channel_table(wn, ch, self.n_channels)
            res.add(IterationResult(tab.total, tab.total_error, per,
                                    info={"nonfinite": self.nonfinite_points}))
            all_w.append(wn)
            all_c.append(ch)
        wn = np.concatenate(all_w)
        ch = np.concatenate(all_c)
        tab = D.channel_table(wn, ch, self.n_channels,
                              names=list(getattr(self.integrand, "channel_names", None) or []))
        res.channels = tab
        # stratification factor n/n_c turns per-channel terms into event weights
        cnt = np.bincount(ch, minlength=self.n_channels)
        ev_w = wn * (wn.size / np.maximum(cnt, 1))[ch]
        u = D.unweighting_efficiency(ev_w)
        res.metrics = dict(
            rel_std=float(tab.total_error * math.sqrt(wn.size) / abs(tab.total))
            if tab.total else math.inf,
            rel_std_opt=D.stratified_relative_std(tab.stds, tab.total),
            unweighting_efficiency=u.efficiency, unweighting_partial=u.efficiency_partial,
            ess=D.effective_sample_size(ev_w), largest_weight_share=D.largest_weight_share(ev_w),
            defensive=eps, nonfinite_points=self.nonfinite_points,
            active_channels=int(self.active.sum()))
        from ..health import diagnose, warn_if_bad

        res.diagnostics = diagnose(ev_w, ch, self.n_channels, active=self.active)
        warn_if_bad(res.diagnostics, "NIS integral")
        return res

    def sample(self, n: int, *, uniform_ratio: float = 0.1) -> Batch:
        """``n`` weighted points: ``weights.mean()`` estimates the integral.

        ``x`` is the point in the integration domain (multi-channel: the integrand's features,
        i.e. the physical point), ``channels`` the channel each was drawn in.
        """
        _check_int(n, "n", 1)
        be = self.backend
        eps = self._eps_integrate()
        try:
            batch, counts, w = self._sample_raw(int(n), be, self.rng_sample, eps, uniform_ratio)
        except MemoryError as exc:
            raise MemoryError(f"sample({n}) ran out of memory ({exc}); draw fewer points per "
                              "call (e.g. in a loop) or write them to an event file as you go"
                              ) from exc
        self.calls += int(n)
        xp = be.xp
        factor = be.asarray((n / np.maximum(counts, 1)).astype(np.float64), self.dtype)
        w = w * xp.take(factor, batch["channels"], axis=0)
        if self.multichannel:
            x = batch["features"]
            prob = None
        else:
            x = batch["r"]
            prob = self._density_r(batch)
        return Batch(x=x, weights=w, prob=prob, channels=batch["channels"])

    def _density_r(self, batch: dict[str, Any]) -> Any:
        # g(r) = m(u) / |dr/du|; target = value * |dr/du|, value = f(r)
        xp = _ns(batch["u"])
        s = self._samplers_on(self.backend)[0][0]
        if s.vmap is None:
            return xp.exp(batch["log_q_sample"])
        _, log_jac = s.vmap.forward(batch["u"])
        return xp.exp(batch["log_q_sample"] - log_jac)

    # -- checkpoints ----------------------------------------------------------------------------
    def save(self, path: str) -> None:
        """Write everything needed to resume or to sample (no pickle; see mcint.serialize)."""
        from .checkpoint import save_checkpoint

        save_checkpoint(self, path)

    @classmethod
    def resume(cls, path: str, integrand: Any, *, dims: int | None = None,
               channels: Sequence[Any] | None = None, backend: str | Backend | None = None,
               **overrides: Any) -> Integrator:
        """Rebuild an integrator saved with :meth:`save` and continue where it stopped.

        Give the same integrand (and ``channels`` mappings, if used); callables passed as
        ``loss``/``schedule`` are not stored in the file and must be passed again here.
        """
        from .checkpoint import load_checkpoint

        return load_checkpoint(cls, path, integrand, dims=dims, channels=channels,
                               backend=backend, overrides=overrides)


def _cw_detached(cw: ChannelWeights) -> ChannelWeights:
    new = object.__new__(ChannelWeights)
    new.__dict__.update(cw.__dict__)
    new.params = [(w.detach().clone() if hasattr(w, "detach") else w,
                   b.detach().clone() if hasattr(b, "detach") else b) for w, b in cw.params]
    new.beta = cw.beta.detach().clone() if hasattr(cw.beta, "detach") else cw.beta
    return new


def _ns(a: Any) -> Any:
    from array_api_compat import array_namespace

    return array_namespace(a)


def _mix_log(xp: Any, log_q: Any, eps: float) -> Any:
    """``log((1 - eps) q + eps)`` from ``log q`` (the defensive mixture with the uniform)."""
    if eps <= 0:
        return log_q
    if eps >= 1:
        return xp.zeros_like(log_q)
    return xp.logaddexp(log_q + math.log1p(-eps), xp.full_like(log_q, math.log(eps)))


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _check_int(v: Any, name: str, lo: int) -> None:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")


def _check_frac(v: Any, name: str, lo: float, hi: float, open_hi: bool = False) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {v!r}") from None
    if not (lo <= x <= hi) or (open_hi and x >= hi):
        raise ValueError(f"{name} must be in [{lo}, {hi}{')' if open_hi else ']'}, got {v!r}")
    return x
