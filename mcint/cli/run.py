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

This module runs the phases in order; each job lives in its own module: the run directory and
JSON (:mod:`.rundir`), choosing and training the sampler (:mod:`.training`), calibration and
events (:mod:`.eventfile`), the report (:mod:`.report`), resuming (:mod:`.resume`).
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..events._atomic import remove_stale_temps, write_atomic
from .config import ConfigError, RunConfig
from .eventfile import budget_warning, calibrate, write_events
from .report import Report
from .resume import (
    CHECKPOINT_FILE,
    ResumeState,
    interrupted_message,
    portable,
    restore_sampler,
    run_tag,
)
from .rundir import (
    DIAG_FILE,
    MODEL_FILE,
    RUN_FILE,
    Layout,
    claim_outputs,
    event_format,
    layout,
    naming_the_file,
    output_names,
    prepare_dir,
    write_json,
)
from .target import Target, resolve, runs_code
from .training import (
    DEFAULT_TRAIN_CALLS,
    NONFINITE_WARNING,
    choose_sampler,
    integrate,
    make_sampler,
    nonfinite_points,
    raised_calls,
    train,
    train_history,
)


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
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", NONFINITE_WARNING, RuntimeWarning)
            return _run_claimed(cfg, out_stream, resume, target, backend, kind, fmt, lay,
                                want_plot, t_all)
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
    trained = resume is not None and sampler.training_pending is None
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
            with naming_the_file(ckpt or lay.run_dir):   # checkpoint writes: the I/O of training
                rep.history = train(sampler, kind, train_calls, cfg.progress, ckpt,
                                    cfg.checkpoint_every)
            rep.status = "trained"
            write_json(lay.file(RUN_FILE), asdict(rep))
        timing["train"] = time.perf_counter() - t
        used = rep.history[-1]["calls"] if rep.history else 0   # no step: no calls
        rep.warnings += [w for w in [raised_calls("train_calls", train_calls, used, kind)] if w]
        return _finish(rep, cfg, target, sampler, kind, lay, fmt, timing, t_all, want_plot,
                       integrate_calls, calib_calls, ckpt)
    except KeyboardInterrupt as exc:
        if rep.status == "trained" and (kind != "nis" or ckpt is None):
            raise
        raise interrupted_message(exc, ckpt, lay.run_dir, rep.status == "trained",
                                  trust=runs_code(cfg.integrand), kind=kind) from None


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
    rep.metrics["nonfinite_points"] = nonfinite_points(sampler)   # training to events
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
