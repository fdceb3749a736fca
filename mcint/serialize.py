"""Model and checkpoint files: JSON metadata plus named arrays, one file, no pickle.

    serialize.save("flow.npz", "flow", {"architecture": {...}}, {"w0": w, "b0": b})
    meta, arrays = serialize.load("flow.npz", expect_kind="flow")

Format: a ``.npz`` archive (``np.load(..., allow_pickle=False)``) whose entry ``__meta__`` is a
uint8 array holding UTF-8 JSON::

    {"format": "mcint", "format_version": 1, "kind": ..., "mcint_version": ...,
     "meta": {...caller's metadata...}, "arrays": {name: {"shape": [...], "dtype": "float64"}}}

or, when the path ends in ``.safetensors``, a safetensors file with the same JSON in its string
metadata under ``"mcint"`` (writing needs the optional ``safetensors`` package, reading only
numpy). The array manifest lets :func:`load` detect missing, extra or altered arrays and bounds
what a hostile file can make a loader read or inflate: sizes are checked before any data.
Writes are atomic (a temporary file in the same directory, then ``os.replace``): a crash never
leaves half a file under the final name. Loading never executes code from the file and needs
neither torch nor anything beyond numpy.

The reading helpers -- :func:`open_regular`, :class:`NpzArchive`, :func:`parse_json` and the
field specs checked by :func:`check_field` -- are shared by every loader of model, checkpoint,
event and run files, so each failure to read one is one error naming the file and the problem.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import reprlib
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, BinaryIO, NoReturn, TypeVar

import numpy as np

__all__ = ["save", "load", "read_header", "check_arrays", "check_finite", "check_field",
           "build_from_file", "ModelFileError", "FORMAT_VERSION"]

FORMAT = "mcint"
#: version of the file layout written by this mcint; files with a higher one are refused
FORMAT_VERSION = 1
META_KEY = "__meta__"
_ST_META_KEY = "mcint"


class ModelFileError(ValueError):
    """A model/checkpoint file that cannot be used: foreign, corrupt, wrong kind or version."""


def _version() -> str:
    from . import __version__

    return __version__


def _json_default(o: Any) -> Any:
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"metadata value of type {type(o).__name__} is not JSON-serialisable; "
                    f"store arrays in `arrays`, not in `meta`")


def _host(a: Any) -> np.ndarray:
    from .backends.base import _to_numpy_any

    arr = np.asarray(_to_numpy_any(a))
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"only numeric/bool arrays can be saved, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr)


def save(path: str | os.PathLike, kind: str, meta: Mapping[str, Any],
         arrays: Mapping[str, Any]) -> str:
    """Write one file at ``path`` holding ``meta`` (JSON-able) and ``arrays`` (any backend).

    ``kind`` names what the file holds (``"flow"``, ``"vegas"``, ``"checkpoint"``...) and is
    checked by :func:`load`. Arrays are copied to numpy. Returns the path written.
    """
    p = os.fspath(path)
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"kind must be a non-empty string, got {kind!r}")
    if not isinstance(meta, Mapping):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    host: dict[str, np.ndarray] = {}
    for name, a in arrays.items():
        if not isinstance(name, str) or not name or "/" in name or name.startswith("__"):
            raise ValueError(f"array name {name!r} is invalid (non-empty, no '/', no leading '__')")
        host[name] = _host(a)
    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
        "mcint_version": _version(), "meta": dict(meta),
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in host.items()},
    }
    text = json.dumps(header, default=_json_default, sort_keys=True)
    if p.endswith(".safetensors"):
        data = _safetensors_bytes(host, text)
        _atomic_write(p, lambda f: f.write(data))
    else:
        _atomic_write(p, lambda f: _write_npz(f, host, text))
    return p


def _write_npz(f: Any, arrays: dict[str, np.ndarray], text: str) -> None:
    meta = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in [(META_KEY, meta), *arrays.items()]:
            with zf.open(name + ".npy", "w", force_zip64=True) as g:
                np.lib.format.write_array(g, arr, allow_pickle=False)


def _safetensors_bytes(arrays: dict[str, np.ndarray], text: str) -> bytes:
    try:
        from safetensors.numpy import save as st_save
    except ImportError as exc:
        raise ImportError("writing .safetensors needs the safetensors package "
                          "(pip install 'mcint[safetensors]'), or save as .npz") from exc
    return st_save(arrays, metadata={_ST_META_KEY: text})


def _atomic_write(path: str, write: Any) -> None:
    d = os.path.dirname(os.path.abspath(path))
    if os.path.exists(d) and not os.path.isdir(d):
        raise NotADirectoryError(f"cannot save {path!r}: {d!r} is a file, not a directory")
    if not os.path.isdir(d):
        raise FileNotFoundError(f"cannot save {path!r}: directory {d!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save {path!r}: it is a directory; give a file name")
    if os.path.exists(path):
        mode = os.stat(path).st_mode & 0o777
    else:  # what open() would give: mkstemp's 0600 is for the temporary file only
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# -- validating what a file says: one schema helper for every loader ---------------------------

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = _SHORT.maxlong = 40
_SHORT.maxlist = _SHORT.maxdict = _SHORT.maxtuple = 4
_SHORT.maxlevel = 2

#: a problem found by a :class:`Spec`: (path below the field, what is wrong)
Problem = tuple[str, str]


def _short(v: Any) -> str:
    """A bounded repr of a value read from a file (it may be huge)."""
    return _SHORT.repr(v)


class Spec:
    """What one metadata field must hold; :meth:`problem` says what is wrong with a value."""

    def __init__(self, what: str, ok: Callable[[Any], bool]) -> None:
        self.what, self.ok = what, ok

    def problem(self, v: Any) -> Problem | None:
        """``None`` if ``v`` is acceptable, else (path inside ``v``, what is wrong)."""
        return None if self.ok(v) else ("", f"must be {self.what}, got {_short(v)}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _num(x: float) -> str:
    """A bound as people write it (``2**128 - 1``, not 39 digits)."""
    if isinstance(x, int) and x >= 2**20 and x & (x + 1) == 0:
        return f"2**{x.bit_length()} - 1"
    if isinstance(x, int) and x >= 2**20 and x & (x - 1) == 0:
        return f"2**{x.bit_length() - 1}"
    return str(x)


def _bounds(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f" in [{_num(lo)}, {_num(hi)}]"
    return f" >= {_num(lo)}" if lo is not None else (f" <= {_num(hi)}" if hi is not None else "")


def integer(lo: int | None = 0, hi: int | None = None) -> Spec:
    """An int (not a bool, not a float) in ``[lo, hi]``."""
    return Spec("an integer" + _bounds(lo, hi), lambda v: _is_int(v) and (lo is None or v >= lo)
                and (hi is None or v <= hi))


def number(lo: float | None = None, hi: float | None = None, *, finite: bool = True) -> Spec:
    """A finite (unless ``finite=False``: NaN allowed, never inf) int or float in ``[lo, hi]``."""
    def ok(v: Any) -> bool:
        if not _is_number(v):
            return False
        if math.isnan(v):
            return not finite
        return math.isfinite(v) and (lo is None or v >= lo) and (hi is None or v <= hi)

    return Spec(("a finite number" if finite else "a number or NaN") + _bounds(lo, hi), ok)


BOOL = Spec("true or false", lambda v: isinstance(v, bool))
TEXT = Spec("a string", lambda v: isinstance(v, str))


def choice(*values: Any) -> Spec:
    """One of ``values`` (compared with their type: ``True`` is not ``1``)."""
    return Spec("one of " + ", ".join(map(repr, values)),
                lambda v: any(type(v) is type(c) and v == c for c in values))


class AnyOf(Spec):
    """Whatever one of ``specs`` accepts."""

    def __init__(self, *specs: Spec) -> None:
        super().__init__(" or ".join(s.what for s in specs), lambda v: True)
        self.specs = specs

    def problem(self, v: Any) -> Problem | None:
        probs = [s.problem(v) for s in self.specs]
        if any(p is None for p in probs):
            return None
        # a container of the right type: its own (more precise) problem
        deep = [p for p in probs if p is not None and p[0]]
        return deep[0] if deep else ("", f"must be {self.what}, got {_short(v)}")


def optional(spec: Spec) -> Spec:
    """``None`` (JSON null) or what ``spec`` accepts."""
    return AnyOf(Spec("null", lambda v: v is None), spec)


class ListOf(Spec):
    """A list of items that ``item`` accepts, of ``length`` items (or at most ``max_len``)."""

    def __init__(self, item: Spec, length: int | None = None, max_len: int | None = None) -> None:
        n = f"{length} " if length is not None else ""
        most = f" (at most {max_len})" if max_len is not None else ""
        super().__init__(f"a list of {n}items{most}, each {item.what}", lambda v: True)
        self.item, self.length, self.max_len = item, length, max_len

    def problem(self, v: Any) -> Problem | None:
        if (not isinstance(v, list) or (self.length is not None and len(v) != self.length)
                or (self.max_len is not None and len(v) > self.max_len)):
            return "", f"must be {self.what}, got {_short(v)}"
        for i, x in enumerate(v):
            p = self.item.problem(x)
            if p is not None:
                return f"[{i}]{p[0]}", p[1]
        return None


class Record(Spec):
    """A dict with the keys of ``fields`` (those in ``optional`` may be absent); other keys are
    refused unless ``extra``."""

    def __init__(self, fields: Mapping[str, Spec], optional: Collection[str] = (),
                 extra: bool = False) -> None:
        super().__init__("a dict", lambda v: True)
        self.fields, self.optional, self.extra = dict(fields), frozenset(optional), extra

    def problem(self, v: Any) -> Problem | None:
        if not isinstance(v, dict):
            return "", f"must be a dict, got {_short(v)}"
        for k, spec in self.fields.items():
            if k not in v:
                if k in self.optional:
                    continue
                return f".{k}", "is missing (corrupt, or written by another mcint version)"
            p = spec.problem(v[k])
            if p is not None:
                return f".{k}{p[0]}", p[1]
        unknown = sorted(str(k) for k in v if k not in self.fields)
        if unknown and not self.extra:
            return "", (f"has unknown entries {_short(unknown)} (written by a newer mcint, "
                        "or edited)")
        return None


class DictOf(Spec):
    """A dict from strings to values that ``value`` accepts."""

    def __init__(self, value: Spec) -> None:
        super().__init__(f"a dict, each value {value.what}", lambda v: True)
        self.value = value

    def problem(self, v: Any) -> Problem | None:
        if not isinstance(v, dict):
            return "", f"must be {self.what}, got {_short(v)}"
        for k, x in v.items():
            p = self.value.problem(x)
            if p is not None:
                return f".{k}{p[0]}", p[1]
        return None


def check_field(value: Any, spec: Spec, name: str, where: str,
                error: type[Exception] | None = None) -> Any:
    """``value`` if ``spec`` accepts it; else ``error`` (default :class:`ModelFileError`) naming
    the file, the field (with the path inside it) and what it must be. Returns ``value``."""
    p = spec.problem(value)
    if p is not None:
        raise (error or ModelFileError)(f"{where}: field '{name}{p[0]}' {p[1]}")
    return value


def check_finite(arrays: Mapping[str, np.ndarray], where: str,
                 error: type[Exception] | None = None) -> None:
    """``error`` naming the first float array of ``arrays`` that holds NaN or inf."""
    for name, a in arrays.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
            raise (error or ModelFileError)(
                f"{where}: array {name!r} holds {bad} NaN/inf value(s) (a diverged or "
                "corrupted model; it cannot be used)")


#: the state of one of mcint's random streams (``backends.rng``), as files store it
RNG_STATE = Record({"kind": TEXT, "state": integer(0, 2**128 - 1), "inc": integer(0, 2**128 - 1),
                    "has_uint32": integer(0, 1), "uinteger": integer(0, 2**32 - 1)})

T = TypeVar("T")


def build_from_file(make: Callable[[], T], make_plain: Callable[[], Any], where: str,
                    what: str) -> T:
    """``make()``: a constructor given settings read from a file (already checked by type).

    A ``ValueError``/``TypeError`` it raises is the file's when ``make_plain()`` -- the same
    constructor with only the caller's own arguments -- does not raise one: then it becomes a
    :class:`ModelFileError` naming the file; otherwise the caller's error is raised as it was.
    """
    try:
        return make()
    except (ValueError, TypeError) as exc:
        first = exc
    try:
        make_plain()
    except (ValueError, TypeError):
        raise first from None
    raise ModelFileError(f"{where}: {what}: {first}") from None


# -- reading files with bounded cost -----------------------------------------------------------

#: compressed zip entries of one file may inflate to at most this much in all (mcint writes
#: uncompressed archives, whose entries the file's own size bounds; this caps foreign ones)
MAX_INFLATED_BYTES = 1 << 30
#: the largest JSON metadata read (a checkpoint's step log is ~300 bytes a step)
MAX_META_BYTES = 256 << 20
#: npy headers are ~128 bytes; numpy itself refuses more than 10 000 by default
_NPY_MAX_HEADER = 1 << 16
_NPY_MAGIC = b"\x93NUMPY"
_NPY_DICT = re.compile(r"\{\s*'descr':\s*'([^']{1,16})',\s*'fortran_order':\s*(True|False),\s*"
                       r"'shape':\s*\(([\d,\s]{0,400})\),?\s*\}\s*")
#: plain numeric dtypes (and unicode text, for event metadata): never objects or structs
_NPY_DESCR = re.compile(r"[<>|=]?(b1|[iu][1248]|f[248]|U\d{1,9})")
_DTYPES = frozenset({"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                     "uint64", "float16", "float32", "float64"})
#: what zipfile raises for a corrupt container (entry flags are checked before they are used)
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError,
               EOFError, UnicodeDecodeError, struct.error, OSError)


def open_regular(path: str | os.PathLike, what: str, error: type[Exception],
                 missing: type[Exception] = FileNotFoundError) -> BinaryIO:
    """``path`` opened for reading, if it is a regular file; ``error`` naming it otherwise.

    Opened without blocking and checked on the open descriptor: a FIFO would otherwise block
    ``open`` until a writer came, and a check before opening could be raced.
    """
    p = os.fspath(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise missing(f"{what} {p!r} does not exist") from None
    except OSError as exc:
        raise error(f"{p}: cannot open the {what} ({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)"
                if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device")
        raise error(f"{p}: is {kind}, not a {what}")
    return os.fdopen(fd, "rb")


def parse_json(raw: bytes | str, where: str, what: str = "metadata",
               error: type[Exception] | None = None) -> Any:
    """JSON from a file; ``error`` naming the file for text that is not JSON."""
    err = error or ModelFileError
    try:
        return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except UnicodeDecodeError as exc:
        raise err(f"{where}: corrupt {what} (not UTF-8: {exc})") from None
    except RecursionError:
        raise err(f"{where}: corrupt {what} (nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4300 digits
        raise err(f"{where}: corrupt {what} ({exc})") from None


def _parse_npy_header(raw: bytes) -> tuple[tuple[int, ...], np.dtype, bool] | None:
    """(shape, dtype, fortran_order) of an npy header dict, or None if it is not one numpy
    writes for a plain array (parsed by pattern: never ``eval``/``literal_eval``)."""
    m = _NPY_DICT.fullmatch(raw.decode("latin1"))
    if m is None or not _NPY_DESCR.fullmatch(m.group(1)):
        return None
    dims = [s.strip() for s in m.group(3).split(",")]
    if dims and dims[-1] == "":
        dims.pop()  # the trailing comma of a 1-tuple
    if not all(d.isdigit() and len(d) <= 19 for d in dims):
        return None
    return tuple(int(d) for d in dims), np.dtype(m.group(1)), m.group(2) == "True"


class NpzArchive:
    """An ``.npz`` archive read with bounded memory and time, for model and event files.

    Entries are checked against the zip central directory before anything is inflated: only
    ``NAME.npy`` names, no duplicates, no encryption, stored or deflated, stored data inside
    the file, and at most :data:`MAX_INFLATED_BYTES` of compressed data in all. Each entry's
    npy header is parsed by pattern and must agree with the entry's size (and with the
    expected shape and dtype, when given) before its data is read.
    """

    def __init__(self, f: BinaryIO, where: str, what: str, error: type[Exception]) -> None:
        self.where, self.what, self.error = where, what, error
        self.size = os.fstat(f.fileno()).st_size
        self._inflated = 0
        with self._guard():
            self._zf = zipfile.ZipFile(f)
        self.entries = self._entries()

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._zf.close()

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """zipfile's errors for a damaged container as one ``error`` naming the file."""
        try:
            yield
        except self.error:
            raise
        except _ZIP_ERRORS as exc:
            raise self.error(f"{self.where}: corrupt or truncated {self.what} "
                             f"({type(exc).__name__}: {exc})") from None

    def _fail(self, msg: str) -> NoReturn:
        raise self.error(f"{self.where}: {msg}")

    def _entries(self) -> dict[str, zipfile.ZipInfo]:
        out: dict[str, zipfile.ZipInfo] = {}
        for info in self._zf.infolist():
            name = info.filename
            if not name.endswith(".npy") or name[:-4] in out:
                why = "a duplicate" if name[:-4] in out else "not an array (.npy)"
                self._fail(f"not a valid {self.what}: zip entry {name!r} is {why}")
            if info.flag_bits & 0x61:  # encrypted, patched data, strong encryption
                self._fail(f"corrupt {self.what}: zip entry {name!r} is marked encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                self._fail(f"corrupt {self.what}: zip entry {name!r} uses compression method "
                           f"{info.compress_type} (mcint reads stored or deflated entries)")
            stored = info.compress_type == zipfile.ZIP_STORED
            if (stored and info.compress_size != info.file_size) or \
                    info.header_offset + info.compress_size > self.size:
                self._fail(f"corrupt or truncated {self.what}: zip entry {name!r} claims "
                           f"{info.file_size} bytes that are not in the file")
            out[name[:-4]] = info
        return out

    def declared_bytes(self, name: str) -> int:
        """The size the zip directory declares for entry ``name`` (npy header included)."""
        return int(self.entries[name].file_size)

    def read(self, name: str, expect: tuple[tuple[int, ...], np.dtype] | None = None, *,
             max_bytes: int | None = None,
             check: Callable[[tuple[int, ...], np.dtype], str | None] | None = None,
             data: bool = True) -> np.ndarray | None:
        """Entry ``name`` as an array (``None`` with ``data=False``: header checks only).

        ``expect``: the (shape, dtype) it must have; ``max_bytes``: a bound on its data when
        nothing is expected. Both are checked against the declared size before inflating.
        ``check(shape, dtype)``: what is wrong with the header's shape and dtype, or None;
        asked before the data are read.
        """
        info = self.entries[name]
        limit = max_bytes if expect is None else math.prod(expect[0]) * expect[1].itemsize
        if limit is not None and info.file_size > limit + _NPY_MAX_HEADER + 12:
            got = f"an entry of {info.file_size} bytes"
            self._fail(f"arrays do not match the manifest: {name}: expected " + (
                f"{tuple(expect[0])} {expect[1]}, got {got}" if expect is not None else
                f"at most {limit} bytes, got {got}"))
        if info.compress_type != zipfile.ZIP_STORED:
            self._inflated += info.file_size
            if self._inflated > MAX_INFLATED_BYTES:
                self._fail(f"compressed entries would inflate to more than "
                           f"{MAX_INFLATED_BYTES} bytes (a zip bomb?)")
        with self._guard(), self._zf.open(info) as fh:
            shape, dtype, fortran, start = self._npy_header(fh, name)
            nbytes = math.prod(shape) * dtype.itemsize
            if expect is not None and (shape, dtype.newbyteorder("=")) != (
                    tuple(expect[0]), expect[1]):
                self._fail(f"arrays do not match the manifest: wrong shape/dtype: {name}: "
                           f"expected {tuple(expect[0])} {expect[1]}, got {shape} {dtype}")
            problem = None if check is None else check(shape, dtype)
            if problem is not None:
                self._fail(f"array {name!r} {problem}")
            if start + nbytes != info.file_size:
                self._fail(f"corrupt {self.what}: entry {name!r} holds {info.file_size} bytes, "
                           f"its header says {shape} {dtype} ({start + nbytes} bytes)")
            if not data:
                return None
            buf = bytearray(nbytes)
            view, pos = memoryview(buf), 0
            while pos < nbytes:
                chunk = fh.read(min(nbytes - pos, 1 << 24))
                if not chunk:
                    self._fail(f"corrupt or truncated {self.what}: entry {name!r} ends early")
                view[pos:pos + len(chunk)] = chunk
                pos += len(chunk)
            fh.read(1)  # at the end: zipfile checks the CRC here
        arr = np.frombuffer(buf, dtype=dtype).reshape(shape, order="F" if fortran else "C")
        return arr if dtype.isnative else arr.astype(dtype.newbyteorder("="))

    def _npy_header(self, fh: BinaryIO, name: str) -> tuple[tuple[int, ...], np.dtype, bool, int]:
        head = fh.read(8)
        if len(head) < 8 or head[:6] != _NPY_MAGIC or head[6] not in (1, 2, 3) or head[7] != 0:
            self._fail(f"corrupt {self.what}: entry {name!r} is not an npy array")
        size_fmt = "<H" if head[6] == 1 else "<I"
        raw = fh.read(struct.calcsize(size_fmt))
        hlen = struct.unpack(size_fmt, raw)[0] if len(raw) == struct.calcsize(size_fmt) else -1
        if not 0 < hlen <= _NPY_MAX_HEADER:
            self._fail(f"corrupt {self.what}: entry {name!r} has an npy header of {hlen} bytes")
        raw = fh.read(hlen)
        parsed = _parse_npy_header(raw) if len(raw) == hlen else None
        if parsed is None:
            self._fail(f"corrupt {self.what}: entry {name!r} has an unreadable npy header "
                       f"{_short(raw[:80])} (only plain numeric arrays are read; never "
                       "objects, which would need pickle)")
        return (*parsed, 8 + struct.calcsize(size_fmt) + hlen)


