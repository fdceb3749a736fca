"""Calling integrands from the integrator: one path for single- and multi-channel integrands.

:class:`ChannelCaller` turns whatever the user gave (a plain callable, an :class:`~mcint.Integrand`,
a :class:`~mcint.channels.MultiChannelIntegrand`) into ``call(r, channel, backend) -> Evaluated``
with validated backend arrays, so the training and integration code never sees user types.
Non-finite values either raise (``nonfinite="raise"``) or count as zero with a running count
(``"zero"``, also called ``"skip"``): such a point adds nothing to the loss, so bad points never
reach the weights. Values come back divided by :attr:`ChannelCaller.value_scale`, a power of
two fixed by the first non-zero batch (1 for values within ``[2**-32, 2**32]``): exact, and what
keeps ``1e-46`` from flushing to zero in float32 and squares of ``1e+-200`` in range.

:class:`MappedChannels` builds a multi-channel integrand from a plain function and a list of
per-channel mappings (transforms of the unit cube), with the mappings' densities as prior
channel weights -- the usual construction of physics multi-channel integration.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends import Backend
from ..channels import ChannelEval, MultiChannelIntegrand
from ..integrand import (
    Integrand,
    IntegrandError,
    NonFiniteIntegrandError,
    ValueScale,
    check_unchanged,
    guard_input,
    wrote_into_points,
)

#: "zero" and "skip" are one policy: NaN/inf values count as zero
NONFINITE = ("raise", "zero", "skip")


@dataclass
class Evaluated:
    """Validated integrand output for one channel's batch (backend arrays)."""

    value: Any
    alpha_prior: Any | None
    features: Any | None


