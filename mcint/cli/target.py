"""What ``mcint run TARGET`` integrates: a built-in example, ``module:function`` or a file."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..channels import MultiChannelIntegrand
from .config import ConfigError, did_you_mean


@dataclass
class Target:
    """A resolved integrand with what the run needs to know about it."""

    spec: str
    name: str
    integrand: Any
    dims: int
    exact: float | None = None
    example: Any = None
    multichannel: bool = False

    @property
    def event_format(self) -> str:
        return self.example.event_format if self.example is not None else "npz"


def is_example(spec: str) -> bool:
    return ":" not in spec and not spec.endswith((".py", ".toml"))


def runs_code(spec: str) -> bool:
    """Whether resolving ``spec`` imports Python code: anything but a built-in example name."""
    return not is_example(spec)


def require_trust(spec: str, source: str, how: str) -> None:
    """Refuse to run the code that a file found on disk names, unless the user said so.

    A target typed on the command line or in a run card the user passes is their choice; an
    integrand recorded in a run directory's run.json is not (the directory may come from
    anywhere), so running it takes ``how`` (e.g. ``--trust-run-file``).
    """
    if runs_code(spec):
        raise ConfigError(f"{source} names the integrand {spec!r}, which imports and runs that "
                          f"Python code; a run file found in a directory is not trusted: {how}")


def _not_a_target(spec: str) -> str | None:
    """Why an existing path given as the target is none (a directory, a file without a
    function), or ``None``."""
    p = Path(spec).expanduser()
    if p.is_dir():
        from .rundir import RUN_FILE

        msg = (f"{spec!r} is a directory, not an example, module:function, file.py:function or "
               "run card (.toml)")
        if (p / RUN_FILE).is_file() or any(p.glob(f"*.{RUN_FILE}")):
            msg += (f"; it holds an mcint run: `mcint sample {spec}` draws events from its "
                    f"model, `mcint run --resume {spec}` continues it if it was interrupted")
        return msg
    if p.is_file():
        hint = f"name the function: {spec}:FUNCTION" if spec.endswith(".py") else \
            "run cards end in .toml; Python files are given as file.py:function"
        return f"{spec!r} is a file, not an example: {hint}"
    return None


def _example(spec: str, dims: int | None) -> Target:
    from .. import examples

    try:
        ex = examples.get(spec)
    except examples.UnknownExample as exc:
        why = _not_a_target(spec)   # a path given where a target was expected
        raise ConfigError(why or str(exc) + did_you_mean(spec, examples.names())) from None
    try:
        d = ex.resolve_dims(dims)
        f = ex.integrand(d)
    except ValueError as exc:   # a --dims the example does not take: the user's option
        raise ConfigError(str(exc)) from None
    multi = isinstance(f, MultiChannelIntegrand)
    return Target(spec, ex.name, f, int(getattr(f, "dims", d)), ex.exact(d), ex, multi)


def resolve(spec: str, dims: int | None = None, base_dir: str = ".") -> Target:
    """Resolve ``spec`` to a :class:`Target`; every failure is a one-line :class:`ConfigError`."""
    if is_example(spec):
        return _example(spec, dims)
    if spec.endswith(".toml"):
        return _collider_card(spec, dims)
    mod_name, sep, attr = spec.rpartition(":")
    if not sep or not mod_name or not attr:
        raise ConfigError(_not_a_target(spec) or
                          f"integrand {spec!r} is not a built-in example nor module:function")
    obj = getattr(_import(mod_name, base_dir), attr, None) if attr else None
    if obj is None:
        raise ConfigError(f"module {mod_name!r} has no attribute {attr!r}")
    if isinstance(obj, type) and issubclass(obj, MultiChannelIntegrand):
        try:
            obj = obj()
        except TypeError as exc:
            raise ConfigError(f"cannot create {spec} without arguments: {exc}") from None
    if isinstance(obj, MultiChannelIntegrand):
        d = int(obj.dims)
        if dims is not None and dims != d:
            raise ConfigError(f"{spec} has dims={d}; got --dims {dims}")
        return Target(spec, attr, obj, d, _exact(obj), None, True)
    if not callable(obj):
        raise ConfigError(f"{spec} is a {type(obj).__name__}, not a function")
    d = dims if dims is not None else getattr(obj, "dims", None)
    if d is None:
        raise ConfigError(f"{spec}: give the number of dimensions with --dims (or a `dims` "
                          "attribute on the function)")
    return Target(spec, attr, obj, int(d), _exact(obj))


def _collider_card(spec: str, dims: int | None) -> Target:
    """A run card with ``[beam]``/``[process]``/``[cuts]``: its hadronic process (loading its
    UMAMI libraries) as a physics example that writes LHE."""
    from ..collider.card import CardError, load_card
    from ..collider.events import ColliderEvents
    from ..examples import Example

    if not Path(spec).is_file():
        raise ConfigError(f"run card {spec!r} does not exist")
    try:
        proc, info = load_card(spec)
    except CardError as exc:
        raise ConfigError(str(exc)) from None
    if dims is not None and dims != proc.dims:
        raise ConfigError(f"{spec}: the process has dims={proc.dims}; got --dims {dims}")
    banner = {"mcintRunCard": info["card"]}
    if info["param_card"] is not None:
        banner["slha"] = info["param_card"]
    physics = ColliderEvents(proc, info["beams"], info["energies"],
                             resonances=info["resonances"], bw_cutoff=info["bw_cutoff"],
                             pdf_sets=(info["lhaglue"], info["lhaglue"]), banner=banner)
    name = Path(spec).stem
    multi = proc.n_channels > 1
    # one channel is a plain integrand over its chart: any sampler, VEGAS included
    f = proc if multi else _one_channel(proc)
    ex = Example(name, f"collider process from {spec}", proc.dims, lambda d: f,
                 event_format="lhe", defaults={"sampler": "nis"} if multi else {},
                 physics=physics, unit="pb")
    return Target(spec, name, f, proc.dims, None, ex, multi)


def _one_channel(proc: Any) -> Any:
    def f(r: Any) -> Any:
        return proc.evaluate(r, 0).value

    f.dims = proc.dims  # type: ignore[attr-defined]
    f.__name__ = "channel0"
    return f


def _exact(obj: Any) -> float | None:
    e = getattr(obj, "exact", None)
    try:
        v = e() if callable(e) else e
        return None if v is None else float(v)
    except Exception:
        return None


def _import(name: str, base_dir: str) -> Any:
    if name.endswith(".py") or os.sep in name or "/" in name:
        path = Path(name)
        if not path.is_absolute() and (Path(base_dir) / path).is_file():
            path = Path(base_dir) / path
        if not path.is_file():
            raise ConfigError(f"integrand file {str(path)!r} does not exist")
        mod_name = f"mcint_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"cannot import {str(path)!r} as a Python file")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = mod
        try:
            spec.loader.exec_module(mod)
        except Exception as exc:
            raise ConfigError(f"importing {str(path)!r} failed: {type(exc).__name__}: {exc}"
                              ) from None
        return mod
    for d in dict.fromkeys([os.getcwd(), str(Path(base_dir).resolve())]):
        # like `python -m`, let users name modules in the working directory, and a run card
        # name modules next to it (as it names files)
        if d not in sys.path and not (d == os.getcwd() and "" in sys.path):
            sys.path.insert(0, d)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"cannot import module {name!r}: {exc}") from None
    except Exception as exc:
        raise ConfigError(f"importing module {name!r} failed: {type(exc).__name__}: {exc}"
                          ) from None