# -- model files -------------------------------------------------------------------------------

_NUMERIC = Spec("a plain numeric dtype (bool, intN, uintN or floatN; never object, which would "
                "need pickle)", lambda v: isinstance(v, str) and v in _DTYPES)
_ARRAY_SPEC = Record({"shape": ListOf(integer(0), max_len=32), "dtype": _NUMERIC})
_HEADER = Record({"format": TEXT, "format_version": integer(1), "kind": TEXT,
                  "mcint_version": TEXT, "meta": Record({}, extra=True),
                  "arrays": DictOf(_ARRAY_SPEC)}, optional=("mcint_version",), extra=True)
_ST_DTYPES = {"BOOL": "bool", "U8": "uint8", "I8": "int8", "U16": "uint16", "I16": "int16",
              "U32": "uint32", "I32": "int32", "U64": "uint64", "I64": "int64",
              "F16": "float16", "F32": "float32", "F64": "float64"}
_ST_TENSOR = Record({"dtype": choice(*_ST_DTYPES), "shape": ListOf(integer(0), max_len=32),
                     "data_offsets": ListOf(integer(0), length=2)})
Expect = dict[str, tuple[tuple[int, ...], np.dtype]]


def _parse_header(raw: bytes, p: str) -> dict[str, Any]:
    """The file's JSON header, checked field by field."""
    header = parse_json(raw, p)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{p}: not an mcint model file (metadata lacks format='mcint')")
    v = check_field(header.get("format_version"), integer(1), "format_version", p)
    if v > FORMAT_VERSION:
        raise ModelFileError(
            f"{p}: written by mcint {header.get('mcint_version', '?')} in file format version "
            f"{v}; this mcint ({_version()}) reads versions up to {FORMAT_VERSION}: upgrade mcint")
    check_field(header, _HEADER, "header", p)
    return header


