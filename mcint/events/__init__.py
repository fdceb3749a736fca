"""Unweighted events and event files (LHE, LHEH5, npz) that an interrupted run never corrupts.

* :mod:`~mcint.events.unweight` -- accept/reject with an overweight-truncation budget, signed
  weights;
* :class:`LHEWriter`, :class:`LHEH5Writer` (h5py optional), :class:`NpzWriter` -- streaming
  writers; the final path only ever holds a complete file (see :mod:`mcint.events._atomic`);
* :func:`open_writer` picks the writer from the file name.
"""

from __future__ import annotations

import os
from typing import Any

from ._atomic import EventFileError, check_writable
from ._writer import EventWriter
from .lhe import LHEWriter
from .lheh5 import LHEH5Writer
from .npz import NpzEvents, NpzWriter, read_npz, write_npz
from .particles import ParticleEvents, RunInfo
from .read import ReadEvents, read_events
from .unweight import (
    DEFAULT_BUDGET,
    EventBatch,
    Unweighter,
    UnweightResult,
    UnweightStats,
    iid_source,
    max_weight,
    unweight,
    unweighted_events,
)

__all__ = [
    "DEFAULT_BUDGET", "EventBatch", "EventFileError", "EventWriter", "LHEH5Writer", "LHEWriter",
    "NpzEvents", "NpzWriter", "ParticleEvents", "ReadEvents", "RunInfo", "UnweightResult",
    "UnweightStats", "Unweighter", "check_writable", "format_of", "iid_source", "max_weight",
    "open_writer", "read_events", "read_npz", "unweight", "unweighted_events", "write_npz",
]

FORMATS = {".lhe": "lhe", ".lheh5": "lheh5", ".h5": "lheh5", ".hdf5": "lheh5", ".npz": "npz"}


def format_of(path: str | os.PathLike[str]) -> str:
    """The event format implied by a file name (``.lhe``, ``.lhe.gz``, ``.lheh5``/``.h5``/``.hdf5``,
    ``.npz``)."""
    name = os.fspath(path).lower()
    if name.endswith(".lhe.gz"):
        return "lhe"
    suffix = os.path.splitext(name)[1]
    try:
        return FORMATS[suffix]
    except KeyError:
        raise ValueError(f"cannot tell the event format of {os.fspath(path)!r}: use one of "
                         f"{', '.join(sorted(FORMATS))}, .lhe.gz") from None


def open_writer(path: str | os.PathLike[str], info: RunInfo | None = None, *,
                fmt: str | None = None, **kwargs: Any) -> EventWriter:
    """Open the writer for ``path``'s format; LHE and LHEH5 need a :class:`RunInfo`."""
    fmt = fmt or format_of(path)
    if fmt == "npz":
        meta = dict(kwargs.pop("meta", None) or {})
        if info is not None:
            meta = {"xsec": info.xsec, "xerr": info.xerr, **(info.meta or {}), **meta}
        return NpzWriter(path, meta=meta, **kwargs)
    if info is None:
        raise ValueError(f"writing {fmt} needs the run information (RunInfo: cross section, beams)")
    if fmt == "lhe":
        return LHEWriter(path, info, **kwargs)
    if fmt == "lheh5":
        return LHEH5Writer(path, info, **kwargs)
    raise ValueError(f"unknown event format {fmt!r}; use lhe, lheh5 or npz")
