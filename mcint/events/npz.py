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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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


def read_npz(path: str | os.PathLike[str]) -> NpzEvents:
    """Read an npz event file, validating its layout (never unpickles anything)."""
    p = Path(path)
    if not p.is_file():
        raise EventFileError(f"event file {str(p)!r} does not exist")
    try:
        with np.load(p, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except ValueError as exc:
        raise EventFileError(f"{str(p)!r} is not a plain npz event file: {exc}") from None
    except Exception as exc:
        raise EventFileError(f"{str(p)!r} is not a readable npz file ({type(exc).__name__}: "
                             f"{exc})") from None
    missing = {"x", "weight", "channel", "meta"} - set(data)
    if missing:
        raise EventFileError(f"{str(p)!r} is not an mcint npz event file: missing "
                             f"{sorted(missing)}")
    try:
        meta = json.loads(str(data["meta"]))
    except json.JSONDecodeError as exc:
        raise EventFileError(f"{str(p)!r}: corrupt metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_TAG:
        raise EventFileError(f"{str(p)!r}: metadata does not say format={FORMAT_TAG!r}")
    if int(meta.get("version", 0)) > FORMAT_VERSION:
        raise EventFileError(f"{str(p)!r} has event-file version {meta.get('version')}; this "
                             f"mcint reads up to {FORMAT_VERSION} (upgrade mcint)")
    x, w, c = data["x"], data["weight"], data["channel"]
    n = w.shape[0] if w.ndim == 1 else -1
    if x.ndim != 2 or w.ndim != 1 or c.shape != w.shape or x.shape[0] != n:
        raise EventFileError(f"{str(p)!r}: inconsistent shapes x{x.shape}, weight{w.shape}, "
                             f"channel{c.shape}")
    if x.dtype.kind != "f" or w.dtype.kind != "f" or c.dtype.kind not in "iu":
        raise EventFileError(f"{str(p)!r}: unexpected dtypes x {x.dtype}, weight {w.dtype}, "
                             f"channel {c.dtype}")
    return NpzEvents(x=x, weight=w, channel=c, meta=meta)
