"""The run directory of ``mcint run`` / ``mcint sample``: where each file goes (``--out DIR`` or
``--out DIR/NAME.lhe``), the lock a run holds while it writes there, refusing (or with
``--force`` removing) an earlier run's outputs, and atomic JSON writes."""

from __future__ import annotations

import contextlib
import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..events import EventFileError, check_writable, format_of
from ..events._atomic import remove_stale_temps, write_atomic
from .config import ConfigError, RunConfig
from .resume import CHECKPOINT_FILE

if TYPE_CHECKING:
    from .target import Target

RUN_FILE = "run.json"
MODEL_FILE = "model.npz"
DIAG_FILE = "diagnostics.npz"
LOCK_FILE = ".mcint.lock"
#: the files of a run besides its events (each with the layout's prefix)
RUN_FILES = (RUN_FILE, MODEL_FILE, DIAG_FILE, CHECKPOINT_FILE)


@dataclass
class Layout:
    """Where a run's files go."""

    run_dir: Path
    events: Path
    prefix: str = ""

    def file(self, name: str) -> Path:
        return self.run_dir / f"{self.prefix}{name}"


EVENT_SUFFIXES = (".lhe", ".lhe.gz", ".lheh5", ".h5", ".hdf5", ".npz")


def event_suffix(path: str | os.PathLike[str]) -> str:
    """The event-file suffix of ``path`` (``.lhe.gz`` counts as one), or ``""``."""
    name = Path(path).name.lower()
    return next((s for s in sorted(EVENT_SUFFIXES, key=len, reverse=True) if name.endswith(s)
                 and len(name) > len(s)), "")


def event_format(cfg: RunConfig, target: Target) -> str:
    """The format from ``--out``'s suffix, ``--format`` or the target's default (consistent)."""
    if event_suffix(cfg.out):
        fmt = format_of(cfg.out)
        if cfg.format is not None and cfg.format != fmt:
            raise ConfigError(f"--format {cfg.format} contradicts the output name {cfg.out!r} "
                              f"({fmt})")
        return fmt
    return cfg.format or target.event_format


def check_out_name(out: str) -> None:
    """A name with a suffix must be an event file or an existing directory: ``--out ev.root``
    would otherwise become a directory holding ``events.npz``."""
    p = Path(out).expanduser()
    if p.suffix and not event_suffix(p) and not p.is_dir():
        raise ConfigError(f"--out {out!r}: {p.suffix!r} is not an event file suffix "
                          f"({', '.join(EVENT_SUFFIXES)}); name a directory without a suffix "
                          "(or create it first)")


def layout(out: str, fmt: str) -> Layout:
    """``out`` is a directory, or an event file name whose directory holds the other files."""
    check_out_name(out)
    p = Path(out).expanduser()
    suffix = event_suffix(p)
    if suffix:
        return Layout(p.parent if str(p.parent) else Path("."), p,
                      prefix=p.name[: -len(suffix)] + ".")
    return Layout(p, p / f"events.{fmt}")


def prepare_dir(lay: Layout) -> None:
    """Create the run directory and check that the event file can be written, before any work.

    A path that cannot be used is the user's option, not a failure of the run: ConfigError.
    """
    try:
        lay.run_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"cannot create output directory {str(lay.run_dir)!r}: a file of "
                          "that name exists (give a directory, or an event file name)") from None
    except OSError as exc:
        raise ConfigError(f"cannot create output directory {str(lay.run_dir)!r}: "
                          f"{exc.strerror or exc}") from None
    try:
        check_writable(lay.events)
    except EventFileError as exc:
        raise ConfigError(str(exc)) from None
    if not os.access(lay.run_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"output directory {str(lay.run_dir)!r} is not writable")


# -- one run per set of outputs ----------------------------------------------------------------
class OutputBusy(RuntimeError):
    """Another process holds the run directory's lock."""

    #: EX_TEMPFAIL: nothing is wrong with the command, try again later
    exit_status = 75


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


