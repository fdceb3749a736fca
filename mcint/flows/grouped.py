"""Several flows of one architecture evaluated in one pass: row ``i`` by flow ``group[i]``.

The multi-channel integrator trains one flow per channel group. Looping over the groups pays
every small op (and its autograd node) once per group, and at training batch sizes the per-op
cost is what a step costs. Here the conditioner MLPs of all groups run as one batched matmul per
layer, over the rows padded to the largest group, and everything per row (the splines, the
masks, the sums) runs once on the whole batch. Same maths as each flow's own ``log_prob``
(``tests/test_flows_grouped.py`` compares them, values and gradients)::

    lq = grouped_log_prob(flows, x, group)      # == flows[group[i]].log_prob(x[i]) for each i
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device

from ..backends import fusable
from .couplings import affine_transform, conditioner_input, merge, split
from .mlp import ACTIVATIONS
from .splines import rq_spline

__all__ = ["GroupLayout", "group_layout", "grouped_mlp", "stacked_mlp_layers", "stack_parameters",
           "grouped_log_prob", "can_group"]


@dataclass(frozen=True)
class GroupLayout:
    """Where each row sits in the ``(groups, m)`` padded layout of a batch."""

    #: (groups * m,) the row in each padded slot (padding slots repeat row 0)
    slots: Any
    #: (n,) the padded slot of each row
    pos: Any
    #: rows per group after padding (the largest group's count)
    m: int
    n_groups: int


def group_layout(group: np.ndarray, n_groups: int, xp: Any, dev: Any = None) -> GroupLayout:
    """The padded layout of rows with host group indices ``group`` (n,) in ``[0, n_groups)``."""
    g = np.asarray(group, dtype=np.int64)
    n = int(g.shape[0])
    if n and (g.min() < 0 or g.max() >= n_groups):
        raise ValueError(f"group indices must lie in [0, {n_groups}), got [{g.min()}, {g.max()}]")
    counts = np.bincount(g, minlength=n_groups)
    m = max(int(counts.max()) if n else 0, 1)
    order = np.argsort(g, kind="stable")
    starts = np.cumsum(counts) - counts
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, counts)
    pos = g * m + rank
    slots = np.zeros(n_groups * m, dtype=np.int64)
    slots[pos] = np.arange(n)
    return GroupLayout(xp.asarray(slots, device=dev), xp.asarray(pos, device=dev), m, n_groups)


def grouped_mlp(params: Sequence[tuple[Any, Any]], x: Any, layout: GroupLayout,
                activation: str) -> Any:
    """Row ``i`` of ``x`` (n, n_in) through MLP ``group[i]``: ``params`` hold every group's
    layer stacked, ``W`` (groups, n_in, n_out) and ``b`` (groups, n_out)."""
    xp = array_namespace(x)
    h = xp.reshape(xp.take(x, layout.slots, axis=0), (layout.n_groups, layout.m, x.shape[1]))
    h = stacked_mlp_layers(h, tuple(params), activation)
    h = xp.reshape(h, (layout.n_groups * layout.m, h.shape[2]))
    return xp.take(h, layout.pos, axis=0)


@fusable("stacked-mlp")
def stacked_mlp_layers(h: Any, params: Sequence[tuple[Any, Any]], activation: str) -> Any:
    """The layers of a stack of MLPs on ``h`` (groups, m, n_in): group ``g`` by ``params[.][g]``
    (torch runs one ``baddbmm`` per layer and native activations)."""
    act = ACTIVATIONS[activation]
    xp = array_namespace(h)
    last = len(params) - 1
    for k, (w, b) in enumerate(params):
        h = h @ w + b[:, None, :]
        if k != last:
            h = act(xp, h)
    return h


def stack_parameters(flows: Sequence[Any]) -> list[list[tuple[Any, Any]]]:
    """Per coupling, per layer: ``(W, b)`` of all ``flows`` stacked on a new first axis."""
    xp = array_namespace(flows[0].couplings[0].w0)
    out = []
    for blocks in zip(*(f.couplings for f in flows)):
        layers = zip(*(b.mlp for b in blocks))
        out.append([(xp.stack([w for w, _ in wb]), xp.stack([b for _, b in wb]))
                    for wb in layers])
    return out


def can_group(flows: Sequence[Any]) -> bool:
    """Whether ``flows`` share one architecture (masks, sizes, coupling) and no condition."""
    if not flows or any(f is None for f in flows):
        return False
    c0 = flows[0].config
    return c0["condition_dims"] == 0 and all(f.config == c0 for f in flows[1:]) and all(
        type(f.couplings[0].w0) is type(flows[0].couplings[0].w0) for f in flows)


def grouped_log_prob(flows: Sequence[Any], x: Any, group: np.ndarray,
                     stacked: list[list[tuple[Any, Any]]] | None = None) -> Any:
    """``flows[group[i]].log_prob(x[i])`` for every row, in one pass (``-inf`` outside the cube).

    ``group``: host integer array (n,). ``stacked``: the flows' parameters as
    :func:`stack_parameters` gives them (pass it to reuse one stack, or a stack whose gradient
    reaches the flows' own leaves); default: stacked here.
    """
    if not can_group(flows):
        raise ValueError("grouped_log_prob needs flows of one architecture without condition")
    f0 = flows[0]
    xp = f0._check(x, None, "x", unit=False)
    if np.shape(group) != (x.shape[0],):
        raise ValueError(f"group must have shape ({x.shape[0]},) (one flow index per row of x), "
                         f"got {np.shape(group)}")
    layout = group_layout(group, len(flows), xp, device(x))
    if stacked is None:
        stacked = stack_parameters(flows)
    c = f0.config
    inside = xp.all((x >= 0.0) & (x <= 1.0), axis=1)
    y = xp.clip(x, 0.0, 1.0)
    log_det = None
    # density direction: the blocks in order, each ``inverse``
    for blk, params in zip(f0.couplings, stacked):
        cond, trafo = blk._cond_idx, blk._trafo_idx
        _, yc, yt = split(y, cond, trafo)
        out = grouped_mlp(params, conditioner_input(yc), layout, blk.activation)
        p = xp.reshape(out, (y.shape[0], len(trafo), blk.params_per_dim))
        if c["coupling"] == "rqs":
            zt, ld = rq_spline(yt, p, inverse=False, min_width=c["min_bin_width"],
                               min_height=c["min_bin_height"],
                               min_derivative=c["min_bin_derivative"])
        else:
            zt, ld = affine_transform(yt, p, True, blk.clamp)
        y = merge(xp, yc, zt, cond, trafo)
        log_det = ld if log_det is None else log_det + ld
    return xp.where(inside, log_det, -float("inf"))
