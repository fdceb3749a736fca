"""Read event files back as arrays: LHE (pylhe), LHEH5 (h5py) and mcint's npz.

:func:`read_events` returns a :class:`ReadEvents` whatever the format: four-momenta, PDG ids and
status codes of LHE/LHEH5 events, the points ``x`` of npz events, the weights, the channel of
each event (where the file records it) and the cross section. Only the external particles
(incoming and outgoing) are read: intermediate resonances (status 2), which an event writes
only near their pole, are left out. Only files whose events all have the same number of
external particles are read (every mcint process has a fixed multiplicity).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import EventFileError

__all__ = ["ReadEvents", "read_events"]

#: the per-event comment line our LHE writer adds for multi-channel runs
_CHANNEL_LINE = re.compile(r"#\s*mcint\s+channel\s*=\s*(-?\d+)")


@dataclass
class ReadEvents:
    """Events read back from a file (see :func:`read_events`).

    Attributes
    ----------
    momenta: ``(n, k, 4)`` float64 four-momenta ``(E, px, py, pz)`` in GeV; ``None`` for npz.
    pdg: ``(n, k)`` PDG ids, or ``None``.
    status: ``(n, k)`` LHE status codes (-1 incoming, 1 outgoing, 2 intermediate), or ``None``.
    weights: ``(n,)`` event weights.
    channel: ``(n,)`` channel index of each event, or ``None`` where the file has none.
    x: ``(n, dims)`` sampled points (npz files), or ``None``.
    xsec: the cross section in pb from the ``<init>`` block / metadata, or ``None``.
    path: the file.
    """

    momenta: np.ndarray | None
    pdg: np.ndarray | None
    status: np.ndarray | None
    weights: np.ndarray
    channel: np.ndarray | None
    x: np.ndarray | None
    xsec: float | None
    path: Path

    def __len__(self) -> int:
        return int(self.weights.shape[0])


def read_events(path: str | os.PathLike[str]) -> ReadEvents:
    """Read an ``.lhe`` (also gzipped), ``.lheh5``/``.h5``/``.hdf5`` or ``.npz`` event file.

    Raises :class:`~mcint.events.EventFileError` naming the file when it is missing, not a valid
    file of its format, mixes events of different multiplicities, or when the package that
    reads its format (pylhe, h5py) is not installed.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        what = ("is a directory, not an event file" if p.is_dir() else
                "is not a regular file" if p.exists() else "does not exist")
        raise EventFileError(f"event file {str(p)!r} {what}")
    fmt = _format(p)
    if fmt == "lhe":
        return _read_lhe(p)
    if fmt == "lheh5":
        return _read_lheh5(p)
    return _read_npz(p)


def _format(p: Path) -> str:
    from . import format_of

    name = p.name.lower()
    if name.endswith(".lhe.gz"):  # pylhe reads gzipped LHE as is
        return "lhe"
    try:
        return format_of(p)
    except ValueError as exc:
        raise EventFileError(str(exc)) from None


# -- LHE ------------------------------------------------------------------------------------
def _read_lhe(p: Path) -> ReadEvents:
    try:
        import pylhe
    except ImportError:
        raise EventFileError(f"reading {str(p)!r} needs pylhe: pip install 'mcint[plot]' "
                             "(or pip install pylhe)") from None
    with warnings.catch_warnings():
        # pylhe reports broken XML (a truncated or foreign file) as a warning and stops early
        warnings.filterwarnings("error", message="Parse Error", category=RuntimeWarning)
        try:
            lhe = pylhe.LHEFile.fromfile(str(p))
            xsec = _lhe_xsec(lhe.init)
            rows, weights, channels = _lhe_events(p, lhe.events)
        except EventFileError:
            raise
        except Exception as exc:
            raise EventFileError(f"{str(p)!r} is not a valid LHE file ({type(exc).__name__}: "
                                 f"{exc})") from None
    n = len(weights)
    if not np.all(np.isfinite(weights)):   # as the npz and LHEH5 readers
        raise EventFileError(f"{str(p)!r}: event weights contain NaN or inf")
    arr = np.array(rows, dtype=np.float64).reshape(n, -1, 6) if n else np.zeros((0, 0, 6))
    chan = np.array(channels, dtype=np.int64) if n and None not in channels else None
    return ReadEvents(momenta=np.ascontiguousarray(arr[..., 2:6]), pdg=arr[..., 0].astype(np.int64),
                      status=arr[..., 1].astype(np.int64),
                      weights=np.array(weights, dtype=np.float64), channel=chan, x=None,
                      xsec=xsec, path=p)


def _field(obj: Any, name: str) -> Any:
    """``obj.name``, or ``obj[name]`` (older pylhe releases give dicts)."""
    try:
        return getattr(obj, name)
    except AttributeError:
        return obj[name]


def _lhe_xsec(init: Any) -> float | None:
    procs = _field(init, "procInfo") or []
    return float(sum(float(_field(pr, "xSection")) for pr in procs)) if procs else None


