"""``mcint sample``, ``mcint info`` and ``mcint plot``: work with a finished run's files.

``mcint sample`` needs no torch: it loads the model (plain arrays, no pickle), rebuilds the
integrand recorded in the run's ``run.json`` (or given with ``--integrand``), chooses ``w_max``
on a fresh calibration sample and streams unweighted events into a crash-safe file.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path
from typing import Any

from .config import ConfigError, RunConfig, apply
from .eventfile import budget_warning, calibrate, write_events
from .rundir import MODEL_FILE, RUN_FILE, event_format, event_suffix, layout, prepare_dir
from .summary import format_summary
from .target import resolve
from .training import NONFINITE_WARNING, nonfinite_points


def find_run(model: str) -> tuple[Path | None, Path | None, dict[str, Any]]:
    """(model file, run.json, its content) for a model file, a run.json or a run directory."""
    p = Path(model).expanduser()
    if not p.exists():
        raise ConfigError(f"{str(p)!r} does not exist (give a model file or a run directory)")
    if p.is_dir():
        run = p / RUN_FILE
        named = sorted(p.glob(f"*.{RUN_FILE}"))
        if not run.is_file() and len(named) == 1:   # the directory of --out DIR/NAME.lhe
            run = named[0]
        rep = _load_run(run) if run.is_file() else {}
        name = rep.get("files", {}).get("model", MODEL_FILE)
        m = p / name
        return (m if m.is_file() else None), (run if run.is_file() else None), rep
    if p.suffix == ".json":
        rep = _load_run(p)
        name = rep.get("files", {}).get("model")
        m = p.parent / name if name else None
        return (m if m is not None and m.is_file() else None), p, rep
    # a model file: its run.json (if any) sits next to it, possibly with a prefix
    candidates = [p.parent / RUN_FILE]
    if p.name.endswith("." + MODEL_FILE):   # out/NAME.model.npz from --out out/NAME.lhe
        candidates.append(p.with_name(p.name[: -len(MODEL_FILE)] + RUN_FILE))
    for run in candidates:
        if run.is_file():
            rep = _load_run(run)
            if rep.get("files", {}).get("model") == p.name:
                return p, run, rep
    return p, None, {}


def _load_run(path: Path) -> dict[str, Any]:
    from ..serialize import TEXT, Record, check_field, open_regular, parse_json

    where = repr(str(path))
    # a regular file only (a FIFO would block), JSON of bounded depth, fields by type
    with open_regular(path, "run file", ConfigError, missing=ConfigError) as f:
        data = parse_json(f.read(), where, "run file", ConfigError)
    if not isinstance(data, dict) or "integrand" not in data:
        raise ConfigError(f"{where} is not an mcint run file (no 'integrand')")
    files = Record({"model": TEXT}, optional=("model",), extra=True)
    spec = Record({"integrand": TEXT, "files": files}, optional=("files",), extra=True)
    return check_field(data, spec, "run", where, ConfigError)


def load_sampler(model: Path, target: Any, backend: Any, seed: int) -> Any:
    """The saved sampler (NIS checkpoint or VEGAS model) for ``target``'s integrand."""
    from ..serialize import ModelFileError, read_header

    try:
        kind = read_header(str(model)).get("kind")
    except (ModelFileError, OSError) as exc:
        raise ConfigError(str(exc) if str(model) in str(exc) else f"{str(model)!r}: {exc}"
                          ) from None
    if kind == "vegas":
        from ..vegas import VEGAS

        return VEGAS.load(str(model), target.integrand, backend=backend, seed=seed)
    from ..nis import Integrator

    return Integrator.resume(str(model), target.integrand, backend=backend)


def _sample_target(args: argparse.Namespace, model: Path, run_json: Path | None,
                   rep0: dict[str, Any]) -> tuple[str, str]:
    """(integrand spec, directory relative files are looked up in) for ``mcint sample``.

    ``--integrand`` is the user's choice (looked up from the working directory). The run
    file's integrand runs code only with ``--trust-run-file``: a model never executes code,
    and a run directory from elsewhere must not either without being asked to.
    """
    from .resume import add_run_cwd
    from .target import require_trust

    if args.integrand:
        return args.integrand, "."
    if run_json is None:
        raise ConfigError(f"{str(model)!r} has no run.json next to it: name the integrand "
                          "with --integrand")
    opts = rep0.get("options") if isinstance(rep0.get("options"), dict) else {}
    # the run stored file targets as absolute paths: they resolve from anywhere
    spec = str(opts.get("integrand") or rep0.get("integrand") or "")
    if not spec:
        raise ConfigError(f"{str(run_json)!r} names no integrand: give --integrand")
    if not getattr(args, "trust_run_file", False):
        require_trust(spec, str(run_json), "give --trust-run-file if you trust it, or name "
                      "the integrand yourself with --integrand")
    add_run_cwd(rep0, spec)
    return spec, str(rep0.get("base_dir") or run_json.parent)


