"""``mcint run``: train a sampler, integrate, write unweighted events, a summary and plots.

Phases (each timed): set-up, training (progress with live loss and running integral),
integration (frozen sampler), calibration (a weighted sample that fixes ``w_max`` from the
overweight budget and gives the weight diagnostics), events (unweighting, streamed into a
crash-safe event file), plots. The run directory gets::

    events.lhe | events.lheh5 | events.npz     unweighted events
    run.json                                   options, result, diagnostics, timings, history
    checkpoint.npz                             training state (NIS) while the run is unfinished
    model.npz                                  the trained sampler (NIS), for `mcint sample`
    diagnostics.npz                            calibration weights + a sample of event points
    plots/*.png                                with matplotlib installed
    .mcint.lock                                while a run writes the directory

``--out DIR/NAME.lhe`` names the files ``DIR/NAME.run.json``, ``DIR/NAME.model.npz``, ... A run
holds the directory's lock while it writes (a second run there fails at once), refuses to
write over an earlier run's outputs unless ``--force`` (which removes all of them first, so no
two runs' files mix), and removes the temporaries that killed runs left behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..events import (
    EventFileError,
    RunInfo,
    UnweightStats,
    check_writable,
    format_of,
    iid_source,
    max_weight,
    open_writer,
    unweighted_events,
)
from ..events._atomic import remove_stale_temps, write_atomic
from .config import ConfigError, RunConfig
from .progress import Progress
from .resume import (
    CHECKPOINT_FILE,
    ResumeState,
    interrupted_message,
    portable,
    restore_sampler,
    run_tag,
)
from .target import Target, resolve, runs_code

DEFAULT_TRAIN_CALLS = 100_000
RUN_FILE = "run.json"
MODEL_FILE = "model.npz"
DIAG_FILE = "diagnostics.npz"
LOCK_FILE = ".mcint.lock"
#: the files of a run besides its events (each with the layout's prefix)
RUN_FILES = (RUN_FILE, MODEL_FILE, DIAG_FILE, CHECKPOINT_FILE)


@dataclass
class Layout:
    """Where a run's files go."""

    run_dir: Path
    events: Path
    prefix: str = ""

    def file(self, name: str) -> Path:
        return self.run_dir / f"{self.prefix}{name}"


EVENT_SUFFIXES = (".lhe", ".lheh5", ".h5", ".hdf5", ".npz")


def event_format(cfg: RunConfig, target: Target) -> str:
    """The format from ``--out``'s suffix, ``--format`` or the target's default (consistent)."""
    if Path(cfg.out).suffix.lower() in EVENT_SUFFIXES:
        fmt = format_of(cfg.out)
        if cfg.format is not None and cfg.format != fmt:
            raise ConfigError(f"--format {cfg.format} contradicts the output name {cfg.out!r} "
                              f"({fmt})")
        return fmt
    return cfg.format or target.event_format


def check_out_name(out: str) -> None:
    """A name with a suffix must be an event file or an existing directory: ``--out ev.root``
    would otherwise become a directory holding ``events.npz``."""
    p = Path(out).expanduser()
    if p.suffix and p.suffix.lower() not in EVENT_SUFFIXES and not p.is_dir():
        raise ConfigError(f"--out {out!r}: {p.suffix!r} is not an event file suffix "
                          f"({', '.join(EVENT_SUFFIXES)}); name a directory without a suffix "
                          "(or create it first)")


def layout(out: str, fmt: str) -> Layout:
    """``out`` is a directory, or an event file name whose directory holds the other files."""
    check_out_name(out)
    p = Path(out).expanduser()
    suffix = p.suffix.lower()
    if suffix in EVENT_SUFFIXES:
        return Layout(p.parent if str(p.parent) else Path("."), p, prefix=p.stem + ".")
    return Layout(p, p / f"events.{fmt}")


def prepare_dir(lay: Layout) -> None:
    """Create the run directory and check that the event file can be written, before any work.

    A path that cannot be used is the user's option, not a failure of the run: ConfigError.
    """
    try:
        lay.run_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"cannot create output directory {str(lay.run_dir)!r}: a file of "
                          "that name exists (give a directory, or an event file name)") from None
    except OSError as exc:
        raise ConfigError(f"cannot create output directory {str(lay.run_dir)!r}: "
                          f"{exc.strerror or exc}") from None
    try:
        check_writable(lay.events)
    except EventFileError as exc:
        raise ConfigError(str(exc)) from None
    if not os.access(lay.run_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"output directory {str(lay.run_dir)!r} is not writable")


