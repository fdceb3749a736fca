"""The integrand boundary: call a user function on any backend, validate what comes back.

Users write integrands for numpy (``f(x: ndarray[n, d]) -> ndarray[n]``). :class:`Integrand`
converts at the boundary so the same function works whatever the backend, counts calls (call
budgets are in integrand evaluations), and turns every kind of bad output into a clear error:
wrong shape, wrong dtype, non-finite values (or, if asked, zeroes them with a warning), and
exceptions raised inside the function (re-raised with the batch that caused them).

The points ``x`` belong to the sampler (they become the events of ``sample()``), so the
integrand cannot change them: numpy integrands get a read-only view (free; writing raises an
:class:`IntegrandError` naming the integrand), native torch integrands are checked through
torch's in-place version counter (free), other native arrays get a copy. numpy integrands
always see float64 points (float32 ones are widened), so their values have float64's range.

With ``rescale=True`` (what the integrators use) the values are divided by a power of two
``scale`` fixed by the first non-zero batch whenever they lie outside ``[2**-32, 2**32]``:
float32 cannot hold ``1e-46``, and squares of ``1e+-200`` leave float64. The division is exact,
so results multiplied back by ``scale`` do not depend on the integrand's scale.

An integrand written against the array API itself can skip the host round trip with
``Integrand(f, native=True)`` (or by decorating it with :func:`native`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .backends import Backend, get_backend
from .results import pow2_scale

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
    rescale:
        Return ``f / scale`` with ``scale`` a power of two fixed by the first non-zero batch
        (1 unless its largest ``|f|`` lies outside ``[2**-32, 2**32]``); see the module notes.
    """

    def __init__(self, f: Callable[[Any], Any], dims: int, *, nonfinite: str = "raise",
                 native: bool | None = None, rescale: bool = False) -> None:
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
        #: the power of two values are returned divided by (see ``rescale``)
        self.value_scale = ValueScale(auto=rescale)

    @property
    def rescale(self) -> bool:
        """Whether the first non-zero batch fixes :attr:`scale`."""
        return self.value_scale.auto

    @rescale.setter
    def rescale(self, on: bool) -> None:
        self.value_scale.auto = bool(on)

    @property
    def scale(self) -> float:
        """Values are returned divided by this power of two (1 until fixed)."""
        return self.value_scale.value

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
        arg, version = guard_input(x, be, self.native)
        try:
            out = self.f(arg)
        except Exception as exc:
            first = be.to_numpy(x[:1, :])[0].tolist() if n else []
            context = (f"raised by the integrand {self!r} on a batch of {n} points; "
                       f"first point {first}")
            if wrote_into_points(exc):
                raise IntegrandError(f"{_WROTE.format(repr(self))} [{exc}]") from exc
            if _reraisable(exc):
                raise type(exc)(f"{exc} [{context}]") from exc
            raise IntegrandError(f"{type(exc).__name__}: {exc} [{context}]") from exc
        check_unchanged(x, version, repr(self))
        self.calls += n
        dtype = "float32" if str(x.dtype).endswith("float32") else "float64"
        if self.native and be.is_array(out) and not be.numpy_native:
            # stay on the device: one reduction instead of a host copy of every value
            if tuple(out.shape) != (n,):
                raise IntegrandError(f"the integrand {self!r} returned shape {tuple(out.shape)};"
                                     f" expected ({n},)")
            if bool(be.xp.all(be.xp.isfinite(out))):
                return be.asarray(self.value_scale.apply(out, be.xp), dtype=dtype)
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
        elif not vals.flags.writeable:
            # a view of the read-only points (e.g. ``return x[:, 0]``): the values are ours
            vals = vals.copy()
        # scaled before the cast: float32 cannot hold 1e-46
        return be.asarray(self.value_scale.apply(vals, np), dtype=dtype)

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


class ValueScale:
    """A power of two that integrand values are divided by (exact), fixed once.

    With ``auto`` the first batch with a non-zero value fixes it: ``pow2_scale`` of its largest
    ``|f|`` (1 within ``[2**-32, 2**32]``). It never changes after, so every stored value (VEGAS
    sums, NIS buffers) is in the same units.
    """

    def __init__(self, auto: bool = True) -> None:
        self.auto = bool(auto)
        self.value = 1.0
        self.fixed = False

    def set(self, scale: float) -> None:
        """Fix the scale (a positive power of two, e.g. restored from a checkpoint)."""
        s = float(scale)
        if not (math.isfinite(s) and s > 0 and math.frexp(s)[0] == 0.5):
            raise ValueError(f"the value scale must be a positive power of two, got {scale!r}")
        self.value, self.fixed = s, True

    def apply(self, vals: Any, xp: Any) -> Any:
        """``vals / scale`` (finite values, any array namespace ``xp``)."""
        if self.auto and not self.fixed and vals.shape[0]:
            m = float(xp.max(xp.abs(vals)))
            if m > 0:
                self.set(pow2_scale(m))
        return vals if self.value == 1.0 else vals * (1.0 / self.value)


def guard_input(x: Any, be: Backend, native: bool) -> tuple[Any, int | None]:
    """What an integrand is handed for the points ``x``, and the in-place version of ``x`` to
    compare after the call (:func:`check_unchanged`), or None.

    numpy (``native=False`` or a numpy backend): a read-only view, free; for a numpy integrand
    (not ``native``) widened to float64 (float32 points would make numpy compute ``1e-46 *
    f(x)`` in float32, where it is 0; the values are rescaled before they are cast back).
    Native torch tensors: ``x`` itself, checked through the counter every in-place write
    bumps (free; a copy is a pass over the points). Other native arrays (cupy,
    array-api-strict): a copy.
    """
    if native and not be.numpy_native:
        version = getattr(x, "_version", None)
        return (x, version) if version is not None else (be.xp.asarray(x, copy=True), None)
    arg = x if be.numpy_native else be.to_numpy(x)
    if isinstance(arg, np.ndarray):
        widen = not native and arg.dtype == np.float32
        arg = arg.astype(np.float64) if widen else arg.view()
        arg.flags.writeable = False
    return arg, None


def check_unchanged(x: Any, version: int | None, who: str) -> None:
    """Raise when a native torch integrand wrote into its points (see :func:`guard_input`)."""
    if version is not None and x._version != version:
        raise IntegrandError(_WROTE.format(who))


def wrote_into_points(exc: BaseException) -> bool:
    """Whether ``exc`` is numpy refusing a write into read-only points."""
    return isinstance(exc, ValueError) and "read-only" in str(exc)


def unscaled(a: Any, scale: float, dtype: str, xp: Any) -> Any:
    """``a * scale`` (``a``: float64 values of a rescaled integrand) in ``dtype``, or in float64
    when ``dtype`` is float32 and cannot hold every value (it would flush them to 0 or inf)."""
    a = a * scale
    if dtype == "float64":
        return a
    m = xp.abs(a)
    fi = np.finfo(np.float32)
    if bool(xp.all((m == 0) | ((m >= float(fi.tiny)) & (m <= float(fi.max))))):
        return xp.astype(a, xp.float32)
    return a


_WROTE = ("the integrand {0} wrote into its input points x; they belong to the sampler (they "
          "are the sampled events) and are read-only: compute on a copy (x = x.copy())")


def _reraisable(exc: Exception) -> bool:
    """Whether ``type(exc)(message)`` rebuilds the exception (most builtin types do)."""
    try:
        type(exc)("probe")
    except Exception:
        return False
    return True
