"""One switch for the array backend.

>>> import mcint.backends as B
>>> B.available()                     # doctest: +SKIP
['numpy', 'numba', 'torch', 'strict']
>>> be = B.get_backend("numba")       # doctest: +SKIP

Selection order: the explicit ``backend=`` argument, then the backend made current with
:func:`use`, then the ``MCINT_BACKEND`` environment variable, then ``numpy``.

Plugins are registered in the entry-point group ``mcint.backends``; each entry point names a
zero-argument factory returning a :class:`Backend`, or raising :class:`BackendUnavailable` with
the reason (e.g. "cupy is installed but no CUDA device was found"). Plugins are imported only
when asked for, so ``import mcint`` never imports torch, numba or cupy.

Fused kernels: a pure array-API function decorated ``@fusable("name")`` is the reference; a
backend may hold a fused implementation in ``Backend.kernels["name"]``. Which one runs is the
rule of :mod:`mcint.backends.dispatch` (:func:`select_kernel`): a function of the current
backend, the arrays' library and dtype and the grad mode, nothing registered globally.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any

from . import dispatch as _dispatch
from .base import Backend
from .dispatch import kernel_owner, select_kernel, trace

__all__ = [
    "Backend",
    "BackendUnavailable",
    "available",
    "fusable",
    "get_backend",
    "known",
    "register",
    "select_kernel",
    "trace",
    "use",
    "current",
    "default_name",
    "ENV_VAR",
]

ENV_VAR = "MCINT_BACKEND"
ALIASES = {"array-api-strict": "strict", "array_api_strict": "strict", "torch-cpu": "torch",
           "torch_cuda": "torch-cuda", "cuda": "torch-cuda"}


class BackendUnavailable(RuntimeError):
    """A backend that is known but cannot be used here (missing package, no GPU)."""


_factories: dict[str, Callable[[], Backend]] = {"numpy": Backend}
_instances: dict[str, Backend] = {}
_unavailable: dict[str, str] = {}
_discovered = False
_current: contextvars.ContextVar[Backend | None] = contextvars.ContextVar(
    "mcint_backend", default=None
)


def register(name: str, factory: Callable[[], Backend]) -> None:
    """Register a backend factory under ``name`` (plugins normally use entry points instead)."""
    _factories[name] = factory
    _instances.pop(name, None)
    _unavailable.pop(name, None)
    _default.clear()
    _dispatch.clear_cache()


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    for ep in entry_points(group="mcint.backends"):
        if ep.name not in _factories:
            _factories[ep.name] = _lazy_entry_point(ep)


def _lazy_entry_point(ep: Any) -> Callable[[], Backend]:
    def factory() -> Backend:
        try:
            make = ep.load()
        except ImportError as exc:
            raise BackendUnavailable(f"its package is not installed ({exc})") from exc
        return make()

    return factory


def known() -> list[str]:
    """Every registered backend name, usable here or not."""
    _discover()
    return list(_factories)


def _instantiate(name: str) -> Backend:
    if name in _instances:
        return _instances[name]
    if name in _unavailable:
        raise BackendUnavailable(_unavailable[name])
    try:
        be = _factories[name]()
    except BackendUnavailable as exc:
        _unavailable[name] = str(exc)
        raise
    except Exception as exc:  # a broken plugin must not take the others down
        _unavailable[name] = f"failed to load: {type(exc).__name__}: {exc}"
        raise BackendUnavailable(_unavailable[name]) from exc
    _instances[name] = be
    return be


def available() -> list[str]:
    """Names of the backends usable on this machine (imports each plugin once)."""
    out = []
    for name in known():
        try:
            _instantiate(name)
        except BackendUnavailable:
            continue
        out.append(name)
    return out


def unavailable_reasons() -> dict[str, str]:
    """Why each known-but-unusable backend cannot be used here."""
    available()
    return dict(_unavailable)


def get_backend(backend: str | Backend | None = None) -> Backend:
    """Resolve a backend name (or ``None`` for the current/default one) to a :class:`Backend`.

    Raises ``ValueError`` for an unknown name and :class:`BackendUnavailable` for a backend that
    cannot run here; both messages list the available backends.
    """
    if isinstance(backend, Backend):
        return backend
    if backend is None:
        cur = _current.get()
        if cur is not None:
            return cur
        env = os.environ.get(ENV_VAR)
        if not env:
            return _instantiate(default_name())
        backend, source = env, f" (from ${ENV_VAR})"
    else:
        source = ""
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a name or a Backend, got {type(backend).__name__}")
    name = ALIASES.get(backend.strip().lower(), backend.strip().lower())
    _discover()
    if name not in _factories:
        raise ValueError(
            f"unknown backend {backend!r}{source}{_did_you_mean(name)}; available backends: "
            f"{', '.join(known())}"
        )
    try:
        return _instantiate(name)
    except BackendUnavailable as exc:
        others = [n for n in known() if n != name]
        raise BackendUnavailable(
            f"backend {name!r}{source} is not usable here: {exc}{_install_hint(name, exc)}; "
            f"other backends: {', '.join(others)}"
        ) from None


# The error messages name backends without importing them (``available()`` would import
# torch, numba and cupy: seconds, for a typo).
def _did_you_mean(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, known() + list(ALIASES), n=1)
    return f" (did you mean {ALIASES.get(close[0], close[0])!r}?)" if close else ""


def _install_hint(name: str, exc: BaseException) -> str:
    """`` (pip install 'mcint[EXTRA]')`` when the plugin's message gives no hint and mcint
    has an extra of the backend's name (``torch-cuda`` -> ``torch``)."""
    if "pip install" in str(exc) or "not installed" not in str(exc):
        return ""
    try:
        from importlib.metadata import PackageNotFoundError, metadata

        extras = set(metadata("mcint").get_all("Provides-Extra") or [])
    except (ImportError, PackageNotFoundError):  # pragma: no cover - mcint not installed
        return ""
    extra = name if name in extras else name.split("-")[0]
    return f" (pip install 'mcint[{extra}]')" if extra in extras else ""


