"""Pictures of a run (PNG, matplotlib is the optional ``plot`` extra).

* :func:`plot_training` -- loss and running integral against the training step;
* :func:`plot_weights` -- the distribution of ``w / <w>`` (log axes), with ``w_max`` marked;
* :func:`plot_marginals` -- 1-d marginals of every dimension and the 2-d marginal of the first
  two, from (unweighted or weighted) points;
* :func:`plot_channels` -- each channel's share of the integral;
* :func:`plot_events` -- physics observables of an event file (LHE, LHEH5; npz: marginals),
  optionally against exact distributions; :func:`fill_observables` gives the histograms;
* :func:`plot_run` -- all of them from a run directory (``run.json`` + ``diagnostics.npz`` + the
  event file).

matplotlib (and hist, pylhe for event plots; mplhep styles them where installed) is imported
inside the functions (Agg backend), so ``import mcint.plots`` is cheap.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ObservableHistogram", "bin_integrals", "example_reference", "expected_counts",
           "fill_observables", "have_matplotlib", "plot_channels", "plot_events",
           "plot_marginals", "plot_run", "plot_training", "plot_weights", "require_matplotlib"]


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
    """Loss (if recorded) and running integral with its error band against the fresh step.

    Rows marked ``"buffered"`` (optimisation steps on re-used points) are not drawn and not
    counted: the x axis counts fresh steps, as the training progress bar does.
    """
    plt = _plt()
    rows = [r for r in history if not r.get("buffered")]
    # the rows' "step" counts buffered steps too; the progress bar counts fresh ones only
    step = np.arange(1, len(rows) + 1, dtype=float)
    loss = np.array([r.get("loss", math.nan) for r in rows], dtype=float)
    val = np.array([r.get("integral", math.nan) for r in rows], dtype=float)
    err = np.array([r.get("error", math.nan) for r in rows], dtype=float)
    has_loss = bool(np.any(np.isfinite(loss)))
    fig, axes = plt.subplots(1, 2 if has_loss else 1, figsize=(10 if has_loss else 5.5, 3.6))
    axes = np.atleast_1d(axes)
    ax = axes[0]
    if has_loss:
        ax.plot(step, loss, lw=1)
        ax.set_xlabel("fresh step")
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
    ax.set_xlabel("fresh step")
    ax.set_ylabel("integral")
    ax.set_title("integral during training")
    ax.legend(loc="best", fontsize=8)
    for a in axes:
        a.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
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
    """Bar chart of each channel's share of ``sum |I_c|`` (from a channel table).

    The share axis is logarithmic and each bar is labelled with its share in percent, so that a
    channel with 0.1% of the integral stays visible next to one with 99%.
    """
    plt = _plt()
    names = [str(r["channel"]) for r in rows]
    share = np.array([r.get("share", math.nan) for r in rows], dtype=float)
    pos = np.isfinite(share) & (share > 0)
    floor = float(share[pos].min()) / 5 if pos.any() else 1e-3
    xs = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(rows) + 2), 3.4))
    ax.bar(xs[pos], share[pos])
    ax.set_yscale("log")
    # headroom above the largest bar for its label
    ax.set_ylim(floor, 4.0 if pos.any() else 1.0)
    for x, s in zip(xs, share):
        text = "n/a" if not math.isfinite(s) else f"{100 * s:.3g}%"
        ax.text(x, max(s, floor) * 1.15 if math.isfinite(s) else floor * 1.15, text,
                ha="center", va="bottom", fontsize=7, rotation=90 if len(rows) > 8 else 0)
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=45 if len(rows) > 6 else 0, fontsize=8)
    ax.set_ylabel("share of |integral|")
    ax.set_title("channel contributions")
    return _save(fig, path)


def plot_run(run_json: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Every plot of a finished ``mcint run`` (reads its ``run.json`` and diagnostics file).

    An LHE/LHEH5 event file of the run also gets :func:`plot_events`, against the exact
    distributions of the built-in example it ran (where hist and pylhe/h5py are installed; a
    file that cannot be read gives a warning, not an error).
    """
    from .serialize import parse_json

    run_json = Path(run_json)
    rep = parse_json(run_json.read_bytes(), str(run_json), "run file", ValueError)
    if not isinstance(rep, dict):
        raise ValueError(f"{str(run_json)!r} is not an mcint run file")
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
    events = rep.get("files", {}).get("events")
    if events and _can_plot_events(run_json.parent / events):
        try:
            paths += plot_events(run_json.parent / events, out,
                                 reference=example_reference(rep.get("integrand")))
        except (OSError, ValueError, ImportError) as exc:
            # the run's results stand without these pictures
            warnings.warn(f"no observable plots of {events}: {exc}", RuntimeWarning,
                          stacklevel=2)
    return paths


def _can_plot_events(path: Path) -> bool:
    """Whether ``path`` is an LHE/LHEH5 file and the packages to read and histogram it exist."""
    name = path.name.lower()
    need = ("pylhe" if name.endswith((".lhe", ".lhe.gz")) else
            "h5py" if name.endswith((".lheh5", ".h5", ".hdf5")) else None)
    return (need is not None and path.is_file() and importlib.util.find_spec(need) is not None
            and importlib.util.find_spec("hist") is not None)


