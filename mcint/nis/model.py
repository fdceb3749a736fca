"""The sampler model: per channel group a flow on an optional fixed VEGAS map, mixed with a
defensive share drawn from the map alone, and the channel weights. It draws points per
channel, evaluates the integrand on them and gives the densities of a batch: what training
and integration both use. Which defensive share, backend and random stream a draw uses are
arguments: the model holds no training or integration state."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends import Backend
from ..flows.grouped import can_group, grouped_log_prob
from .channel_weights import ChannelWeights
from .evaluate import ChannelCaller


@dataclass
class Sampler:
    """What samples one group: a flow (or None) and a fixed map (or None)."""

    flow: Any
    vmap: Any


@dataclass(frozen=True)
class WeightSpec:
    """How the channel-weight network is built once the features' width is known."""

    prior: Any = "integrand"
    hidden: tuple[int, ...] = (32, 32)
    seed: int = 0
    train: bool = True


class SamplerModel:
    """Flows (one per channel group), VEGAS maps and channel weights of an integrator.

    ``caller`` evaluates the integrand; ``groups`` gives each channel's group; ``flow`` is the
    keyword arguments of :class:`mcint.flows.Flow` (``None``: no flows, the maps only), each
    group's flow seeded by ``flow_seeds[g]``; ``weights`` describes the channel-weight network
    (several channels only), built by :meth:`ensure_weights` at the first batch.
    """

    def __init__(self, caller: ChannelCaller, groups: Sequence[int], dtype: str,
                 flow: dict | None, flow_seeds: Sequence[int], weights: WeightSpec) -> None:
        self.caller = caller
        self.dims = caller.dims
        self.n_channels = caller.n_channels
        self.multichannel = caller.multi is not None
        self.groups = [int(g) for g in groups]
        self.n_groups = max(self.groups) + 1
        self.dtype = dtype
        self.flow_options = flow
        self.samplers = [Sampler(self._make_flow(flow_seeds[k]), None)
                         for k in range(self.n_groups)]
        self.weight_spec = weights
        #: the channel-weight model (multi-channel, once the features' width is known)
        self.cw: ChannelWeights | None = None
        self.features_dim: int | None = None
        self._exported: dict[str, Any] = {}

    def _make_flow(self, seed: int) -> Any:
        if self.flow_options is None:
            return None
        from ..flows import Flow

        opts = dict(self.flow_options)
        opts.setdefault("dtype", self.dtype)
        return Flow(self.dims, seed=seed, **opts)

    def ensure_weights(self, features_dim: int) -> None:
        """Build the channel-weight model for features of width ``features_dim`` (once)."""
        if self.cw is not None or not self.multichannel:
            return
        o = self.weight_spec
        self.features_dim = features_dim
        self.cw = ChannelWeights(self.n_channels, features_dim if o.train else None,
                                 prior=o.prior, hidden=o.hidden, seed=o.seed, dtype=self.dtype)

    def group_index(self, tb: Backend, channels: Any) -> Any:
        """The group of every row of ``channels`` (a ``tb`` array)."""
        groups = tb.asarray(np.asarray(self.groups), "int64")
        return tb.xp.take(groups, channels, axis=0)

    # -- drawing ----------------------------------------------------------------------------
    def _points(self, channel: int, n: int, eps: float, be: Backend, rng: Any,
                samplers: Sequence[Sampler], need_logq: bool) -> dict[str, Any]:
        """``n`` points of ``channel``'s group from the defensive mixture: backend arrays ``u``
        (flow space), ``r`` (channel chart), ``log_q_sample`` (mixture density in ``u``),
        ``log_jac`` (of the group's map)."""
        xp = be.xp
        s = samplers[self.groups[channel]]
        dt = self.dtype
        d = self.dims
        is_def = None
        if s.flow is None or eps >= 1.0:
            n_def = n
        else:
            is_def = rng.uniform((n,), dt) < eps
            n_def = int(be.to_numpy(xp.sum(xp.astype(is_def, xp.int64))))
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
                lq_d = xp.zeros((n_def,), dtype=u_d.dtype, device=u_d.device)
            parts_u.append(u_d)
            parts_lq.append(lq_d)
        u = xp.concat(parts_u, axis=0) if len(parts_u) > 1 else parts_u[0]
        lq = xp.concat(parts_lq, axis=0) if len(parts_lq) > 1 else parts_lq[0]
        if len(parts_u) > 1:
            # back to the order of the rows' own draws (flow or defensive): every row, and so
            # every slice a channel of the group gets, is an independent draw of the mixture
            back = xp.argsort(xp.argsort(xp.astype(is_def, xp.int8), stable=True))
            u, lq = xp.take(u, back, axis=0), xp.take(lq, back, axis=0)
        log_m = mix_log(xp, lq, eps if s.flow is not None else 1.0)
        if s.vmap is not None:
            r, log_jac = s.vmap.forward(u)
        else:
            r, log_jac = u, xp.zeros((n,), dtype=u.dtype, device=u.device)
        return dict(u=u, r=r, log_q_sample=log_m, log_jac=log_jac)

    def _with_values(self, pts: dict[str, Any], ev: Any, be: Backend) -> dict[str, Any]:
        """The integrand's output joined to the points: adds ``target`` (integrand x map
        Jacobian, i.e. the integrand in ``u``), ``alpha_prior``, ``features``."""
        xp = be.xp
        u, r = pts["u"], pts["r"]
        value = ev.value if ev.value.dtype == u.dtype else xp.astype(ev.value, u.dtype)
        target = value * xp.exp(pts["log_jac"])
        feats = ev.features
        if self.multichannel and feats is None:
            feats = r
        return dict(u=u, r=r, log_q_sample=pts["log_q_sample"], target=target,
                    alpha_prior=ev.alpha_prior, features=feats)

    def collect(self, counts: np.ndarray, eps: float, be: Backend, rng: Any,
                samplers: Sequence[Sampler], need_logq: bool = True) -> dict[str, Any]:
        """``counts[c]`` points in every channel ``c``, evaluated and concatenated (with
        ``channels``), rows grouped by channel.

        The points are drawn **per group**: one draw of ``sum(counts)`` over the group's
        channels from the group's sampler (the flow every channel of the group shares), whose
        rows, independent draws, go to the channels in order. An integrand with
        ``evaluate_batch`` (see :class:`~mcint.channels.MultiChannelIntegrand`) then gets all
        channels' points in one call, any other one call per channel: the same points, the
        same numbers."""
        xp = be.xp
        chans = [c for c in range(self.n_channels) if counts[c] > 0]
        members: dict[int, list[int]] = {}
        for c in chans:
            members.setdefault(self.groups[c], []).append(c)
        per_channel: dict[int, dict[str, Any]] = {}
        for cs in members.values():
            sizes = [int(counts[c]) for c in cs]
            pts = self._points(cs[0], sum(sizes), eps, be, rng, samplers, need_logq)
            if len(cs) == 1:
                per_channel[cs[0]] = pts
                continue
            start = 0
            for c, k in zip(cs, sizes):
                per_channel[c] = {key: v[start:start + k, ...] for key, v in pts.items()}
                start += k
        labels = [be.asarray(np.full(int(counts[c]), c, dtype=np.int64)) for c in chans]
        if self.caller.batched:
            joined = _concat(xp, [per_channel[c] for c in chans])
            ch = np.concatenate([np.full(int(counts[c]), c, dtype=np.int64) for c in chans])
            out = self._with_values(joined, self.caller.batch(joined["r"], ch, be), be)
            out["channels"] = _concat(xp, [{"c": lab} for lab in labels])["c"]
            return out
        parts = []
        for c, lab in zip(chans, labels):
            pts = per_channel[c]
            b = self._with_values(pts, self.caller(pts["r"], c, be), be)
            b["channels"] = lab
            parts.append(b)
        return _concat(xp, parts)

    # -- the target of one batch -----------------------------------------------------------
    def batch_terms(self, batch: dict[str, Any], channels: Any, cw: Any, active: Any,
                    samplers: Sequence[Sampler], eps: float, with_grad_logq: bool
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
        log_q = self.log_q(batch["u"], batch["group_of"], samplers, eps)
        return f, log_q

    def log_q(self, u: Any, group_of: Any, samplers: Sequence[Sampler], eps: float) -> Any:
        """Mixture log density of each point under its group's current flow."""
        xp = _ns(u)
        if self.n_groups == 1:
            s = samplers[0]
            if s.flow is None:
                return xp.zeros((u.shape[0],), dtype=u.dtype, device=u.device)
            return mix_log(xp, s.flow.log_prob(u), eps)
        flows = [smp.flow for smp in samplers]
        if can_group(flows):
            # one pass for all groups: the per-op cost of a loop over groups is most of a step
            from ..backends.base import _to_numpy_any

            return mix_log(xp, grouped_log_prob(flows, u, _to_numpy_any(group_of)), eps)
        idx_parts, val_parts = [], []
        for g, smp in enumerate(samplers):
            idx = xp.nonzero(group_of == g)[0]
            if int(idx.shape[0]) == 0:
                continue
            ug = xp.take(u, idx, axis=0)
            lg = xp.zeros((ug.shape[0],), dtype=u.dtype, device=u.device) if smp.flow is None \
                else mix_log(xp, smp.flow.log_prob(ug), eps)
            idx_parts.append(idx)
            val_parts.append(lg)
        # undo the grouping with a gather (no in-place scatter: autograd, strict)
        perm = xp.concat(idx_parts, axis=0)
        vals = xp.concat(val_parts, axis=0)
        return xp.take(vals, xp.argsort(perm), axis=0)

    # -- frozen copies for sampling -------------------------------------------------------------
    def exported(self, be: Backend) -> tuple[list[Sampler], ChannelWeights | None]:
        """Detached copies of the samplers and channel weights on ``be`` (cached until
        :meth:`changed`)."""
        key = f"{be.name}:{be.device}"
        if key not in self._exported:
            def detach(a: Any) -> Any:
                return a.detach().clone() if hasattr(a, "detach") else a

            out = []
            for s in self.samplers:
                fl = None if s.flow is None else s.flow.map_arrays(detach).to(be, self.dtype)
                vm = None if s.vmap is None else s.vmap.to(be)
                out.append(Sampler(fl, vm))
            cw = None
            if self.cw is not None:
                cw = self.cw.to(be, self.dtype) if not self.cw.params else \
                    _cw_detached(self.cw).to(be, self.dtype)
            self._exported[key] = (out, cw)
        return self._exported[key]

    def changed(self) -> None:
        """The parameters are about to change: drop the frozen copies."""
        self._exported = {}

    def weights_on(self, be: Backend) -> ChannelWeights:
        """The channel weights to integrate with on ``be``: the trained ones, or the prior
        weights alone before the first training batch built them."""
        cw = self.exported(be)[1]
        if cw is not None:
            return cw
        return ChannelWeights(self.n_channels, None, prior=self.weight_spec.prior,
                              dtype=self.dtype).to(be, self.dtype)

    def density_r(self, batch: dict[str, Any], be: Backend) -> Any:
        """The sampling density of one channel's points in the integration domain."""
        # g(r) = m(u) / |dr/du|; target = value * |dr/du|, value = f(r)
        xp = _ns(batch["u"])
        s = self.exported(be)[0][0]
        if s.vmap is None:
            return xp.exp(batch["log_q_sample"])
        _, log_jac = s.vmap.forward(batch["u"])
        return xp.exp(batch["log_q_sample"] - log_jac)


def channel_groups(groups: Any, integrand: Any, n_channels: int) -> list[int]:
    """Each channel's group (``0..n_groups-1``) from the ``groups`` option: numbers, ``None``
    or ``True`` (the integrand's ``groups``), ``False`` (one group per channel)."""
    g = None
    if groups is not False:
        g = groups if groups not in (None, True) else getattr(integrand, "groups", None)
    if g is None:
        g = list(range(n_channels))
    g = [int(v) for v in g]
    if len(g) != n_channels:
        raise ValueError(f"groups must give one group per channel ({n_channels}), "
                         f"got {len(g)}")
    uniq = sorted(set(g))
    return [uniq.index(v) for v in g]


def _concat(xp: Any, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Row-wise concatenation of dicts of arrays (``None`` entries stay ``None``)."""
    out: dict[str, Any] = {}
    for k in parts[0]:
        if parts[0][k] is None:
            out[k] = None
        else:
            out[k] = xp.concat([p[k] for p in parts], axis=0) if len(parts) > 1 else parts[0][k]
    return out


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


def mix_log(xp: Any, log_q: Any, eps: float) -> Any:
    """``log((1 - eps) q + eps)`` from ``log q`` (the defensive mixture with the uniform)."""
    if eps <= 0:
        return log_q
    if eps >= 1:
        return xp.zeros_like(log_q)
    return xp.logaddexp(log_q + math.log1p(-eps), xp.full_like(log_q, math.log(eps)))
