"""The :class:`Backend` object: an array namespace plus what the array API standard lacks.

A backend bundles
* ``xp`` -- an array-API namespace (via array-api-compat) that the maths is written against,
* ``device`` -- where arrays are created,
* seeded random streams (:meth:`Backend.rng`),
* helpers missing from the standard (weighted bincount, logsumexp, numpy conversion),
* ``kernels`` -- optional fused implementations of named pure array-API kernels for this
  backend's arrays (see :mod:`mcint.backends.dispatch` for which one runs).

The numpy backend is built in; numba, torch, cupy and array-api-strict are plugins (``backends/``)
that subclass :class:`Backend`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .rng import NumpyStream

DTYPES = ("float64", "float32")


class Backend:
    """Array namespace + extras. Subclasses override the hooks below."""

    #: registry name, e.g. ``"numba"``
    name: str = "numpy"
    #: whether arrays live in host memory as numpy arrays (numpy, numba)
    numpy_native: bool = True
    #: whether arrays live on a GPU (cupy, torch-cuda): one pass per big batch, no chunks
    gpu: bool = False

    def __init__(self) -> None:
        import array_api_compat.numpy as xp

        self.xp = xp
        self.device: Any = "cpu"
        self.kernels: dict[str, Callable[..., Any]] = {}

    # -- identity ---------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"<mcint backend {self.name!r} device={self.device!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Backend) and (self.name, str(self.device)) == (
            other.name,
            str(other.device),
        )

    def __hash__(self) -> int:
        return hash((self.name, str(self.device)))

    # -- fused-kernel dispatch (see mcint.backends.dispatch) --------------------------------
    @property
    def array_library(self) -> str:
        """Top-level module of this backend's arrays (``"numpy"``, ``"torch"``, ...)."""
        return self.xp.__name__.rsplit(".", 1)[-1]

    def grad_mode(self) -> bool:
        """Whether operations on this backend's arrays are being recorded for gradients."""
        return False

    # -- dtypes and conversion -------------------------------------------------------------
    def dtype(self, dtype: Any = "float64") -> Any:
        """The namespace's dtype object for ``"float64"``/``"float32"`` (or a dtype object)."""
        if dtype is None:
            dtype = "float64"
        if isinstance(dtype, str):
            if dtype not in DTYPES and dtype not in ("int64", "int32", "bool"):
                raise ValueError(f"unsupported dtype {dtype!r}; use one of {DTYPES}")
            return getattr(self.xp, dtype)
        return dtype

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        """Convert ``a`` (numpy array, scalar, list or an array of another library) to this backend."""
        if not self._is_native(a):
            a = _to_numpy_any(a)
        dt = None if dtype is None else self.dtype(dtype)
        return self.xp.asarray(a, dtype=dt, device=self.device)

    def to_numpy(self, a: Any) -> np.ndarray:
        """Copy/view ``a`` as a numpy array on the host."""
        return _to_numpy_any(a)

    def _is_native(self, a: Any) -> bool:
        return isinstance(a, np.ndarray)

    def is_array(self, a: Any) -> bool:
        """Whether ``a`` is an array of this backend."""
        return self._is_native(a)

    # -- random numbers --------------------------------------------------------------------
    def rng(self, seed: int | None = None) -> NumpyStream:
        """A seeded random stream producing arrays of this backend.

        CPU backends share numpy's PCG64 stream, so numpy, numba, torch-cpu and array-api-strict
        draw bit-identical numbers for the same seed.
        """
        return NumpyStream(seed, self)

    # -- helpers the standard lacks --------------------------------------------------------
    def bincount(self, idx: Any, weights: Any = None, minlength: int = 0) -> Any:
        """Weighted bincount of integer indices ``idx``."""
        xp = self.xp
        out = np.bincount(
            self.to_numpy(idx).astype(np.int64),
            None if weights is None else self.to_numpy(weights),
            minlength=minlength,
        )
        dt = None if weights is None else weights.dtype
        return self.asarray(out, dtype=dt) if dt is not None else xp.asarray(out)

    def sorted_bincount(self, idx: Any, weights: Any, minlength: int = 0) -> Any:
        """Weighted bincount that adds in a fixed order: the same bits on every run.

        GPU libraries' weighted bincounts add with atomics, whose order (and so the last bits
        of every sum) changes from run to run. Here the weights are ordered by index (a stable
        sort), summed cumulatively in float64 and differenced at the bin edges. The rounding
        error of a bin is about ``eps * sum(|w|)`` instead of ``eps * bin``: harmless for the
        float64 histograms VEGAS keeps. Result dtype: that of ``weights``.
        """
        xp = self.xp
        idx = xp.astype(xp.reshape(idx, (-1,)), xp.int64)
        n_bins = max(int(minlength), int(xp.max(idx)) + 1 if idx.shape[0] else 0)
        order = xp.argsort(idx, stable=True)
        keys = xp.take(idx, order)
        w = xp.astype(xp.take(xp.reshape(weights, (-1,)), order), xp.float64)
        csum = xp.concat([xp.zeros((1,), dtype=xp.float64, device=self.device),
                          xp.cumulative_sum(w)])
        edges = xp.searchsorted(keys, xp.arange(n_bins + 1, dtype=xp.int64, device=self.device))
        out = xp.take(csum, edges[1:]) - xp.take(csum, edges[:-1])
        return xp.astype(out, weights.dtype)

    def logsumexp(self, a: Any, axis: int = -1) -> Any:
        """Numerically stable ``log(sum(exp(a), axis))``; ``-inf`` rows stay ``-inf``."""
        return logsumexp(a, axis)

    def synchronize(self) -> None:
        """Wait for queued device work (no-op on CPU); used by benchmarks."""


def _to_numpy_any(a: Any) -> np.ndarray:
    """Best-effort host conversion of any array-like (numpy, torch, cupy, strict, DLPack)."""
    if isinstance(a, np.ndarray):
        return a
    mod = type(a).__module__.split(".")[0]
    if mod == "torch":
        return a.detach().cpu().numpy()
    if mod == "cupy":
        return a.get()
    if mod == "array_api_strict":
        # array-api-strict arrays expose their numpy buffer through __array__ only in old
        # versions; DLPack is the standard route (CPU device).
        try:
            return np.from_dlpack(a)
        except Exception:  # pragma: no cover - older strict versions
            return np.asarray(a._array)
    if hasattr(a, "__dlpack__") and not isinstance(a, (list, tuple, float, int)):
        try:
            return np.from_dlpack(a)
        except Exception:
            pass
    return np.asarray(a)


def logsumexp(a: Any, axis: int = -1, keepdims: bool = False) -> Any:
    """``log(sum(exp(a), axis))`` for any array-API array, stable; a row of ``-inf`` gives
    ``-inf`` without numpy's divide-by-zero warning, and no NaN in an autograd gradient."""
    from array_api_compat import array_namespace

    xp = array_namespace(a)
    m = xp.max(a, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    s = xp.sum(xp.exp(a - m), axis=axis, keepdims=True)
    pos = s > 0
    out = xp.where(pos, xp.log(xp.where(pos, s, xp.ones_like(s))),
                   xp.full_like(s, -math.inf)) + m
    return out if keepdims else xp.squeeze(out, axis=axis)
