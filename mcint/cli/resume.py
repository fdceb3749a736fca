"""Interrupted ``mcint run`` jobs: what is saved where, and how ``mcint run --resume`` continues.

A NIS run checkpoints its training to ``DIR/checkpoint.npz`` (every ``checkpoint_every`` steps
and on SIGINT/SIGTERM) and records its options in ``DIR/run.json`` from the start
(``status``: ``training`` -> ``trained`` -> ``done``). ``--resume DIR`` rebuilds the same
configuration from run.json, restores the sampler from the checkpoint (finishing an
unfinished ``train()``), then integrates and writes the events as the first run would have:
with the same seed and CPU backend the numbers are identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, RunConfig, apply

CHECKPOINT_FILE = "checkpoint.npz"
#: options that may differ in the resumed process (they do not change any number)
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
    from .run import EVENT_SUFFIXES, RUN_FILE

    p = Path(spec).expanduser()
    if p.suffix.lower() in EVENT_SUFFIXES:   # --out DIR/NAME.lhe: files are DIR/NAME.*
        run_dir, prefix = (p.parent if str(p.parent) else Path(".")), p.stem + "."
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


def load_resume(spec: str, overrides: dict[str, Any]) -> tuple[RunConfig, ResumeState]:
    """The configuration of the interrupted run in ``spec`` (a run directory)."""
    run, prefix = _find_run_json(spec)
    try:
        rep = json.loads(run.read_text())
        opts = dict(rep["options"])
        status = rep.get("status", "done")   # run files without a status are finished runs
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot resume: {str(run)!r} is not a readable run file "
                          f"({type(exc).__name__}: {exc})") from None
    where = str(run.parent)
    if status == "done":
        raise ConfigError(f"cannot resume: the run in {where!r} has finished (status 'done' "
                          f"in {run.name}); start a new run instead")
    ck = run.parent / f"{prefix}{CHECKPOINT_FILE}"
    if not ck.is_file():
        raise ConfigError(f"cannot resume: no checkpoint {ck.name!r} in {where!r} (stopped "
                          "before its first checkpoint, or run with --no-checkpoint or "
                          "--sampler vegas); start the run again")
    bad = sorted(k for k in overrides if k not in RESUMABLE_OVERRIDES)
    if bad:
        raise ConfigError(f"--resume continues the run with its recorded options; "
                          f"{', '.join('--' + k.replace('_', '-') for k in bad)} cannot change "
                          f"(start a new run instead)")
    cfg = RunConfig()
    try:
        apply(cfg, {k: v for k, v in opts.items() if k != "base_dir"}, source=str(run))
    except ConfigError as exc:
        raise ConfigError(f"cannot resume: {exc}") from None
    cfg.base_dir = str(rep.get("base_dir") or run.parent)
    # the directory may have moved since: write where it is now
    orig = Path(str(opts.get("out", "")))
    cfg.out = str(run.parent / orig.name) if prefix else str(run.parent)
    apply(cfg, overrides, source="command line")
    cwd = rep.get("cwd")
    if cwd and cwd not in sys.path:   # module:function targets importable as at the start
        sys.path.insert(0, cwd)
    return cfg.validate(), ResumeState(run.parent, ck, rep)


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
                        trained: bool) -> Interrupted:
    """The one line printed when a signal stops ``mcint run``."""
    code = exit_code(exc)
    how = "terminated" if code == 143 else "interrupted"
    again = f"continue with `mcint run --resume {run_dir}`"
    if checkpoint is None or not checkpoint.is_file():
        why = "checkpoints are off" if checkpoint is None else "before the first checkpoint"
        return Interrupted(f"{how} during training ({why}): nothing to resume", code)
    if trained:
        return Interrupted(f"{how}: training is saved in {checkpoint}; {again} (redoes the "
                           "integration and events)", code)
    return Interrupted(f"{how}: checkpoint saved to {checkpoint}; {again}", code)
