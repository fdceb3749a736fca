"""The neural importance sampling integrator (MadNIS-style), single- and multi-channel.

    I = sum_c < alpha_c(x) f(x) / g_c(x) >_{x ~ g_c}

Each channel ``c`` samples with ``g_c``: a normalizing flow (shared by a group of symmetric
channels) on top of an optional fixed VEGAS map, mixed with a small *defensive* fraction ``eps``
drawn from the VEGAS map alone::

    y ~ (1 - eps) q_flow(y) + eps * Uniform(y),    r = V_c(y)

:class:`Integrator` is a small facade over parts with one job each, built here and given to
each other explicitly: the :class:`~mcint.nis.model.SamplerModel` (flows, maps, channel
weights; draws and densities), the :class:`~mcint.nis.multichannel.ChannelBook` (active
channels, history, allocation, dropping), the :class:`~mcint.nis.train_loop.Trainer` (loop,
optimiser, tempering, buffer, VEGAS stage), the :class:`~mcint.nis.defensive.IntegrationPlan`
(the defensive share and channel estimates used at integration) and the
:class:`~mcint.nis.estimate.Estimator` (integrate, sample). Checkpoints:
:mod:`mcint.nis.checkpoint`. The design and the measurements behind the defaults are in
``docs/integrator.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from ..backends import Backend, BackendUnavailable, get_backend, use
from ..batch import Batch
from ..channels import MultiChannelIntegrand
from ..integrand import unscaled
from ..results import IterationResult
from ..vegas._util import check_bool, check_seed
from .checks import _check_frac, _check_int, _has_torch, _seed_ints
from .defensive import IntegrationPlan
from .estimate import CallCount, Estimator, NISResult
from .evaluate import ChannelCaller, MappedChannels
from .model import SamplerModel, WeightSpec, channel_groups
from .multichannel import ChannelBook
from .options import ChannelOptions, Options, SamplerOptions, TrainingOptions, saved_options
from .sign_split import SignSplit
from .train_loop import Trainer, TrainingStatus
from .vegas_init import VegasStage

__all__ = ["Integrator", "NISResult", "TrainingStatus"]


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
        Where :meth:`integrate` and :meth:`sample` run. Training runs on torch: on the GPU
        when ``backend`` is a GPU one (``"torch-cuda"`` or ``"cupy"``), else on the CPU.
    seed:
        A non-negative integer (or None): makes a run repeat exactly on a backend.
    sampler, training, channel_options:
        The option groups :class:`~mcint.nis.options.SamplerOptions` (flows, VEGAS maps,
        defensive shares, dtype), :class:`~mcint.nis.options.TrainingOptions` (loss, batches,
        learning rate, buffer, tempering) and :class:`~mcint.nis.options.ChannelOptions`
        (channel weights, dropping, sign channels).
    nonfinite:
        ``"raise"``: NaN/inf from the integrand stops with an error; ``"zero"`` (or its older
        name ``"skip"``): such points count as zero and are counted in
        :attr:`nonfinite_points` (unbiased only where the integrand really is zero there);
        a ``train``, ``integrate`` or ``sample`` call that met some gives one
        ``RuntimeWarning`` with their number, as VEGAS does.
    value_scale:
        The power of two the integrand's values are divided by internally (exact; results
        are in the integrand's units). Default: fixed by the first non-zero batch, 1 unless
        its largest ``|f|`` lies outside ``[2**-32, 2**32]``.
    **options:
        Any field of the option groups as a flat keyword (``batch_size=512``,
        ``flow=dict(bins=16)``, ``split_sign=True``, ...), set on top of the groups given.
    """

    def __init__(self, integrand: Any, dims: int | None = None, *,
                 channels: Sequence[Any] | None = None, backend: str | Backend | None = None,
                 seed: int | None = None, sampler: SamplerOptions | None = None,
                 training: TrainingOptions | None = None,
                 channel_options: ChannelOptions | None = None, nonfinite: str = "raise",
                 value_scale: float | None = None, **options: Any) -> None:
        seed = check_seed(seed)
        o = Options.build(sampler, training, channel_options, **options)
        #: the option groups, and the flat options a checkpoint stores to rebuild this
        self.settings = o
        self.options = saved_options(o, seed, nonfinite)
        self.integrand, train_cw = _wrap_integrand(integrand, dims, channels, o.channels)
        self.caller = ChannelCaller(self.integrand, dims, nonfinite)
        if value_scale is not None:
            self.caller.value_scale.set(value_scale)
            self.options.update(value_scale=self.caller.value_scale.value)
        self.backend = get_backend(backend)
        self.seed = seed
        #: what the caller records with the run (saved in checkpoints; e.g. the CLI's run)
        self.run_tag: dict[str, Any] | None = None
        s, c, multi = o.sampler, o.channels, self.caller.multi is not None
        groups = channel_groups(s.groups, self.integrand, self.caller.n_channels)
        n_groups = max(groups) + 1
        seeds = _seed_ints(seed, 8 + n_groups)
        flow = {} if s.flow in (None, True) else (None if s.flow is False else dict(s.flow))
        self.model = SamplerModel(self.caller, groups, s.dtype, flow, seeds[8:], WeightSpec(
            c.prior, tuple(c.cw_hidden), seeds[2], bool(train_cw)))
        self.book = ChannelBook(self.caller.n_channels, multi, history_length=c.history_length,
                                drop_threshold=c.drop_threshold, drop_interval=c.drop_interval,
                                split_sign=_split(c.split_sign), sign_probe=c.sign_probe)
        self.plan = IntegrationPlan(s.defensive_integrate, s.defensive_min, s.defensive)
        self.counter = CallCount()
        tb = _training_backend(self.backend)
        vegas = VegasStage(_vegas_default(s.vegas_init, multi, self.integrand), s.vegas_fraction,
                           s.vegas_ninc, self.caller.dims, seeds[3])
        self.trainer = Trainer(self.model, self.book, self.counter, o.training, vegas, tb,
                               (tb if tb is not None else get_backend("numpy")).rng(seeds[0]),
                               defensive=s.defensive, freeze_at=c.freeze_channel_weights)
        names = getattr(self.integrand, "channel_names", None)
        self.estimator = Estimator(self.model, self.book, self.backend,
                                   self.backend.rng(seeds[1]), self.counter, names)

    # -- the state everyone asks about -------------------------------------------------------
    dims = property(lambda self: self.caller.dims, doc="Dimension of the integration domain.")
    n_channels = property(lambda self: self.caller.n_channels, doc="Number of channels.")
    multichannel = property(lambda self: self.caller.multi is not None,
                            doc="Whether the integrand has channels (several, or sign ones).")
    dtype = property(lambda self: self.model.dtype, doc="Training and sampling precision.")
    step = property(lambda self: self.trainer.step, doc="Optimisation steps taken so far.")
    log = property(lambda self: self.trainer.log, doc="One dict per step (TrainingStatus).")
    train_time = property(lambda self: self.trainer.train_time, doc="Seconds in train().")
    active = property(lambda self: self.book.active, doc="Which channels are still sampled.")

    @property
    def calls(self) -> int:
        """Integrand calls so far (VEGAS stage, training, integration, sampling)."""
        return self.counter.total

    @property
    def training_pending(self) -> dict[str, int] | None:
        """The train() call a checkpoint stopped in (``calls``, ``n_fresh`` steps, ``done``),
        which the next :meth:`train` finishes; None when no call is unfinished."""
        p = self.trainer.pending
        return None if p is None else dict(p)

    def planned_steps(self, calls: int) -> int:
        """About the fresh optimisation steps ``train(calls)`` makes (after the VEGAS stage's
        share, on a first call); the steps left of an unfinished call (see
        :attr:`training_pending`) when there is one."""
        return self.trainer.planned_steps(calls)

    @property
    def nonfinite_points(self) -> int:
        """Integrand values that were NaN/inf and counted as zero (``nonfinite="zero"``)."""
        return self.caller.skipped

    @property
    def value_scale(self) -> float:
        """The power of two integrand values are divided by internally (see ``value_scale``)."""
        return self.caller.value_scale.value

    # -- training, integration, sampling -----------------------------------------------------
    def train(self, calls: int | None = None,
              callback: Callable[[TrainingStatus], Any] | None = None, *,
              checkpoint_path: str | None = None, checkpoint_every: int | None = 100
              ) -> list[dict]:
        """Train for a budget of ``calls`` integrand evaluations; returns the step log.

        On the first call with ``vegas_init``, ``vegas_fraction`` of the budget pre-trains the
        VEGAS maps. ``callback(status)`` runs after every optimisation step. The budget is
        spent in whole batches (``batch_size``): the remainder below one batch is not spent,
        and a budget smaller than one batch makes no step at all -- the sampler stays
        untrained, and a :class:`mcint.SamplerWarning` says so (``train(10)`` with the default
        batches of 256).

        With ``checkpoint_path`` a checkpoint is written there atomically every
        ``checkpoint_every`` fresh steps (``None``: only at the end), at the end, and when
        SIGINT or SIGTERM arrives (then the run stops with ``KeyboardInterrupt`` or
        ``SystemExit``; the handlers are installed only during this call). A checkpoint
        written mid-call remembers the call: after :meth:`resume`, ``train()`` (or ``train``
        with the same ``calls``) finishes it, and the result equals an uninterrupted run.
        """
        save = None if checkpoint_path is None else functools.partial(self.save,
                                                                      checkpoint_path)
        with self._nonfinite_report("train"):
            self.trainer.train(calls, callback, save=save, save_every=checkpoint_every)
        # the integration plan of the trained sampler, now: a checkpoint then carries it to
        # processes without torch
        self._eps()
        if save is not None:
            save()
        return self.log

    @contextlib.contextmanager
    def _nonfinite_report(self, what: str) -> Any:
        """One ``RuntimeWarning`` per call that counted NaN/inf integrand values as zero
        (``nonfinite="zero"``), with their number (as VEGAS warns)."""
        before = self.caller.skipped
        yield
        new = self.caller.skipped - before
        if new > 0:
            warnings.warn(f"{what}(): the integrand returned {new} non-finite value(s); counted "
                          f"as zero (nonfinite={self.options['nonfinite']!r}; "
                          f"Integrator.nonfinite_points: {self.caller.skipped} in all)",
                          RuntimeWarning, stacklevel=4)

    def _eps(self) -> float:
        t = self.trainer
        return self.plan.eps(self.model, self.book.active, t.recent, t.step, t.tb)

    def integrate(self, calls: int, *, uniform_ratio: float = 0.1,
                  iterations: int = 1) -> NISResult:
        """Estimate the integral with ``calls`` integrand evaluations (model frozen).

        Channels get points by their standard deviation (optimal stratification), with
        ``uniform_ratio`` spread equally so that every active channel is sampled;
        ``iterations`` draws the points in that many rounds (less memory).
        """
        _check_draw_options(uniform_ratio=uniform_ratio, iterations=iterations)
        # the sampler runs on this integrator's backend (its fused kernels), whatever is current
        with use(self.backend), self._nonfinite_report("integrate"):
            eps = self._eps()
            res = self.estimator.integrate(calls, eps, self.plan.channel_plan,
                                           uniform_ratio=uniform_ratio, iterations=iterations)
        return _in_units(res, self.value_scale)

    def sample(self, n: int, *, uniform_ratio: float = 0.1, stratified: bool = False) -> Batch:
        """``n`` weighted points: ``weights.mean()`` estimates the integral.

        ``x`` is the point in the integration domain (multi-channel: the integrand's features,
        i.e. the physical point), ``channels`` the channel each was drawn in. Channels are
        chosen with shares following ``|I_c|`` (plus the ``uniform_ratio`` share), so that every
        channel's mean event weight is the same: what unweighting needs (:meth:`integrate`
        allocates by the spreads instead, for the least variance).

        By default the points are independent and identically distributed: each point's
        channel ``c`` is drawn with probability ``p_c`` and its weight is
        ``alpha_c f / (p_c g_c)``, so any prefix of the batch is itself an unbiased sample (what
        event generation needs: unweighting may stop anywhere). ``stratified=True`` gives every
        channel a fixed count ``n_c`` (weights ``alpha_c f n / (n_c g_c)``, rows grouped by
        channel): a lower-variance weighted sample, but only the whole batch is unbiased.
        """
        _check_draw_options(uniform_ratio=uniform_ratio, stratified=stratified)
        with use(self.backend), self._nonfinite_report("sample"):
            eps = self._eps()
            b = self.estimator.sample(n, eps, self.plan.channel_plan,
                                      uniform_ratio=uniform_ratio, stratified=stratified)
        s = self.value_scale
        if s != 1.0:
            xp = self.backend.xp
            b.weights = unscaled(xp.astype(b.weights, xp.float64), s, self.dtype, xp)
        return b

    def freeze_channel_weights(self) -> None:
        """Stop training the channel-weight network."""
        if self.model.cw is not None:
            self.model.cw.freeze()

    # -- checkpoints ----------------------------------------------------------------------------
    def save(self, path: str) -> None:
        """Write everything needed to resume or to sample (no pickle; see mcint.serialize)."""
        from .checkpoint import save_checkpoint

        if self.caller.value_scale.fixed:
            # stored values (buffer, recent points) are in these units: resume needs them
            self.options.update(value_scale=self.value_scale)
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

        it = load_checkpoint(cls, path, integrand, dims=dims, channels=channels,
                             backend=backend, overrides=overrides)
        vs = it.caller.value_scale
        if not vs.fixed and it.calls:
            vs.set(1.0)   # written before value scales: its stored values are unscaled
        return it