class RunLock:
    """An exclusive lock on a run directory, held while a run writes there.

    ``fcntl.flock`` on ``DIR/.mcint.lock``: the kernel drops it when the holder ends (even by
    SIGKILL), so a lock never goes stale; the file holds the holder's pid for the message.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: runs are not locked
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputBusy(self._busy_message()) from None
            except OSError:   # a file system without locks (ENOLCK): run unlocked
                os.close(fd)
                return self
            if _same_file(fd, self.path):   # else its holder removed it as we opened it
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def _busy_message(self) -> str:
        try:
            pid = self.path.read_text().strip() or "unknown"
        except OSError:
            pid = "unknown"
        return (f"another mcint process (pid {pid}) is writing to {str(self.path.parent)!r} "
                f"(lock {str(self.path)!r}): wait for it to finish, or choose another --out")

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):   # unlink first: a waiting run then makes a new one
            self.path.unlink()
        os.close(self._fd)
        self._fd = None


def output_names(lay: Layout) -> list[str]:
    """The file names (in the run directory) that a run with this layout writes, its events
    in every format (an earlier run may have used another)."""
    suffix = event_suffix(lay.events) or lay.events.suffix
    stem = lay.events.name[: -len(suffix)] if suffix else lay.events.name
    return [f"{lay.prefix}{n}" for n in RUN_FILES] + [f"{stem}{s}" for s in EVENT_SUFFIXES]


def event_names(lay: Layout) -> list[str]:
    """The event file names of this layout in every format (what `mcint sample` writes)."""
    return output_names(lay)[len(RUN_FILES):]


def earlier_outputs(lay: Layout, names: list[str], plots: bool = True) -> list[Path]:
    """The outputs of an earlier run with this layout that exist (files, and the plots
    directory if it holds PNGs)."""
    found = [lay.run_dir / n for n in names if (lay.run_dir / n).is_file()]
    pdir = lay.run_dir / f"{lay.prefix}plots"
    if plots and pdir.is_dir() and any(pdir.glob("*.png")):
        found.append(pdir)
    return found


def remove_outputs(paths: list[Path]) -> None:
    """Delete an earlier run's files (only the names a run writes: nothing else of the user's)."""
    for p in paths:
        if p.is_dir():
            for png in p.glob("*.png"):
                png.unlink()
            with contextlib.suppress(OSError):   # kept if the user put other files there
                p.rmdir()
        else:
            p.unlink()


def _earlier_run_message(lay: Layout, found: list[Path]) -> str:
    names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in found)
    msg = (f"{str(lay.run_dir)!r} holds the outputs of an earlier run ({names}): give --force "
           "to replace them (all of them are removed first), or choose another --out")
    run = lay.file(RUN_FILE)
    try:
        status = json.loads(run.read_text()).get("status") if run.is_file() else None
    except (OSError, ValueError, AttributeError, RecursionError):
        status = None
    if status in ("training", "trained"):
        msg += f"; that run was interrupted: `mcint run --resume {lay.run_dir}` continues it"
    return msg


def claim_outputs(lay: Layout, names: list[str], force: bool, resume: bool = False,
                  plots: bool = True) -> RunLock:
    """Lock the run directory, then make sure this run's files mix with no other run's.

    An earlier run's outputs are refused, or with ``force`` removed; a resumed run continues
    its own. Temporaries that killed writers left for ``names`` are removed either way.
    """
    lock = RunLock(lay.run_dir).acquire()
    try:
        if not resume:
            found = earlier_outputs(lay, names, plots)
            if found and not force:
                raise ConfigError(_earlier_run_message(lay, found))
            remove_outputs(found)
        remove_stale_temps(lay.run_dir, names, exclusive=True)
    except BaseException:
        lock.release()
        raise
    return lock


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic JSON write (temporary file + rename; the temporary goes if the write fails)."""
    text = json.dumps(data, indent=1, default=_json_default, allow_nan=True) + "\n"
    write_atomic(path, lambda fh: fh.write(text.encode("utf-8")))


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


#: write errors that name no file (a failed write() on a full disk, a quota, a bad device)
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EIO, getattr(errno, "EDQUOT", errno.ENOSPC)}


@contextlib.contextmanager
def naming_the_file(path: Path) -> Any:
    """Name ``path`` in a write error that names no file. Other errors (the integrand's own
    OSErrors, which run inside the block too) pass unchanged."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno in _WRITE_ERRNOS:
            exc.filename = str(path)
        raise
