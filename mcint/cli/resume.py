"""Interrupted ``mcint run`` jobs: what is saved where, and how ``mcint run --resume`` continues.

A NIS run checkpoints its training to ``DIR/checkpoint.npz`` (every ``checkpoint_every`` steps
and on SIGINT/SIGTERM) and records its options in ``DIR/run.json`` from the start
(``status``: ``training`` -> ``trained`` -> ``done``). ``--resume DIR`` rebuilds the same
configuration from run.json (with the backend and sampler the run resolved, whatever
``$MCINT_BACKEND`` says now), restores the sampler from the checkpoint (finishing an
unfinished ``train()``), then integrates and writes the events as the first run would have:
with the same seed and CPU backend the numbers are identical to an uninterrupted run. An
integrand that is Python code (``file.py:function``, ``module:function``) is run from a
run.json only with ``--trust-run-file``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import FIELDS, ConfigError, RunConfig, apply

CHECKPOINT_FILE = "checkpoint.npz"
#: options that may differ in the resumed process (they do not change any number); others
#: may be given only with the recorded value
RESUMABLE_OVERRIDES = ("progress", "plot")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so writers clean up; exits with 143 instead of 130."""

    signum = 15


class Interrupted(Exception):
    """A run stopped by a signal, with the one line telling the user what was kept."""

    def __init__(self, msg: str, code: int) -> None:
        super().__init__(msg)
        self.code = code


def exit_code(exc: BaseException) -> int:
    """128 + signal number, as shells report a process stopped by that signal."""
    return 128 + 15 if isinstance(exc, Terminated) else 130


def run_tag(cfg: RunConfig, dims: int) -> dict[str, Any]:
    """What a checkpoint must match to belong to this run (stored in the checkpoint)."""
    return {"integrand": cfg.integrand, "dims": int(dims), "seed": int(cfg.seed)}


def portable(cfg: RunConfig) -> RunConfig:
    """Make file targets and the run card's directory absolute, so ``--resume`` works from
    any working directory."""
    cfg.base_dir = str(Path(cfg.base_dir).resolve())
    mod, sep, attr = cfg.integrand.rpartition(":")
    if sep and (mod.endswith(".py") or "/" in mod or os.sep in mod):
        p = Path(mod).expanduser()
        if not p.is_absolute():
            in_base = Path(cfg.base_dir) / p
            p = in_base if in_base.is_file() else p.resolve()
        cfg.integrand = f"{p}:{attr}"
    return cfg


@dataclass
class ResumeState:
    """A run directory to continue: its config, checkpoint and previous report."""

    run_dir: Path
    checkpoint: Path
    report: dict[str, Any]


def _find_run_json(spec: str) -> tuple[Path, str]:
    from .rundir import RUN_FILE, event_suffix

    p = Path(spec).expanduser()
    suffix = event_suffix(p)
    if suffix:   # --out DIR/NAME.lhe: files are DIR/NAME.*
        run_dir, prefix = (p.parent if str(p.parent) else Path(".")), p.name[: -len(suffix)] + "."
    else:
        run_dir, prefix = p, ""
    if not run_dir.is_dir():
        raise ConfigError(f"cannot resume: {str(run_dir)!r} is not a directory (give the "
                          "--out directory of the interrupted run)")
    run = run_dir / f"{prefix}{RUN_FILE}"
    if not run.is_file() and not prefix:
        named = sorted(run_dir.glob(f"*.{RUN_FILE}"))
        if len(named) == 1:
            run, prefix = named[0], named[0].name[: -len(RUN_FILE)]
    if not run.is_file():
        raise ConfigError(f"cannot resume: no {RUN_FILE} in {str(run_dir)!r} (not the output "
                          "directory of an `mcint run`)")
    return run, prefix


