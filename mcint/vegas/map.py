"""The VEGAS adaptive map: a separable piecewise-linear bijection of the unit hypercube.

``x = AdaptiveMap(dims).forward(y)`` maps ``y`` uniform in ``[0, 1]^d`` to ``x`` in
``[0, 1]^d``: axis ``d`` is cut into ``ninc`` increments of equal probability and widths
``dx``, so the Jacobian is ``prod_d ninc * dx_d`` and
``log_det = sum_d log(ninc * dx_d)``. Training (Lepage's algorithm) accumulates ``(f * J)**2``
per increment, smooths it with its neighbours, damps it with exponent ``alpha`` and regrids so
that every increment carries an equal share. Other domains: compose with
:class:`mcint.transforms.Affine`.

The grid is a plain array of shape ``(dims, ninc + 1)`` (:attr:`AdaptiveMap.grid`); a
piecewise-linear map is a spline with linear bins, which is how flows start from a VEGAS grid.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ..backends import Backend, get_backend
from ..results import pow2_scale
from ..transforms import Transform, check_batch
from . import kernels as K
from ._util import backend_of, check_int


class AdaptiveMap(Transform):
    """Adaptive VEGAS map on ``[0, 1]^dims`` with ``ninc`` increments per axis.

    Parameters
    ----------
    dims:
        Number of dimensions (>= 1).
    ninc:
        Increments per axis (>= 2); vegas' default is 1000.
    grid:
        Optional initial grid, shape ``(dims, ninc + 1)``, strictly increasing rows from 0 to 1.
    backend:
        Where the grid lives (name, :class:`~mcint.backends.Backend` or ``None`` = current).
    """

    _array_attrs = ("grid",)

    def __init__(self, dims: int, ninc: int = 1000, *, grid: Any = None,
                 backend: str | Backend | None = None) -> None:
        self.dims = check_int(dims, "dims", 1)
        be = get_backend(backend)
        if grid is None:
            ninc = check_int(ninc, "ninc", 2)
            g = np.broadcast_to(np.linspace(0.0, 1.0, ninc + 1), (self.dims, ninc + 1)).copy()
        else:
            g = _check_grid(be.to_numpy(grid) if not isinstance(grid, np.ndarray) else grid,
                            self.dims)
        self.grid = be.asarray(g, dtype="float64")
        self._sum_f: Any = None
        self._n_f: Any = None

    # -- the grid --------------------------------------------------------------------------
    @property
    def grid(self) -> Any:
        """Increment edges, shape ``(dims, ninc + 1)``, float64 unless converted with ``to``."""
        return self._grid

    @grid.setter
    def grid(self, value: Any) -> None:
        self._grid = value
        self._cast: dict[Any, Any] = {}
        # a new grid (adapt, ``to``) invalidates training data collected on the old one
        self._sum_f = self._n_f = None

    @property
    def ninc(self) -> int:
        """Increments per axis."""
        return int(self._grid.shape[1]) - 1

    @property
    def backend(self) -> Backend:
        """The backend holding the grid."""
        return backend_of(self._grid)

    def _grid_for(self, a: Any) -> Any:
        """The grid in ``a``'s dtype (cached), after checking both live in one namespace."""
        g = self._grid
        if g.dtype == a.dtype:
            return g
        key = str(a.dtype)
        out = self._cast.get(key)
        if out is None:
            xp = array_namespace(g)
            out = self._cast[key] = xp.astype(g, a.dtype)
        return out

    # -- the bijection ---------------------------------------------------------------------
    def forward(self, y: Any) -> tuple[Any, Any]:
        """``(x, log|dx/dy|)`` for ``y`` in ``[0, 1]^dims``."""
        x, jac = self.forward_jac(y)
        return x, array_namespace(jac).log(jac)

    def forward_jac(self, y: Any) -> tuple[Any, Any]:
        """``(x, jac)`` with the Jacobian itself (what VEGAS weights need, one log fewer)."""
        xp = check_batch(y, self.dims, "y")
        self._check_namespace(xp, y)
        return K.map_forward(self._grid_for(y), y)

    def inverse(self, x: Any) -> tuple[Any, Any]:
        """``(y, log|dy/dx|)`` for ``x`` in ``[0, 1]^dims``."""
        y, jac = self.inverse_jac(x)
        return y, -array_namespace(jac).log(jac)

    def inverse_jac(self, x: Any) -> tuple[Any, Any]:
        """``(y, jac)`` with ``jac = dx/dy`` at the returned ``y`` (the forward Jacobian)."""
        xp = check_batch(x, self.dims, "x")
        self._check_namespace(xp, x)
        return K.map_inverse(self._grid_for(x), x)

    def _check_namespace(self, xp: Any, a: Any) -> None:
        if array_namespace(self._grid) is not xp:
            raise TypeError(
                f"the map's grid lives on backend {self.backend.name!r} but the points are "
                f"{type(a).__module__}.{type(a).__name__}; move the map with "
                f"map.to(backend) first")

    # -- training --------------------------------------------------------------------------
    def add_training_data(self, y: Any, f2: Any) -> None:
        """Accumulate training weights ``f2`` (VEGAS: ``(f * J)**2``) at points ``y``."""
        check_batch(y, self.dims, "y")
        if tuple(f2.shape) != (y.shape[0],):
            raise ValueError(f"training weights f2 must have shape ({y.shape[0]},) like the "
                             f"{y.shape[0]} points y, got {tuple(f2.shape)}")
        if bool(array_namespace(f2).any(f2 < 0)):
            raise ValueError("training weights f2 must be >= 0 (VEGAS uses (f*J)**2); got "
                             "negative values: pass abs(f) or f**2 for a signed integrand")
        be = backend_of(self._grid)
        s, c = K.training_data(y, f2, self.ninc, be)
        if self._sum_f is None:
            self._sum_f, self._n_f = s, c
        else:
            self._sum_f, self._n_f = self._sum_f + s, self._n_f + c

    def clear(self) -> None:
        """Forget accumulated training data."""
        self._sum_f = self._n_f = None

    def adapt(self, alpha: float = 0.5, ninc: int | None = None) -> bool:
        """Regrid from the accumulated training data; returns whether the grid changed.

        ``alpha`` (>= 0) damps the adaptation (0: no adaptation, only a change of ``ninc``
        that keeps the map's density). Training data that is all zero (an integrand that
        vanishes on every sample) or not finite leaves the grid as it is, with a warning in the
        latter case. The training data is cleared afterwards.
        """
        alpha = _check_alpha(alpha)
        new_ninc = self.ninc if ninc is None else check_int(ninc, "ninc", 2)
        sum_f, n_f = self._sum_f, self._n_f
        if sum_f is not None:
            xp = array_namespace(sum_f)
            total = float(xp.sum(sum_f))
            if not math.isfinite(total):
                warnings.warn("VEGAS training data is not finite ((f*J)^2 overflowed?); "
                              "the map is not adapted this time", RuntimeWarning, stacklevel=2)
                sum_f = None
            elif total == 0.0:
                sum_f = None
        if sum_f is None and new_ninc == self.ninc:
            self.clear()
            return False
        self.grid = K.adapt_grid(self._grid, sum_f, n_f, alpha if sum_f is not None else 0.0,
                                 new_ninc)
        return True

    def adapt_to_samples(self, x: Any, f: Any | Callable[[Any], Any], nitn: int = 5,
                         alpha: float = 1.0) -> None:
        """Adapt the map to a function known at points ``x`` (in ``[0, 1]^dims``).

        ``f`` is an array of values at ``x`` or a callable ``f(x)``. Each of ``nitn`` rounds
        maps ``x`` back to ``y``, accumulates ``(f * J)**2`` and regrids, as vegas does;
        fewer than ``10 * ninc`` samples use a coarser grid during the rounds.
        """
        be = self.backend
        x = be.asarray(x)
        xp = check_batch(x, self.dims, "x")
        fx = f(x) if callable(f) else f
        fx = be.asarray(fx, dtype="float64")
        if tuple(fx.shape) != (x.shape[0],):
            raise ValueError(f"f has shape {tuple(fx.shape)} but x has {x.shape[0]} points")
        if not bool(xp.all(xp.isfinite(fx))):
            raise ValueError("adapt_to_samples: f has non-finite values")
        # the map depends on f only up to a factor: a power of two keeps (f*J)**2 in range
        unit = pow2_scale(float(xp.max(xp.abs(fx))) if x.shape[0] else 0.0)
        if unit != 1.0:
            fx = fx * (1.0 / unit)
        nitn = check_int(nitn, "nitn", 1)
        old_ninc = self.ninc
        tmp_ninc = min(old_ninc, int(x.shape[0] / 10))
        if tmp_ninc < 2:
            raise ValueError(f"adapt_to_samples needs at least 20 samples, got {x.shape[0]}")
        if tmp_ninc != old_ninc:
            self.adapt(alpha=0.0, ninc=tmp_ninc)
        for _ in range(nitn):
            y, jac = self.inverse_jac(x)
            self.add_training_data(y, (xp.astype(jac, xp.float64) * fx) ** 2)
            self.adapt(alpha=alpha, ninc=tmp_ninc)
        if tmp_ninc != old_ninc:
            self.adapt(alpha=0.0, ninc=old_ninc)

    # -- presentation ----------------------------------------------------------------------
    def to_numpy(self) -> np.ndarray:
        """The grid as a numpy array."""
        return backend_of(self._grid).to_numpy(self._grid)

    def __repr__(self) -> str:
        return f"AdaptiveMap(dims={self.dims}, ninc={self.ninc})"