def _split(split_sign: Any) -> bool | str:
    return split_sign if split_sign == "auto" else bool(split_sign)


def _wrap_integrand(integrand: Any, dims: int | None, channels: Sequence[Any] | None,
                    c: ChannelOptions) -> tuple[Any, bool]:
    """``(integrand, whether to train channel weights)``: a plain callable with ``channels``
    mappings becomes :class:`MappedChannels`; with ``split_sign``, a :class:`SignSplit`."""
    train_cw = c.channel_weights
    if channels is not None:
        if dims is None:
            raise ValueError("dims is required with channels=")
        integrand = MappedChannels(integrand, dims, channels)
    if _split(c.split_sign) is not False:
        split_plain = not isinstance(integrand, MultiChannelIntegrand)
        integrand = SignSplit(integrand, dims)
        if split_plain:
            # one base channel: the indicators are the whole channel weight, nothing to learn
            train_cw = False
    return integrand, train_cw


def _vegas_default(vegas_init: bool | None, multichannel: bool, integrand: Any) -> bool:
    """VEGAS maps under the flows: for one channel and for the sign channels of a plain
    callable (which have no mappings); several channels have mappings doing that job better
    (see docs/integrator.md)."""
    if vegas_init is not None:
        return bool(vegas_init)
    no_maps = multichannel and isinstance(integrand, SignSplit) and integrand.base is None
    return not multichannel or no_maps


