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

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..backends import Backend, BackendUnavailable, get_backend
from ..batch import Batch
from ..channels import MultiChannelIntegrand
from ..integrand import unscaled
from ..results import IterationResult
from ..vegas._util import check_bool, check_seed
from .buffer import Buffer
from .channel_weights import ChannelWeights
from .checks import _check_frac, _check_int, _has_torch, _seed_ints
from .defensive import DefensiveMixin
from .draws import DrawMixin, _Sampler
from .estimate import EstimateMixin, NISResult
from .evaluate import ChannelCaller, MappedChannels
from .losses import get_loss
from .multichannel import ChannelBookMixin, _History
from .sign_split import SignSplit
from .train_loop import TrainingMixin, TrainingStatus

__all__ = ["Integrator", "NISResult", "TrainingStatus"]


class Integrator(TrainingMixin, EstimateMixin, DefensiveMixin, DrawMixin,
                 ChannelBookMixin):
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
        when ``backend`` is a GPU one (``"torch-cuda"`` or ``"cupy"``, torch's CUDA device
        then), else on the CPU.
    seed:
        A non-negative integer (or None): makes a run repeat exactly on a backend.
    loss:
        Name in :data:`mcint.nis.losses.LOSSES` or a callable; default ``"kl"`` for one
        channel, ``"stratified_variance"`` for several.
    refine_loss:
        The loss once tempering has reached the integrand itself (``beta = 1``); ``False``
        keeps ``loss`` throughout. Default ``"variance_softclip"`` for one channel (KL while
        tempering: it covers every mode; then the variance, which is what the result's error is
        made of: at 1e5 calls, 2 seeds, rel. std camel2 0.38-0.39 -> 0.28-0.30, ring 0.36-0.41
        -> 0.32-0.35, camel4 0.77-0.86 -> 0.64-0.76 with the old lr 3e-3), off for several.
        Softclipped, because the plain variance can blow up on a few huge weights late in a
        run: corr6 at 1e6 calls, seed 1, went 0.16 -> 8.8 -> 2.2 over the last third (softclip
        0.133); at 1e6, seeds 1 / 2, plain -> softclip: camel4 0.112 / 0.123 -> 0.080 / 0.092,
        camel8 0.083 / 0.085 -> 0.074 / 0.086, camel2, ring, camel16 and corr6 seed 2 within
        4%; at 1e5 within +-13% either way (camel2 0.171 -> 0.193, camel8 0.444 -> 0.383).
    batch_size:
        Integrand calls per fresh training step, or a pair ``(start, end)``: batches grow
        geometrically with the share of each :meth:`train` budget spent (``start * (end /
        start)^t``). Default 1024 for several channels (each channel still gets enough points,
        and the per-step cost grows with the number of channel groups); for one channel 256
        (small batches, many steps, learn more per integrand call: 256 beat 512 and 1024 on
        every single-channel entry at 1e5 calls), growing to 1024 in 2 dims, where a step is
        mostly fixed cost: 312 -> 170 steps at 1e5 calls, training time about halved, rel. std
        camel2 0.20-0.21 -> 0.21-0.23, ring 0.26 -> 0.27-0.30 (at 4 and 8 dims the loss was
        larger: camel4 0.34-0.42 -> 0.47-0.73, camel8 0.81-1.18 -> 1.33-1.37, for little time).
        A :meth:`train` budget of at least 4e5 fresh calls (5e5 with the default
        ``vegas_fraction``) has thousands of steps, so the fit no longer lacks them and bigger
        batches buy time (measured at 1e6 calls, seed 1, rel. std / training time):
        1024 up to 4 dims (camel2 0.057 / 9.0 s -> 0.058 / 4.9 s, ring 0.095 / 7.8 s -> 0.108
        / 3.7 s, 2048 lost 35-75% rel. std; camel4 at seeds 1 / 2 with 256 -> 512 growing
        0.080 / 0.092, 512 0.073 / 0.069 in 11 s, 1024 0.085 / 0.076 in 6.3-7.0 s, madnis
        0.447 in 25-33 s), 512 in 5-8 dims (camel8 0.172 /
        48.8 s -> 0.147 / 42.6 s), 256 above (camel16: 512 was 0.092 -> 0.153 at the same time,
        a step there costs per point), 1024 -> 4096 for several channels (about the steps of
        a constant 2048, whose noisier late steps cost the drellyan3 toy 1.7x at seeds 1 / 2:
        rel. std 0.0011 / 0.0013 with 2048 in the same time, 0.00066 / 0.00072 growing,
        0.00032 / 0.00033 with a constant 1024 in 1.5x the time; DrellYan 0.016 / 0.019, the
        signed toy 0.096 / 0.098 with 1024 / growing, training time 0.6-0.7x).
    lr, schedule, clip:
        Adam learning rate (default 1e-2, 3e-3 for one channel above 8 dims; several channels: the stratified variance loss with
        per-channel flows learnt 1.4-4x lower rel. std with it than with 3e-3 on DrellYan and
        the drellyan3 toy at 1e5-1e6 calls, 2 seeds; one channel, with ``refine_loss``, at 1e5
        calls, 2 seeds, vs 3e-3: rel. std camel2 0.28-0.30 -> 0.20-0.21, ring 0.32-0.35 -> 0.26,
        camel4 0.64-0.76 -> 0.34-0.42, camel8 1.44-1.57 -> 0.81-1.18; 2e-3 was worse than 3e-3; camel16 lost peak mass with
        8e-3 and 1.2e-2 at 1e5 calls, pulls -4.8 and -3.8, never with 3e-3),
        schedule over each :meth:`train` call (``"constant"``, ``"cosine"``, ``"exponential"``,
        ``"onecycle"`` or a callable of the share of the budget spent) and gradient-norm clip
        (``None``: off).
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
        points entering by importance weights (``False``, the default). Fitting the mixture
        teaches the flow to leave every region where ``f/I < eps`` to the defensive share, so
        the flow cannot be used with a smaller share at integration: several channels,
        DrellYan 0.110 -> 0.077, drellyan3 0.024 -> 0.011 at 3e5 calls; one channel at 1e6
        calls, camel2 rel. std 0.164 -> 0.119 (seed 1, same VEGAS grid), and with the finer
        default ``vegas_ninc`` camel2 0.052, ring 0.089 (the mixture fit: 0.110, 0.136).
    defensive_integrate:
        ``"auto"`` (choose by estimated variance, at least ``defensive_min``) or a number.
        The estimate importance-samples the recent training points (drawn with ``defensive``),
        so regions the flow misses are in it: a share as small as ``defensive_min`` (1e-5) is
        chosen only where the flow is good everywhere; any ``eps > 0`` keeps every weight
        bounded by ``f / (eps g_VEGAS)``. The same estimate gives each channel's spread and
        integral with that share: :meth:`integrate` allocates channels by the spreads,
        :meth:`sample` by ``|I_c|`` (see :func:`mcint.nis.defensive.mixture_channel_moments`;
        the drellyan3 toy at 1e6 calls: rel. std 0.0006, where the float32 ``E[w^2] - I^2``
        of earlier versions chose ``eps = 0.01`` and got 0.0023).
    vegas_init:
        Pre-train a VEGAS map per channel group and put the flows on top of it; default on for
        one channel and for the two sign channels of a plain callable, off for several (their
        mappings already do that job, better).
    vegas_fraction:
        Share of each :meth:`train` budget spent on VEGAS pre-training (first call only).
    vegas_ninc:
        Increments per axis of the pre-trained maps (at most a tenth of the points of one
        VEGAS round). Default 512 up to 2 dims, 128 up to 8, 64 above. The flow on top
        refines what the grid resolves: in 2 dims finer grids won at every budget measured (1e6 calls, seed 1,
        rel. std camel2 0.119 / 0.082 / 0.060 / 0.052 with 64 / 128 / 256 / 512 increments,
        ring 0.099 / 0.089 with 256 / 512; 1e5 calls, 2 seeds, grid capped at 250: camel2
        0.22-0.23 -> 0.17-0.18, ring 0.29-0.31 -> 0.27-0.28 from 64). Above 2 dims a fine
        grid is a poor base for structure off the axes, which the flow must then undo:
        1e6 calls, 64 / 128 / 256: corr6 0.136 / 0.155 / 0.299 (seed 1), camel8 0.378 /
        0.115 / 0.190 (seed 1) and 0.127 / 0.172 / 0.110 (seed 2), camel4 0.084-0.115 /
        0.072-0.079 / 0.083-0.088 (2 seeds), camel16 (buffered steps) 0.101 / 0.376 / 0.122
        (seed 2) and 0.093 / 0.104 / 0.121 (seed 1), hence 64 above 8 dims.
        Above 2 dims the default grid stays at 64 until each of the 8 VEGAS rounds has 100
        points per increment (1e5 VEGAS points, 5.1e5 calls with the default share): at
        1e5 calls the 128-increment grid biased corr6 (pulls -3.8, -3.1; 64: -0.2, +0.7).
    buffer_capacity, buffered_steps:
        Keep up to this many evaluated points and make ``buffered_steps`` extra optimisation
        steps on them after every fresh step (no integrand calls). Default 8192 and 1 for
        several channels and for one channel from 8 dims on, none otherwise: more steps per
        call is what the fit lacks there. With an expensive matrix element the extra steps are
        nearly free next to the calls they save; on the cheap benchmark integrands they cost
        wall time. DrellYan (3 channels, 4 dims) at 1e6 calls: rel. std 0.0305 -> 0.0167
        (madnis 0.0484), training time ~0.6x -> 0.95x madnis (side by side); at 1e5 calls, 2 seeds,
        0.124 / 0.114 -> 0.071 / 0.073 (madnis 0.162 / 0.174). The drellyan3 toy at 1e6,
        seeds 1 / 2: 0.0017 / 0.0019 -> 0.00066 / 0.00072 in 1.45x the time (madnis 0.0032,
        biased).
        camel16 rel. std at 1e6 calls, seed 1 (grid 256), 0.197 -> 0.121 (time 0.18x -> 0.31x
        madnis); 1e5 calls, 2 seeds, 22 / 51 -> 16 / 20. camel8 at 1e6 calls, seeds 1-3:
        0.358 / 0.112 / 0.107 -> 0.120 / 0.060 / 0.070 (madnis 0.221 / 0.196 / -), and the
        pulls -2.87 / +0.91 / +1.27 -> -0.59 / +0.94 / -0.07: without it one seed half-missed a
        peak. The price at 8 dims is about twice the training time (~0.5x -> 0.99x madnis, side by side):
        we take robustness over the time goal there. Batches of 128 (the same steps from fresh
        points) were seed noise (0.098 / 0.178 vs 0.190 / 0.110). Below 8 dims the fits did not
        need it (corr6 0.15x, camel4 0.16-0.32x madnis at 1e6 calls). Kept for several
        channels in 2 dims too (the drellyan3 figures above).
    buffered_until:
        Share of each :meth:`train` call's fresh steps after which no buffered steps are made:
        default 0.6 for several channels, 1 (all) for one. Early on, extra steps on stored
        points speed the fit up; late, with the largest batches and the smallest learning
        rates, the rel. std is limited by gradient noise, which re-used points do not lower.
        Measured at 1e6 calls, rel. std at seeds 1 / 2, until 0.75 -> 0.6: the drellyan3 toy
        0.00060 / 0.00061 -> 0.00066 / 0.00072 in 0.93x the training time (madnis: 0.0032),
        DrellYan 0.0203 / 0.0219 -> 0.0208 / 0.0238 in 0.9x (madnis 0.049), the signed toy
        0.0985 / 0.0982 -> 0.0994 / 0.0984 in 0.93x; until 0.5 lost more (drellyan3 0.00072 /
        0.00078, DrellYan 0.0209 / 0.0255). Against all steps, until 0.75 took 0.75-0.8x the
        time (DrellYan 0.0207 / 0.0225 -> 0.0198 / 0.0231, the signed toy 0.098 -> 0.099).
        One channel keeps them all: the late buffered steps tame the largest weights there,
        camel16 (seed 1) 0.093 -> 0.096 rel. std in 0.82x the time at until 0.75, but
        unweighting efficiency 0.326 -> 0.078, camel8 0.074 -> 0.077 with 0.368 -> 0.184.
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
        ``"raise"``: NaN/inf from the integrand stops with an error; ``"zero"`` (or its older
        name ``"skip"``): such points count as zero (they add nothing to the loss) and are
        counted in :attr:`nonfinite_points`. The result is then the integral of ``f`` with
        those points set to zero: unbiased only where the integrand really is zero there.
    split_sign:
        Sample the positive and the negative part of a signed integrand in channels of their
        own (:class:`mcint.nis.SignSplit`: each base channel becomes ``f >= 0`` and ``f < 0``,
        with fixed indicator channel weights and a flow each). A single sampler of ``|f|`` has
        a floor ``sqrt(J^2 - I^2) / |I|`` (``J = int |f|``) that no training removes; split,
        each part can be learnt exactly. ``True``: always two sign channels (a sign that
        never occurs costs its uniform share of the calls and gives ``0 +- 0``); ``"auto"``:
        a sign channel whose first ``sign_probe`` training points were all zero is dropped,
        so a non-negative integrand ends up with one channel (a sign region holding less than
        about ``1 / sign_probe`` of the sampled volume could be missed and would then be
        lost: pass ``True`` when the integrand is known to change sign). Default ``False``:
        there is no cheap, safe detection of a sign change before training (a narrow region
        of the minority sign is exactly what a small probe misses), and two channels change
        the training defaults (multi-channel loss, batch, learning rate).
    sign_probe:
        Points per channel that ``split_sign="auto"`` looks at before dropping a sign channel.
    value_scale:
        The power of two the integrand's values are divided by internally (exact; results,
        weights and training status are in the integrand's own units). Default: fixed by the
        first batch with a non-zero value, 1 unless its largest ``|f|`` lies outside
        ``[2**-32, 2**32]``, so that neither float32 (which cannot hold ``1e-46``) nor the
        squares in the losses and errors (``1e+-200``) depend on the integrand's scale.
        Checkpoints store it.
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
                 vegas_init: bool | None = None, vegas_fraction: float = 0.2, vegas_ninc: int | None = None,
                 buffer_capacity: int | None = None, buffered_steps: int | None = None,
                 uniform_ratio: float = 1.0, history_length: int = 20,
                 drop_threshold: float = 0.0, drop_interval: int = 100,
                 temper: float = 0.3, nonfinite: str = "raise",
                 defensive_in_loss: bool | None = None, split_sign: bool | str = False,
                 sign_probe: int = 4096, refine_loss: str | bool | None = None,
                 buffered_until: float | None = None,
                 value_scale: float | None = None) -> None:
        seed = check_seed(seed)
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
        if not (isinstance(split_sign, (bool, np.bool_)) or split_sign == "auto"):
            raise ValueError(f"split_sign must be False, True or 'auto', got {split_sign!r}")
        split_sign = split_sign if split_sign == "auto" else bool(split_sign)
        _check_int(sign_probe, "sign_probe", 1)
        _check_plain_options(channel_weights=channel_weights, vegas_init=vegas_init,
                             defensive_in_loss=defensive_in_loss, history_length=history_length,
                             drop_interval=drop_interval, cw_hidden=cw_hidden,
                             freeze_channel_weights=freeze_channel_weights, prior=prior)
        # only when given, so that older checkpoints keep their exact option set
        if refine_loss is not None:
            self.options.update(refine_loss=refine_loss)
        if buffered_until is not None:
            self.options.update(buffered_until=buffered_until)
        if isinstance(batch_size, (tuple, list)):
            self.options.update(batch_size=list(_batch_sizes(batch_size)))
        if split_sign is not False:
            # only then, so that checkpoints of unsplit runs keep their exact option set
            self.options.update(split_sign=split_sign, sign_probe=int(sign_probe))
            if not (isinstance(prior, str) and prior == "integrand"):
                raise ValueError("split_sign needs prior='integrand' (the sign indicators are "
                                 f"the prior channel weights), got prior={prior!r}")
        if channels is not None:
            if dims is None:
                raise ValueError("dims is required with channels=")
            integrand = MappedChannels(integrand, dims, channels)
        #: ``False``, ``True`` or ``"auto"`` (see ``split_sign``)
        self.split_sign = split_sign
        self.sign_probe = int(sign_probe)
        if split_sign is not False:
            split_plain = not isinstance(integrand, MultiChannelIntegrand)
            integrand = SignSplit(integrand, dims)
            if split_plain:
                # one base channel: the indicators are the whole channel weight, nothing to learn
                channel_weights = False
        self.caller = ChannelCaller(integrand, dims, nonfinite)
        if value_scale is not None:
            self.caller.value_scale.set(value_scale)
            self.options.update(value_scale=self.caller.value_scale.value)
        self.integrand = integrand
        self.dims = self.caller.dims
        self.n_channels = self.caller.n_channels
        self.multichannel = self.caller.multi is not None
        self.backend = get_backend(backend)
        if dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
        self.dtype = dtype
        self.seed = seed
        #: the default batch plan (start, end) for train() budgets of at least LARGE_BUDGET
        #: fresh calls (5e5 with the default VEGAS share), or None (see batch_size)
        self._large_budget_batch = _large_budget_batch(self.multichannel, self.dims) \
            if batch_size is None else None
        if batch_size is None:
            # per-step cost is mostly fixed overhead per channel group: several channels
            # need bigger batches to stay cheap (and each channel still gets enough points)
            # one channel in 2 dims: the step is mostly fixed cost, so growing batches halve
            # the steps (and the time) for ~10% rel. std; above 2 dims they cost more quality
            batch_size = 1024 if self.multichannel else ((256, 1024) if self.dims <= 2 else 256)
        sizes = _batch_sizes(batch_size)
        #: fresh points per step at the start of each train() call (the first of ``batch_size``)
        self.batch_size = sizes[0]
        #: ``(start, end)`` of the geometric batch growth over each train() call, or None
        self.batch_growth = sizes if sizes[0] != sizes[1] else None
        self._step_batch = self.batch_size
        if refine_loss not in (None, False) and not (isinstance(refine_loss, str)):
            raise ValueError("refine_loss must be a loss name, False or None, got "
                             f"{refine_loss!r}")
        if refine_loss is None:
            refine_loss = False if self.multichannel else "variance_softclip"
        #: the loss once tempering has reached beta = 1 (None: keep ``loss``)
        self.refine_loss = None if refine_loss is False else get_loss(refine_loss)
        self.loss_name = loss if isinstance(loss, str) else getattr(loss, "__name__", "custom")
        if loss is None:
            loss = "stratified_variance" if self.multichannel else "kl"
            self.loss_name = loss
        self.loss = get_loss(loss)
        if lr is None:
            # above 8 dims the tempered stage needs small steps: camel16 lost peak mass with
            # 8e-3 and 1.2e-2 at 1e5 calls (pulls -4.8, -3.8) and never with 3e-3
            lr = 1e-2 if (self.multichannel or self.dims <= 8) else 3e-3
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
        # ... but the sign channels of a plain callable have no mappings: there VEGAS does the
        # job it does for one channel (signed toy at 1e5 calls: rel. std 0.32 with it, 0.65 without)
        no_maps = self.multichannel and isinstance(integrand, SignSplit) and integrand.base is None
        self.vegas_init = (not self.multichannel or no_maps) if vegas_init is None \
            else bool(vegas_init)
        self.vegas_fraction = _check_frac(vegas_fraction, "vegas_fraction", 0.0, 1.0,
                                          open_hi=True)
        #: whether vegas_ninc is the default (then budget-dependent above 2 dims)
        self._ninc_auto = vegas_ninc is None
        if vegas_ninc is None:
            # finer grids gave the flows a better base at every budget (see vegas_ninc)
            vegas_ninc = 512 if self.dims <= 2 else (128 if self.dims <= 8 else 64)
        _check_int(vegas_ninc, "vegas_ninc", 2)
        self.vegas_ninc = int(vegas_ninc)
        # several channels, or one from 8 dims on: extra steps on stored points (see
        # buffer_capacity)
        deep = self.multichannel or self.dims >= 8
        if buffer_capacity is None:
            buffer_capacity = 8192 if deep else 0
        if buffered_steps is None:
            buffered_steps = 1 if deep else 0
        _check_int(buffer_capacity, "buffer_capacity", 0)
        self.buffer = Buffer(int(buffer_capacity))
        _check_int(buffered_steps, "buffered_steps", 0)
        self.buffered_steps = int(buffered_steps)
        if buffered_until is None:
            buffered_until = 0.6 if self.multichannel else 1.0
        self.buffered_until = _check_frac(buffered_until, "buffered_until", 0.0, 1.0)
        self.uniform_ratio = _check_frac(uniform_ratio, "uniform_ratio", 0.0, 1.0)
        self.history = _History(int(history_length))
        self.drop_threshold = _check_frac(drop_threshold, "drop_threshold", 0.0, 1.0,
                                          open_hi=True)
        self.drop_interval = int(drop_interval)
        self.freeze_at = freeze_channel_weights
        self.temper = _check_frac(temper, "temper", 0.0, 1.0, open_hi=True)
        # the loss fits the flow alone (the defensive share only widens the sampling, weighted
        # by q/q_sample). Fitting the mixture (1-eps) q + eps taught each flow to leave every
        # region where f/I < eps to the uniform share, so the flow could not be used without it
        # (see defensive_in_loss for the figures, one and several channels)
        self.defensive_in_loss = False if defensive_in_loss is None else bool(defensive_in_loss)
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
        self._torch = _training_backend(self.backend)
        self.rng_train = self._train_backend().rng(seeds[0])
        self.rng_sample = self.backend.rng(seeds[1])
        self.samplers = [_Sampler(self._make_flow(k, seeds[8 + k]), None)
                         for k in range(self.n_groups)]
        self.cw: ChannelWeights | None = None
        self._features_dim: int | None = None
        self._cw_options = dict(prior=prior, hidden=tuple(cw_hidden), seed=seeds[2],
                                train=bool(channel_weights))
        self.active = np.ones(self.n_channels, dtype=bool)
        #: per sign channel: training points seen, all zero so far (-1: support was seen)
        self._sign_zero = np.zeros(self.n_channels, dtype=np.int64)
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

    @property
    def nonfinite_points(self) -> int:
        """Integrand values that were NaN/inf and counted as zero (``nonfinite="zero"``)."""
        return self.caller.skipped

    @property
    def value_scale(self) -> float:
        """The power of two integrand values are divided by internally (see ``value_scale``)."""
        return self.caller.value_scale.value

    # -- results in the integrand's units ---------------------------------------------------
    @functools.wraps(EstimateMixin.integrate)
    def integrate(self, *args: Any, **kwargs: Any) -> NISResult:
        _check_draw_options(kwargs)
        return _in_units(EstimateMixin.integrate(self, *args, **kwargs), self.value_scale)

    @functools.wraps(EstimateMixin.sample)
    def sample(self, *args: Any, **kwargs: Any) -> Batch:
        _check_draw_options(kwargs)
        b = EstimateMixin.sample(self, *args, **kwargs)
        s = self.value_scale
        if s != 1.0:
            xp = self.backend.xp
            b.weights = unscaled(xp.astype(b.weights, xp.float64), s, self.dtype, xp)
        return b

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