class ChannelCaller:
    """Uniform, validated access to a single- or multi-channel integrand."""

    def __init__(self, integrand: Any, dims: int | None, nonfinite: str = "raise") -> None:
        if nonfinite not in NONFINITE:
            raise ValueError(f"nonfinite must be one of {NONFINITE}, got {nonfinite!r}")
        self.nonfinite = nonfinite
        self.nonfinite_count = 0
        zero = "raise" if nonfinite == "raise" else "zero"
        # the scale of the values validated here, for integrands without an inner Integrand
        self._own_scale = ValueScale()
        if isinstance(integrand, MultiChannelIntegrand):
            d = getattr(integrand, "dims", None)
            if dims is not None and d is not None and int(dims) != int(d):
                raise ValueError(f"dims={dims} does not match the integrand's dims={d}")
            if d is None:
                raise ValueError("a MultiChannelIntegrand must set .dims")
            nch = getattr(integrand, "n_channels", None)
            if not isinstance(nch, (int, np.integer)) or nch < 1:
                raise ValueError(f"a MultiChannelIntegrand must set n_channels >= 1, got {nch!r}")
            self.multi = integrand
            self.single = None
            self.dims = int(d)
            self.n_channels = int(nch)
            self.native = bool(getattr(integrand, "native", False))
            #: whether the integrand takes every channel's points in one call
            self.batched = callable(getattr(integrand, "evaluate_batch", None))
            self.calls = 0
            inner = _inner_integrand(integrand)
            if inner is not None:
                inner.nonfinite = zero
                inner.rescale = True
        else:
            if dims is None:
                dims = getattr(integrand, "dims", None)
            if dims is None:
                raise ValueError("dims is required for a plain callable integrand")
            self.single = Integrand(integrand, int(dims), nonfinite=zero, rescale=True)
            self.multi = None
            self.dims = int(dims)
            self.n_channels = 1
            self.batched = False

    @property
    def value_scale(self) -> ValueScale:
        """The power of two every value returned is divided by (exact; results multiply it back):
        the inner :class:`~mcint.Integrand`'s, which scales before its float32 cast, if any."""
        inner = self.single if self.single is not None else _inner_integrand(self.multi)
        return inner.value_scale if inner is not None else self._own_scale

    @property
    def total_calls(self) -> int:
        return self.single.calls if self.single is not None else self.calls

    @property
    def skipped(self) -> int:
        """Non-finite integrand values counted as zero so far."""
        if self.single is not None:
            return self.single.nonfinite_count
        f = _inner_integrand(self.multi)
        inner = f.nonfinite_count if f is not None else 0
        return self.nonfinite_count + inner

    def __call__(self, r: Any, channel: int, be: Backend) -> Evaluated:
        if self.single is not None:
            with warnings.catch_warnings():
                # counted in .skipped and reported by the integrator instead
                warnings.simplefilter("ignore", RuntimeWarning)
                return Evaluated(self.single(r, be), None, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return self._call_multi(r, channel, be)

    def batch(self, r: Any, channels: np.ndarray, be: Backend) -> Evaluated:
        """Several channels' points in one ``evaluate_batch(r, channels)`` call; ``channels``
        (numpy int64) gives each row's channel."""
        where = f"a batch of {len(np.unique(channels))} channels"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return self._checked_call(lambda arg: self.multi.evaluate_batch(arg, channels), r,
                                      be, "evaluate_batch", where, self.native)

    def _call_multi(self, r: Any, channel: int, be: Backend) -> Evaluated:
        on = hasattr(self.multi, "evaluate_on")
        call = (lambda arg: self.multi.evaluate_on(arg, channel, be)) if on else \
            (lambda arg: self.multi.evaluate(arg, channel))
        return self._checked_call(call, r, be, "evaluate", f"channel {channel}", on or self.native)

    def _checked_call(self, call: Any, r: Any, be: Backend, method: str, where: str,
                      native: bool) -> Evaluated:
        """``call`` on a guarded view of ``r``; errors name the integrand, ``method`` and
        ``where``; the output validated."""
        # the points are the sampled events: the integrand gets a view it cannot write into
        n = int(r.shape[0])
        arg, version = guard_input(r, be, native)
        who = f"{type(self.multi).__name__}.{method}"
        try:
            out = call(arg)
        except IntegrandError:
            raise
        except Exception as exc:
            hint = (f"; {method} must not write into its points r (they are the sampled events): "
                    "compute on a copy" if wrote_into_points(exc) else "")
            raise IntegrandError(f"{type(exc).__name__} in {who} for {where} on {n} "
                                 f"points: {exc}{hint}") from exc
        check_unchanged(r, version, who)
        self.calls += n
        if not isinstance(out, ChannelEval):
            raise IntegrandError(f"{who} must return a ChannelEval, got {type(out).__name__}")
        return self._validate(out, n, where, r, be)

    def _validate(self, out: ChannelEval, n: int, where: str, r: Any, be: Backend) -> Evaluated:
        C = self.n_channels
        dt = np.float32 if str(r.dtype).endswith("float32") else np.float64
        value = _host(out.value, "value", where)
        if value.shape == (n, 1):
            value = value[:, 0]
        if value.shape != (n,):
            raise IntegrandError(f"{where}: evaluate() returned value of shape "
                                 f"{value.shape}; expected ({n},)")
        bad = ~np.isfinite(value)
        prior = psum = None
        if out.alpha_prior is not None:
            prior = _host(out.alpha_prior, "alpha_prior", where)
            if prior.shape != (n, C):
                raise IntegrandError(f"{where}: alpha_prior has shape {prior.shape}; "
                                     f"expected ({n}, {C}) (one weight per channel)")
            # a row sum is finite iff the row is (short of overflow past 1e308): one pass
            # instead of an elementwise test, this runs on every training batch
            psum = prior.sum(axis=1)
            bad |= ~np.isfinite(psum)
        feats = None
        if out.features is not None:
            feats = _host(out.features, "features", where)
            if feats.ndim != 2 or feats.shape[0] != n:
                raise IntegrandError(f"{where}: features must have shape ({n}, k), "
                                     f"got {feats.shape}")
            bad |= ~np.isfinite(feats.sum(axis=1))
        if bad.any():
            nbad = int(bad.sum())
            i = int(np.flatnonzero(bad)[0])
            msg = (f"{where}: the integrand returned {nbad} non-finite value(s) out of "
                   f"{n} (first at r={be.to_numpy(r[i:i + 1, :])[0].tolist()})")
            if self.nonfinite == "raise":
                raise NonFiniteIntegrandError(msg + "; fix the integrand or pass "
                                              "nonfinite='zero' to count them as zero")
            self.nonfinite_count += nbad
            value = np.where(bad, 0.0, value)
            if prior is not None:
                prior = np.where(bad[:, None], 1.0 / C, prior)
                psum = prior.sum(axis=1)
            if feats is not None:
                feats = np.where(bad[:, None], 0.0, feats)
        if prior is not None:
            if prior.min(initial=0.0) < 0:
                raise IntegrandError(f"{where}: alpha_prior has negative entries")
            zero = psum <= 0
            if zero.any():
                if np.any(zero & (value != 0)):
                    raise IntegrandError(f"{where}: alpha_prior rows sum to 0 at "
                                         f"{int((zero & (value != 0)).sum())} point(s) where "
                                         "the integrand is non-zero")
                prior = np.where(zero[:, None], 1.0 / C, prior)
                psum = np.where(zero, 1.0, psum)
            prior = prior / psum[:, None]
        if self._own_scale is self.value_scale:
            value = self._own_scale.apply(value, np)   # before the cast: float32 loses 1e-46
        return Evaluated(be.asarray(value.astype(dt), dt.__name__),
                         None if prior is None else be.asarray(prior.astype(dt), dt.__name__),
                         None if feats is None else be.asarray(feats.astype(dt), dt.__name__))


def _inner_integrand(multi: Any) -> Integrand | None:
    """The :class:`~mcint.Integrand` inside the wrappers built here (their NaN policy is ours)."""
    from .sign_split import SignSplit

    f = getattr(multi, "f", None)
    if isinstance(multi, (MappedChannels, SignSplit)) and isinstance(f, Integrand):
        return f
    return None


def _host(a: Any, what: str, where: str) -> np.ndarray:
    from ..backends.base import _to_numpy_any

    try:
        arr = np.asarray(_to_numpy_any(a))
    except Exception as exc:
        raise IntegrandError(f"{where}: {what} is not an array "
                             f"({type(a).__name__})") from exc
    if np.iscomplexobj(arr) or arr.dtype.kind not in "fiub":
        raise IntegrandError(f"{where}: {what} must be real numbers, got {arr.dtype}")
    return arr.astype(np.float64, copy=False)


class MappedChannels(MultiChannelIntegrand):
    """Multi-channel integrand from ``f(x)`` on the unit cube and per-channel mappings.

    Channel ``c`` samples ``r`` and maps it with ``mappings[c]`` (a :class:`~mcint.transforms.
    Transform` of the unit cube onto itself); the prior channel weights are the mappings'
    densities ``g_c(x) = |dr/dx|``, normalised at each point (the classic multi-channel choice).
    Features are the physical point ``x``.
    """

    def __init__(self, f: Callable[[Any], Any], dims: int, mappings: Sequence[Any],
                 groups: Sequence[int] | None = None,
                 channel_names: Sequence[str] | None = None) -> None:
        from ..transforms import Transform

        if not mappings:
            raise ValueError("MappedChannels needs at least one mapping")
        for i, m in enumerate(mappings):
            if not isinstance(m, Transform):
                raise TypeError(f"mapping {i} must be a mcint Transform, got {type(m).__name__}")
        self.f = Integrand(f, dims)
        self.dims = int(dims)
        self.mappings = list(mappings)
        self.n_channels = len(self.mappings)
        self.groups = groups
        self.channel_names = channel_names

    def evaluate(self, r: Any, channel: int) -> ChannelEval:
        from ..backends import get_backend

        return self.evaluate_on(get_backend("numpy").asarray(r), channel, get_backend("numpy"))

    def evaluate_on(self, r: Any, channel: int, be: Backend) -> ChannelEval:
        """:meth:`evaluate` for backend arrays ``r`` of ``be`` (no host round trip)."""
        from array_api_compat import array_namespace

        xp = array_namespace(r)
        x, log_jac = self.mappings[channel].forward(r)
        value = self.f(x, be) * xp.exp(log_jac)
        # log g_j(x) = log|dr/dx| of every mapping at the same physical point
        lg = xp.stack([m.inverse(x)[1] for m in self.mappings], axis=1)
        m = xp.max(lg, axis=1, keepdims=True)
        m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
        p = xp.exp(lg - m)
        return ChannelEval(value=value, alpha_prior=p / xp.sum(p, axis=1, keepdims=True),
                           features=x)
