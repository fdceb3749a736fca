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
from .config import ConfigError


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


def resolve(spec: str, dims: int | None = None, base_dir: str = ".") -> Target:
    """Resolve ``spec`` to a :class:`Target`; every failure is a one-line :class:`ConfigError`."""
    if is_example(spec):
        from .. import examples

        try:
            ex = examples.get(spec)
        except examples.UnknownExample as exc:
            raise ConfigError(str(exc)) from None
        d = ex.resolve_dims(dims)
        f = ex.integrand(d)
        multi = isinstance(f, MultiChannelIntegrand)
        return Target(spec, ex.name, f, int(getattr(f, "dims", d)), ex.exact(d), ex, multi)
    mod_name, sep, attr = spec.rpartition(":")
    if not sep or not mod_name or not attr:
        raise ConfigError(f"integrand {spec!r} is not a built-in example nor module:function")
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
    if "" not in sys.path and os.getcwd() not in sys.path:
        # like `python -m`, let users name modules in the working directory
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"cannot import module {name!r}: {exc}") from None
    except Exception as exc:
        raise ConfigError(f"importing module {name!r} failed: {type(exc).__name__}: {exc}"
                          ) from None