def example_reference(integrand: Any) -> Any:
    """The process of the built-in example named ``integrand`` if it has exact distributions
    (``exact_distributions()``), else ``None`` (not an example name, or nothing to compare)."""
    if not isinstance(integrand, str):
        return None
    from . import examples

    try:
        proc = examples.get(integrand).integrand()
    except (KeyError, ValueError, ImportError):
        return None
    return proc if callable(getattr(proc, "exact_distributions", None)) else None


# -- physics observables of event files ------------------------------------------------------
@dataclass
class ObservableHistogram:
    """One observable of an event sample, histogrammed.

    ``hist`` (a :class:`hist.Hist` with weight storage) holds the events with weights scaled to
    ``mean |w| = 1``: an unweighted event counts 1 (-1 with a negative weight). ``expected``
    is the number of events per bin the exact distribution predicts, or ``None``.
    """

    name: str
    label: str
    unit: str
    hist: Any
    expected: np.ndarray | None
    log_x: bool
    log_y: bool

    @property
    def edges(self) -> np.ndarray:
        return np.asarray(self.hist.axes[0].edges)


#: fixed ranges of observables by their name's prefix
_NATURAL_RANGE = {"cos": (-1.0, 1.0)}


def bin_integrals(density: Callable[[np.ndarray], Any], edges: Any, nodes: int = 16
                  ) -> np.ndarray:
    """``integral density(x) dx`` over each bin, by ``nodes``-point Gauss-Legendre."""
    e = np.asarray(edges, dtype=np.float64)
    gx, gw = np.polynomial.legendre.leggauss(nodes)
    half = 0.5 * np.diff(e)
    x = (0.5 * (e[1:] + e[:-1]))[:, None] + half[:, None] * gx[None, :]
    # one call for all nodes: densities are vectorised, and some are costly per call
    f = np.asarray(density(x.ravel()), dtype=np.float64).reshape(x.shape)
    return (f * gw[None, :]).sum(axis=1) * half


def expected_counts(density: Callable[[np.ndarray], Any], edges: Any, n_events: float,
                    nodes: int = 16) -> np.ndarray:
    """Events per bin predicted by ``density`` (``d sigma / d obs``) for ``n_events`` events:
    ``N integral_bin(density) / sigma_total`` (:func:`bin_integrals`); ``edges`` span the
    density's range, so ``sigma_total`` is the sum of the bins' integrals."""
    per_bin = bin_integrals(density, edges, nodes)
    total = per_bin.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError(f"the exact distribution integrates to {total} over "
                         f"[{edges[0]:g}, {edges[-1]:g}]")
    return n_events * per_bin / total


def _hist() -> Any:
    try:
        import hist
    except ImportError:
        raise ImportError("event plots need hist: pip install 'mcint[plot]'") from None
    return hist


def _exact(reference: Any) -> dict[str, Any]:
    fn = getattr(reference, "exact_distributions", None)
    return dict(fn()) if callable(fn) else {}


def _edges(values: np.ndarray, n_bins: int, rng: tuple[float, float] | None, unit: str
           ) -> tuple[np.ndarray, bool] | None:
    """(bin edges, log-spaced?): over ``rng`` if given, else the data; log-spaced for GeV
    ranges over more than a factor 30; ``None`` for a constant observable (e.g. the mass of the
    whole final state at a lepton collider: nothing to see)."""
    if rng is not None:
        lo, hi = float(rng[0]), float(rng[1])
    else:
        v = values[np.isfinite(values)]
        if v.size == 0:
            return None
        lo, hi = float(v.min()), float(v.max())
        if hi - lo <= 1e-9 * max(abs(lo), abs(hi)):
            return None
        hi += 1e-9 * (hi - lo)  # hist puts a value equal to the last edge in the overflow
    if unit == "GeV" and lo > 0 and hi / lo > 30:
        return np.geomspace(lo, hi, n_bins + 1), True
    return np.linspace(lo, hi, n_bins + 1), False


def fill_observables(events: Any, *, reference: Any = None, n_bins: int = 50
                     ) -> dict[str, ObservableHistogram]:
    """Histograms of :func:`mcint.observables.standard_observables` of ``events`` (a
    :class:`~mcint.events.ReadEvents` or :class:`~mcint.events.ParticleEvents`), with the
    expected counts where ``reference`` has an exact distribution of the same name (see
    :func:`plot_events`). Constant observables are left out."""
    from .observables import standard_observables

    hist = _hist()
    # ReadEvents has .weights, ParticleEvents .weight
    w = np.asarray(events.weights if hasattr(events, "weights") else events.weight,
                   dtype=np.float64)
    scale = float(np.mean(np.abs(w))) if w.size else 0.0
    wn = w / scale if scale > 0 else np.ones_like(w)
    n_events = float(wn.sum())
    exact = _exact(reference)
    out: dict[str, ObservableHistogram] = {}
    for name, (vals, label, unit) in standard_observables(events).items():
        ref = exact.get(name)
        rng = ref[1] if ref is not None else _NATURAL_RANGE.get(name.split("_", 1)[0])
        binning = _edges(vals, n_bins, rng, unit)
        if binning is None:
            continue
        edges, log_x = binning
        h = hist.Hist(hist.axis.Variable(edges, name=name, label=label),
                      storage=hist.storage.Weight())
        ok = np.isfinite(vals)
        h.fill(vals[ok], weight=wn[ok])
        expected = None if ref is None else expected_counts(ref[0], edges, n_events)
        out[name] = ObservableHistogram(name, label, unit, h, expected, log_x=log_x,
                                        log_y=name.startswith("m_"))
    return out