def _lhe_events(p: Path, events: Any) -> tuple[list, list[float], list[int | None]]:
    rows: list[list[tuple[float, ...]]] = []
    weights: list[float] = []
    channels: list[int | None] = []
    k0 = None
    for i, ev in enumerate(events):
        parts = [q for q in ev.particles if int(q.status) != 2]
        if k0 is None:
            k0 = len(parts)
        elif len(parts) != k0:
            raise EventFileError(f"{str(p)!r}: event {i + 1} has {len(parts)} particles, the "
                                 f"first has {k0}; files mixing multiplicities are not supported")
        rows.append([(q.id, q.status, q.e, q.px, q.py, q.pz) for q in parts])
        weights.append(float(ev.eventinfo.weight))
        channels.append(_lhe_channel(getattr(ev, "optional", None) or ()))
    return rows, weights, channels


def _lhe_channel(lines: Any) -> int | None:
    for line in lines:
        m = _CHANNEL_LINE.match(str(line).strip())
        if m:
            return int(m.group(1))
    return None


# -- LHEH5 ----------------------------------------------------------------------------------
def _read_lheh5(p: Path) -> ReadEvents:
    try:
        import h5py
    except ImportError:
        raise EventFileError(f"reading {str(p)!r} needs h5py: pip install 'mcint[events]'"
                             ) from None
    try:
        with h5py.File(p, "r") as f:
            ev, part = _table(f, "events"), _table(f, "particles")
            proc = _table(f, "procInfo") if "procInfo" in f else {}
            chan = f["mcint/channel"][()] if "mcint/channel" in f else None
    except (OSError, KeyError, ValueError) as exc:
        raise EventFileError(f"{str(p)!r} is not a valid LHEH5 file ({type(exc).__name__}: "
                             f"{exc})") from None
    for cols, need in ((ev, ("nparticles", "start")), (part, ("id", "status", "e", "px", "py",
                                                              "pz"))):
        missing = [c for c in need if c not in cols]
        if missing:
            raise EventFileError(f"{str(p)!r} is not an LHEH5 file of the known layout: no "
                                 f"column(s) {missing}")
    wcol = next((c for c in ("NOMINAL", "weight") if c in ev), None)
    if wcol is None:
        raise EventFileError(f"{str(p)!r}: the events table has no weight column (NOMINAL)")
    weights = np.asarray(ev[wcol], dtype=np.float64)
    n = weights.shape[0]
    if not np.all(np.isfinite(weights)):
        raise EventFileError(f"{str(p)!r}: event weights contain NaN or inf")
    n_part = int(part["id"].shape[0])
    for col in ("nparticles", "start"):
        v = np.asarray(ev[col], dtype=np.float64)
        # checked as numbers first: a NaN or 1e12 count must not reach np.arange
        if v.shape != (n,) or not np.all(np.isfinite(v)) or np.any(v != np.floor(v)) or \
                np.any(v < 0) or np.any(v > n_part):
            raise EventFileError(f"{str(p)!r}: the events column {col!r} must hold whole "
                                 f"numbers in 0..{n_part} (the particles table), one per event")
    counts = ev["nparticles"].astype(np.int64)
    start = ev["start"].astype(np.int64)
    if n and np.any(start + counts > n_part):
        raise EventFileError(f"{str(p)!r}: event rows point past the particles table")
    # the external particles of each event (intermediate resonances, status 2, left out)
    width = int(counts.max()) if n else 0
    rows = start[:, None] + np.arange(width)[None, :]
    ext = (np.arange(width)[None, :] < counts[:, None])
    ext &= np.asarray(part["status"], np.float64)[np.minimum(rows, max(n_part - 1, 0))] != 2 \
        if n_part else ext
    ks = np.unique(ext.sum(axis=1))
    if ks.size > 1:
        raise EventFileError(f"{str(p)!r} mixes events of {', '.join(map(str, ks))} external "
                             "particles; files mixing multiplicities are not supported")
    k = int(ks[0]) if n else 0
    # stable sort puts each event's external rows first, in file order
    first = np.argsort(~ext, axis=1, kind="stable")[:, :k]
    idx = np.take_along_axis(rows, first, axis=1)
    mom = np.stack([part[c][idx] for c in ("e", "px", "py", "pz")], axis=-1)
    xs = proc.get("xSection")
    channel = np.asarray(chan, dtype=np.int64) if chan is not None and len(chan) == n else None
    return ReadEvents(momenta=mom.astype(np.float64), pdg=part["id"][idx].astype(np.int64),
                      status=part["status"][idx].astype(np.int64), weights=weights,
                      channel=channel, x=None,
                      xsec=None if xs is None else float(np.sum(xs)), path=p)


def _table(f: Any, name: str) -> dict[str, np.ndarray]:
    """The columns of an LHEH5 table, by the names in its ``properties`` attribute."""
    ds = f[name]
    cols = [c.decode() if isinstance(c, bytes) else str(c) for c in ds.attrs["properties"]]
    data = np.asarray(ds[()])
    if data.ndim == 1:
        data = data[None, :]
    return {c: data[:, i] for i, c in enumerate(cols)}


# -- npz ------------------------------------------------------------------------------------
def _read_npz(p: Path) -> ReadEvents:
    from .npz import read_npz

    ev = read_npz(p)
    xs = ev.meta.get("xsec")
    return ReadEvents(momenta=None, pdg=None, status=None, weights=ev.weight,
                      channel=ev.channel, x=ev.x,
                      xsec=float(xs) if isinstance(xs, (int, float)) else None, path=p)
