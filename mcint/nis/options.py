"""The integrator's options in three groups (frozen dataclasses), checked when built.

:class:`SamplerOptions` describe what samples (flows, VEGAS base maps, defensive shares),
:class:`TrainingOptions` how it is trained, :class:`ChannelOptions` the multi-channel
bookkeeping (channel weights, dropping, sign channels). ``None`` means "the default for this
integrand" (one channel or several, its dimension): the parts resolve it. Why the defaults are
what they are (the measurements behind them) is in ``docs/integrator.md``.

Every field is also accepted as a flat keyword of :class:`~mcint.nis.Integrator` (and in a
run card's ``sampler_options``); checkpoints store the flat form (:func:`saved_options`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..vegas._util import check_bool
from .checks import _check_frac, _check_int

#: the largest finite float: a number option above it (a huge int, inf) is refused, not
#: converted (float(10**400) raises OverflowError)
_FLOAT_MAX = float(np.finfo(np.float64).max)


@dataclass(frozen=True)
class SamplerOptions:
    """What samples each channel group: a flow on an optional VEGAS map, mixed with a
    defensive share drawn from the map alone.

    flow: keyword arguments of :class:`mcint.flows.Flow`, or ``False`` (VEGAS map only).
    dtype: ``"float32"`` or ``"float64"`` for training and sampling.
    groups: group index per channel (a group shares one flow); default the integrand's;
        ``False``: no sharing.
    vegas_init: pre-train a VEGAS map per group under the flows (default: one channel, or the
        sign channels of a plain callable). vegas_fraction: share of the first train() budget
        it takes. vegas_ninc: grid increments per axis (default by dimension).
    defensive: defensive share while training. defensive_integrate: ``"auto"`` (least
        estimated variance, at least ``defensive_min``) or a fixed share at integration.
    """

    flow: dict | bool | None = None
    dtype: str = "float32"
    groups: Sequence[int] | bool | None = None
    vegas_init: bool | None = None
    vegas_fraction: float = 0.2
    vegas_ninc: int | None = None
    defensive: float = 0.1
    defensive_integrate: str | float = "auto"
    defensive_min: float = 1e-5

    def __post_init__(self) -> None:
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        if self.vegas_init is not None:
            check_bool(self.vegas_init, "vegas_init")
        _check_frac(self.vegas_fraction, "vegas_fraction", 0.0, 1.0, open_hi=True)
        if self.vegas_ninc is not None:
            _check_int(self.vegas_ninc, "vegas_ninc", 2)
        _check_frac(self.defensive, "defensive", 0.0, 1.0, open_hi=True)
        if self.defensive_integrate != "auto":
            _check_frac(self.defensive_integrate, "defensive_integrate", 0.0, 1.0, open_hi=True)
        _check_frac(self.defensive_min, "defensive_min", 0.0, 1.0, open_hi=True)


@dataclass(frozen=True)
class TrainingOptions:
    """How the samplers are trained.

    loss: a name in :data:`mcint.nis.losses.LOSSES` or a callable (default ``"kl"`` for one
        channel, ``"stratified_variance"`` for several). refine_loss: the loss once tempering
        reached the integrand (default ``"variance_softclip"`` for one channel; ``False``: keep
        ``loss``).
    batch_size: fresh points per step, or ``(start, end)`` growing geometrically over each
        train() call. lr, schedule, clip: Adam's learning rate, its schedule over each train()
        call, the gradient-norm clip (``None``: off).
    temper: ESS share for tempering (0: off): the VEGAS stage and the flows first learn
        ``|f|^beta``, raising ``beta`` to 1 as fast as the weights' effective sample size
        stays above this share of each batch (keeps multi-modal integrands from losing peaks).
    buffer_capacity, buffered_steps, buffered_until: keep evaluated points and make extra
        steps on them after each fresh step, in the first ``buffered_until`` of each call.
    uniform_ratio: share of each batch spread equally over the active channels.
    defensive_in_loss: fit the defensive mixture instead of the flow alone.
    """

    loss: str | Callable[..., Any] | None = None
    refine_loss: str | bool | None = None
    batch_size: int | Sequence[int] | None = None
    lr: float | None = None
    schedule: str | Callable[[float], float] = "cosine"
    clip: float | None = 10.0
    temper: float = 0.3
    buffer_capacity: int | None = None
    buffered_steps: int | None = None
    buffered_until: float | None = None
    uniform_ratio: float = 1.0
    defensive_in_loss: bool | None = None

    def __post_init__(self) -> None:
        if self.batch_size is not None:
            batch_sizes(self.batch_size)
        if self.refine_loss not in (None, False) and not isinstance(self.refine_loss, str):
            raise ValueError("refine_loss must be a loss name, False or None, got "
                             f"{self.refine_loss!r}")
        if self.lr is not None and not (isinstance(self.lr, (int, float, np.number))
                                        and 0 < self.lr <= _FLOAT_MAX):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if self.clip is not None:
            c = self.clip
            if not (isinstance(c, (int, float, np.integer, np.floating))
                    and not isinstance(c, (bool, np.bool_))
                    and 0 < c <= _FLOAT_MAX):   # (compared, not float()ed: no OverflowError)
                raise ValueError("clip (the gradient-norm clip) must be None (off) or a finite "
                                 f"number > 0, got {c!r}")
            object.__setattr__(self, "clip", float(c))
        if not callable(self.schedule):
            from .optim import SCHEDULES

            if not (isinstance(self.schedule, str) and self.schedule in SCHEDULES):
                raise ValueError(f"unknown lr schedule {self.schedule!r}; choose one of "
                                 f"{sorted(SCHEDULES)} or pass a callable of the run fraction")
        _check_frac(self.temper, "temper", 0.0, 1.0, open_hi=True)
        for name in ("buffer_capacity", "buffered_steps"):
            if getattr(self, name) is not None:
                _check_int(getattr(self, name), name, 0)
        if self.buffered_until is not None:
            _check_frac(self.buffered_until, "buffered_until", 0.0, 1.0)
        _check_frac(self.uniform_ratio, "uniform_ratio", 0.0, 1.0)
        if self.defensive_in_loss is not None:
            check_bool(self.defensive_in_loss, "defensive_in_loss")


@dataclass(frozen=True)
class ChannelOptions:
    """Multi-channel bookkeeping.

    channel_weights: train the channel-weight network (several channels only). prior: its
        prior, ``"integrand"`` (the integrand's ``alpha_prior``), ``"uniform"`` or numbers.
    cw_hidden: its hidden layer sizes. freeze_channel_weights: freeze it after this many steps.
    history_length: fresh steps whose per-channel means and spreads allocate the points.
    drop_threshold, drop_interval: every ``drop_interval`` steps drop the channels whose
        ``|I_c|`` together make less than ``drop_threshold`` of ``sum |I_c|``.
    split_sign, sign_probe: sample the positive and negative parts in channels of their own
        (:class:`mcint.nis.SignSplit`; ``"auto"`` drops a sign channel whose first
        ``sign_probe`` points were all zero).
    """

    channel_weights: bool = True
    prior: str | Sequence[float] | None = "integrand"
    cw_hidden: Sequence[int] = (32, 32)
    freeze_channel_weights: int | None = None
    history_length: int = 20
    drop_threshold: float = 0.0
    drop_interval: int = 100
    split_sign: bool | str = False
    sign_probe: int = 4096

    def __post_init__(self) -> None:
        ss = self.split_sign
        if not (isinstance(ss, (bool, np.bool_)) or ss == "auto"):
            raise ValueError(f"split_sign must be False, True or 'auto', got {ss!r}")
        _check_int(self.sign_probe, "sign_probe", 1)
        check_bool(self.channel_weights, "channel_weights")
        _check_int(self.history_length, "history_length", 1)
        _check_int(self.drop_interval, "drop_interval", 1)
        _check_frac(self.drop_threshold, "drop_threshold", 0.0, 1.0, open_hi=True)
        if self.freeze_channel_weights is not None:
            _check_int(self.freeze_channel_weights, "freeze_channel_weights", 0)
        for h in self.cw_hidden:
            _check_int(h, "cw_hidden[i]", 1)
        p = self.prior
        if p is not None and not isinstance(p, str):
            a = np.asarray(p, dtype=np.float64) if np.ndim(p) == 1 else np.full(1, np.nan)
            if not (np.all(np.isfinite(a)) and np.all(a >= 0) and a.sum() > 0):
                raise ValueError("prior must be 'integrand', 'uniform' or finite weights >= 0 "
                                 f"with a positive sum, got {p!r}")
        split = ss if ss == "auto" else bool(ss)
        if split is not False and not (isinstance(p, str) and p == "integrand"):
            raise ValueError("split_sign needs prior='integrand' (the sign indicators are "
                             f"the prior channel weights), got prior={p!r}")


GROUPS = (SamplerOptions, TrainingOptions, ChannelOptions)
#: flat keyword -> the option group holding it
FLAT = {f.name: g for g in GROUPS for f in dataclasses.fields(g)}


@dataclass(frozen=True)
class Options:
    """The three option groups of one integrator."""

    sampler: SamplerOptions
    training: TrainingOptions
    channels: ChannelOptions

    @classmethod
    def build(cls, sampler: SamplerOptions | None = None,
              training: TrainingOptions | None = None,
              channels: ChannelOptions | None = None, **flat: Any) -> Options:
        """The groups given (default ones otherwise), with flat keywords set on top."""
        unknown = sorted(set(flat) - set(FLAT))
        if unknown:
            raise TypeError(f"Integrator got unexpected keyword argument(s) {unknown}; the "
                            f"options are {sorted(FLAT)}")
        groups = {SamplerOptions: sampler, TrainingOptions: training, ChannelOptions: channels}
        for g, given in groups.items():
            if given is not None and not isinstance(given, g):
                raise TypeError(f"expected a {g.__name__}, got {type(given).__name__}")
            kw = {k: v for k, v in flat.items() if FLAT[k] is g}
            groups[g] = dataclasses.replace(given, **kw) if given is not None else g(**kw)
        return cls(groups[SamplerOptions], groups[TrainingOptions], groups[ChannelOptions])


def saved_options(o: Options, seed: int | None, nonfinite: str) -> dict[str, Any]:
    """The flat options a checkpoint stores (the keyword arguments that rebuild the
    integrator). Options added after the first checkpoints are stored only when set, so that
    files of runs without them keep their exact option set."""
    s, t, c = o.sampler, o.training, o.channels
    out = dict(
        seed=seed, loss=t.loss, batch_size=t.batch_size, lr=t.lr, schedule=t.schedule,
        clip=t.clip, dtype=s.dtype, flow=s.flow, channel_weights=c.channel_weights,
        prior=c.prior if (c.prior is None or isinstance(c.prior, str))
        else list(map(float, c.prior)),
        cw_hidden=list(c.cw_hidden), freeze_channel_weights=c.freeze_channel_weights,
        groups=s.groups if s.groups is None or isinstance(s.groups, bool) else list(s.groups),
        defensive=s.defensive, defensive_integrate=s.defensive_integrate,
        defensive_min=s.defensive_min, vegas_init=s.vegas_init,
        vegas_fraction=s.vegas_fraction, vegas_ninc=s.vegas_ninc,
        buffer_capacity=t.buffer_capacity, buffered_steps=t.buffered_steps,
        uniform_ratio=t.uniform_ratio, history_length=c.history_length,
        drop_threshold=c.drop_threshold, drop_interval=c.drop_interval, temper=t.temper,
        nonfinite=nonfinite, defensive_in_loss=t.defensive_in_loss)
    if t.refine_loss is not None:
        out.update(refine_loss=t.refine_loss)
    if t.buffered_until is not None:
        out.update(buffered_until=t.buffered_until)
    if isinstance(t.batch_size, (tuple, list)):
        out.update(batch_size=list(batch_sizes(t.batch_size)))
    split = c.split_sign if c.split_sign == "auto" else bool(c.split_sign)
    if split is not False:
        out.update(split_sign=split, sign_probe=int(c.sign_probe))
    return out


def batch_sizes(batch_size: Any) -> tuple[int, int]:
    """``(start, end)`` fresh batch sizes from an int or a pair (validated)."""
    pair = tuple(batch_size) if isinstance(batch_size, (tuple, list)) else (batch_size,) * 2
    if len(pair) != 2:
        raise ValueError("batch_size must be an integer or a pair (start, end) of integers, "
                         f"got {batch_size!r}")
    for b in pair:
        _check_int(b, "batch_size", 8)
    return int(pair[0]), int(pair[1])
