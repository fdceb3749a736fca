"""The multi-channel integrand protocol.

One protocol replaces madnis' five integrand call signatures:

* a **single-channel** integrand is a plain callable ``f(x)`` on the unit hypercube
  (see :class:`mcint.Integrand`);
* a **multi-channel** integrand subclasses :class:`MultiChannelIntegrand`: for points ``r`` drawn
  in channel ``c``'s unit hypercube it returns a :class:`ChannelEval` holding
  ``value = f(x(r)) * |dx/dr|`` (the integrand in that channel's chart), the *prior* channel
  weights at the same physical point (rows summing to one over channels), and channel-independent
  features of the point (the input of the channel-weight network, and what event files store).

With ``g_c(r)`` the density of the sampler for channel ``c`` and ``alpha_c`` the (learned) channel
weight at the point, the integral is ``I = sum_c < alpha_c * value / g_c >_c``, unbiased whenever
the channel weights sum to one at every physical point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class ChannelEval:
    """What a multi-channel integrand returns for a batch drawn in one channel."""

    #: ``f(x(r)) * |dx/dr|``, shape ``(n,)``
    value: Any
    #: prior channel weights ``alpha_prior[n, C]`` at ``x(r)``, rows sum to 1; ``None`` = uniform
    alpha_prior: Any = None
    #: channel-independent features of the physical point, shape ``(n, k)``; ``None`` = use ``r``
    features: Any = None


class MultiChannelIntegrand:
    """Base class for multi-channel integrands (see the module docstring).

    Subclasses set :attr:`dims` and :attr:`n_channels` and implement :meth:`evaluate`. Optional:
    :attr:`groups` (channels sharing one flow because they are symmetric: a list giving each
    channel's group index), :attr:`channel_names`, and a method
    ``evaluate_batch(r, channels) -> ChannelEval`` taking rows of several channels at once
    (``channels``: numpy int64, each row's channel; it must equal :meth:`evaluate` row by row).
    Samplers then make one call per batch instead of one per channel, which matters for
    integrands with hundreds of channels and a per-call cost.
    """

    dims: int
    n_channels: int
    groups: Sequence[int] | None = None
    channel_names: Sequence[str] | None = None

    def evaluate(self, r: Any, channel: int) -> ChannelEval:
        """Evaluate the integrand for unit-hypercube points ``r`` (n, dims) drawn in ``channel``."""
        raise NotImplementedError

    def exact(self) -> float | None:
        """The exact integral, where known (tests and benchmarks use it)."""
        return None
