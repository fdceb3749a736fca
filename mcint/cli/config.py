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
    out = "out/camel"            # relative to the card's folder, like a file.py integrand
    checkpoint_every = 50        # training steps between out/camel/checkpoint.npz updates
    nonfinite = "raise"          # NaN/inf integrand values: "raise", or "zero" to count as 0

    [sampler_options]            # passed to mcint.Integrator / mcint.VEGAS
    batch_size = 2048

Flags given on the command line override the card. Unknown keys are errors naming the key.

MG7-style tables are accepted too: ``[run]`` (these keys, plus ``name`` for ``out`` and
``output_format`` for ``format``), ``[generation]`` (``events``, ``max_overweight_truncation``
for ``budget``), ``[vegas]`` / ``[madnis]`` (the keyword arguments of ``mcint.VEGAS`` /
``mcint.Integrator``, which become ``sampler_options`` for that sampler), and the process
tables ``[beam]``, ``[process]``, ``[cuts]``, ``[phasespace]`` of a collider run
(:mod:`mcint.collider.card`; docs/umami.md lists every key). Every key of every table is
checked, with a "did you mean".
"""

from __future__ import annotations

import difflib
import math
import os
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

SAMPLERS = ("nis", "vegas")
FORMATS = ("lhe", "lheh5", "npz")
#: what ``nonfinite`` may be (the samplers' option of the same name)
NONFINITE = ("raise", "zero")


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
    #: NaN/inf integrand values: "raise" stops the run, "zero" counts them as 0 (and says so)
    nonfinite: str = "raise"
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
        if not _positive_finite(self.flush_every):
            # NaN compares false with everything: "< 0" let it through, and no partial file
            # was ever published
            raise ConfigError(f"flush_every must be a finite number of seconds > 0; got "
                              f"{self.flush_every!r}")
        _int(self, "checkpoint_every", 1, what="checkpoint_every (training steps)")
        if not isinstance(self.checkpoint, bool):
            raise ConfigError(f"checkpoint must be true or false; got {self.checkpoint!r}")
        if self.nonfinite not in NONFINITE:
            raise ConfigError(f"nonfinite must be one of {', '.join(NONFINITE)}; got "
                              f"{self.nonfinite!r}{did_you_mean(str(self.nonfinite), NONFINITE)}")
        if self.progress not in ("auto", "bar", "plain", "none"):
            raise ConfigError(f"progress must be auto, bar, plain or none; got {self.progress!r}")
        if not isinstance(self.sampler_options, dict):
            raise ConfigError("sampler_options must be a table of keyword arguments")
        if self.plot is not None and not isinstance(self.plot, bool):
            raise ConfigError(f"plot must be true or false; got {self.plot!r}")
        return self


def _positive_finite(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and v > 0)


def _int(cfg: RunConfig, name: str, lo: int, what: str | None = None) -> None:
    v = getattr(cfg, name)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ConfigError(f"{what or name} must be an integer >= {lo}; got {v!r}")


FIELDS = [f.name for f in fields(RunConfig) if f.name != "base_dir"]

#: what each option means: the ``--help`` texts and the run-card listing of ``mcint run --help``
MEANING = {
    "integrand": "built-in example (`mcint examples`), module:function or file.py:function",
    "dims": "dimensions, for module:function targets and scalable examples",
    "sampler": "nis (neural importance sampling) or vegas (VEGAS+)",
    "backend": "array backend: numpy, numba, torch, torch-cuda, cupy, strict",
    "seed": "random seed (same seed + backend = same numbers)",
    "train_calls": "integrand calls for training",
    "integrate_calls": "integrand calls for the final estimate",
    "events": "number of unweighted events to write",
    "out": "output directory, or an event file name (.lhe, .lheh5, .npz) whose folder gets "
           "NAME.run.json, NAME.model.npz, ...",
    "format": "event file format: lhe, lheh5 or npz",
    "plot": "write plots",
    "budget": "share of the cross section allowed in truncated overweights",
    "calibration_calls": "points drawn to choose the maximum weight",
    "batch_size": "points per sampling batch",
    "flush_every": "seconds between valid partial event files (> 0)",
    "checkpoint_every": "training steps between checkpoints in OUT/checkpoint.npz (NIS; also "
                        "written on Ctrl-C/SIGTERM)",
    "checkpoint": "write training checkpoints",
    "save_model": "write model.npz (for `mcint sample`)",
    "progress": "progress display: auto, bar, plain or none",
    "nonfinite": "NaN/inf integrand values: raise (stop with an error naming the point) or "
                 "zero (count them as 0; the summary says how many)",
    "sampler_options": "table of keyword arguments of mcint.Integrator / mcint.VEGAS (VEGAS: "
                       "nitn = training iterations)",
}

#: defaults that depend on the target or the machine, in words
_DEFAULT_WORDS = {
    "integrand": "none, required",
    "dims": "the example's; required for module:function",
    "sampler": "the example's, else nis where torch is installed, else vegas",
    "backend": "$MCINT_BACKEND, else numba if installed, else numpy",
    "train_calls": f"the example's, else {100_000}",
    "integrate_calls": "train_calls / 4, at least 10000",
    "out": "mcint-out; in a run card, relative to the card's folder",
    "format": "--out's suffix, else lhe for physics examples, npz otherwise",
    "plot": "when matplotlib is installed",
    "calibration_calls": "10 x events, within 50000 ... 1000000",
    "budget": "0.001, as MadGraph",
    "progress": "auto: a bar on a terminal",
    "sampler_options": "none; VEGAS nitn 10",
}


def default_text(name: str) -> str:
    """The default of option ``name`` as the help shows it."""
    if name in _DEFAULT_WORDS:
        return _DEFAULT_WORDS[name]
    v = getattr(RunConfig(), name)
    return str(v).lower() if isinstance(v, bool) else str(v)


def option_help(name: str) -> str:
    """``MEANING (default: ...)`` for a flag's help or the run-card listing."""
    return f"{MEANING[name]} (default: {default_text(name)})"


