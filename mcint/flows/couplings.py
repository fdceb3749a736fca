"""Coupling blocks on the unit hypercube, as :class:`mcint.transforms.Transform` s.

A block leaves the dimensions where its mask is ``True`` unchanged and feeds them (and the
optional condition) to an MLP, whose outputs parametrise an elementwise bijection of [0, 1] for
each of the other dimensions. The last MLP layer starts at zero, so a new block is the identity.

Direction: ``forward`` is the sampling direction (latent ``z`` -> data ``x``), ``inverse`` the
density direction (``x -> z``). For spline blocks the knot x-positions (bin widths) live in data
space and the y-positions (heights) in latent space, as in MadNIS: the density direction evaluates
the spline, sampling solves its quadratic.

Affine blocks on the cube act in logit space: ``x = sigmoid(exp(s) * logit(z) + t)`` with
``s = clamp * tanh(s_raw / clamp)``; this keeps the block a bijection of (0, 1) and the identity
for ``s = t = 0``. Points exactly at 0 or 1 are moved to the nearest representable interior point
first (a measure-zero set).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import array_namespace, device

from ..backends import fusable
from ..transforms import Transform
from .mlp import apply_mlp, init_mlp, mlp_sizes
from .splines import DEFAULT_MIN, rq_spline, spline_params_per_dim

__all__ = ["Coupling", "RQSCoupling", "AffineCoupling", "rqs_coupling", "affine_coupling",
           "affine_transform"]


def split(x: Any, cond_idx: list[int], trafo_idx: list[int]) -> tuple[Any, Any, Any]:
    """``(xp, x[:, cond_idx], x[:, trafo_idx])``."""
    xp = array_namespace(x)
    dev = device(x)
    xc = xp.take(x, xp.asarray(cond_idx, dtype=xp.int64, device=dev), axis=1)
    xt = xp.take(x, xp.asarray(trafo_idx, dtype=xp.int64, device=dev), axis=1)
    return xp, xc, xt


def merge(xp: Any, xc: Any, yt: Any, cond_idx: list[int], trafo_idx: list[int]) -> Any:
    """Undo :func:`split`: columns ``[xc | yt]`` back into their original order."""
    y = xp.concat([xc, yt], axis=1)
    unperm = np.argsort(list(cond_idx) + list(trafo_idx))
    return xp.take(y, xp.asarray(unperm, dtype=xp.int64, device=device(y)), axis=1)


def conditioner_input(xc: Any, condition: Any = None) -> Any:
    """The conditioner's input ``[xc | condition]``; a column of ones when both are empty."""
    xp = array_namespace(xc)
    parts = ([xc] if xc.shape[1] else []) + ([condition] if condition is not None else [])
    if not parts:  # 1-d flow without condition: a constant input
        return xp.ones((xc.shape[0], 1), dtype=xc.dtype, device=device(xc))
    return xp.concat(parts, axis=1) if len(parts) > 1 else parts[0]


@fusable("rqs-coupling")
def rqs_coupling(x: Any, condition: Any, mlp: list[tuple[Any, Any]], cond_idx: list[int],
                 trafo_idx: list[int], activation: str = "relu", inverse: bool = False,
                 min_width: float = DEFAULT_MIN, min_height: float = DEFAULT_MIN,
                 min_derivative: float = DEFAULT_MIN) -> tuple[Any, Any]:
    """A whole spline coupling block on ``x`` (n, d): ``(y, log_det)``.

    The columns ``trafo_idx`` go through splines (data -> latent; ``inverse=True`` for latent ->
    data) whose parameters the MLP ``mlp`` computes from the columns ``cond_idx`` and
    ``condition``; the other columns pass unchanged. The numba backend fuses it all per block of
    rows (``@fusable("rqs-coupling")``).
    """
    xp, xc, xt = split(x, cond_idx, trafo_idx)
    out = apply_mlp(mlp, conditioner_input(xc, condition), activation)
    params = xp.reshape(out, (x.shape[0], len(trafo_idx), -1))
    yt, ld = rq_spline(xt, params, inverse=inverse, min_width=min_width, min_height=min_height,
                       min_derivative=min_derivative)
    return merge(xp, xc, yt, cond_idx, trafo_idx), ld


