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


def format_summary(rep: dict[str, Any]) -> str:
    """Human-readable summary of a run report (``run.json`` content)."""
    lines: list[str] = []
    res = rep.get("result", {})
    unit = f" {rep['unit']}" if rep.get("unit") else ""
    v, e = res.get("value", math.nan), res.get("error", math.nan)
    head = f"integral        {format_value(v, e)}{unit}  = {_g(v, '.6g')} +- {_g(e, '.2g')}"
    if v:
        head += f"  (rel. error {_g(abs(e / v), '.2e')})"
    lines.append(head)
    ex = rep.get("exact")
    if ex is not None and e and math.isfinite(e) and e > 0:
        lines.append(f"exact           {_g(ex, '.6g')}  (pull {(v - ex) / e:+.2f} sigma)")
    if res.get("chi2_dof"):
        lines.append(f"chi2/dof        {_g(res['chi2_dof'], '.2f')}")
    m = rep.get("metrics", {})
    rel = m.get("rel_std", m.get("sample_rel_std"))
    lines.append(f"rel. std        {_g(rel, '.4g')}   (std(w)/<w>; ESS/N "
                 f"{_g(m.get('sample_ess', math.nan) / max(1, rep.get('options', {}).get('calibration_calls', 1)), '.3g')})")
    uw = rep.get("unweighting", {})
    if uw:
        lines.append(f"unweighting     efficiency {_pct(uw.get('efficiency'))} "
                     f"(w_max with {_pct(uw.get('budget'))} overweight budget; overweights "
                     f"{_pct(uw.get('overweight_fraction'))} of sigma, "
                     f"{uw.get('overweight_events', 0)} events)")
        if uw.get("negative_fraction"):
            lines.append(f"negative events {_pct(uw['negative_fraction'])}")
    if "sample_unweighting_efficiency" in m:
        lines.append(f"                bootstrap-median w_max efficiency "
                     f"{_pct(m['sample_unweighting_efficiency'])}")
    lines.append(f"cut efficiency  {_pct(m.get('cut_efficiency'))}")
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
        lines.append("channels:")
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