def card_keys_text() -> str:
    """The run-card keys with their meaning and default (``mcint run --help``'s epilog)."""
    w = max(map(len, FIELDS))
    lines = ["run card keys (TOML, dashes or underscores; flags override the card):"]
    for name in FIELDS:
        lines += textwrap.wrap(option_help(name), width=98, initial_indent=f"  {name:<{w}}  ",
                               subsequent_indent=" " * (w + 4))
    return "\n".join(lines)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _toml() -> Any:
    from ..tomlio import toml_module

    try:
        return toml_module()
    except ImportError as exc:
        raise ConfigError(str(exc)) from None


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
    data = _sections(data, p)
    cfg = RunConfig(base_dir=str(p.parent))
    apply(cfg, data, source=str(p))
    if "out" in data:
        cfg.out = card_relative(cfg.out, p.parent)
    return cfg


#: ``[run]`` keys beyond the options' own names (MG7 style), and the options they set
RUN_ALIASES = {"name": "out", "output_format": "format"}
#: the sampler each sampler section configures
SAMPLER_SECTIONS = {"vegas": "vegas", "madnis": "nis"}


def _sampler_keys(section: str) -> list[str]:
    """The keyword arguments a ``[vegas]`` / ``[madnis]`` section may set."""
    import inspect

    if section == "vegas":
        from ..vegas import VEGAS as cls
    else:
        from ..nis import Integrator as cls
    skip = {"self", "integrand", "dims", "channels", "backend", "seed"}
    params = inspect.signature(cls.__init__).parameters
    keys = [k for k, v in params.items() if k not in skip and v.kind != v.VAR_KEYWORD]
    if any(v.kind == v.VAR_KEYWORD for v in params.values()):
        try:    # the Integrator's flat options (grouped in mcint.nis.options)
            from ..nis.options import FLAT
        except ImportError:
            return keys
        keys += [k for k in FLAT if k not in keys]
    return keys


