"""The integrand boundary: call a user function on any backend, validate what comes back.

Users write integrands for numpy (``f(x: ndarray[n, d]) -> ndarray[n]``). :class:`Integrand`
converts at the boundary so the same function works whatever the backend, counts calls (call
budgets are in integrand evaluations), and turns every kind of bad output into a clear error:
wrong shape, wrong dtype, non-finite values (or, if asked, zeroes them with a warning), and
exceptions raised inside the function (re-raised with the batch that caused them).

An integrand written against the array API itself can skip the host round trip with
``Integrand(f, native=True)`` (or by decorating it with :func:`native`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .backends import Backend, get_backend

NONFINITE_POLICIES = ("raise", "zero")


class IntegrandError(ValueError):
    """The integrand returned something mcint cannot use."""


class NonFiniteIntegrandError(IntegrandError, FloatingPointError):
    """The integrand returned NaN or inf."""


def native(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Mark ``f`` as accepting backend arrays directly (no conversion to numpy)."""
    f.__mcint_native__ = True  # type: ignore[attr-defined]
    return f


class Integrand:
    """Validated, backend-agnostic wrapper around a user integrand.

    Parameters
    ----------
    f:
        ``f(x) -> values`` with ``x`` of shape ``(n, dims)`` and values of shape ``(n,)``.
    dims:
        Dimension of the integration domain (the unit hypercube unless a mapping is used).
    nonfinite:
        ``"raise"`` (default): NaN/inf values raise :class:`NonFiniteIntegrandError` naming how
        many points and the first offending one; ``"zero"``: they count as 0 with a warning.
    native:
        Pass backend arrays to ``f`` unconverted (``f`` must be array-API code).
    """

    def __init__(self, f: Callable[[Any], Any], dims: int, *, nonfinite: str = "raise",
                 native: bool | None = None) -> None:
        if isinstance(f, Integrand):
            f = f.f
        if not callable(f):
            raise TypeError(f"the integrand must be callable, got {type(f).__name__}")
        if not isinstance(dims, (int, np.integer)) or isinstance(dims, bool) or dims < 1:
            raise ValueError(f"dims must be a positive integer, got {dims!r}")
        if nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")
        self.f = f
        self.dims = int(dims)
        self.nonfinite = nonfinite
        self.native = bool(getattr(f, "__mcint_native__", False) if native is None else native)
        #: total number of points evaluated so far
        self.calls = 0
        #: number of non-finite values replaced by zero so far
        self.nonfinite_count = 0

    def __repr__(self) -> str:
        name = getattr(self.f, "__name__", type(self.f).__name__)
        return f"Integrand({name}, dims={self.dims})"

    def __call__(self, x: Any, backend: str | Backend | None = None) -> Any:
        """Evaluate on a backend batch ``x`` of shape ``(n, dims)``; returns a backend array."""
        be = get_backend(backend)
        if x.ndim != 2 or x.shape[1] != self.dims:
            raise IntegrandError(
                f"integrand points must have shape (n, {self.dims}), got {tuple(x.shape)}"
            )
        n = int(x.shape[0])
        arg = x if (self.native or be.numpy_native) else be.to_numpy(x)
        try:
            out = self.f(arg)
        except Exception as exc:
            first = be.to_numpy(x[:1, :])[0].tolist() if n else []
            context = (f"raised by the integrand {self!r} on a batch of {n} points; "
                       f"first point {first}")
            if _reraisable(exc):
                raise type(exc)(f"{exc} [{context}]") from exc
            raise IntegrandError(f"{type(exc).__name__}: {exc} [{context}]") from exc
        self.calls += n
        dtype = "float32" if str(x.dtype).endswith("float32") else "float64"
        if self.native and be.is_array(out) and not be.numpy_native:
            # stay on the device: one reduction instead of a host copy of every value
            if tuple(out.shape) != (n,):
                raise IntegrandError(f"the integrand {self!r} returned shape {tuple(out.shape)};"
                                     f" expected ({n},)")
            if bool(be.xp.all(be.xp.isfinite(out))):
                return be.asarray(out, dtype=dtype)
        vals = self._check(out, n)
        bad = ~np.isfinite(vals)
        if bad.any():
            nbad = int(bad.sum())
            i = int(np.flatnonzero(bad)[0])
            where = be.to_numpy(x[i:i + 1, :])[0].tolist()
            msg = (f"the integrand returned {nbad} non-finite value(s) out of {n} "
                   f"(first: {float(vals[i])!r} at x={where})")
            if self.nonfinite == "raise":
                raise NonFiniteIntegrandError(
                    msg + "; fix the integrand or pass nonfinite='zero' to count them as 0")
            warnings.warn(msg + "; counted as zero", RuntimeWarning, stacklevel=3)
            self.nonfinite_count += nbad
            vals = np.where(bad, 0.0, vals)
        return be.asarray(vals, dtype=dtype)

    def _check(self, out: Any, n: int) -> np.ndarray:
        """Host view of the output, after shape and dtype checks."""
        if out is None:
            raise IntegrandError(f"the integrand {self!r} returned None; it must return an array "
                                 f"of shape ({n},)")
        try:
            vals = get_backend("numpy").to_numpy(out) if not isinstance(out, np.ndarray) else out
        except Exception as exc:
            raise IntegrandError(
                f"the integrand {self!r} returned a {type(out).__name__}, not an array") from exc
        vals = np.asarray(vals)
        if vals.shape == (n, 1):
            vals = vals[:, 0]
        if vals.shape != (n,):
            raise IntegrandError(
                f"the integrand {self!r} returned shape {vals.shape}; expected ({n},) "
                f"for a batch of {n} points of dimension {self.dims}")
        if np.iscomplexobj(vals):
            raise IntegrandError(f"the integrand {self!r} returned complex values ({vals.dtype});"
                                 " return a real array (e.g. |M|^2, not M)")
        if not (np.issubdtype(vals.dtype, np.floating) or np.issubdtype(vals.dtype, np.integer)
                or vals.dtype == np.bool_):
            raise IntegrandError(
                f"the integrand {self!r} returned dtype {vals.dtype}; expected a real float array")
        return vals.astype(np.float64, copy=False)


def _reraisable(exc: Exception) -> bool:
    """Whether ``type(exc)(message)`` rebuilds the exception (most builtin types do)."""
    try:
        type(exc)("probe")
    except Exception:
        return False
    return True