def _check_plain_options(*, channel_weights: Any, vegas_init: Any, defensive_in_loss: Any,
                         history_length: Any, drop_interval: Any, cw_hidden: Any,
                         freeze_channel_weights: Any, prior: Any) -> None:
    """The options used as given elsewhere: flags (``"no"`` is truthy), sizes, prior weights."""
    check_bool(channel_weights, "channel_weights")
    for name, flag in (("vegas_init", vegas_init), ("defensive_in_loss", defensive_in_loss)):
        if flag is not None:
            check_bool(flag, name)
    _check_int(history_length, "history_length", 1)
    _check_int(drop_interval, "drop_interval", 1)
    if freeze_channel_weights is not None:
        _check_int(freeze_channel_weights, "freeze_channel_weights", 0)
    for h in cw_hidden:
        _check_int(h, "cw_hidden[i]", 1)
    if prior is not None and not isinstance(prior, str):
        p = np.asarray(prior, dtype=np.float64) if np.ndim(prior) == 1 else np.full(1, np.nan)
        if not (np.all(np.isfinite(p)) and np.all(p >= 0) and p.sum() > 0):
            raise ValueError("prior must be 'integrand', 'uniform' or finite weights >= 0 with "
                             f"a positive sum, got {prior!r}")


def _check_draw_options(kwargs: dict[str, Any]) -> None:
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


def _large_budget_batch(multichannel: bool, dims: int) -> tuple[int, int] | None:
    """Default ``(start, end)`` batches for large train() budgets (see ``batch_size``)."""
    if multichannel:
        return (1024, 4096)
    if dims <= 4:
        return (1024, 1024)
    if dims <= 8:
        return (512, 512)
    return None


def _batch_sizes(batch_size: Any) -> tuple[int, int]:
    """``(start, end)`` fresh batch sizes from an int or a pair (validated)."""
    pair = tuple(batch_size) if isinstance(batch_size, (tuple, list)) else (batch_size,) * 2
    if len(pair) != 2:
        raise ValueError("batch_size must be an integer or a pair (start, end) of integers, "
                         f"got {batch_size!r}")
    for b in pair:
        _check_int(b, "batch_size", 8)
    return int(pair[0]), int(pair[1])
