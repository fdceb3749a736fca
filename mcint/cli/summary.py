"""The end-of-run summary printed by ``mcint run`` and ``mcint info``."""

from __future__ import annotations

import math
from typing import Any

from ..results import format_value


def _pct(v: Any) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if not math.isfinite(v) else f"{100 * v:.3g}%"


def _g(v: Any, fmt: str = ".4g") -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "n/a"
    return format(v, fmt) if math.isfinite(v) else str(v)


def _weights_line(rel: Any, ess: Any, n: Any, what: str, rel_from: str = "") -> str:
    parts = [f"rel. std {_g(rel, '.4g')}{rel_from}"]
    try:
        frac = float(ess) / float(n)
    except (TypeError, ValueError, ZeroDivisionError):
        frac = math.nan
    if math.isfinite(frac):
        parts.append(f"ESS/N {_g(frac, '.3g')}" + (" (of the raw weights)" if rel_from else ""))
    return ", ".join(parts) + f" over the {n} {what}"


def format_summary(rep: dict[str, Any]) -> str:
    """Human-readable summary of a run report (``run.json`` content).

    Every figure names the sample it comes from (the integration points, the calibration points
    that chose ``w_max``, or the points the events were unweighted from) and agrees with the
    report's fields.
    """
    lines: list[str] = []
    res = rep.get("result", {})
    unit = f" {rep['unit']}" if rep.get("unit") else ""
    v, e = res.get("value", math.nan), res.get("error", math.nan)
    n_int = res.get("calls")
    head = f"integral        {format_value(v, e)}{unit}  = {_g(v, '.6g')} +- {_g(e, '.2g')}{unit}"
    if v:
        head += f"  (rel. error {_g(abs(e / v), '.2e')}"
        head += f"; {n_int} integration points)" if n_int else ")"
    lines.append(head)
    ex = rep.get("exact")
    if ex is not None and e and math.isfinite(e) and e > 0:
        lines.append(f"exact           {_g(ex, '.6g')}{unit}  (pull {(v - ex) / e:+.2f} sigma)")
    if res.get("chi2_dof"):
        lines.append(f"chi2/dof        {_g(res['chi2_dof'], '.2f')}")
    m = rep.get("metrics", {})
    opts = rep.get("options", {})
    weights = []
    if "rel_std" in m:
        # stratified over channels, the integral's error is smaller than the raw weights'
        # spread says: the rel. std is the error's (error sqrt(N) / |I|), the ESS the weights'
        weights.append(_weights_line(m["rel_std"], m.get("ess"), n_int or "?",
                                     "integration points", " (error x sqrt(N) / |I|)"))
    if "sample_rel_std" in m:
        n_cal = opts.get("calibration_calls", "?")
        weights.append(_weights_line(m["sample_rel_std"], m.get("sample_ess"), n_cal,
                                     "calibration points (drawn as the events are)"))
    for i, w in enumerate(weights):
        lines.append(("weights         " if i == 0 else " " * 16) + w)
    uw = rep.get("unweighting", {})
    if uw:
        line = (f"unweighting     w_max {_g(uw.get('w_max'), '.4g')}{unit} for a "
                f"{_pct(uw.get('budget'))} overweight budget on the calibration points")
        if uw.get("expected_efficiency") is not None:
            line += f" (expected efficiency {_pct(uw['expected_efficiency'])})"
        lines.append(line)
        s_uw, e_uw = uw.get("sigma", math.nan), uw.get("sigma_err", math.nan)
        lines.append(f"                events from {uw.get('trials')} points: efficiency "
                     f"{_pct(uw.get('efficiency'))}, overweights truncated "
                     f"{_pct(uw.get('overweight_fraction'))} of sigma "
                     f"({uw.get('overweight_events', 0)} events), sigma "
                     f"{format_value(s_uw, e_uw)}{unit}")
        if uw.get("negative_fraction"):
            lines.append(f"negative events {_pct(uw['negative_fraction'])}")
    if m.get("nonfinite_points"):
        lines.append(f"nonfinite       {m['nonfinite_points']} integrand values were NaN/inf "
                     "and counted as zero (nonfinite = zero)")
    if "cut_efficiency" in m:
        lines.append(f"cut efficiency  {_pct(m.get('cut_efficiency'))} of the calibration points")
    ev = rep.get("events", {})
    if ev:
        lines.append(f"events          {ev.get('n')} unweighted -> {ev.get('path')} "
                     f"({ev.get('format')})")
    t = rep.get("timing", {})
    if t:
        order = ["setup", "train", "integrate", "save", "calibrate", "events", "plots"]
        parts = [f"{k} {t[k]:.1f}s" for k in order if k in t]
        lines.append("time            " + ", ".join(parts) + f"; total {t.get('total', 0):.1f}s")
    ch = rep.get("channels") or []
    if len(ch) > 1:
        lines.append("channels (integration points):")
        w = max(7, *(len(str(r["channel"])) for r in ch))
        lines.append(f"  {'channel':<{w}}  {'integral':>14}  {'share':>7}  {'rel.std':>8}  "
                     f"{'points':>9}")
        for r in ch:
            lines.append(f"  {str(r['channel']):<{w}}  {format_value(r['integral'], r['error']):>14}"
                         f"  {_pct(r['share']):>7}  {_g(r['rel_std'], '.3g'):>8}  "
                         f"{r['count']:>9d}")
    for wmsg in rep.get("warnings", []):
        lines.append(f"warning: {wmsg}")
    files = rep.get("files", {})
    if files:
        shown = []
        for k, val in files.items():
            shown.append(f"{k}: {', '.join(val) if isinstance(val, list) else val}")
        lines.append("files           " + "; ".join(shown))
    return "\n".join(lines)