def _check_draw_options(**kwargs: Any) -> None:
    """The keyword options of integrate() and sample() (a share, a count, a flag)."""
    if "uniform_ratio" in kwargs:
        _check_frac(kwargs["uniform_ratio"], "uniform_ratio", 0, 1)
    if "iterations" in kwargs:
        _check_int(kwargs["iterations"], "iterations", 1)
    if "stratified" in kwargs:
        check_bool(kwargs["stratified"], "stratified")


def _in_units(res: NISResult, scale: float) -> NISResult:
    """``res`` (estimated from integrand values divided by ``scale``) in the integrand's units."""
    if scale == 1.0:
        return res
    out = NISResult((IterationResult(it.value * scale, it.error * scale, it.calls, it.info)
                     for it in res), weighted=res.weighted, label=res.label)
    out.metrics, out.diagnostics = res.metrics, res.diagnostics   # ratios: scale-free
    ch = res.channels
    if ch is not None:
        out.channels = dataclasses.replace(
            ch, integrals=ch.integrals * scale, errors=ch.errors * scale, stds=ch.stds * scale,
            total=ch.total * scale, total_error=ch.total_error * scale)
    return out


def _training_backend(backend: Backend) -> Backend | None:
    """torch on the device of ``backend`` (CUDA for the GPU backends), or None without torch."""
    if not _has_torch():
        return None
    if backend.gpu:
        try:
            return get_backend("torch-cuda")
        except BackendUnavailable:  # cupy beside a CPU-only torch
            pass
    return get_backend("torch")


