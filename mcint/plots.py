"""Pictures of a run (PNG, matplotlib is the optional ``plot`` extra).

* :func:`plot_training` -- loss and running integral against the training step;
* :func:`plot_weights` -- the distribution of ``w / <w>`` (log axes), with ``w_max`` marked;
* :func:`plot_marginals` -- 1-d marginals of every dimension and the 2-d marginal of the first
  two, from (unweighted or weighted) points;
* :func:`plot_channels` -- each channel's share of the integral;
* :func:`plot_run` -- all of them from a run directory (``run.json`` + ``diagnostics.npz``).

matplotlib is imported inside the functions (Agg backend), so ``import mcint.plots`` is cheap.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["have_matplotlib", "plot_channels", "plot_marginals", "plot_run", "plot_training",
           "plot_weights", "require_matplotlib"]


def have_matplotlib() -> bool:
    """Whether matplotlib is installed."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def require_matplotlib() -> None:
    """Raise a one-line ImportError naming the extra to install."""
    if not have_matplotlib():
        raise ImportError("plots need matplotlib: pip install 'mcint[plot]'")


def _plt() -> Any:
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    tmp = p.with_name(f".{p.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, p)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return p


def plot_training(history: Sequence[dict[str, Any]], path: str | os.PathLike[str],
                  exact: float | None = None) -> Path:
    """Loss (if recorded) and running integral with its error band against the step."""
    plt = _plt()
    rows = [r for r in history if not r.get("buffered")]
    step = np.array([r["step"] for r in rows], dtype=float)
    loss = np.array([r.get("loss", math.nan) for r in rows], dtype=float)
    val = np.array([r.get("integral", math.nan) for r in rows], dtype=float)
    err = np.array([r.get("error", math.nan) for r in rows], dtype=float)
    has_loss = bool(np.any(np.isfinite(loss)))
    fig, axes = plt.subplots(1, 2 if has_loss else 1, figsize=(10 if has_loss else 5.5, 3.6))
    axes = np.atleast_1d(axes)
    ax = axes[0]
    if has_loss:
        ax.plot(step, loss, lw=1)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        if np.all(loss[np.isfinite(loss)] > 0):
            ax.set_yscale("log")
        ax.set_title("training loss")
        ax = axes[1]
    ok = np.isfinite(val)
    ax.plot(step[ok], val[ok], lw=1, label="running integral")
    band = ok & np.isfinite(err)
    ax.fill_between(step[band], (val - err)[band], (val + err)[band], alpha=0.3)
    if exact is not None:
        ax.axhline(exact, color="k", ls="--", lw=1, label="exact")
    ax.set_xlabel("step")
    ax.set_ylabel("integral")
    ax.set_title("integral during training")
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def plot_weights(weights: Any, path: str | os.PathLike[str], w_max: float | None = None
                 ) -> Path:
    """Histogram of ``|w| / <|w|>`` on log axes (a long right tail means a poor sampler)."""
    plt = _plt()
    w = np.abs(np.asarray(weights, dtype=float))
    w = w[w > 0]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    if w.size:
        mean = w.mean()
        r = w / mean
        bins = np.logspace(np.log10(r.min()), np.log10(r.max()) + 1e-9, 60)
        ax.hist(r, bins=bins, histtype="stepfilled", alpha=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        if w_max is not None and w_max > 0:
            ax.axvline(w_max / mean, color="r", ls="--", lw=1, label="w_max")
            ax.legend(fontsize=8)
    ax.set_xlabel("|w| / <|w|>")
    ax.set_ylabel("points")
    ax.set_title(f"weight distribution ({w.size} non-zero)")
    return _save(fig, path)


def plot_marginals(x: Any, path: str | os.PathLike[str], weights: Any = None,
                   max_dims: int = 6, labels: Sequence[str] | None = None) -> Path:
    """1-d marginals of the first ``max_dims`` dimensions and the 2-d marginal of dims 0, 1."""
    plt = _plt()
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"points must have shape (n, dims), got {x.shape}")
    d = min(x.shape[1], max_dims)
    two = x.shape[1] >= 2
    ncol = d + (1 if two else 0)
    fig, axes = plt.subplots(1, ncol, figsize=(2.6 * ncol, 2.6))
    axes = np.atleast_1d(axes)
    w = None if weights is None else np.asarray(weights, dtype=float)
    for i in range(d):
        axes[i].hist(x[:, i], bins=50, weights=w, histtype="stepfilled", alpha=0.6,
                     density=True)
        axes[i].set_xlabel(labels[i] if labels else f"x[{i}]")
        axes[i].set_yticks([])
    if two:
        axes[-1].hist2d(x[:, 0], x[:, 1], bins=60, weights=w, cmap="viridis")
        axes[-1].set_xlabel(labels[0] if labels else "x[0]")
        axes[-1].set_ylabel(labels[1] if labels else "x[1]")
    fig.suptitle(f"marginals of {x.shape[0]} events", fontsize=9)
    return _save(fig, path)


def plot_channels(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Bar chart of each channel's share of ``sum |I_c|`` (from a channel table)."""
    plt = _plt()
    names = [str(r["channel"]) for r in rows]
    share = np.array([r.get("share", math.nan) for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(rows) + 2), 3.4))
    ax.bar(range(len(rows)), share)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(names, rotation=45 if len(rows) > 6 else 0, fontsize=8)
    ax.set_ylabel("share of |integral|")
    ax.set_title("channel contributions")
    return _save(fig, path)


def plot_run(run_json: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Every plot of a finished ``mcint run`` (reads its ``run.json`` and diagnostics file)."""
    run_json = Path(run_json)
    rep = json.loads(run_json.read_text())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    if rep.get("history"):
        paths.append(plot_training(rep["history"], out / "training.png", rep.get("exact")))
    diag = run_json.parent / rep.get("files", {}).get("diagnostics", "diagnostics.npz")
    if diag.is_file():
        with np.load(diag, allow_pickle=False) as z:
            wts, ex = z["calib_weights"], z["events_x"]
        paths.append(plot_weights(wts, out / "weights.png",
                                  rep.get("unweighting", {}).get("w_max")))
        if ex.shape[0]:
            paths.append(plot_marginals(ex, out / "marginals.png"))
    if len(rep.get("channels") or []) > 1:
        paths.append(plot_channels(rep["channels"], out / "channels.png"))
    return paths