#: the largest map damping exponent: the adaptation raises each increment's smoothed share
#: ``(1 - d) / log(1 / d)`` (at least ~1/745 for d > 0 in float64) to the power ``alpha``;
#: beyond ~100 those weights underflow to 0 and the new grid divides by zero. vegas documents
#: no bound (its default is 0.5; 0.1-2 are the values in use), 10 leaves ample room
ALPHA_MAX = 10.0


def _check_alpha(alpha: float) -> float:
    msg = f"alpha (the map damping exponent) must be a number in [0, {ALPHA_MAX:g}]"
    if isinstance(alpha, (bool, np.bool_, str)) or np.ndim(alpha) != 0:
        raise ValueError(f"{msg}, got {alpha!r}")
    try:
        ok = bool(0 <= alpha <= ALPHA_MAX)  # compared before float(): no OverflowError
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{msg}, got {alpha!r}")
    return float(alpha)


def _check_grid(g: Any, dims: int) -> np.ndarray:
    g = np.asarray(g, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] != dims or g.shape[1] < 3:
        raise ValueError(f"grid must have shape (dims={dims}, ninc + 1) with ninc >= 2, "
                         f"got {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValueError("grid must be finite")
    if np.any(np.diff(g, axis=1) <= 0):
        d = int(np.flatnonzero(np.any(np.diff(g, axis=1) <= 0, axis=1))[0])
        raise ValueError(f"grid rows must be strictly increasing (row {d} is not)")
    if np.any(np.abs(g[:, 0]) > 1e-12) or np.any(np.abs(g[:, -1] - 1) > 1e-12):
        raise ValueError("grid rows must run from 0 to 1 (map other domains with Affine)")
    return g