# -- one run per set of outputs ----------------------------------------------------------------
class OutputBusy(RuntimeError):
    """Another process holds the run directory's lock."""

    #: EX_TEMPFAIL: nothing is wrong with the command, try again later
    exit_status = 75


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


class RunLock:
    """An exclusive lock on a run directory, held while a run writes there.

    ``fcntl.flock`` on ``DIR/.mcint.lock``: the kernel drops it when the holder ends (even by
    SIGKILL), so a lock never goes stale; the file holds the holder's pid for the message.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: runs are not locked
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputBusy(self._busy_message()) from None
            except OSError:   # a file system without locks (ENOLCK): run unlocked
                os.close(fd)
                return self
            if _same_file(fd, self.path):   # else its holder removed it as we opened it
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def _busy_message(self) -> str:
        try:
            pid = self.path.read_text().strip() or "unknown"
        except OSError:
            pid = "unknown"
        return (f"another mcint process (pid {pid}) is writing to {str(self.path.parent)!r} "
                f"(lock {str(self.path)!r}): wait for it to finish, or choose another --out")

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):   # unlink first: a waiting run then makes a new one
            self.path.unlink()
        os.close(self._fd)
        self._fd = None


def output_names(lay: Layout) -> list[str]:
    """The file names (in the run directory) that a run with this layout writes, its events
    in every format (an earlier run may have used another)."""
    stem = lay.events.name[: -len(lay.events.suffix)] if lay.events.suffix else lay.events.name
    return [f"{lay.prefix}{n}" for n in RUN_FILES] + [f"{stem}{s}" for s in EVENT_SUFFIXES]


def event_names(lay: Layout) -> list[str]:
    """The event file names of this layout in every format (what `mcint sample` writes)."""
    return output_names(lay)[len(RUN_FILES):]


def earlier_outputs(lay: Layout, names: list[str], plots: bool = True) -> list[Path]:
    """The outputs of an earlier run with this layout that exist (files, and the plots
    directory if it holds PNGs)."""
    found = [lay.run_dir / n for n in names if (lay.run_dir / n).is_file()]
    pdir = lay.run_dir / f"{lay.prefix}plots"
    if plots and pdir.is_dir() and any(pdir.glob("*.png")):
        found.append(pdir)
    return found


def remove_outputs(paths: list[Path]) -> None:
    """Delete an earlier run's files (only the names a run writes: nothing else of the user's)."""
    for p in paths:
        if p.is_dir():
            for png in p.glob("*.png"):
                png.unlink()
            with contextlib.suppress(OSError):   # kept if the user put other files there
                p.rmdir()
        else:
            p.unlink()


def _earlier_run_message(lay: Layout, found: list[Path]) -> str:
    names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in found)
    msg = (f"{str(lay.run_dir)!r} holds the outputs of an earlier run ({names}): give --force "
           "to replace them (all of them are removed first), or choose another --out")
    run = lay.file(RUN_FILE)
    try:
        status = json.loads(run.read_text()).get("status") if run.is_file() else None
    except (OSError, ValueError, AttributeError, RecursionError):
        status = None
    if status in ("training", "trained"):
        msg += f"; that run was interrupted: `mcint run --resume {lay.run_dir}` continues it"
    return msg


def claim_outputs(lay: Layout, names: list[str], force: bool, resume: bool = False,
                  plots: bool = True) -> RunLock:
    """Lock the run directory, then make sure this run's files mix with no other run's.

    An earlier run's outputs are refused, or with ``force`` removed; a resumed run continues
    its own. Temporaries that killed writers left for ``names`` are removed either way.
    """
    lock = RunLock(lay.run_dir).acquire()
    try:
        if not resume:
            found = earlier_outputs(lay, names, plots)
            if found and not force:
                raise ConfigError(_earlier_run_message(lay, found))
            remove_outputs(found)
        remove_stale_temps(lay.run_dir, names, exclusive=True)
    except BaseException:
        lock.release()
        raise
    return lock


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic JSON write (temporary file + rename; the temporary goes if the write fails)."""
    text = json.dumps(data, indent=1, default=_json_default, allow_nan=True) + "\n"
    write_atomic(path, lambda fh: fh.write(text.encode("utf-8")))


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


