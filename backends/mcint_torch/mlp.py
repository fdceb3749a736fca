"""Native torch layers for :func:`mcint.flows.mlp.mlp_layers` (conditioners, channel weights)
and :func:`mcint.flows.grouped.stacked_mlp_layers` (the conditioners of several flows at once).

The array-API reference builds each layer as ``x @ w + b`` and ReLU as ``(x + |x|) / 2``: five
autograd nodes per hidden layer. Here a layer is one ``addmm`` and the activation one native
op, so a training step records about half the nodes (the per-node cost dominates at the batch
sizes of training). Same maths: the reference stays the oracle in the tests. Declines
(``NotImplemented``) for non-tensor input and activations without an exact torch twin; runs on
any device. Whether they are asked at all is :mod:`mcint.backends.dispatch`'s rule
(``MCINT_FUSED=0``: never).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

#: activation name -> the torch op computing the reference's formula
_ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "relu": torch.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "silu": F.silu,
    "gelu": lambda x: F.gelu(x, approximate="tanh"),
    "elu": F.elu,
}


def _layers(x: Any, params: Sequence[tuple[Any, Any]], activation: str, layer: Any) -> Any:
    act = _ACTIVATIONS.get(activation)
    if act is None or not all(isinstance(a, torch.Tensor) for wb in params for a in wb):
        return NotImplemented
    last = len(params) - 1
    for k, (w, b) in enumerate(params):
        x = layer(x, w, b)
        if k != last:
            x = act(x)
    return x


def mlp_layers(x: Any, params: Sequence[tuple[Any, Any]], activation: str) -> Any:
    """:func:`mcint.flows.mlp.mlp_layers` with ``addmm`` layers, or ``NotImplemented``."""
    return _layers(x, params, activation, lambda h, w, b: torch.addmm(b, h, w))


def stacked_mlp_layers(h: Any, params: Sequence[tuple[Any, Any]], activation: str) -> Any:
    """:func:`mcint.flows.grouped.stacked_mlp_layers` with ``baddbmm`` layers, or
    ``NotImplemented``."""
    return _layers(h, params, activation, lambda h, w, b: torch.baddbmm(b[:, None, :], h, w))


def normalized_log_weights(log_beta: Any, alpha_prior: Any, delta: Any, active: Any) -> Any:
    """:func:`mcint.nis.channel_weights.normalized_log_weights` with half of the reference's
    autograd nodes (it runs on every training step), or ``NotImplemented``."""
    if not all(a is None or isinstance(a, torch.Tensor)
               for a in (log_beta, alpha_prior, delta, active)):
        return NotImplemented
    logit = log_beta[None, :]
    if alpha_prior is not None:
        # the prior is data (no gradient): log 0 = -inf is what the reference's where gives
        logit = logit + torch.log(alpha_prior)
    if delta is not None:
        logit = logit + delta
    logit = logit.masked_fill(~active[None, :], -torch.inf)
    # not torch.logsumexp: its backward is NaN on a row without any active support, which
    # would make the optimiser skip the step; the shift m carries no gradient (it cancels)
    m = torch.nan_to_num(logit.detach().amax(dim=1, keepdim=True), neginf=0.0)
    s = torch.exp(logit - m).sum(dim=1, keepdim=True)
    return logit - (torch.log(torch.where(s > 0, s, torch.ones_like(s))) + m)
