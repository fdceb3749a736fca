"""Learned channel weights ``alpha_c(x) = beta_c(x) exp(Delta_c(x)) / sum_j beta_j(x) exp(Delta_j(x))``.

``beta`` is the prior (uniform, fixed per-channel numbers from the user, or the integrand's
``alpha_prior`` at each point, e.g. from propagator denominators); ``Delta`` is an MLP on the
point's channel-independent features whose last layer starts at zero, so training starts from the
prior. Dropped channels get ``alpha = 0``; the weights stay normalised over the active ones,
which keeps ``sum_c alpha_c = 1`` and hence the integral unbiased.

The maths is array-API: the same parameters evaluate on torch with autograd during training and on
any backend afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ..backends import Backend, fusable, get_backend
from ..backends.base import logsumexp


class ChannelWeights:
    """Channel-weight model.

    Parameters
    ----------
    n_channels:
        number of channels ``C``.
    features_dim:
        width of the features fed to the network (``None``: no network, prior only).
    prior:
        ``None``/``"uniform"``, ``"integrand"`` (use the integrand's ``alpha_prior`` rows) or a
        length-``C`` sequence of positive numbers.
    hidden, activation, seed, dtype:
        network architecture and initialisation.
    """

    def __init__(self, n_channels: int, features_dim: int | None, *,
                 prior: str | Sequence[float] | None = "integrand",
                 hidden: Sequence[int] = (32, 32), activation: str = "leaky_relu",
                 seed: int | None = 0, dtype: str = "float64") -> None:
        from ..flows.mlp import init_mlp

        if n_channels < 1:
            raise ValueError(f"n_channels must be >= 1, got {n_channels}")
        self.n_channels = int(n_channels)
        self.activation = activation
        if prior is None or (isinstance(prior, str) and prior == "uniform"):
            self.prior_kind, beta = "uniform", np.ones(n_channels)
        elif isinstance(prior, str):
            if prior != "integrand":
                raise ValueError(f"prior must be 'uniform', 'integrand' or {n_channels} numbers,"
                                 f" got {prior!r}")
            self.prior_kind, beta = "integrand", np.ones(n_channels)
        else:
            beta = np.asarray(prior, dtype=np.float64)
            if beta.shape != (n_channels,) or not np.all(np.isfinite(beta)) or np.any(beta < 0) \
                    or not beta.sum() > 0:
                raise ValueError(f"a user prior must be {n_channels} non-negative finite numbers "
                                 f"with a positive sum, got {prior!r}")
            self.prior_kind = "user"
        #: fixed per-channel prior factors (uniform or user-given)
        self.beta = (beta / beta.sum()).astype(dtype)
        self.params: list[tuple[Any, Any]] = []
        if features_dim is not None and features_dim > 0:
            self.params = init_mlp([int(features_dim), *hidden, self.n_channels], seed=seed,
                                   zero_last=True, dtype=dtype)
        self.features_dim = features_dim
        #: whether the network is trained (``freeze()`` turns it off)
        self.trainable = bool(self.params)

    def freeze(self) -> None:
        """Stop training the network (its current correction stays in use)."""
        self.trainable = False

    def to(self, backend: str | Backend | None = None, dtype: str | None = None) -> ChannelWeights:
        """A copy whose arrays live on ``backend``."""
        be = get_backend(backend)
        new = object.__new__(ChannelWeights)
        new.__dict__.update(self.__dict__)
        new.params = [(be.asarray(w, dtype), be.asarray(b, dtype)) for w, b in self.params]
        new.beta = be.asarray(self.beta, dtype)
        return new

    def arrays(self) -> dict[str, Any]:
        """Parameter arrays by name (for checkpoints)."""
        out = {"beta": self.beta}
        for i, (w, b) in enumerate(self.params):
            out[f"w{i}"], out[f"b{i}"] = w, b
        return out

    def load_arrays(self, arrays: dict[str, Any]) -> None:
        """Restore what :meth:`arrays` returned."""
        self.beta = arrays["beta"]
        self.params = [(arrays[f"w{i}"], arrays[f"b{i}"]) for i in range(len(self.params))]

    def log_alpha(self, features: Any, alpha_prior: Any, active: Any) -> Any:
        """``log alpha`` of every channel, shape ``(n, C)``.

        ``features`` ``(n, k)`` (ignored without a network); ``alpha_prior`` ``(n, C)`` or
        ``None``; ``active`` boolean ``(C,)``.
        """
        from ..flows.mlp import apply_mlp

        xp = array_namespace(features if features is not None else alpha_prior, active)
        beta = self.beta
        ref = features if features is not None else alpha_prior
        beta = xp.asarray(beta, dtype=ref.dtype, device=ref.device) \
            if array_namespace(beta) is not xp else xp.astype(beta, ref.dtype)
        prior = alpha_prior if self.prior_kind == "integrand" else None
        delta = apply_mlp(self.params, features, self.activation) if self.params else None
        return normalized_log_weights(xp.log(beta), prior, delta, active)

    def alpha(self, features: Any, alpha_prior: Any, active: Any) -> Any:
        """Normalised channel weights ``(n, C)``; rows sum to 1 (or 0 where nothing is active)."""
        xp = array_namespace(features if features is not None else alpha_prior, active)
        return xp.exp(self.log_alpha(features, alpha_prior, active))


@fusable("channel-log-weights")
def normalized_log_weights(log_beta: Any, alpha_prior: Any | None, delta: Any | None,
                           active: Any) -> Any:
    """``log alpha`` ``(n, C)``: ``log beta + log alpha_prior + delta``, normalised over the
    ``active`` channels (``-inf`` elsewhere; a row where every active prior vanishes stays
    ``-inf``, not NaN). ``alpha_prior`` and ``delta`` are optional ``(n, C)`` arrays."""
    ref = alpha_prior if alpha_prior is not None else delta
    xp = array_namespace(log_beta, active) if ref is None else array_namespace(ref, active)
    dt = ref.dtype if ref is not None else log_beta.dtype
    dev = ref.device if ref is not None else log_beta.device
    logit = log_beta[None, :]
    if alpha_prior is not None:
        pos = alpha_prior > 0
        tiny = xp.asarray(1e-300 if dt == xp.float64 else 1e-38, dtype=dt, device=dev)
        lp = xp.log(xp.where(pos, alpha_prior, tiny))
        logit = logit + xp.where(pos, lp, xp.asarray(-xp.inf, dtype=dt, device=dev))
    if delta is not None:
        logit = logit + delta
    logit = xp.where(active[None, :], logit, xp.asarray(-xp.inf, dtype=dt, device=dev))
    # a row without active support stays -inf (z = 0 there): no NaN value, and no NaN
    # gradient, which would make the optimiser skip the step
    z = logsumexp(logit, axis=1, keepdims=True)
    return logit - xp.where(xp.isfinite(z), z, xp.zeros_like(z))