# -- sampler construction --------------------------------------------------------------------
def torch_available() -> bool:
    import importlib.util
    import sys

    if "torch" in sys.modules:
        return sys.modules["torch"] is not None  # None: import blocked on purpose
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def nis_available() -> bool:
    """Whether the neural sampler can train here (torch installed, mcint.nis built)."""
    if not torch_available():
        return False
    try:
        from ..nis import Integrator  # noqa: F401
    except ImportError:
        return False
    return True


def choose_sampler(cfg: RunConfig, target: Target) -> str:
    """The sampler asked for, else the example's default, else NIS where it can train."""
    kind = cfg.sampler
    if kind is None and target.example is not None:
        kind = target.example.defaults.get("sampler")
    if kind is None:
        kind = "nis" if (target.multichannel or nis_available()) else "vegas"
    if kind == "vegas" and target.multichannel:
        raise ConfigError(f"{target.spec} is a multi-channel integrand; VEGAS samples one "
                          "channel: use --sampler nis")
    if kind == "nis" and not nis_available():
        if cfg.sampler == "nis" or target.multichannel:
            raise ConfigError("the neural sampler (nis) trains with torch, which is not "
                              "installed: pip install torch" +
                              ("" if target.multichannel else " (or use --sampler vegas)"))
        kind = "vegas"
    return kind


def make_sampler(kind: str, target: Target, cfg: RunConfig, backend: Any) -> Any:
    opts = dict(target.example.defaults.get("sampler_options", {}) if target.example else {})
    opts.update(cfg.sampler_options)
    try:
        if kind == "vegas":
            from ..vegas import VEGAS

            return VEGAS(target.integrand, target.dims, backend=backend, seed=cfg.seed, **opts)
        from ..nis import Integrator

        if target.multichannel:
            return Integrator(target.integrand, backend=backend, seed=cfg.seed, **opts)
        return Integrator(target.integrand, target.dims, backend=backend, seed=cfg.seed, **opts)
    except (TypeError, ValueError) as exc:   # the run card's options, not a failed run
        raise ConfigError(f"invalid sampler_options for {kind}: {exc}") from None


# -- phases ----------------------------------------------------------------------------------
@dataclass
class Report:
    """Everything a run measured (written to run.json and printed as the summary)."""

    integrand: str
    name: str
    dims: int
    sampler: str
    backend: str
    seed: int
    exact: float | None = None
    unit: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    channels: list[dict[str, Any]] = field(default_factory=list)
    unweighting: dict[str, Any] = field(default_factory=dict)
    events: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    mcint_version: str = ""
    #: training -> trained -> done (``mcint run --resume`` continues the first two)
    status: str = "training"
    resumed: int = 0
    base_dir: str = ""
    cwd: str = ""