class Coupling(Transform):
    """Base of coupling blocks: masking, conditioner MLP, parameter bookkeeping.

    Parameters are the MLP's arrays, held as attributes ``w0, b0, w1, b1, ...`` (so that
    :meth:`arrays`, :meth:`to` and saving work unchanged); ``mask`` is a host-side numpy array.
    """

    #: unconstrained parameters per transformed value (set by subclasses)
    params_per_dim: int = 0

    def __init__(self, mask: Any, *, hidden: tuple[int, ...] = (32, 32), condition_dims: int = 0,
                 activation: str = "relu", seed: int | np.random.Generator | None = 0,
                 dtype: str = "float64") -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 1 or mask.all():
            raise ValueError(f"a coupling mask must be 1-d with at least one False (transformed) "
                             f"entry, got {mask.astype(int).tolist()}")
        self.mask = mask
        self.dims = int(mask.size)
        self.condition_dims = int(condition_dims)
        self.activation = activation
        self._cond_idx = [int(i) for i in np.flatnonzero(mask)]
        self._trafo_idx = [int(i) for i in np.flatnonzero(~mask)]
        n_in = max(1, len(self._cond_idx) + self.condition_dims)
        sizes = mlp_sizes(n_in, tuple(hidden), len(self._trafo_idx) * self.params_per_dim)
        self.set_mlp(init_mlp(sizes, seed, zero_last=True, dtype=dtype))

    # -- parameters --------------------------------------------------------------------------
    def set_mlp(self, params: list[tuple[Any, Any]]) -> None:
        """Replace the conditioner's ``(W, b)`` list (arrays of any one backend)."""
        names = []
        for k, (w, b) in enumerate(params):
            setattr(self, f"w{k}", w)
            setattr(self, f"b{k}", b)
            names += [f"w{k}", f"b{k}"]
        self._array_attrs = tuple(names)

    @property
    def mlp(self) -> list[tuple[Any, Any]]:
        """The conditioner's parameters as a list of ``(W, b)``."""
        n = len(self._array_attrs) // 2
        return [(getattr(self, f"w{k}"), getattr(self, f"b{k}")) for k in range(n)]

    # -- pieces ------------------------------------------------------------------------------
    def conditioner(self, xc: Any, condition: Any = None) -> Any:
        """Unconstrained parameters ``(n, k, params_per_dim)`` from the conditioning inputs."""
        xp = array_namespace(xc)
        out = apply_mlp(self.mlp, conditioner_input(xc, condition), self.activation)
        return xp.reshape(out, (xc.shape[0], len(self._trafo_idx), self.params_per_dim))

    def _apply(self, x: Any, condition: Any, inverse: bool) -> tuple[Any, Any]:
        """The whole block (a ``@fusable`` coupling function); ``inverse``: density direction."""
        raise NotImplementedError

    def forward(self, z: Any, condition: Any = None) -> tuple[Any, Any]:
        """Sampling direction ``z -> x``; returns ``(x, log|det dx/dz|)``."""
        return self._apply(z, condition, inverse=False)

    def inverse(self, x: Any, condition: Any = None) -> tuple[Any, Any]:
        """Density direction ``x -> z``; returns ``(z, log|det dz/dx|)``."""
        return self._apply(x, condition, inverse=True)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(mask={self.mask.astype(int).tolist()}, "
                f"condition_dims={self.condition_dims})")