#: the CPU backends tried, fastest first, when neither ``backend=`` nor $MCINT_BACKEND names one
DEFAULT_ORDER = ("numba", "numpy")
_default: list[str] = []


def default_name() -> str:
    """The backend used when none is named and $MCINT_BACKEND is unset: the first of
    :data:`DEFAULT_ORDER` that works here (numba, whose fused kernels run the same maths several
    times faster, when it is installed; else numpy)."""
    if not _default:
        import importlib.util

        _discover()
        for name in DEFAULT_ORDER:
            if name not in _factories:
                continue
            try:
                if name != "numpy" and importlib.util.find_spec(name) is None:
                    continue
                _instantiate(name)
            except (BackendUnavailable, ImportError, ValueError, AttributeError):
                continue   # not installed, blocked, or broken: the next one
            _default.append(name)
            break
    return _default[0]


def _env_default() -> Backend:
    name = _dispatch.getenv(ENV_VAR)
    return get_backend(name) if name else _instantiate(default_name())


def current() -> Backend:
    """The backend that fused-kernel dispatch uses now."""
    return get_backend(None)


@contextlib.contextmanager
def use(backend: str | Backend | None) -> Iterator[Backend]:
    """Make ``backend`` current inside the ``with`` block (thread- and task-local)."""
    be = get_backend(backend)
    token = _current.set(be)
    try:
        yield be
    finally:
        _current.reset(token)


def fusable(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a pure array-API function as a kernel that a backend may replace by a fused one.

    The decorated function stays the reference implementation (and the test oracle). Each call
    runs what :func:`select_kernel` picks for (the current backend, the first argument's array
    library and dtype, the grad mode), and the reference when it picks nothing or the fused
    kernel declines the arguments (returns ``NotImplemented``). ``f.reference`` always gives the
    pure version, ``f.kernel_name`` the name backends register a fused version under.
    """

    def deco(ref: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(ref)
        def dispatch(*args: Any, **kwargs: Any) -> Any:
            if args:
                be = _current.get() or _env_default()
                impl = _dispatch._select(name, be, args[0])
                if impl is not None and _dispatch.fused_enabled():
                    out = impl(*args, **kwargs)
                    if out is not NotImplemented:
                        if _dispatch._trace.get() is not None:
                            _dispatch.record(name, kernel_owner(be, args[0]).name)
                        return out
            if _dispatch._trace.get() is not None:
                _dispatch.record(name, "reference")
            return ref(*args, **kwargs)

        dispatch.reference = ref  # type: ignore[attr-defined]
        dispatch.kernel_name = name  # type: ignore[attr-defined]
        return dispatch

    return deco