def train(sampler: Any, kind: str, calls: int, mode: str, checkpoint: Path | None = None,
          checkpoint_every: int = 50) -> list[dict[str, Any]]:
    """Train with a live progress display; returns the history (one row per step/iteration).

    NIS training checkpoints to ``checkpoint`` every ``checkpoint_every`` steps and on
    SIGINT/SIGTERM; a sampler restored mid-``train()`` finishes that call.
    """
    hist: list[dict[str, Any]] = []
    if kind == "vegas":
        nitn = int(getattr(sampler, "nitn", 10))   # sampler_options.nitn (VEGAS's default 10)
        per = max(calls // nitn, 1000)
        with Progress("train (VEGAS)", nitn, mode, unit="itn") as bar:
            from ..results import Result

            acc = Result()
            for i in range(nitn):
                r = sampler.train(per, nitn=1)
                it = r.iterations[-1]
                acc.add(it)
                hist.append({"step": i + 1, "calls": (i + 1) * per, "loss": math.nan,
                             "integral": acc.value, "error": acc.error,
                             "iteration": float(it.value), "iteration_error": float(it.error)})
                bar.update(1, integral=f"{acc!r}", chi2_dof=round(acc.chi2_dof, 2))
        return hist
    pending = getattr(sampler, "_pending_train", None)
    if pending is not None:     # restored from a checkpoint in the middle of train()
        calls, steps, done = None, int(pending["n_fresh"]), int(pending["done"])
    else:
        budget = calls
        if getattr(sampler, "vegas_init", False) and getattr(sampler, "step", 1) == 0:
            budget -= int(calls * float(getattr(sampler, "vegas_fraction", 0.0)))
        steps, done = max(budget // int(getattr(sampler, "batch_size", 1024)), 1), 0
    with Progress("train (NIS)", steps, mode, unit="step") as bar:
        bar.update(to=done)

        def cb(st: Any) -> None:
            row = _history_row(st.__dict__)
            fields = {"loss": row["loss"]}
            if math.isfinite(row["integral"]):
                from ..results import format_value

                fields["integral"] = format_value(row["integral"], row["error"])
            bar.update(0 if st.buffered else 1, **fields)

        sampler.train(calls, callback=cb, checkpoint_path=None if checkpoint is None
                      else str(checkpoint), checkpoint_every=checkpoint_every)
        bar.update(to=steps)
    # the sampler's own log spans every process of a resumed run
    return [_history_row(r) for r in getattr(sampler, "log", [])]


def _history_row(st: dict[str, Any]) -> dict[str, Any]:
    return {"step": int(st["step"]), "calls": int(st["calls"]), "loss": float(st["loss"]),
            "integral": float(st["integral"]), "error": float(st["error"]),
            "buffered": bool(st["buffered"])}


def integrate(sampler: Any, kind: str, calls: int) -> tuple[Any, dict[str, Any], list]:
    if kind == "vegas":
        r = sampler.integrate(max(calls, 500), nitn=5)
        rel = r.error * math.sqrt(max(r.calls, 1)) / abs(r.value) if r.value else math.inf
        return r, {"rel_std": rel}, []
    r = sampler.integrate(calls)
    metrics = dict(getattr(r, "metrics", {}) or {})
    rows = r.channels.rows() if getattr(r, "channels", None) is not None else []
    return r, metrics, rows


def calibrate(sampler: Any, n: int, batch: int, budget: float) -> dict[str, Any]:
    """A weighted sample: w_max for the budget, weight diagnostics, cut efficiency."""
    from .. import diagnostics as D

    draw = iid_source(sampler)
    ws, cs = [], []
    left = n
    while left > 0:
        b = draw(min(batch, left)).to_numpy()
        ws.append(np.asarray(b.weights, dtype=np.float64))
        cs.append(np.zeros(len(b), np.int64) if b.channels is None else b.channels.astype(np.int64))
        left -= len(b)
    w, c = np.concatenate(ws), np.concatenate(cs)
    out: dict[str, Any] = {"weights": w, "channels": c, "n": int(w.size)}
    out["w_max"] = max_weight(w, budget)
    # kept events per point: accepted with min(|w|, w_max) / w_max
    out["expected_efficiency"] = float(np.mean(np.minimum(np.abs(w), out["w_max"]))
                                       / out["w_max"])
    out["mean"] = float(np.mean(w))
    out["mean_abs"] = float(np.mean(np.abs(w)))
    out["cut_efficiency"] = float(np.mean(w != 0))
    out["diagnostics"] = D.summary(w)
    return out


def budget_warning(stats: UnweightStats, budget: float, calibration_points: int) -> str | None:
    """Why the events truncated more than the budget, when they did."""
    share = stats.overweight_fraction
    if share <= budget:
        return None
    return (f"the events' points truncated {100 * share:.3g}% of sigma in overweights, above "
            f"the {100 * budget:.3g}% budget that w_max meets on the {calibration_points} "
            f"calibration points: the share of the largest weights fluctuates from sample to "
            f"sample, and the {stats.trials} points the events used held more of it; "
            f"distributions are biased by at most {100 * share:.3g}% (more --calibration-calls "
            "give a w_max that tracks the budget more closely)")


def event_info(target: Target, sigma: float, sigma_err: float, sigma_abs: float,
               signed: bool, meta: dict[str, Any]) -> RunInfo:
    weighting = -4 if signed else 3
    phys = target.example.physics if target.example is not None else None
    if phys is not None:
        return phys.run_info(sigma, sigma_err, weighting, xmax=sigma_abs, meta=meta)
    return RunInfo(sigma, sigma_err, weighting=weighting, xmax=sigma_abs, meta=meta)


#: write errors that name no file (a failed write() on a full disk, a quota, a bad device)
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EIO, getattr(errno, "EDQUOT", errno.ENOSPC)}


@contextlib.contextmanager
def _naming(path: Path) -> Any:
    """Name ``path`` in a write error that names no file. Other errors (the integrand's own
    OSErrors, which run inside the block too) pass unchanged."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno in _WRITE_ERRNOS:
            exc.filename = str(path)
        raise


def write_events(sampler: Any, target: Target, cfg: RunConfig, path: Path, fmt: str,
                 w_max: float, sigma: float, sigma_err: float, sigma_abs: float, signed: bool,
                 meta: dict[str, Any], seed: int, expected_eff: float | None = None
                 ) -> tuple[UnweightStats, dict[str, Any]]:
    """Unweight fresh samples into ``path``; returns the statistics and a sample of points."""
    info = event_info(target, sigma, sigma_err, sigma_abs, signed, meta)
    phys = target.example.physics if target.example is not None else None
    if fmt != "npz" and phys is None:
        raise ConfigError(f"{target.spec} has no particle content; write --format npz")
    stats = UnweightStats()
    keep_x: list[np.ndarray] = []
    keep_c: list[np.ndarray] = []
    kept = 0
    flush = float(cfg.flush_every)
    with _naming(path), Progress("events", cfg.events, cfg.progress, unit="ev") as bar, \
            open_writer(path, info, fmt=fmt, checkpoint_every=flush) as writer:
        def progress(s: UnweightStats) -> None:
            bar.update(to=s.accepted, eff=f"{100 * s.efficiency:.2f}%")

        for eb in unweighted_events(sampler, cfg.events, w_max=w_max, seed=seed,
                                    batch_size=cfg.batch_size, progress=progress, stats=stats,
                                    expected_efficiency=expected_eff):
            b = eb.batch
            weight = eb.sign * sigma_abs
            chan = None if b.channels is None else np.asarray(b.channels, np.int64)
            if fmt == "npz":
                writer.write_batch(b.x, weight, chan)
            else:
                writer.write(phys.to_particles(b, weight, trials=eb.trials))
            if kept < 50_000:
                keep_x.append(np.asarray(b.x)[: 50_000 - kept])
                keep_c.append((np.zeros(len(b), np.int64) if chan is None else chan)
                              [: 50_000 - kept])
                kept += len(keep_x[-1])
    sample = {"x": np.concatenate(keep_x) if keep_x else np.zeros((0, target.dims)),
              "channel": np.concatenate(keep_c) if keep_c else np.zeros(0, np.int64)}
    return stats, sample


def run(cfg: RunConfig, out_stream: Any = None, resume: ResumeState | None = None,
        force: bool = False) -> Report:
    """The whole ``mcint run`` job for a validated configuration.

    With ``resume`` (from :func:`mcint.cli.resume.load_resume`) the sampler continues from the
    run's checkpoint instead of starting afresh. The run holds its directory's lock throughout;
    an earlier run's outputs there are an error, or with ``force`` removed first.
    """
    import sys

    from ..backends import get_backend

    out_stream = out_stream or sys.stdout
    t_all = time.perf_counter()
    target = resolve(cfg.integrand, cfg.dims, cfg.base_dir)
    backend = get_backend(cfg.backend)
    kind = choose_sampler(cfg, target)
    fmt = event_format(cfg, target)
    if fmt != "npz" and (target.example is None or target.example.physics is None):
        raise ConfigError(f"{target.spec} has no particle content: LHE needs a physics "
                          "example; use --format npz (or an .npz output name)")
    if fmt == "lheh5":
        try:
            import h5py  # noqa: F401
        except ImportError:
            raise ConfigError("LHEH5 output needs h5py: pip install 'mcint[events]'") from None
    lay = layout(cfg.out, fmt)
    prepare_dir(lay)
    want_plot = cfg.plot
    if want_plot:
        from ..plots import require_matplotlib

        require_matplotlib()
    lock = claim_outputs(lay, output_names(lay), force, resume is not None)
    try:
        return _run_claimed(cfg, out_stream, resume, target, backend, kind, fmt, lay, want_plot,
                            t_all)
    finally:
        lock.release()


def _run_claimed(cfg: RunConfig, out_stream: Any, resume: ResumeState | None, target: Target,
                 backend: Any, kind: str, fmt: str, lay: Layout, want_plot: bool | None,
                 t_all: float) -> Report:
    """The run, once its directory is locked and clear of other runs' files."""
    from .. import __version__

    timing: dict[str, float] = {}
    ex_defaults = target.example.defaults if target.example is not None else {}
    train_calls = cfg.train_calls or int(ex_defaults.get("train_calls", DEFAULT_TRAIN_CALLS))
    integrate_calls = cfg.integrate_calls or max(train_calls // 4, 10_000)
    calib_calls = cfg.calibration_calls or max(50_000, min(10 * cfg.events, 1_000_000))
    ckpt = lay.file(CHECKPOINT_FILE) if (cfg.checkpoint and kind == "nis") else None
    stored = portable(RunConfig(**asdict(cfg)))
    tag = run_tag(stored, target.dims)
    if resume is not None:
        if kind != "nis":
            raise ConfigError(f"cannot resume: the run in {str(lay.run_dir)!r} uses the "
                              f"{kind} sampler, which does not checkpoint")
        sampler = restore_sampler(resume, stored, target, backend)
        ckpt = resume.checkpoint
    else:
        sampler = make_sampler(kind, target, cfg, backend)
        if kind == "nis":
            sampler.run_tag = tag
    timing["setup"] = time.perf_counter() - t_all
    rep = Report(cfg.integrand, target.name, target.dims, kind, backend.name, cfg.seed,
                 target.exact, target.example.unit if target.example else "",
                 mcint_version=__version__)
    rep.options = {k: v for k, v in asdict(stored).items() if k != "base_dir"}
    rep.options.update(train_calls=train_calls, integrate_calls=integrate_calls,
                       calibration_calls=calib_calls, format=fmt)
    rep.base_dir, rep.cwd = stored.base_dir, os.getcwd()
    if resume is not None:
        rep.resumed = int(resume.report.get("resumed", 0)) + 1
        prev = resume.report.get("timing") or {}
        timing.update({f"before_resume_{k}": float(v) for k, v in prev.items()
                       if isinstance(v, (int, float)) and not k.startswith("before_resume")})
    pending = getattr(sampler, "_pending_train", None)
    trained = resume is not None and pending is None
    print(f"mcint run {target.name}: {target.dims} dims, sampler {kind}, backend "
          f"{backend.name}, seed {cfg.seed}" + (f"; resumed at step {sampler.step}"
                                                if resume is not None else ""),
          file=out_stream, flush=True)
    rep.status = "trained" if trained else "training"
    write_json(lay.file(RUN_FILE), asdict(rep))   # what --resume needs, from the start

    try:
        t = time.perf_counter()
        if trained:
            rep.history = train_history(sampler)
        else:
            with _naming(ckpt or lay.run_dir):   # checkpoint writes: the I/O of training
                rep.history = train(sampler, kind, train_calls, cfg.progress, ckpt,
                                    cfg.checkpoint_every)
            rep.status = "trained"
            write_json(lay.file(RUN_FILE), asdict(rep))
        timing["train"] = time.perf_counter() - t
        used = rep.history[-1]["calls"] if rep.history else None
        rep.warnings += [w for w in [raised_calls("train_calls", train_calls, used, kind)] if w]
        return _finish(rep, cfg, target, sampler, kind, lay, fmt, timing, t_all, want_plot,
                       integrate_calls, calib_calls, ckpt)
    except KeyboardInterrupt as exc:
        if rep.status == "trained" and (kind != "nis" or ckpt is None):
            raise
        raise interrupted_message(exc, ckpt, lay.run_dir, rep.status == "trained",
                                  trust=runs_code(cfg.integrand), kind=kind) from None


def raised_calls(option: str, asked: int, used: Any, kind: str) -> str | None:
    """Say when the sampler needed clearly more integrand calls than ``option`` asked for
    (VEGAS trains whole iterations of a minimum size, NIS whole batches)."""
    if not isinstance(used, (int, float)) or used <= 1.1 * asked:
        return None
    return (f"{option} {asked} was raised to {int(used)} integrand calls, the least the "
            f"{kind.upper()} sampler does")


def train_history(sampler: Any) -> list[dict[str, Any]]:
    """The step log of a sampler whose training is complete."""
    return [_history_row(r) for r in getattr(sampler, "log", [])]


def _finish(rep: Report, cfg: RunConfig, target: Target, sampler: Any, kind: str, lay: Layout,
            fmt: str, timing: dict[str, float], t_all: float, want_plot: bool | None,
            integrate_calls: int, calib_calls: int, ckpt: Path | None) -> Report:
    """Integration, calibration, events, diagnostics and plots of a trained sampler."""
    backend_name = rep.backend

    t = time.perf_counter()
    result, rep.metrics, rep.channels = integrate(sampler, kind, integrate_calls)
    rep.result = {"value": float(result.value), "error": float(result.error),
                  "chi2_dof": float(result.chi2_dof), "calls": int(result.calls)}
    rep.warnings += [w for w in [raised_calls("integrate_calls", integrate_calls,
                                              rep.result["calls"], kind)] if w]
    timing["integrate"] = time.perf_counter() - t
    rep.warnings += [str(w) for w in rep.metrics.pop("warnings", []) or []]

    files: dict[str, str] = {}
    if cfg.save_model and hasattr(sampler, "save"):
        t = time.perf_counter()
        model = lay.file(MODEL_FILE)
        try:
            sampler.save(str(model))
            files["model"] = model.name
        except Exception as exc:  # the events are still worth writing
            rep.warnings.append(f"model not saved: {type(exc).__name__}: {exc}")
        timing["save"] = time.perf_counter() - t

    t = time.perf_counter()
    cal = calibrate(sampler, calib_calls, cfg.batch_size, cfg.budget)
    timing["calibrate"] = time.perf_counter() - t
    rep.metrics.update({f"sample_{k}": v for k, v in cal["diagnostics"].items()})
    rep.metrics["cut_efficiency"] = cal["cut_efficiency"]
    if not rep.channels:
        from .. import diagnostics as D

        n_ch = int(cal["channels"].max()) + 1 if cal["channels"].size else 1
        rep.channels = D.channel_table(cal["weights"], cal["channels"], n_ch).rows()
    sigma, sigma_err = rep.result["value"], rep.result["error"]
    signed = bool(np.any(cal["weights"] < 0))
    # unweighted events carry +-sigma_abs: from the integration result, scaled by the
    # calibration sample's <|w|>/<w> when weights have both signs
    ratio = cal["mean_abs"] / cal["mean"] if (signed and cal["mean"] != 0) else 1.0
    sigma_abs = abs(sigma * ratio) if sigma != 0 else cal["mean_abs"]
    if sigma_abs == 0:
        raise ConfigError(f"the integrand {target.spec} is zero at every sampled point: "
                          "there are no events to generate")

    t = time.perf_counter()
    meta = {"integrand": cfg.integrand, "sampler": kind, "backend": backend_name,
            "seed": cfg.seed, "dims": target.dims, "w_max": cal["w_max"],
            "budget": cfg.budget, "unit": rep.unit}
    stats, sample = write_events(sampler, target, cfg, lay.events, fmt, cal["w_max"], sigma,
                                 sigma_err, sigma_abs, signed, meta, seed=cfg.seed + 7919,
                                 expected_eff=cal["expected_efficiency"])
    timing["events"] = time.perf_counter() - t
    files["events"] = str(lay.events.relative_to(lay.run_dir))
    rep.unweighting = {**stats.as_dict(), "budget": cfg.budget, "sigma_abs": sigma_abs,
                       "expected_efficiency": cal["expected_efficiency"],
                       "calibration_points": cal["n"]}
    over = budget_warning(stats, cfg.budget, cal["n"])
    if over is not None:
        rep.warnings.append(over)
    rep.events = {"path": str(lay.events), "format": fmt, "n": stats.accepted}

    diag = lay.file(DIAG_FILE)
    cap = 200_000
    write_atomic(diag, lambda fh: np.savez(
        fh, calib_weights=cal["weights"][:cap], calib_channels=cal["channels"][:cap],
        events_x=sample["x"], events_channel=sample["channel"]))
    files["diagnostics"] = diag.name

    rep.files = files
    rep.timing = timing
    write_json(lay.file(RUN_FILE), asdict(rep))

    if want_plot is not False:
        from .. import plots

        t = time.perf_counter()
        if plots.have_matplotlib():
            paths = plots.plot_run(lay.file(RUN_FILE), lay.run_dir / f"{lay.prefix}plots")
            files["plots"] = [str(p.relative_to(lay.run_dir)) for p in paths]
        else:
            rep.warnings.append("no plots: matplotlib is not installed (pip install "
                                "'mcint[plot]')")
        timing["plots"] = time.perf_counter() - t
    timing["total"] = time.perf_counter() - t_all
    rep.files, rep.timing = files, timing
    rep.status = "done"
    write_json(lay.file(RUN_FILE), asdict(rep))
    if ckpt is not None and ckpt.is_file():   # the run is complete: model.npz is what remains
        ckpt.unlink()
    # e.g. a checkpoint's temporary from a process killed while it wrote one
    remove_stale_temps(lay.run_dir, output_names(lay), exclusive=True)
    return rep
