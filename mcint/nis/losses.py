"""Training losses of neural importance sampling, written once against the array API.

Every loss has the signature ``loss(f, log_q, log_q_sample, channels=None, n_channels=1)``:

* ``f`` -- the target at each point, ``alpha_c(x) * value`` (differentiable through the
  channel weights ``alpha``; the integrand value itself is data),
* ``log_q`` -- the log density being trained, evaluated at the points (differentiable),
* ``log_q_sample`` -- the log density the points were drawn from (data; differs from ``log_q``
  for buffered samples, and for points drawn from a defensive mixture),
* ``channels`` -- the channel index of each point (``None``: one channel).

All expectations are importance-sampled with ``q_sample``, so the same loss trains on fresh and
on buffered points. Multi-channel losses sum per-channel terms; per-channel sums are one-hot
matrix products, which keeps shapes data-independent (array-api-strict, autograd, GPUs).

Every loss is scale-free: ``loss(c f, ...)`` is ``loss(f, ...)`` up to round-off. The KL
losses normalise the weights per channel; the variance losses divide ``f`` by a power of two
(exact, no gradient) when the mean ``|f / q|`` leaves ``[2**-8, 2**8]``, so their ``eps``
guards stay negligible and their squares in range (an O(1) integral keeps its exact digits).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from array_api_compat import array_namespace

LossFn = Callable[..., Any]

__all__ = ["LOSSES", "get_loss", "kl", "kl_softclip", "reverse_kl", "softclip",
           "stratified_variance", "stratified_variance_softclip", "variance", "variance_softclip"]

SOFTCLIP_THRESHOLD = 30.0
#: the variance losses rescale ``f`` when its mean ``|f / q|`` leaves ``[2**-8, 2**8]``
LOSS_SAFE_EXP = 8


def softclip(x: Any, threshold: float = SOFTCLIP_THRESHOLD) -> Any:
    """``t * asinh(x / t)``: linear for ``|x| << t``, logarithmic beyond (tames huge weights)."""
    xp = array_namespace(x)
    return threshold * xp.asinh(x / threshold)


def _onehot(channels: Any, n_channels: int, like: Any) -> Any:
    xp = array_namespace(like)
    if channels is None:
        return xp.ones((like.shape[0], 1), dtype=like.dtype, device=like.device)
    ar = xp.arange(n_channels, dtype=channels.dtype, device=like.device)
    return xp.astype(channels[:, None] == ar[None, :], like.dtype)


def _seg(v: Any, onehot: Any) -> Any:
    """Per-channel sums of ``v`` (n,) -> (C,)."""
    return v @ onehot


def _pow2_unit(m: Any) -> Any:
    """A power of two near the (detached, scalar) ``m > 0``; 1 within ``2**+-LOSS_SAFE_EXP``."""
    xp = array_namespace(m)
    lim = float(math.floor(math.log2(float(xp.finfo(m.dtype).max))) - 8)   # 2**+-lim exist
    e = xp.floor(xp.log2(xp.where(m > 0, m, xp.ones_like(m))))
    e = xp.where(xp.abs(e) > LOSS_SAFE_EXP, xp.clip(e, -lim, lim), xp.zeros_like(e))
    return 2.0 ** e


def _per_channel_moments(f: Any, log_q: Any, log_q_sample: Any, onehot: Any,
                         clip: bool) -> tuple[Any, Any, Any]:
    """Per-channel ``(variance estimate with grad, |I_c| (detached), counts)``, in units of a
    power of two near ``sum_c |I_c|`` when that is far from 1 (the losses are ratios)."""
    xp = array_namespace(f)
    counts = xp.sum(onehot, axis=0)
    safe_n = xp.where(counts > 0, counts, xp.ones_like(counts))
    q_s = xp.exp(log_q_sample)
    w_s = f / q_s                      # weights w.r.t. the sampling density
    abs_mean = _seg(xp.abs(_detach(w_s)), onehot) / safe_n
    unit = _pow2_unit(xp.sum(abs_mean))
    f, w_s, abs_mean = f / unit, w_s / unit, abs_mean / unit     # exact: powers of two
    if clip:
        # clip in units of each channel's mean |w|, then go back to f
        norm = abs_mean @ onehot.T
        norm = xp.where(norm > 0, norm, xp.ones_like(norm))
        f = softclip(w_s / norm) * norm * q_s
        w_s = f / q_s
        abs_mean = _seg(xp.abs(_detach(w_s)), onehot) / safe_n
    mean = _seg(w_s, onehot) / safe_n
    ratio = xp.exp(log_q - log_q_sample)
    w_t = f * xp.exp(-log_q)
    dev = w_t - mean @ onehot.T
    var = _seg(dev * dev * ratio, onehot) / safe_n
    return var, abs_mean, counts


def _detach(a: Any) -> Any:
    # the one place that needs more than the standard: stop gradients (a no-op off torch)
    d = getattr(a, "detach", None)
    return d() if callable(d) else a


def _eps(a: Any) -> float:
    xp = array_namespace(a)
    return float(xp.finfo(a.dtype).eps)


def _variance_loss(clip: bool) -> LossFn:
    def loss(f: Any, log_q: Any, log_q_sample: Any, channels: Any = None,
             n_channels: int = 1) -> Any:
        xp = array_namespace(f)
        oh = _onehot(channels, n_channels, f)
        var, abs_mean, _ = _per_channel_moments(f, log_q, log_q_sample, oh, clip)
        return xp.sum(var / (abs_mean + _eps(f)) ** 2)

    return loss


def _stratified_loss(clip: bool) -> LossFn:
    def loss(f: Any, log_q: Any, log_q_sample: Any, channels: Any = None,
             n_channels: int = 1) -> Any:
        xp = array_namespace(f)
        oh = _onehot(channels, n_channels, f)
        var, abs_mean, counts = _per_channel_moments(f, log_q, log_q_sample, oh, clip)
        present = xp.astype(counts > 0, f.dtype)
        std_sum = xp.sum(xp.sqrt(var + _eps(f)) * present)
        return (std_sum / (xp.sum(abs_mean) + _eps(f))) ** 2

    return loss


def _kl_loss(clip: bool, reverse: bool) -> LossFn:
    def loss(f: Any, log_q: Any, log_q_sample: Any, channels: Any = None,
             n_channels: int = 1) -> Any:
        xp = array_namespace(f)
        oh = _onehot(channels, n_channels, f)
        counts = xp.sum(oh, axis=0)
        safe_n = xp.where(counts > 0, counts, xp.ones_like(counts))
        w = xp.abs(_detach(f)) * xp.exp(-log_q_sample)
        norm = _seg(w, oh) / safe_n
        norm = xp.where(norm > 0, norm, xp.ones_like(norm))
        w = w / (norm @ oh.T)           # per channel, mean weight 1: f/I_c is a density
        if clip:
            w = softclip(w)
        eps = _eps(f)
        log_p = xp.log(w + eps) + log_q_sample   # log of the normalised target density
        if reverse:
            ratio = xp.exp(log_q - log_q_sample)
            terms = ratio * (log_q - log_p)
        else:
            terms = w * (log_p - log_q)
        return xp.sum(_seg(terms, oh) / safe_n)

    return loss


variance = _variance_loss(False)
variance.__doc__ = "Relative variance of ``f/q`` per channel, summed over channels."
variance_softclip = _variance_loss(True)
variance_softclip.__doc__ = "``variance`` on soft-clipped weights (robust to rare huge weights)."
stratified_variance = _stratified_loss(False)
stratified_variance.__doc__ = ("``(sum_c sigma_c / sum_c |I_c|)^2``: the variance reachable with "
                               "optimal stratification over channels (arXiv:2311.01548).")
stratified_variance_softclip = _stratified_loss(True)
stratified_variance_softclip.__doc__ = "``stratified_variance`` on soft-clipped weights."
kl = _kl_loss(False, False)
kl.__doc__ = "Forward KL divergence ``KL(f/I || q)`` per channel (mode-covering)."
kl_softclip = _kl_loss(True, False)
kl_softclip.__doc__ = "Forward KL with soft-clipped weights."
reverse_kl = _kl_loss(False, True)
reverse_kl.__doc__ = "Reverse KL divergence ``KL(q || f/I)`` per channel (mode-seeking)."

LOSSES: dict[str, LossFn] = {
    "variance": variance,
    "variance_softclip": variance_softclip,
    "stratified_variance": stratified_variance,
    "stratified_variance_softclip": stratified_variance_softclip,
    "kl": kl,
    "kl_softclip": kl_softclip,
    "reverse_kl": reverse_kl,
}


def get_loss(loss: str | LossFn) -> LossFn:
    """A loss by name (see :data:`LOSSES`) or a user callable with the same signature."""
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSSES)} or pass a callable")
    return LOSSES[loss]