def _read_run(run: Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(report, options, status) of a run file; a one-line error if it is not one."""
    from ..serialize import parse_json

    try:
        rep = parse_json(run.read_bytes(), str(run), "run file", ConfigError)
        opts = dict(rep["options"])
        status = rep.get("status", "done")   # run files without a status are finished runs
        if not isinstance(opts.get("integrand"), str):
            raise TypeError("options.integrand is not a string")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot resume: {str(run)!r} is not a readable run file "
                          f"({type(exc).__name__}: {exc})") from None
    return rep, opts, status


def _current_out(run: Path, prefix: str, opts: dict[str, Any]) -> str:
    """The run's --out where the run is now (the directory may have moved since)."""
    orig = Path(str(opts.get("out", "")))
    return str(run.parent / orig.name) if prefix else str(run.parent)


#: flags of run options that are true/false switches, by (option, value)
_SWITCHES = {("plot", True): "--plot", ("plot", False): "--no-plot",
             ("checkpoint", False): "--no-checkpoint", ("save_model", False): "--no-save-model"}


def rerun_command(rep: dict[str, Any], opts: dict[str, Any], out: str) -> str:
    """The ``mcint run`` command that starts the recorded run again over its outputs: the
    target, the run's resolved sampler, backend and seed, every recorded option that differs
    from the default, ``--out`` and ``--force``."""
    import shlex

    default = RunConfig()
    given = {**opts, "sampler": rep.get("sampler") or opts.get("sampler"),
             "backend": recorded_backend(rep), "seed": opts.get("seed", rep.get("seed"))}
    words = ["mcint", "run", str(opts.get("integrand"))]
    for name in FIELDS:
        v = given.get(name)
        if name in ("integrand", "out", "progress", "sampler_options") or v is None:
            continue
        if isinstance(v, bool):
            flag = _SWITCHES.get((name, v))
            words += [flag] if flag and v != getattr(default, name) else []
        elif name in ("sampler", "backend", "seed") or v != getattr(default, name):
            words += [f"--{name.replace('_', '-')}", str(v)]
    words += ["--out", out, "--force"]
    cmd = " ".join(shlex.quote(w) for w in words)
    extra = opts.get("sampler_options")
    if extra and not str(opts.get("integrand")).endswith(".toml"):
        cmd += f" (with sampler_options {extra!r} in a run card: they have no flag)"
    return cmd


def _check_resumable(rep: dict[str, Any], status: str, run: Path, ck: Path,
                     opts: dict[str, Any], prefix: str) -> None:
    """A finished run, a VEGAS run or a run without checkpoint cannot continue."""
    where = str(run.parent)
    if status == "done":
        raise ConfigError(f"cannot resume: the run in {where!r} has finished (status 'done' "
                          f"in {run.name}); start a new run instead")
    if rep.get("sampler") == "vegas":
        raise ConfigError(f"cannot resume: the run in {where!r} uses VEGAS, which keeps no "
                          "checkpoint (it retrains in seconds): start it again with "
                          f"`{rerun_command(rep, opts, _current_out(run, prefix, opts))}`")
    if not ck.is_file():
        raise ConfigError(f"cannot resume: no checkpoint {ck.name!r} in {where!r} (stopped "
                          "before its first checkpoint, or run with --no-checkpoint); start "
                          "the run again with --force")


def _check_overrides(overrides: dict[str, Any], opts: dict[str, Any],
                     backend: str | None) -> None:
    """Options given with --resume must not change a number of the run."""
    recorded = {**opts, "backend": backend}
    bad = sorted(k for k, v in overrides.items() if k not in RESUMABLE_OVERRIDES
                 and _canonical(k, v) != _canonical(k, recorded.get(k)))
    if "backend" in bad:
        raise ConfigError(f"cannot resume on backend {overrides['backend']!r}: the run trained "
                          f"on {backend!r}, and a resumed run continues on the backend it "
                          "started on (so its numbers are an uninterrupted run's); start a new "
                          "run for another backend")
    if bad:
        raise ConfigError(f"--resume continues the run with its recorded options; "
                          f"{', '.join('--' + k.replace('_', '-') for k in bad)} cannot change "
                          f"(start a new run instead)")


def _canonical(key: str, value: Any) -> Any:
    """Backend aliases name the same backend (``torch-cpu`` is ``torch``)."""
    if key == "backend" and isinstance(value, str):
        from ..backends import ALIASES

        name = value.strip().lower()
        return ALIASES.get(name, name)
    return value


def recorded_backend(rep: dict[str, Any]) -> str | None:
    """The backend the run resolved (``$MCINT_BACKEND`` or the default included): its numbers
    belong to it, so a resume continues there whatever the environment says now."""
    name = rep.get("backend") or (rep.get("options") or {}).get("backend")
    return name if isinstance(name, str) else None


def load_resume(spec: str, overrides: dict[str, Any],
                trust_run_file: bool = False) -> tuple[RunConfig, ResumeState]:
    """The configuration of the interrupted run in ``spec`` (a run directory)."""
    from .target import require_trust

    run, prefix = _find_run_json(spec)
    rep, opts, status = _read_run(run)
    ck = run.parent / f"{prefix}{CHECKPOINT_FILE}"
    _check_resumable(rep, status, run, ck, opts, prefix)
    backend = recorded_backend(rep)
    _check_overrides(overrides, opts, backend)
    if not trust_run_file:
        require_trust(opts["integrand"], str(run), f"give --trust-run-file to resume it "
                      f"(`mcint run --resume {spec} --trust-run-file`) if you trust it")
    cfg = RunConfig()
    try:
        apply(cfg, {k: v for k, v in opts.items() if k != "base_dir"}, source=str(run))
    except ConfigError as exc:
        raise ConfigError(f"cannot resume: {exc}") from None
    cfg.base_dir = str(rep.get("base_dir") or run.parent)
    # the run's resolved choices, not what the environment would choose now
    cfg.backend = backend or cfg.backend
    cfg.sampler = rep.get("sampler") or cfg.sampler
    # the directory may have moved since: write where it is now
    cfg.out = _current_out(run, prefix, opts)
    apply(cfg, {k: v for k, v in overrides.items() if k in RESUMABLE_OVERRIDES},
          source="command line")
    add_run_cwd(rep, cfg.integrand)
    return cfg.validate(), ResumeState(run.parent, ck, rep)


def add_run_cwd(rep: dict[str, Any], spec: str) -> None:
    """Make a module:function target importable as the run found it: its working directory
    joins ``sys.path``. Only for targets that are code (already trusted by the caller), and
    last, so that a directory from elsewhere cannot shadow an installed package."""
    from .target import runs_code

    cwd = rep.get("cwd")
    if runs_code(spec) and isinstance(cwd, str) and cwd and cwd not in sys.path:
        sys.path.append(cwd)


def restore_sampler(state: ResumeState, cfg: RunConfig, target: Any, backend: Any) -> Any:
    """The integrator from the checkpoint, after checking it belongs to this run."""
    from ..nis import Integrator
    from ..serialize import ModelFileError, load

    ck = state.checkpoint
    try:
        meta, _ = load(ck, expect_kind="nis-checkpoint")
    except (ModelFileError, OSError) as exc:
        raise ConfigError(f"cannot resume from {str(ck)!r}: {exc}") from None
    st = meta.get("state") if isinstance(meta.get("state"), dict) else {}
    tag, want = st.get("run_tag"), run_tag(cfg, target.dims)
    if st.get("dims") != target.dims:
        raise ConfigError(f"cannot resume: {str(ck)!r} is a checkpoint in {st.get('dims')} "
                          f"dims, the run's integrand {cfg.integrand} has {target.dims}")
    if tag != want:
        got = "no run record" if not isinstance(tag, dict) else \
            f"integrand {tag.get('integrand')!r}, seed {tag.get('seed')}"
        raise ConfigError(f"cannot resume: {str(ck)!r} belongs to another run ({got}; "
                          f"run.json has integrand {want['integrand']!r}, seed {want['seed']})")
    try:
        it = Integrator.resume(str(ck), target.integrand, dims=None if target.multichannel
                               else target.dims, backend=backend)
    except (ModelFileError, TypeError, KeyError) as exc:
        raise ConfigError(f"cannot resume from {str(ck)!r}: {exc}") from None
    it.run_tag = want
    return it


def interrupted_message(exc: BaseException, checkpoint: Path | None, run_dir: Path,
                        trained: bool, trust: bool = False, kind: str = "nis") -> Interrupted:
    """The one line printed when a signal stops ``mcint run``.

    ``trust``: the run's integrand is code, so the command to continue needs
    ``--trust-run-file`` (the resumed process reads the integrand from run.json).
    """
    code = exit_code(exc)
    how = "terminated" if code == 143 else "interrupted"
    again = (f"continue with `mcint run --resume {run_dir}"
             f"{' --trust-run-file' if trust else ''}`")
    if kind == "vegas":
        return Interrupted(f"{how} during VEGAS training, which keeps no checkpoint: nothing "
                           f"to resume (start it again with --force)", code)
    if checkpoint is None or not checkpoint.is_file():
        why = "checkpoints are off" if checkpoint is None else "before the first checkpoint"
        return Interrupted(f"{how} during training ({why}): nothing to resume", code)
    if trained:
        return Interrupted(f"{how}: training is saved in {checkpoint}; {again} (redoes the "
                           "integration and events)", code)
    return Interrupted(f"{how}: checkpoint saved to {checkpoint}; {again}", code)
