"""The common life cycle of the event writers (open, write batches, close or abort)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from ._atomic import AtomicStream


class EventWriter:
    """Base class: streams batches into a temporary file and publishes complete files only.

    Use as a context manager. Leaving the ``with`` block normally publishes the finished file;
    leaving it through an exception (``KeyboardInterrupt`` included) publishes the events written
    so far as a valid file marked incomplete (or nothing, if there were none), then re-raises.
    Subclasses implement ``_append``, ``_flush``, ``_close_off(path, complete)`` and ``_release``.
    """

    #: short format name ("lhe", "lheh5", "npz")
    format: str = ""

    def __init__(self, path: str | os.PathLike[str], *, checkpoint_every: float | None = 60.0
                 ) -> None:
        self._stream = AtomicStream(path, checkpoint_every)
        self.path: Path = self._stream.path
        #: events written so far
        self.n_events = 0
        self.closed = False

    # -- subclass hooks -------------------------------------------------------------------
    def _append(self, events: Any) -> int:
        raise NotImplementedError

    def _flush(self) -> None:
        """Push buffered data to the stream file so that a byte copy of it is consistent."""

    def _close_off(self, path: Path, complete: bool) -> None:
        """Turn ``path`` (the stream file, or a copy of it) into a valid finished file."""
        raise NotImplementedError

    def _release(self) -> None:
        """Close open handles on the stream file."""

    # -- public API -----------------------------------------------------------------------
    def write(self, events: Any) -> None:
        """Append a batch of events; may publish a checkpoint."""
        if self.closed:
            raise ValueError(f"the event writer for {str(self.path)!r} is closed")
        self.n_events += self._append(events)
        if self._stream.due():
            self.checkpoint()

    def checkpoint(self) -> None:
        """Publish the events written so far as a valid file (marked incomplete)."""
        self._flush()
        self._stream.publish_snapshot(lambda p: self._close_off(p, complete=False), self.n_events)

    def close(self) -> Path:
        """Finish the file and publish it at :attr:`path`."""
        if self.closed:
            return self.path
        try:
            self._flush()
            self._release()
            self._close_off(self._stream.tmp, complete=True)
            self._stream.publish_final()
        except BaseException:
            self._stream.discard()
            self.closed = True
            raise
        self.closed = True
        return self.path

    def abort(self) -> None:
        """Stop writing: publish what was written (marked incomplete) if anything, drop the rest."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.n_events > self._stream.published_events:
                self._flush()
                self._stream.publish_snapshot(lambda p: self._close_off(p, complete=False),
                                              self.n_events)
        finally:
            with contextlib.suppress(Exception):
                self._release()
            self._stream.discard()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            # a failing snapshot must not hide the original error
            with contextlib.suppress(Exception):
                self.abort()

    def __del__(self) -> None:  # pragma: no cover - only when a writer is dropped unclosed
        if not getattr(self, "closed", True):
            with contextlib.suppress(Exception):
                self._release()
                self._stream.discard()