def sample(args: argparse.Namespace) -> int:
    from ..backends import get_backend

    model, run_json, rep0 = find_run(args.model)
    if model is None:
        raise ConfigError(f"no model file found for {args.model!r} (was the run made with "
                          "--no-save-model?)")
    spec, base_dir = _sample_target(args, model, run_json, rep0)
    cfg = RunConfig(integrand=spec, dims=rep0.get("dims"), base_dir=base_dir)
    cfg.out = str(model.parent / "sampled")
    given = {k: v for k, v in vars(args).items() if v is not None and k not in
             ("command", "model", "integrand", "force", "trust_run_file")}
    apply(cfg, given, source="command line")
    if cfg.seed == 1 and args.seed is None:
        cfg.seed = int(rep0.get("seed", 0)) + 1  # fresh events, not the run's
    cfg.validate()
    import os

    backend = get_backend(cfg.backend or os.environ.get("MCINT_BACKEND"))
    t0 = time.perf_counter()
    target = resolve(cfg.integrand, cfg.dims, cfg.base_dir)
    fmt = event_format(cfg, target)
    if fmt != "npz" and (target.example is None or target.example.physics is None):
        raise ConfigError(f"{target.spec} has no particle content: write .npz events")
    lay = layout(cfg.out, fmt)
    prepare_dir(lay)
    from .rundir import claim_outputs, event_names

    # only event files: the run's own files may share the directory
    lock = claim_outputs(lay, event_names(lay), bool(getattr(args, "force", False)),
                         plots=False)
    try:
        with warnings.catch_warnings():   # counted instead: the summary's nonfinite line
            warnings.filterwarnings("ignore", NONFINITE_WARNING, RuntimeWarning)
            return _sample_claimed(cfg, model, rep0, target, backend, fmt, lay, spec, t0)
    finally:
        lock.release()


def _sample_claimed(cfg: RunConfig, model: Path, rep0: dict[str, Any], target: Any,
                    backend: Any, fmt: str, lay: Any, spec: str, t0: float) -> int:
    """Calibrate and write the events, once the output directory is locked."""
    from .. import __version__

    sampler = load_sampler(model, target, backend, cfg.seed)
    timing = {"load": time.perf_counter() - t0}
    t = time.perf_counter()
    calib_calls = cfg.calibration_calls or max(50_000, min(10 * cfg.events, 1_000_000))
    cal = calibrate(sampler, calib_calls, cfg.batch_size, cfg.budget)
    timing["calibrate"] = time.perf_counter() - t
    res = rep0.get("result") or {}
    if res.get("value") is not None:
        sigma, err = float(res["value"]), float(res["error"])
    else:
        n = cal["n"]
        w = cal["weights"]
        sigma, err = float(w.mean()), float(w.std() / math.sqrt(max(n - 1, 1)))
    signed = bool((cal["weights"] < 0).any())
    ratio = cal["mean_abs"] / cal["mean"] if (signed and cal["mean"] != 0) else 1.0
    sigma_abs = abs(sigma * ratio) if sigma != 0 else cal["mean_abs"]
    if sigma_abs == 0:
        raise ConfigError("the integrand is zero at every sampled point: no events")
    meta = {"integrand": spec, "sampler": type(sampler).__name__, "backend": backend.name, "seed": cfg.seed,
            "model": str(model), "w_max": cal["w_max"], "budget": cfg.budget}
    print(f"mcint sample {target.name}: model {model}, backend {backend.name}, seed {cfg.seed}",
          flush=True)
    t = time.perf_counter()
    stats, _ = write_events(sampler, target, cfg, lay.events, fmt, cal["w_max"], sigma, err,
                            sigma_abs, signed, meta, seed=cfg.seed,
                            expected_eff=cal["expected_efficiency"])
    timing["events"] = time.perf_counter() - t
    timing["total"] = time.perf_counter() - t0
    rep = {"integrand": spec, "result": {"value": sigma, "error": err},
           "unit": rep0.get("unit", ""), "exact": rep0.get("exact"),
           "metrics": {"cut_efficiency": cal["cut_efficiency"],
                       "nonfinite_points": nonfinite_points(sampler),
                       **{f"sample_{k}": v for k, v in cal["diagnostics"].items()}},
           "unweighting": {**stats.as_dict(), "budget": cfg.budget, "sigma_abs": sigma_abs,
                           "expected_efficiency": cal["expected_efficiency"],
                           "calibration_points": cal["n"]},
           "events": {"path": str(lay.events), "format": fmt, "n": stats.accepted},
           "timing": timing, "options": {"calibration_calls": calib_calls},
           "mcint_version": __version__}
    over = budget_warning(stats, cfg.budget, cal["n"])
    if over is not None:
        rep["warnings"] = [over]
    print(format_summary(rep))
    return 0


