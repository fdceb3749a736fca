"""The events of ``mcint run`` / ``mcint sample``: a calibration sample that fixes ``w_max`` for
the overweight budget, then unweighted events streamed into a crash-safe event file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..events import RunInfo, UnweightStats, iid_source, max_weight, open_writer, unweighted_events
from .config import ConfigError, RunConfig
from .progress import Progress
from .rundir import naming_the_file
from .target import Target


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
    with naming_the_file(path), Progress("events", cfg.events, cfg.progress, unit="ev") as bar, \
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