#: mplhep's ROOT style is made for 10 x 10 inch figures; ours are smaller
_STYLE_SCALE = {"font.size": 12, "xtick.major.size": 6, "xtick.minor.size": 3,
                "ytick.major.size": 6, "ytick.minor.size": 3, "legend.fontsize": 10}


def _style(plt: Any) -> Any:
    """mplhep's ROOT style where mplhep is installed (optional), else matplotlib's."""
    try:
        import mplhep
    except ImportError:
        return contextlib.nullcontext()
    return plt.style.context([mplhep.style.ROOT, _STYLE_SCALE])


def _draw_observable(plt: Any, oh: ObservableHistogram, path: Path, title: str) -> Path:
    e = oh.edges
    val = oh.hist.values()
    err = np.sqrt(oh.hist.variances())
    mid = np.sqrt(e[1:] * e[:-1]) if oh.log_x else 0.5 * (e[1:] + e[:-1])
    with _style(plt):
        if oh.expected is not None:
            fig, (ax, rax) = plt.subplots(2, 1, sharex=True, figsize=(6.4, 5.6),
                                          gridspec_kw={"height_ratios": [3, 1], "hspace": 0.06})
        else:
            fig, ax = plt.subplots(figsize=(6.4, 4.4))
            rax = None
        ax.stairs(val, e, color="C0", label="events")
        ax.errorbar(mid, val, yerr=err, fmt="none", ecolor="C0", lw=0.8)
        if oh.expected is not None:
            ax.stairs(oh.expected, e, color="k", ls="--", lw=1, label="exact")
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio, rerr = val / oh.expected, err / oh.expected
            rax.errorbar(mid, ratio, yerr=rerr, fmt="o", ms=2, color="C0", lw=0.8)
            rax.axhline(1.0, color="k", ls="--", lw=1)
            rax.set_ylim(0.5, 1.5)
            rax.set_ylabel("events / exact", fontsize="small")
        if oh.log_y and np.any(val > 0):
            ax.set_yscale("log")
        if oh.log_x:
            ax.set_xscale("log")
            # labelled minor ticks (2x10^2, 3x10^2, ...) overlap on a log axis
            ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_xlim(e[0], e[-1])
        (rax if rax is not None else ax).set_xlabel(oh.label + (f" [{oh.unit}]" if oh.unit
                                                                else ""))
        ax.set_ylabel("events / bin")
        ax.set_title(title, fontsize="small")
        ax.legend(loc="best", fontsize="small")
        return _save(fig, path)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".lhe.gz", ".lheh5", ".lhe", ".hdf5", ".h5", ".npz"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def plot_events(path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                reference: Any = None, n_bins: int = 50) -> list[Path]:
    """One PNG per physics observable of an event file (``OUT/STEM.NAME.png``).

    Reads ``path`` with :func:`mcint.events.read_events` and histograms
    :func:`mcint.observables.standard_observables` with the event weights (mass distributions
    on a log scale). ``reference``: an object whose ``exact_distributions()`` returns
    ``{name: (density, (lo, hi))}``, ``density(x)`` being ``d sigma / d obs`` in pb per unit;
    those observables are binned over ``(lo, hi)`` and drawn with the expected events per bin,
    ``N integral_bin(density) / sigma_total``, and the ratio. An npz file of points (no
    particles) gives its marginals and weight distribution instead.
    """
    from .events import EventFileError
    from .events.read import read_events

    plt = _plt()
    ev = read_events(path)
    # the file's content, not a failure: an EventFileError naming it (mcint plot: exit 2)
    if len(ev) == 0:
        raise EventFileError(f"{str(ev.path)!r} holds no events to plot")
    if ev.momenta is None and ev.x is None:
        raise EventFileError(f"{str(ev.path)!r} holds neither particles nor points to plot")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = _stem(ev.path)
    if ev.momenta is None:
        return [plot_marginals(ev.x, out / f"{stem}.marginals.png", ev.weights),
                plot_weights(ev.weights, out / f"{stem}.weights.png")]
    title = f"{stem}: {len(ev)} events"
    if ev.xsec is not None:
        title += rf", $\sigma$ = {ev.xsec:.4g} pb"
    return [_draw_observable(plt, oh, out / f"{stem}.{name}.png", title)
            for name, oh in fill_observables(ev, reference=reference, n_bins=n_bins).items()]