def _check_model(model: Path, kind: Any) -> None:
    """The checks the loader of a model of ``kind`` runs before it needs the integrand
    (schema, sizes, finite parameters, grids): a model ``mcint info`` describes is one that
    loads. Other kinds get the header's checks only."""
    from ..serialize import load

    if kind == "nis-checkpoint":
        from ..nis.checkpoint import check_stored as check_nis

        meta, arrays = load(str(model), expect_kind=kind)
        check_nis(meta, arrays, str(model))
    elif kind == "vegas":
        from ..vegas.integrator import check_stored as check_vegas

        meta, arrays = load(str(model), expect_kind=kind)
        check_vegas(meta, arrays, f"{model}: not a usable VEGAS file")


def info(args: argparse.Namespace) -> int:
    model, run_json, rep = find_run(args.model)
    if model is not None:
        from ..serialize import ModelFileError, read_header

        try:
            head = read_header(str(model))
            _check_model(model, head.get("kind"))
        except (ModelFileError, OSError) as exc:  # the message names the file
            raise ConfigError(str(exc)) from None
        print(f"model file      {model}")
        print(f"kind            {head.get('kind')} (mcint {head.get('mcint_version')}, format "
              f"version {head.get('format_version')})")
        meta = head.get("meta", {})
        for key in ("dims", "n_channels", "groups", "dtype", "loss", "step", "calls",
                    "train_calls"):
            if key in meta:
                print(f"{key:<15} {meta[key]}")
        arrays = head.get("arrays", {})
        n_par = sum(math.prod(a.get("shape", [])) for a in arrays.values())
        print(f"arrays          {len(arrays)} ({n_par} numbers)")
    if rep:
        print(f"run             {run_json}")
        print(f"integrand       {rep.get('integrand')} ({rep.get('dims')} dims, sampler "
              f"{rep.get('sampler')}, backend {rep.get('backend')}, seed {rep.get('seed')})")
        print(format_summary(rep))
    if model is None and not rep:
        raise ConfigError(f"{args.model!r} holds neither a model nor a run")
    return 0


def plot(args: argparse.Namespace) -> int:
    from .. import plots
    from ..events import FORMATS

    plots.require_matplotlib()
    src = Path(args.source).expanduser()
    if not src.exists():
        raise ConfigError(f"{str(src)!r} does not exist")
    if src.is_dir() or src.suffix == ".json":
        run = src / RUN_FILE if src.is_dir() else src
        if not run.is_file():
            raise ConfigError(f"{str(src)!r} has no {RUN_FILE} (not a run directory)")
        out = Path(args.out) if args.out else run.parent / "plots"
        paths = plots.plot_run(run, out)
    elif src.suffix.lower() in FORMATS or src.name.lower().endswith(".lhe.gz"):
        # the run that wrote the file (run.json, or NAME.run.json for --out NAME.lhe) tells
        # which built-in process, if any, gives exact distributions to compare with
        reference = None
        stem = src.name[: -len(event_suffix(src) or src.suffix)]
        for run in (src.parent / RUN_FILE, src.with_name(f"{stem}.{RUN_FILE}")):
            if run.is_file():
                try:
                    reference = plots.example_reference(_load_run(run).get("integrand"))
                except ConfigError:  # a broken run.json does not stop the plots
                    pass
                break
        out = Path(args.out) if args.out else src.parent / "plots"
        paths = plots.plot_events(src, out, reference=reference)
    else:
        raise ConfigError(f"cannot plot {str(src)!r}: give a run directory or an event file "
                          "(.lhe, .lheh5, .npz)")
    for p in paths:
        print(p)
    return 0
