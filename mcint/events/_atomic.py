"""Crash-safe event files: every file at the final path is complete and valid.

A writer streams into a hidden temporary file in the destination directory
(``.NAME.PID.RANDOM.part``). The final path only ever appears through ``os.replace`` (atomic on
POSIX and Windows), either at :meth:`AtomicStream.close` or at a *checkpoint*: a copy of the
events written so far, closed off so that it is a valid file, published in the same way. A run
killed at any moment (even by SIGKILL) therefore leaves at the final path either nothing, the
last checkpoint, or the finished file -- never a half-written one.

Checkpoints copy the file, so their frequency is bounded by time (``checkpoint_every`` seconds)
and by cost: the next one waits at least ten times as long as the last copy took, which keeps the
copying overhead under ~10% however large the file grows.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO


class EventFileError(OSError):
    """An event file cannot be written or read (bad path, foreign or corrupt file)."""


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Resolve ``path`` and make sure a file can be created there; raise a clear error if not."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise EventFileError(f"output path {str(p)!r} is a directory; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise EventFileError(f"output directory {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise EventFileError(f"output directory {str(parent)!r} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise EventFileError(f"output directory {str(parent)!r} is not writable")
    if p.exists() and not os.access(p, os.W_OK):
        raise EventFileError(f"output file {str(p)!r} exists and is not writable")
    return p


_UMASK: list[int] = []


def _umask() -> int:
    if not _UMASK:
        old = os.umask(0o022)
        os.umask(old)
        _UMASK.append(old)
    return _UMASK[0]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: how mcint's writers name their temporaries of ``NAME``: ``.NAME.<tag>.part`` (event
#: writers; tag = pid.random) and ``.NAME.<tag>.tmp`` (atomic writes of run files, models and
#: checkpoints; tag = pid.random, or mkstemp's random letters in mcint.serialize)
TEMP_SUFFIXES = (".part", ".tmp")


def temp_files(directory: str | os.PathLike[str], name: str) -> list[Path]:
    """The temporaries that mcint's writers make for ``directory/name`` (our patterns only)."""
    d = Path(directory)
    pat = glob.escape(f".{name}.")
    return sorted({p for s in TEMP_SUFFIXES for p in d.glob(f"{pat}*{s}") if p.is_file()})


def _writer_pid(tmp: Path, name: str) -> int | None:
    """The pid in a temporary's name, or None where the name carries none (mcint.serialize)."""
    tag = tmp.name[len(name) + 2:].split(".")[0]
    return int(tag) if tag.isdigit() else None


def remove_stale_temps(directory: str | os.PathLike[str], names: Iterable[str], *,
                       exclusive: bool = False) -> list[Path]:
    """Delete the temporaries that killed writers left for ``names`` in ``directory``.

    Without ``exclusive`` only temporaries named with the pid of a process that is gone are
    removed. With ``exclusive`` (the caller holds the directory's run lock, so no other mcint
    process writes there) every temporary of ``names`` except this process's own is removed:
    pids are reused, and mcint.serialize's names carry none. Returns the removed paths.
    """
    removed = []
    for name in names:
        for tmp in temp_files(directory, name):
            pid = _writer_pid(tmp, name)
            if pid == os.getpid() or (not exclusive and (pid is None or _pid_alive(pid))):
                continue
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` through ``write(file)`` into a temporary that is renamed over ``path``.

    The temporary (``.NAME.PID.RANDOM.tmp``, next to ``path``) is removed when the write fails
    (a full disk must not be filled further by what it refused), so ``path`` holds either its
    old content or the new one.
    """
    p = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{p.name}.{os.getpid()}.", suffix=".tmp", dir=p.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 is for the temporary only
        os.replace(tmp, p)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(p)   # a failed write() names no file: say which one it was
        raise
    return p


def _remove_stale(path: Path) -> None:
    """Delete temporaries left for ``path`` by writers that were killed (their pid is gone)."""
    remove_stale_temps(path.parent, [path.name])


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a closed file's data to disk (so a rename publishes its contents, not a hole)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicStream:
    """Book-keeping shared by the event writers: temp paths, checkpoint timing, publishing.

    Parameters
    ----------
    path:
        The final file name.
    checkpoint_every:
        Seconds between checkpoints (``None``: never, only the finished file is published;
        ``0``: at every :meth:`maybe_checkpoint` call, used by tests).
    """

    def __init__(self, path: str | os.PathLike[str], checkpoint_every: float | None = 60.0) -> None:
        self.path = check_writable(path)
        _remove_stale(self.path)
        self.checkpoint_every = checkpoint_every
        self._last = time.monotonic()
        self._min_gap = 0.0
        #: the temporary file the writer streams into
        self.tmp = self._new_tmp()
        self.published_events = 0

    def _new_tmp(self) -> Path:
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.{os.getpid()}.", suffix=".part",
                                    dir=self.path.parent)
        try:
            # mkstemp makes 0600 files; published files get the usual umask permissions
            os.fchmod(fd, 0o666 & ~_umask())
        except (AttributeError, OSError):  # pragma: no cover - Windows
            pass
        finally:
            os.close(fd)
        return Path(name)

    def due(self) -> bool:
        """Whether a checkpoint should be written now."""
        if self.checkpoint_every is None:
            return False
        gap = time.monotonic() - self._last
        return gap >= max(self.checkpoint_every, self._min_gap)

    def publish_snapshot(self, finish_copy: Callable[[Path], None], n_events: int) -> None:
        """Copy the stream file, let ``finish_copy`` close it off, then publish it atomically."""
        t0 = time.monotonic()
        snap = self._new_tmp()
        try:
            shutil.copyfile(self.tmp, snap)
            finish_copy(snap)
            fsync_path(snap)
            os.replace(snap, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                snap.unlink()
            raise
        now = time.monotonic()
        self._min_gap = 10.0 * (now - t0)
        self._last = now
        self.published_events = n_events

    def publish_final(self) -> None:
        """Publish the (already closed and completed) stream file itself."""
        fsync_path(self.tmp)
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        """Remove the temporary file (after a failure or once published)."""
        with contextlib.suppress(OSError):
            self.tmp.unlink()
