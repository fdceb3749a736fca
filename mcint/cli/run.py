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
"""

from __future__ import annotations

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
from .target import Target, resolve

DEFAULT_TRAIN_CALLS = 100_000
RUN_FILE = "run.json"
MODEL_FILE = "model.npz"
DIAG_FILE = "diagnostics.npz"


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


def layout(out: str, fmt: str) -> Layout:
    """``out`` is a directory, or an event file name whose directory holds the other files."""
    p = Path(out).expanduser()
    suffix = p.suffix.lower()
    if suffix in (".lhe", ".lheh5", ".h5", ".hdf5", ".npz"):
        return Layout(p.parent if str(p.parent) else Path("."), p, prefix=p.stem + ".")
    return Layout(p, p / f"events.{fmt}")


def prepare_dir(lay: Layout) -> None:
    """Create the run directory and check that the event file can be written, before any work."""
    try:
        lay.run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EventFileError(f"cannot create output directory {str(lay.run_dir)!r}: "
                             f"{exc.strerror or exc}") from None
    check_writable(lay.events)
    if not os.access(lay.run_dir, os.W_OK | os.X_OK):
        raise EventFileError(f"output directory {str(lay.run_dir)!r} is not writable")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic JSON write (temporary file + rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, default=_json_default, allow_nan=True)
        fh.write("\n")
    os.replace(tmp, path)


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
    except TypeError as exc:
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
        nitn = 10
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
        r = sampler.integrate(max(calls // 5, 100), nitn=5)
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
    with Progress("events", cfg.events, cfg.progress, unit="ev") as bar, \
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


def run(cfg: RunConfig, out_stream: Any = None, resume: ResumeState | None = None) -> Report:
    """The whole ``mcint run`` job for a validated configuration.

    With ``resume`` (from :func:`mcint.cli.resume.load_resume`) the sampler continues from the
    run's checkpoint instead of starting afresh.
    """
    import sys

    from .. import __version__
    from ..backends import get_backend

    out_stream = out_stream or sys.stdout
    t_all = time.perf_counter()
    timing: dict[str, float] = {}
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
        stale = lay.file(CHECKPOINT_FILE)
        if stale.is_file():    # an earlier run's state must not be resumed into this one
            stale.unlink()
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
            rep.history = train(sampler, kind, train_calls, cfg.progress, ckpt,
                                cfg.checkpoint_every)
            rep.status = "trained"
            write_json(lay.file(RUN_FILE), asdict(rep))
        timing["train"] = time.perf_counter() - t
        return _finish(rep, cfg, target, sampler, kind, lay, fmt, timing, t_all, want_plot,
                       integrate_calls, calib_calls, ckpt)
    except KeyboardInterrupt as exc:
        if kind != "nis" or (rep.status == "trained" and ckpt is None):
            raise
        raise interrupted_message(exc, ckpt, lay.run_dir, rep.status == "trained") from None


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
    tmp = diag.with_name(f".{diag.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, calib_weights=cal["weights"][:cap], calib_channels=cal["channels"][:cap],
                 events_x=sample["x"], events_channel=sample["channel"])
    os.replace(tmp, diag)
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
    return rep
