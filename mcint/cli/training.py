"""Choosing, building and training the sampler of ``mcint run`` (VEGAS or NIS), with a live
progress display, and its integration."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

from ..health import SamplerWarning
from .config import ConfigError, RunConfig
from .progress import Progress
from .target import Target

DEFAULT_TRAIN_CALLS = 100_000


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
    if cfg.nonfinite != "raise":   # the flag (or card key) over sampler_options' nonfinite
        opts["nonfinite"] = cfg.nonfinite
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
    pending = sampler.training_pending
    if pending is not None:     # restored from a checkpoint in the middle of train()
        calls, steps, done = None, int(pending["n_fresh"]), int(pending["done"])
    else:
        steps, done = max(sampler.planned_steps(calls), 1), 0
    with Progress("train (NIS)", steps, mode, unit="step") as bar:
        bar.update(to=done)

        def cb(st: Any) -> None:
            row = _history_row(st.__dict__)
            fields = {"loss": row["loss"]}
            if math.isfinite(row["integral"]):
                from ..results import format_value

                fields["integral"] = format_value(row["integral"], row["error"])
            bar.update(0 if st.buffered else 1, **fields)

        with warnings.catch_warnings():
            # "made no optimisation step": the run's summary says it (raised_calls)
            warnings.filterwarnings("ignore", message=r"train\(calls=\d+\) made no",
                                    category=SamplerWarning)
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


def raised_calls(option: str, asked: int, used: Any, kind: str) -> str | None:
    """Say when the sampler needed clearly more integrand calls than ``option`` asked for
    (VEGAS trains whole iterations of a minimum size, NIS whole batches), or none at all (NIS
    makes no step for fewer calls than one batch)."""
    if isinstance(used, (int, float)) and used == 0 and asked > 0:
        return (f"{option} {asked} is fewer than one step of the {kind.upper()} sampler takes: "
                "it made no step, the sampler is untrained (give more calls)")
    if not isinstance(used, (int, float)) or used <= 1.1 * asked:
        return None
    return (f"{option} {asked} was raised to {int(used)} integrand calls, the least the "
            f"{kind.upper()} sampler does")


def nonfinite_points(sampler: Any) -> int:
    """NaN/inf integrand values the sampler counted as zero so far (``nonfinite="zero"``)."""
    n = getattr(sampler, "nonfinite_points", None)          # NIS
    if n is None:
        n = getattr(getattr(sampler, "integrand", None), "nonfinite_count", 0)   # VEGAS
    return int(n or 0)


#: the samplers' warnings about NaN/inf counted as zero: a run counts them instead (the
#: summary's "nonfinite" line, run.json's metrics.nonfinite_points)
NONFINITE_WARNING = r".*non-finite value\(s\).*counted as zero"


def train_history(sampler: Any) -> list[dict[str, Any]]:
    """The step log of a sampler whose training is complete."""
    return [_history_row(r) for r in getattr(sampler, "log", [])]
