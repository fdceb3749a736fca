"""Run options: one dataclass filled from a TOML run card and/or command-line flags.

A run card holds the same options as ``mcint run``'s flags (dashes or underscores)::

    # run.toml
    integrand = "camel"          # built-in example, module:function or file.py:function
    dims = 4                     # for module:function targets and scalable examples
    sampler = "nis"              # or "vegas"
    backend = "numba"
    seed = 7
    train_calls = 200000
    events = 10000
    out = "out/camel"
    checkpoint_every = 50        # training steps between out/camel/checkpoint.npz updates

    [sampler_options]            # passed to mcint.Integrator / mcint.VEGAS
    batch_size = 2048

Flags given on the command line override the card. Unknown keys are errors naming the key.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

SAMPLERS = ("nis", "vegas")
FORMATS = ("lhe", "lheh5", "npz")


class ConfigError(ValueError):
    """A run card or option value that cannot be used."""


@dataclass
class RunConfig:
    """Everything ``mcint run`` needs (see the module docstring for the run-card form)."""

    #: built-in example name, ``module:function`` or ``path/to/file.py:function``
    integrand: str = ""
    dims: int | None = None
    sampler: str | None = None
    backend: str | None = None
    seed: int = 1
    train_calls: int | None = None
    integrate_calls: int | None = None
    events: int = 10_000
    out: str = "mcint-out"
    format: str | None = None
    plot: bool | None = None
    budget: float = 1e-3
    calibration_calls: int | None = None
    batch_size: int = 100_000
    #: seconds between valid partial event files
    flush_every: float = 60.0
    #: training steps between checkpoints (``DIR/checkpoint.npz``; NIS), also on SIGINT/SIGTERM
    checkpoint_every: int = 50
    checkpoint: bool = True
    save_model: bool = True
    progress: str = "auto"
    sampler_options: dict[str, Any] = field(default_factory=dict)
    #: directory of the run card (relative file targets are looked up there first)
    base_dir: str = "."

    def validate(self) -> RunConfig:
        """Check every value; raise :class:`ConfigError` naming the option."""
        if not self.integrand:
            raise ConfigError("no integrand given: name a built-in example (see `mcint "
                              "examples`), module:function, or a run card .toml")
        _int(self, "seed", 0)
        _int(self, "events", 1, what="the number of events")
        for name in ("dims", "train_calls", "integrate_calls", "calibration_calls"):
            if getattr(self, name) is not None:
                _int(self, name, 1)
        _int(self, "batch_size", 1)
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler must be one of {', '.join(SAMPLERS)}; got {self.sampler!r}")
        if self.format is not None and self.format not in FORMATS:
            raise ConfigError(f"format must be one of {', '.join(FORMATS)}; got {self.format!r}")
        if not isinstance(self.budget, (int, float)) or not 0.0 <= float(self.budget) < 1.0:
            raise ConfigError(f"budget (overweight share of the cross section) must be in "
                              f"[0, 1); got {self.budget!r}")
        if not isinstance(self.flush_every, (int, float)) or self.flush_every < 0:
            raise ConfigError(f"flush_every must be seconds >= 0; got {self.flush_every!r}")
        _int(self, "checkpoint_every", 1, what="checkpoint_every (training steps)")
        if not isinstance(self.checkpoint, bool):
            raise ConfigError(f"checkpoint must be true or false; got {self.checkpoint!r}")
        if self.progress not in ("auto", "bar", "plain", "none"):
            raise ConfigError(f"progress must be auto, bar, plain or none; got {self.progress!r}")
        if not isinstance(self.sampler_options, dict):
            raise ConfigError("sampler_options must be a table of keyword arguments")
        if self.plot is not None and not isinstance(self.plot, bool):
            raise ConfigError(f"plot must be true or false; got {self.plot!r}")
        return self


def _int(cfg: RunConfig, name: str, lo: int, what: str | None = None) -> None:
    v = getattr(cfg, name)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ConfigError(f"{what or name} must be an integer >= {lo}; got {v!r}")


FIELDS = [f.name for f in fields(RunConfig) if f.name != "base_dir"]


def _toml() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    try:
        import tomli
    except ImportError:
        raise ConfigError("reading .toml run cards on Python 3.10 needs tomli: "
                          "pip install tomli (or use Python >= 3.11)") from None
    return tomli


def load_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read a TOML run card into a :class:`RunConfig` (not yet validated)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"run card {str(p)!r} does not exist")
    toml = _toml()
    try:
        with open(p, "rb") as fh:
            data = toml.load(fh)
    except toml.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    if "run" in data and isinstance(data["run"], dict):
        # a [run] table is accepted as well as top-level keys
        run = data.pop("run")
        data = {**run, **data}
    cfg = RunConfig(base_dir=str(p.parent))
    apply(cfg, data, source=str(p))
    return cfg


def apply(cfg: RunConfig, values: dict[str, Any], source: str = "options") -> RunConfig:
    """Set options from a mapping, rejecting unknown keys and wrongly typed values."""
    types = {f.name: f.type for f in fields(RunConfig)}
    for key, val in values.items():
        name = str(key).replace("-", "_")
        if name == "target":
            name = "integrand"
        if name not in FIELDS:
            raise ConfigError(f"{source}: unknown key {key!r}; valid keys: {', '.join(FIELDS)}")
        want = str(types[name])
        if val is not None:
            ok = True
            if "dict" in want:
                ok = isinstance(val, dict)
            elif want.startswith("int") or want == "int | None":
                ok = isinstance(val, int) and not isinstance(val, bool)
            elif want.startswith("float"):
                ok = isinstance(val, (int, float)) and not isinstance(val, bool)
            elif want.startswith("bool"):
                ok = isinstance(val, bool)
            elif want.startswith("str"):
                ok = isinstance(val, str)
            if not ok:
                raise ConfigError(f"{source}: {key} must be of type {want}; got "
                                  f"{type(val).__name__} {val!r}")
        setattr(cfg, name, val)
    return cfg
