"""Signed integrands as two channels: the positive and the negative part, each with its own flow.

A sampler of ``|f|`` alone cannot beat the variance floor of a signed integrand: with
``g = |f| / J`` (``J = int |f|``) every weight is ``+-J``, so the relative spread of
``I = I+ - I-`` is ``sqrt(J^2 - I^2) / |I|`` however well the flow learns. Sampling the parts
separately, ``I = I+ + I-`` with ``I+ = int f 1[f >= 0]`` and ``I- = int f 1[f < 0]``, each
channel's weights are constant when its flow is perfect, and the stratified allocation gives
each part the calls its spread needs.

:class:`SignSplit` wraps a plain callable or a :class:`~mcint.channels.MultiChannelIntegrand`
with ``C`` channels into ``2 C`` channels: channel ``2 k + s`` is base channel ``k`` restricted
to the sign ``s`` (0: ``f >= 0``, 1: ``f < 0``) by a fixed indicator channel weight,
``alpha_{2k+s}(x) = alpha_k(x) 1[sign f(x) = s]``. The weights of every point still sum to one,
so the estimate is unbiased whatever the flows do; the value returned is the whole ``f``, so
even a weight that leaked to the other sign would keep it unbiased.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..backends import Backend
from ..channels import ChannelEval, MultiChannelIntegrand
from ..integrand import Integrand

__all__ = ["SignSplit"]


class SignSplit(MultiChannelIntegrand):
    """``2 C`` sign channels from an integrand with ``C`` channels (see the module docstring).

    Channel ``2 k`` holds ``f >= 0`` of base channel ``k``, channel ``2 k + 1`` holds ``f < 0``;
    channels of one sign share the base's channel groups (``2 g + s``).
    """

    native = True

    def __init__(self, integrand: Callable[..., Any] | MultiChannelIntegrand,
                 dims: int | None = None) -> None:
        if isinstance(integrand, SignSplit):
            raise ValueError("the integrand is already split by sign")
        if isinstance(integrand, MultiChannelIntegrand):
            d = getattr(integrand, "dims", None)
            if d is None:
                raise ValueError("a MultiChannelIntegrand must set .dims")
            if dims is not None and int(dims) != int(d):
                raise ValueError(f"dims={dims} does not match the integrand's dims={d}")
            self.base: MultiChannelIntegrand | None = integrand
            self.f = getattr(integrand, "f", None)
            nb = int(integrand.n_channels)
            names = list(getattr(integrand, "channel_names", None) or
                         [str(k) for k in range(nb)])
            g = getattr(integrand, "groups", None)
            base_groups = list(range(nb)) if g is None else [int(v) for v in g]
        else:
            if dims is None:
                dims = getattr(integrand, "dims", None)
            if dims is None:
                raise ValueError("dims is required for a plain callable integrand")
            self.base = None
            self.f = integrand if isinstance(integrand, Integrand) else Integrand(integrand,
                                                                                  int(dims))
            d, nb, names, base_groups = int(dims), 1, [""], [0]
        self.dims = int(d)
        self.base_channels = nb
        self.n_channels = 2 * nb
        self.groups = [2 * g + s for g in base_groups for s in (0, 1)]
        self.channel_names = [f"{n}{'+' if s == 0 else '-'}" for n in names for s in (0, 1)]

    def evaluate(self, r: Any, channel: int) -> ChannelEval:
        from ..backends import get_backend

        nb = get_backend("numpy")
        return self.evaluate_on(nb.asarray(r), channel, nb)

    def evaluate_on(self, r: Any, channel: int, be: Backend) -> ChannelEval:
        """:meth:`evaluate` for backend arrays ``r`` of ``be``."""
        from array_api_compat import array_namespace

        k, s = divmod(int(channel), 2)
        if self.base is None:
            value, prior, feats = self.f(r, be), None, None
        else:
            if hasattr(self.base, "evaluate_on"):
                ev = self.base.evaluate_on(r, k, be)
            else:
                rr = r if getattr(self.base, "native", False) else be.to_numpy(r)
                ev = self.base.evaluate(rr, k)
            value, prior, feats = ev.value, ev.alpha_prior, ev.features
            value, prior, feats = (None if a is None else be.asarray(a)
                                   for a in (value, prior, feats))
        xp = array_namespace(value)
        n = int(value.shape[0])
        if value.ndim == 2:
            value = value[:, 0]
        pos = xp.astype(value >= 0, value.dtype)
        neg = xp.astype(value < 0, value.dtype)
        if prior is None:
            prior = xp.full((n, self.base_channels), 1.0 / self.base_channels, dtype=value.dtype,
                            device=value.device)
        prior = xp.astype(prior, value.dtype)
        # column 2 j + s: base weight alpha_j times the indicator of sign s
        split = xp.reshape(xp.stack([prior * pos[:, None], prior * neg[:, None]], axis=2),
                           (n, self.n_channels))
        return ChannelEval(value=value, alpha_prior=split, features=feats)

    def exact(self) -> float | None:
        return None if self.base is None else self.base.exact()
