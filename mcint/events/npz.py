"""Plain ``.npz`` event files for non-physics users: points ``x``, ``weight`` and ``channel``.

Layout (all arrays, loadable with ``np.load(path, allow_pickle=False)``):

``x``        float64 ``(n, dims)`` -- the points (unit hypercube, or the example's own domain)
``weight``   float64 ``(n,)``      -- event weights (for unweighted events: ``+-`` cross section)
``channel``  int64   ``(n,)``      -- channel index of each event (0 for single-channel samplers)
``meta``     0-d str              -- JSON: format tag and version, cross section and error,
                                     whether the file is complete, anything the caller adds
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..serialize import (
    BOOL,
    MAX_META_BYTES,
    TEXT,
    NpzArchive,
    Record,
    check_field,
    check_finite,
    integer,
    number,
    open_regular,
    parse_json,
)
from ._atomic import EventFileError
from ._writer import EventWriter

FORMAT_TAG = "mcint-events"
FORMAT_VERSION = 1


@dataclass
class NpzEvents:
    """Events read back from an npz event file."""

    x: np.ndarray
    weight: np.ndarray
    channel: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.weight.shape[0])

    @property
    def complete(self) -> bool:
        """False for a file published by a checkpoint or an interrupted run."""
        return bool(self.meta.get("complete", False))


def _as_batch(x: Any, weight: Any, channel: Any, dims: int | None) -> tuple[np.ndarray, ...]:
    from ..backends.base import _to_numpy_any

    x = np.asarray(_to_numpy_any(x), dtype=np.float64)
    w = np.asarray(_to_numpy_any(weight), dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"event points x must have shape (n, dims), got {x.shape}")
    if dims is not None and x.shape[1] != dims:
        raise ValueError(f"event points have {x.shape[1]} dimensions; this file holds {dims}")
    if w.shape != (x.shape[0],):
        raise ValueError(f"weights must have shape ({x.shape[0]},) to match x, got {w.shape}")
    if channel is None:
        c = np.zeros(x.shape[0], dtype=np.int64)
    else:
        c = np.asarray(_to_numpy_any(channel)).astype(np.int64)
        if c.shape != (x.shape[0],):
            raise ValueError(f"channels must have shape ({x.shape[0]},), got {c.shape}")
    return x, w, c


class NpzWriter(EventWriter):
    """Write events to ``.npz`` (see the module docstring for the layout).

    Events are kept in memory (``dims + 2`` numbers each) and the file is rewritten at each
    checkpoint and at the end, through a temporary file and an atomic rename.

    >>> with NpzWriter("events.npz", meta={"xsec": 1.0}) as w:   # doctest: +SKIP
    ...     w.write_batch(x, weight, channel)
    """

    format = "npz"

    def __init__(self, path: str | os.PathLike[str], *, meta: dict[str, Any] | None = None,
                 checkpoint_every: float | None = 60.0) -> None:
        super().__init__(path, checkpoint_every=checkpoint_every)
        self.meta = dict(meta or {})
        json.dumps(self.meta)  # fail now, not at the end of a long run
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._dims: int | None = None

    def write_batch(self, x: Any, weight: Any, channel: Any = None) -> None:
        """Append events: points ``x`` (n, dims), weights (n,), optional channels (n,)."""
        self.write((x, weight, channel))

    def _append(self, events: Any) -> int:
        x, w, c = _as_batch(*events, dims=self._dims)
        self._dims = x.shape[1]
        self._chunks.append((x, w, c))
        return int(x.shape[0])

    def _close_off(self, path: Path, complete: bool) -> None:
        d = self._dims or 0
        if self._chunks:
            x, w, c = (np.concatenate([ch[i] for ch in self._chunks]) for i in range(3))
        else:
            x, w, c = np.zeros((0, d)), np.zeros(0), np.zeros(0, dtype=np.int64)
        meta = {**self.meta, "format": FORMAT_TAG, "version": FORMAT_VERSION,
                "complete": complete, "n_events": int(w.shape[0])}
        with open(path, "wb") as fh:
            np.savez(fh, x=x, weight=w, channel=c, meta=np.asarray(json.dumps(meta)))


def write_npz(path: str | os.PathLike[str], x: Any, weight: Any, channel: Any = None,
              meta: dict[str, Any] | None = None) -> Path:
    """Write one batch of events to ``path`` atomically; returns the path."""
    with NpzWriter(path, meta=meta, checkpoint_every=None) as w:
        w.write_batch(x, weight, channel)
    return w.path


#: what an event file's metadata must hold (other keys are the writer's own, kept as they are)
_META = Record({"format": TEXT, "version": integer(1), "complete": BOOL,
                "n_events": integer(0), "xsec": number(), "xerr": number(0)},
               optional=("complete", "n_events", "xsec", "xerr"), extra=True)


def read_npz(path: str | os.PathLike[str]) -> NpzEvents:
    """Read an npz event file, validating its layout (never unpickles anything).

    Every failure is one :class:`EventFileError` naming the file and what is wrong: missing,
    not a regular file, foreign, corrupt or truncated, metadata fields of the wrong type or
    range, arrays of inconsistent shapes or dtypes, NaN/inf weights. Sizes are checked before
    any data are read, so a hostile file costs no more memory than the arrays it declares.
    """
    p = Path(path)
    where = repr(str(p))
    with open_regular(p, "event file", EventFileError, missing=EventFileError) as f:
        head = f.read(4)
        f.seek(0)
        if head[:2] != b"PK":
            raise EventFileError(f"{where} is not an npz event file (not a zip archive)")
        with NpzArchive(f, where, "event file", EventFileError) as z:
            _check_names(z, where)
            meta = _read_meta(z, where)
            n = meta.get("n_events")
            x = z.read("x", check=_table(2, "f", n))
            w = z.read("weight", check=_table(1, "f", n))
            c = z.read("channel", check=_table(1, "iu", n))
    if not (x.shape[0] == w.shape[0] == c.shape[0]):
        raise EventFileError(f"{where}: inconsistent shapes x{x.shape}, weight{w.shape}, "
                             f"channel{c.shape}")
    check_finite({"x": x, "weight": w}, where, error=EventFileError)
    return NpzEvents(x=x, weight=w, channel=c, meta=meta)


def _table(ndim: int, kinds: str, n: int | None
           ) -> Callable[[tuple[int, ...], np.dtype], str | None]:
    """A check of an array's header: ``ndim`` dimensions, a dtype kind in ``kinds`` and
    ``n`` rows (the metadata's ``n_events``, when it has one)."""
    def check(shape: tuple[int, ...], dtype: np.dtype) -> str | None:
        if len(shape) == ndim and dtype.kind in kinds and (n is None or shape[0] == n):
            return None
        what = "a float" if kinds == "f" else "an integer"
        return (f"is {dtype} {shape}, expected {what} array of {ndim} dimension(s) with "
                f"{'n_events' if n is None else n} rows")

    return check


def _check_names(z: NpzArchive, where: str) -> None:
    missing = sorted({"x", "weight", "channel", "meta"} - set(z.entries))
    extra = sorted(set(z.entries) - {"x", "weight", "channel", "meta"})
    if missing or extra:
        raise EventFileError(f"{where} is not an mcint npz event file: " + "; ".join(
            f"{what} {names}" for what, names in (("missing", missing), ("unexpected", extra))
            if names))


def _read_meta(z: NpzArchive, where: str) -> dict[str, Any]:
    """The metadata entry (a 0-d string array holding JSON), every known field checked."""
    raw = z.read("meta", max_bytes=MAX_META_BYTES)
    if raw.dtype.kind != "U" or raw.shape != ():
        raise EventFileError(f"{where}: corrupt metadata (entry 'meta' is {raw.dtype} "
                             f"{raw.shape}, not a JSON string)")
    meta = parse_json(str(raw[()]), where, error=EventFileError)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_TAG:
        raise EventFileError(f"{where}: metadata does not say format={FORMAT_TAG!r}")
    v = check_field(meta.get("version"), integer(1), "meta.version", where, EventFileError)
    if v > FORMAT_VERSION:
        raise EventFileError(f"{where} has event-file version {v}; this mcint reads up to "
                             f"{FORMAT_VERSION} (upgrade mcint)")
    return check_field(meta, _META, "meta", where, EventFileError)