class RQSCoupling(Coupling):
    """Rational-quadratic spline coupling with ``bins`` bins on [0, 1] (identity at start)."""

    def __init__(self, mask: Any, *, bins: int = 10, min_bin_width: float = DEFAULT_MIN,
                 min_bin_height: float = DEFAULT_MIN, min_bin_derivative: float = DEFAULT_MIN,
                 **kwargs: Any) -> None:
        if not isinstance(bins, (int, np.integer)) or isinstance(bins, bool) or bins < 1:
            raise ValueError(f"bins must be a positive integer, got {bins!r}")
        if not (0 <= min_bin_width * bins < 1 and 0 <= min_bin_height * bins < 1
                and min_bin_derivative >= 0):
            raise ValueError(f"need min_bin_width*bins < 1, min_bin_height*bins < 1 and "
                             f"min_bin_derivative >= 0; got {min_bin_width}, {min_bin_height}, "
                             f"{min_bin_derivative} with bins={bins}")
        self.bins = int(bins)
        self.params_per_dim = spline_params_per_dim(self.bins)
        self.min_bin_width = float(min_bin_width)
        self.min_bin_height = float(min_bin_height)
        self.min_bin_derivative = float(min_bin_derivative)
        super().__init__(mask, **kwargs)

    def _apply(self, x: Any, condition: Any, inverse: bool) -> tuple[Any, Any]:
        # the spline maps data -> latent, so the sampling direction is its inverse
        return rqs_coupling(x, condition, self.mlp, self._cond_idx, self._trafo_idx,
                            activation=self.activation, inverse=not inverse,
                            min_width=self.min_bin_width, min_height=self.min_bin_height,
                            min_derivative=self.min_bin_derivative)


def affine_transform(xt: Any, params: Any, inverse: bool, clamp: float) -> tuple[Any, Any]:
    """Elementwise affine map in logit space of ``xt`` (n, k) with ``params`` (n, k, 2):
    ``(y, log_det)``; see :class:`AffineCoupling`."""
    xp = array_namespace(xt, params)
    fi = xp.finfo(xt.dtype)
    xt = xp.clip(xt, float(fi.smallest_normal), 1.0 - float(fi.eps) / 2)
    s = clamp * xp.tanh(params[..., 0] / clamp)
    t = params[..., 1]
    u = xp.log(xt) - xp.log1p(-xt)
    v = (u - t) * xp.exp(-s) if inverse else u * xp.exp(s) + t
    e = xp.exp(-xp.abs(v))
    y = xp.where(v >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    # log sigmoid'(v) - log sigmoid'(u), with log sigmoid'(a) = -softplus(a) - softplus(-a)
    zero = xp.zeros_like(u)
    lsv = -(xp.logaddexp(v, zero) + xp.logaddexp(-v, zero))
    lsu = xp.log(xt) + xp.log1p(-xt)
    ld = lsv - lsu + (-s if inverse else s)
    return y, xp.sum(ld, axis=-1)


@fusable("affine-coupling")
def affine_coupling(x: Any, condition: Any, mlp: list[tuple[Any, Any]], cond_idx: list[int],
                    trafo_idx: list[int], activation: str = "relu", inverse: bool = False,
                    clamp: float = 2.0) -> tuple[Any, Any]:
    """A whole affine coupling block on ``x`` (n, d): ``(y, log_det)``.

    The columns ``trafo_idx`` are mapped by :func:`affine_transform` (``inverse=False``: latent
    -> data) with ``(s, t)`` from the MLP of the columns ``cond_idx`` and ``condition``; the
    other columns pass unchanged. The numba backend fuses it (``@fusable("affine-coupling")``).
    """
    xp, xc, xt = split(x, cond_idx, trafo_idx)
    out = apply_mlp(mlp, conditioner_input(xc, condition), activation)
    params = xp.reshape(out, (x.shape[0], len(trafo_idx), 2))
    yt, ld = affine_transform(xt, params, inverse, clamp)
    return merge(xp, xc, yt, cond_idx, trafo_idx), ld


class AffineCoupling(Coupling):
    """Affine coupling in logit space, ``x = sigmoid(exp(s) logit(z) + t)`` (identity at start)."""

    params_per_dim = 2

    def __init__(self, mask: Any, *, clamp: float = 2.0, **kwargs: Any) -> None:
        if not clamp > 0:
            raise ValueError(f"clamp must be positive, got {clamp!r}")
        self.clamp = float(clamp)
        super().__init__(mask, **kwargs)

    def _apply(self, x: Any, condition: Any, inverse: bool) -> tuple[Any, Any]:
        return affine_coupling(x, condition, self.mlp, self._cond_idx, self._trafo_idx,
                               activation=self.activation, inverse=inverse, clamp=self.clamp)