def _sections(data: dict[str, Any], p: Path) -> dict[str, Any]:
    """Fold a card's MG7-style tables ([run], [generation], [vegas], [madnis]) into options;
    the process tables ([beam], [process], [cuts], [phasespace]) stay for the card's target."""
    data = dict(data)
    run = data.pop("run", None)
    if run is not None:
        if not isinstance(run, dict):
            raise ConfigError(f"{p}: [run] must be a table")
        valid = [*FIELDS, *RUN_ALIASES]
        moved: dict[str, Any] = {}
        for k, v in run.items():
            name = str(k).replace("-", "_")
            if name not in valid:
                raise ConfigError(f"{p}: [run]: unknown key {k!r}{did_you_mean(name, valid)}; "
                                  f"valid keys: {', '.join(valid)}")
            target = RUN_ALIASES.get(name, name)
            if target in moved:
                raise ConfigError(f"{p}: [run] sets {target} twice (give {target} or its "
                                  "MG7 name, not both)")
            moved[target] = v
        data = {**moved, **data}      # a top-level key wins over the [run] table
    gen = data.pop("generation", None)
    if gen is not None:
        allowed = ("events", "max_overweight_truncation")
        if not isinstance(gen, dict):
            raise ConfigError(f"{p}: [generation] must be a table")
        for k in gen:
            if k not in allowed:
                raise ConfigError(f"{p}: [generation]: unknown key {k!r}"
                                  f"{did_you_mean(str(k), allowed)}; keys: {', '.join(allowed)}")
        if "max_overweight_truncation" in gen:
            data.setdefault("budget", gen["max_overweight_truncation"])
        if "events" in gen:
            data.setdefault("events", gen["events"])
    given = {sec: data.pop(sec) for sec in SAMPLER_SECTIONS if sec in data}
    for sec, table in given.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{p}: [{sec}] must be a table")
        keys = _sampler_keys(sec)
        for k in table:
            if k not in keys:
                raise ConfigError(f"{p}: [{sec}]: unknown key {k!r}{did_you_mean(str(k), keys)}"
                                  f"; keys: {', '.join(keys)}")
    if given:
        sampler = data.get("sampler")
        if sampler is None and len(given) > 1:
            raise ConfigError(f"{p}: [vegas] and [madnis] both given: say which runs with "
                              "sampler = \"vegas\" or \"nis\"")
        sec = next((s for s in given if SAMPLER_SECTIONS[s] == sampler), None) \
            if sampler is not None else next(iter(given))
        if sec is not None:
            data.setdefault("sampler", SAMPLER_SECTIONS[sec])
            extra = data.get("sampler_options") or {}
            if not isinstance(extra, dict):
                raise ConfigError(f"{p}: sampler_options must be a table")
            data["sampler_options"] = {**given[sec], **extra}
    from ..collider.card import SECTIONS

    collider = {k: data.pop(k) for k in SECTIONS if k in data}
    if collider:
        if "process" not in collider:
            raise ConfigError(f"{p}: [{', '.join(collider)}] without a [process] section")
        if data.get("integrand"):
            raise ConfigError(f"{p}: a card with a [process] section is its own integrand; "
                              f"remove integrand = {data['integrand']!r}")
        # the card itself is the target: `mcint sample` rebuilds the process from it
        data["integrand"] = str(p.resolve())
    return data


def card_relative(path: str, card_dir: Path) -> str:
    """A path written in a run card, resolved against the card's folder (as its integrand
    file is), not against the working directory of whoever runs it."""
    q = Path(path).expanduser()
    return str(q if q.is_absolute() else card_dir / q)


def apply(cfg: RunConfig, values: dict[str, Any], source: str = "options") -> RunConfig:
    """Set options from a mapping, rejecting unknown keys and wrongly typed values."""
    types = {f.name: f.type for f in fields(RunConfig)}
    for key, val in values.items():
        name = str(key).replace("-", "_")
        if name == "target":
            name = "integrand"
        if name not in FIELDS:
            raise ConfigError(f"{source}: unknown key {key!r}{did_you_mean(name, FIELDS)}; "
                              f"valid keys: {', '.join(FIELDS)}")
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