def _manifest(header: dict[str, Any], p: str) -> Expect:
    """Name -> (shape, dtype) of every array the header lists."""
    for name in header["arrays"]:
        if not name or "/" in name or name.startswith("__"):
            raise ModelFileError(f"{p}: field 'header.arrays' lists an invalid array name "
                                 f"{_short(name)}")
    return {k: (tuple(v["shape"]), np.dtype(v["dtype"])) for k, v in header["arrays"].items()}


def _mismatch(p: str, expect: Expect, names: Collection[str]) -> None:
    """Refuse a file whose entries are not exactly the arrays its manifest lists."""
    missing, extra = sorted(set(expect) - set(names)), sorted(set(names) - set(expect))
    problems = [f"{what} arrays {v[:8]}{'...' if len(v) > 8 else ''}"
                for what, v in (("missing", missing), ("unexpected", extra)) if v]
    if problems:
        raise ModelFileError(f"{p}: arrays do not match the manifest: " + "; ".join(problems))


def _read_npz(f: BinaryIO, p: str, data: bool, kind: str | None
              ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with NpzArchive(f, p, "model file", ModelFileError) as z:
        if META_KEY not in z.entries:
            raise ModelFileError(f"{p}: not an mcint model file (an .npz archive without a "
                                 f"{META_KEY!r} entry)")
        raw = z.read(META_KEY, max_bytes=MAX_META_BYTES)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ModelFileError(f"{p}: corrupt metadata (entry {META_KEY!r} is {raw.dtype} "
                                 f"{raw.shape}, not bytes)")
        header = _parse_header(raw.tobytes(), p)
        _check_kind(header, kind, p)
        expect = _manifest(header, p)
        _mismatch(p, expect, set(z.entries) - {META_KEY})
        arrays = {k: z.read(k, expect[k], data=data) for k in sorted(expect)}
    return header, arrays


def _st_header_size(head: bytes, size: int) -> int | None:
    """The JSON header length of a safetensors file (8-byte length, then ``{``), or None."""
    if len(head) < 9 or head[8:9] != b"{":
        return None
    n = int.from_bytes(head[:8], "little")
    return n if 2 <= n <= size - 8 else None


def _read_safetensors(f: BinaryIO, p: str, n: int, data: bool, kind: str | None
                      ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    # read with numpy (the layout is 8 bytes, JSON, raw little-endian data): the safetensors
    # package is needed only to write
    if n > MAX_META_BYTES:
        raise ModelFileError(f"{p}: corrupt safetensors file (a header of {n} bytes)")
    f.seek(8)
    st = parse_json(f.read(n), p, "safetensors header")
    md = st.get("__metadata__") if isinstance(st, dict) else None
    if not isinstance(md, dict) or not isinstance(md.get(_ST_META_KEY), str):
        raise ModelFileError(f"{p}: not an mcint model file (safetensors without mcint "
                             "metadata)")
    header = _parse_header(md[_ST_META_KEY].encode("utf-8"), p)
    _check_kind(header, kind, p)
    expect = _manifest(header, p)
    tensors = {k: v for k, v in st.items() if k != "__metadata__"}
    _mismatch(p, expect, tensors)
    size = os.fstat(f.fileno()).st_size
    arrays = {}
    for k in sorted(expect):
        t = check_field(tensors[k], _ST_TENSOR, f"tensors.{k}", p)
        dt = np.dtype(_ST_DTYPES[t["dtype"]])
        (begin, end), nbytes = t["data_offsets"], math.prod(expect[k][0]) * dt.itemsize
        if (tuple(t["shape"]), dt) != expect[k]:
            raise ModelFileError(f"{p}: arrays do not match the manifest: wrong shape/dtype: "
                                 f"{k}: expected {expect[k][0]} {expect[k][1]}, got "
                                 f"{tuple(t['shape'])} {dt}")
        if end - begin != nbytes or 8 + n + end > size:
            raise ModelFileError(f"{p}: corrupt or truncated safetensors file (tensor {k!r} "
                                 f"at bytes {begin}..{end}, needs {nbytes} within the file)")
        arrays[k] = _read_at(f, 8 + n + begin, nbytes, dt, expect[k][0], p) if data else None
    return header, arrays


def _read_at(f: BinaryIO, offset: int, nbytes: int, dt: np.dtype, shape: tuple[int, ...],
             p: str) -> np.ndarray:
    """``nbytes`` at ``offset`` as a little-endian array (writable, native byte order)."""
    buf = bytearray(nbytes)
    f.seek(offset)
    if f.readinto(buf) != nbytes:
        raise ModelFileError(f"{p}: corrupt or truncated safetensors file")
    arr = np.frombuffer(buf, dtype=dt.newbyteorder("<")).reshape(shape)
    return arr if arr.dtype.isnative else arr.astype(dt)


def _check_kind(header: dict[str, Any], kind: str | None, p: str) -> None:
    if kind is not None and header["kind"] != kind:
        raise ModelFileError(f"{p}: holds a {header['kind']!r}, expected a {kind!r}")


def _read(path: str | os.PathLike, data: bool = True, kind: str | None = None
          ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    p = os.fspath(path)
    with open_regular(p, "model file", ModelFileError) as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(9)
        f.seek(0)
        if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            return _read_npz(f, p, data, kind)
        n = _st_header_size(head, size)
        if n is not None:
            return _read_safetensors(f, p, n, data, kind)
    if size == 0:
        raise ModelFileError(f"{p}: empty file (truncated?)")
    raise ModelFileError(f"{p}: not an mcint model file (neither an .npz archive nor safetensors)")


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The whole JSON header of a file (format, version, kind, mcint version, meta, arrays).

    Checks the header and every array's declared size and npy header, but reads no array data.
    """
    return _read(path, data=False)[0]


def load(path: str | os.PathLike, expect_kind: str | None = None
         ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a file written by :func:`save`: returns ``(meta, arrays)`` (numpy arrays).

    Raises ``FileNotFoundError`` for a missing file and :class:`ModelFileError`, naming the
    file, for anything else that is wrong: not a regular file, foreign, corrupt or truncated,
    a ``kind`` other than ``expect_kind``, a format version from a newer mcint, a malformed
    header, or arrays that disagree with the file's manifest. Sizes are checked before data is
    read or inflated, so a hostile file costs no more memory than the arrays it declares.
    """
    header, arrays = _read(path, kind=expect_kind)
    return header["meta"], arrays


def check_arrays(arrays: Mapping[str, Any], expect: Mapping[str, tuple[tuple[int, ...], str]],
                 where: str = "model file") -> None:
    """Raise :class:`ModelFileError` unless ``arrays`` has exactly the names, shapes and dtypes
    of ``expect`` (name -> (shape, dtype string))."""
    missing = sorted(set(expect) - set(arrays))
    extra = sorted(set(arrays) - set(expect))
    wrong = [f"{k}: expected {expect[k][0]} {expect[k][1]}, got {tuple(arrays[k].shape)} "
             f"{arrays[k].dtype}" for k in sorted(set(expect) & set(arrays))
             if (tuple(arrays[k].shape), str(arrays[k].dtype)) != (tuple(expect[k][0]),
                                                                   str(expect[k][1]))]
    problems = []
    if missing:
        problems.append(f"missing arrays {missing[:8]}{'...' if len(missing) > 8 else ''}")
    if extra:
        problems.append(f"unexpected arrays {extra[:8]}{'...' if len(extra) > 8 else ''}")
    if wrong:
        problems.append("wrong shape/dtype: " + "; ".join(wrong[:5]))
    if problems:
        raise ModelFileError(f"{where}: arrays do not match the architecture: "
                             + "; ".join(problems))
