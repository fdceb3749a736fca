"""Model and checkpoint files: JSON metadata plus named arrays, one file, no pickle.

    serialize.save("flow.npz", "flow", {"architecture": {...}}, {"w0": w, "b0": b})
    meta, arrays = serialize.load("flow.npz", expect_kind="flow")

Format: a ``.npz`` archive (``np.load(..., allow_pickle=False)``) whose entry ``__meta__`` is a
uint8 array holding UTF-8 JSON::

    {"format": "mcint", "format_version": 1, "kind": ..., "mcint_version": ...,
     "meta": {...caller's metadata...}, "arrays": {name: {"shape": [...], "dtype": "float64"}}}

or, when the path ends in ``.safetensors``, a safetensors file with the same JSON in its string
metadata under ``"mcint"`` (needs the optional ``safetensors`` package). The array manifest lets
:func:`load` detect missing, extra or altered arrays. Writes are atomic (a temporary file in the
same directory, then ``os.replace``): a crash never leaves half a file under the final name.
Loading never executes code from the file and needs neither torch nor anything beyond numpy.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["save", "load", "read_header", "check_arrays", "ModelFileError", "FORMAT_VERSION"]

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


# -- reading ---------------------------------------------------------------------------------

def _sniff(p: str) -> str:
    if not os.path.exists(p):
        raise FileNotFoundError(f"model file {p!r} does not exist")
    if os.path.isdir(p):
        raise ModelFileError(f"{p}: is a directory, not a model file")
    with open(p, "rb") as f:
        head = f.read(9)
    if head[:4] == b"PK\x03\x04":
        return "npz"
    if len(head) == 9 and head[8:9] == b"{":
        return "safetensors"
    if len(head) == 0:
        raise ModelFileError(f"{p}: empty file (truncated?)")
    raise ModelFileError(f"{p}: not an mcint model file (neither an .npz archive nor safetensors)")


def _parse_header(raw: Any, p: str) -> dict[str, Any]:
    try:
        header = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
        raise ModelFileError(f"{p}: corrupt metadata ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{p}: not an mcint model file (metadata lacks format='mcint')")
    v = header.get("format_version")
    if not isinstance(v, int) or v < 1:
        raise ModelFileError(f"{p}: invalid format_version {v!r}")
    if v > FORMAT_VERSION:
        raise ModelFileError(
            f"{p}: written by mcint {header.get('mcint_version', '?')} in file format version "
            f"{v}; this mcint ({_version()}) reads versions up to {FORMAT_VERSION}: upgrade mcint")
    for key, typ in (("kind", str), ("meta", dict), ("arrays", dict)):
        if not isinstance(header.get(key), typ):
            raise ModelFileError(f"{p}: metadata field {key!r} missing or not a {typ.__name__}")
    return header


def _read_npz(p: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:
        with np.load(p, allow_pickle=False) as z:
            if META_KEY not in z.files:
                raise ModelFileError(f"{p}: not an mcint model file (an .npz archive without a "
                                     f"{META_KEY!r} entry)")
            header = _parse_header(z[META_KEY], p)
            arrays = {k: z[k] for k in z.files if k != META_KEY}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        raise ModelFileError(f"{p}: corrupt or truncated model file ({type(exc).__name__}: "
                             f"{exc})") from None
    return header, arrays


def _read_safetensors(p: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:
        from safetensors import safe_open
    except ImportError as exc:
        raise ImportError("reading .safetensors needs the safetensors package "
                          "(pip install 'mcint[safetensors]')") from exc
    try:
        with safe_open(p, framework="numpy") as f:
            md = f.metadata() or {}
            if _ST_META_KEY not in md:
                raise ModelFileError(f"{p}: not an mcint model file (safetensors without mcint "
                                     f"metadata)")
            header = _parse_header(md[_ST_META_KEY].encode("utf-8"), p)
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except ModelFileError:
        raise
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ModelFileError(f"{p}: corrupt or truncated safetensors file "
                             f"({type(exc).__name__}: {exc})") from None
    return header, arrays


def _read(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    p = os.fspath(path)
    fmt = _sniff(p)
    header, arrays = _read_npz(p) if fmt == "npz" else _read_safetensors(p)
    manifest = header["arrays"]
    try:
        expect = {k: (tuple(v["shape"]), str(v["dtype"])) for k, v in manifest.items()}
    except (KeyError, TypeError) as exc:
        raise ModelFileError(f"{p}: corrupt array manifest ({exc})") from None
    check_arrays(arrays, expect, where=p)
    return header, arrays


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The whole JSON header of a file (format, version, kind, mcint version, meta, arrays)."""
    return _read(path)[0]


def load(path: str | os.PathLike, expect_kind: str | None = None
         ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a file written by :func:`save`: returns ``(meta, arrays)`` (numpy arrays).

    Raises ``FileNotFoundError`` for a missing file and :class:`ModelFileError` for a foreign,
    corrupt or truncated file, a ``kind`` other than ``expect_kind``, a format version from a
    newer mcint, or arrays that disagree with the file's manifest.
    """
    header, arrays = _read(path)
    if expect_kind is not None and header["kind"] != expect_kind:
        raise ModelFileError(f"{os.fspath(path)}: holds a {header['kind']!r}, expected a "
                             f"{expect_kind!r}")
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
