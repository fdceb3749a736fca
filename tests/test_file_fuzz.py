"""Damaged files never crash a loader: mutants of real model, checkpoint and event files.

Every mutant -- flipped bits and bytes (zip headers, the central directory, member data),
truncations, appended garbage, duplicated or extra members, and, re-packed with valid zip
checksums so that they reach the parsers, edited JSON metadata and npy entries -- goes through
the public loaders. The only exceptions allowed are ``ModelFileError`` / ``EventFileError``
whose message names the file. A fixed-seed loop runs by default (a few seconds); ``-m slow``
runs a larger one.
"""

from __future__ import annotations

import io
import json
import math
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcint import serialize
from mcint.channels import ChannelEval, MultiChannelIntegrand
from mcint.events import EventFileError, read_npz, write_npz
from mcint.serialize import ModelFileError
from mcint.vegas import VEGAS

SMALL = dict(batch_size=64, flow=dict(hidden=(8,), layers=2, bins=4))
#: values a JSON field is replaced with: wrong types, out of range, non-finite, huge
ODD_VALUES = [None, True, False, -1, 0, 1, 3, 2**70, -(2**70), 1.5, -0.5, 1e308, math.inf,
              -math.inf, math.nan, "abc", "", [], [1, 2, 3], [[0.5]], {}, {"a": 1}, 10**6]


def g(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.sum((x - 0.5) ** 2, axis=1))


class Two(MultiChannelIntegrand):
    """Two channels with features and a prior: checkpoints carry every kind of state."""

    dims, n_channels = 2, 2

    def evaluate(self, r: np.ndarray, c: int) -> ChannelEval:
        return ChannelEval(g(r), np.tile([0.5, 0.5], (len(r), 1)), r.copy())


# -- the originals -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, list]]:
    """name -> (file bytes, loaders): each loader takes a path and must load the original."""
    d = tmp_path_factory.mktemp("originals")
    v = VEGAS(g, 2, seed=0)
    v.train(2_000, nitn=2)
    v.save(str(d / "vegas.npz"))
    write_npz(d / "events.npz", np.random.default_rng(0).random((50, 2)), np.full(50, 0.5),
              np.arange(50) % 2, meta={"xsec": 1.0, "xerr": 0.1})
    out = {"vegas": (d / "vegas.npz", [serialize.read_header, lambda p: VEGAS.load(p, g)]),
           "events": (d / "events.npz", [read_npz])}
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    from mcint.nis import Integrator

    it = Integrator(g, 2, seed=0, **SMALL)
    it.train(300)
    it.save(str(d / "model.npz"))
    # a checkpoint written in the middle of train(): two channels, buffer, optimizer, plan
    saved: list[bytes] = []
    mc = Integrator(Two(), seed=0, vegas_init=False, buffer_capacity=128, buffered_steps=1,
                    **SMALL)
    ck = d / "ck.npz"
    mc.train(600, checkpoint_path=str(ck), checkpoint_every=2,
             callback=lambda s: saved.append(ck.read_bytes()) if ck.exists() and not saved
             else None)
    (d / "checkpoint.npz").write_bytes(saved[0])
    out["model"] = (d / "model.npz", [serialize.read_header, serialize.load,
                                      lambda p: Integrator.resume(p, g)])
    out["checkpoint"] = (d / "checkpoint.npz", [serialize.load,
                                                lambda p: Integrator.resume(p, Two())])
    for path, loaders in out.values():
        for load in loaders:
            load(str(path))
    return {k: (p.read_bytes(), loaders) for k, (p, loaders) in out.items()}


# -- mutations ---------------------------------------------------------------------------------

def _entries(raw: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        return {n: z.read(n) for n in z.namelist()}


def _zip(entries: list[tuple[str, bytes]], deflate: bool = False) -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", method) as z:
        warnings.simplefilter("ignore")  # "Duplicate name" is what some mutants are for
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=False)
    return buf.getvalue()


def _meta_entry(raw: bytes) -> tuple[str, Any]:
    """(entry name, JSON) of the metadata of a model or event file."""
    e = _entries(raw)
    if "__meta__.npy" in e:
        return "__meta__.npy", json.loads(bytes(np.load(io.BytesIO(e["__meta__.npy"]))))
    return "meta.npy", json.loads(str(np.load(io.BytesIO(e["meta.npy"]))))


def _with_meta(raw: bytes, name: str, text: str | bytes) -> bytes:
    """``raw`` with its metadata replaced by ``text`` (stored as the original stores it)."""
    e = _entries(raw)
    if name == "__meta__.npy":
        data = text if isinstance(text, bytes) else text.encode()
        e[name] = _npy(np.frombuffer(data, np.uint8))
    else:
        e[name] = _npy(np.asarray(text.decode("utf-8", "replace")
                                  if isinstance(text, bytes) else text))
    return _zip(list(e.items()))


def _flip_bits(rng: np.random.Generator, data: bytes, lo: int = 0, hi: int | None = None
               ) -> bytes:
    b = bytearray(data)
    hi = len(b) if hi is None else hi
    for _ in range(int(rng.integers(1, 4))):
        i = int(rng.integers(lo, max(hi, lo + 1)))
        if i < len(b):
            b[i] ^= 1 << int(rng.integers(8))
    return bytes(b)


def _regions(raw: bytes) -> list[tuple[int, int]]:
    """Byte ranges of the zip structures: local headers, member data, central directory."""
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        infos = z.infolist()
        cd = z.start_dir
    out = [(cd, len(raw))]
    for i in infos:
        extra = int.from_bytes(raw[i.header_offset + 28:i.header_offset + 30], "little")
        start = i.header_offset + 30 + len(i.filename.encode()) + extra
        out += [(i.header_offset, start), (start, start + i.compress_size)]
    return out


def _json_paths(obj: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _json_paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:4]):
            out += _json_paths(v, (*path, i))
    return out


def _edit_json(rng: np.random.Generator, obj: Any) -> Any:
    """Replace (or delete) one randomly chosen value, at any depth, of a copy of ``obj``."""
    obj = json.loads(json.dumps(obj))
    paths = [p for p in _json_paths(obj) if p]
    path = paths[int(rng.integers(len(paths)))]
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    if isinstance(parent, dict) and rng.random() < 0.15:
        del parent[path[-1]]
    else:
        parent[path[-1]] = ODD_VALUES[int(rng.integers(len(ODD_VALUES)))]
    return obj


def mutate(rng: np.random.Generator, raw: bytes) -> tuple[str, bytes]:
    """One random mutant of ``raw`` and the name of the mutation."""
    kind = MUTATIONS[int(rng.integers(len(MUTATIONS)))]
    return kind.__name__, kind(rng, raw)


def bit_flips(rng: np.random.Generator, raw: bytes) -> bytes:
    return _flip_bits(rng, raw)


def byte_garbage(rng: np.random.Generator, raw: bytes) -> bytes:
    b = bytearray(raw)
    for _ in range(int(rng.integers(1, 4))):
        b[int(rng.integers(len(b)))] = int(rng.integers(256))
    return bytes(b)


def zip_structure_flips(rng: np.random.Generator, raw: bytes) -> bytes:
    regions = _regions(raw)
    lo, hi = regions[int(rng.integers(len(regions)))]
    return _flip_bits(rng, raw, lo, hi)


def truncation(rng: np.random.Generator, raw: bytes) -> bytes:
    return raw[:int(rng.integers(len(raw)))]


def appended_garbage(rng: np.random.Generator, raw: bytes) -> bytes:
    return raw + rng.bytes(int(rng.integers(1, 2000)))


def duplicated_member(rng: np.random.Generator, raw: bytes) -> bytes:
    items = list(_entries(raw).items())
    k = int(rng.integers(len(items)))
    return _zip([*items, (items[k][0], items[int(rng.integers(len(items)))][1])])


def extra_member(rng: np.random.Generator, raw: bytes) -> bytes:
    name = ["junk.npy", "junk.txt", "a/b.npy", "__meta__.npy.npy"][int(rng.integers(4))]
    return _zip([*_entries(raw).items(), (name, _npy(np.zeros(int(rng.integers(1, 9)))))])


def deflated(rng: np.random.Generator, raw: bytes) -> bytes:
    """The same content as a compressed archive, then one flipped bit of it."""
    return _flip_bits(rng, _zip(list(_entries(raw).items()), deflate=True))


def json_edit(rng: np.random.Generator, raw: bytes) -> bytes:
    name, meta = _meta_entry(raw)
    return _with_meta(raw, name, json.dumps(_edit_json(rng, meta)))


def json_text_flips(rng: np.random.Generator, raw: bytes) -> bytes:
    name, meta = _meta_entry(raw)
    return _with_meta(raw, name, _flip_bits(rng, json.dumps(meta).encode()))


def npy_member_flips(rng: np.random.Generator, raw: bytes) -> bytes:
    """Bits flipped in one entry's npy header or data, with valid zip checksums."""
    items = list(_entries(raw).items())
    k = int(rng.integers(len(items)))
    name, data = items[k]
    hi = 128 if rng.random() < 0.5 else len(data)   # the header, or anywhere
    items[k] = (name, _flip_bits(rng, data, 0, hi))
    return _zip(items)


def lying_npy_header(rng: np.random.Generator, raw: bytes) -> bytes:
    """One entry's npy header rewritten to declare another shape or dtype (a zip bomb's
    trick: a huge declared array), its data left as they were."""
    items = list(_entries(raw).items())
    k = int(rng.integers(len(items)))
    name, data = items[k]
    f = io.BytesIO(data)
    major, _ = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if major == 1 else \
        np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(f)
    body = data[f.tell():]
    shape = [(2**40,), (10**9, 10**9), (), (0,), (*shape, 2), tuple(s + 1 for s in shape)][
        int(rng.integers(6))]
    if rng.random() < 0.3:
        dtype = np.dtype(["<f4", "<i8", "|b1", "<U3", ">f8"][int(rng.integers(5))])
    buf = io.BytesIO()
    np.lib.format.write_array_header_2_0(
        buf, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran,
              "shape": shape})
    items[k] = (name, buf.getvalue() + body)
    return _zip(items)


MUTATIONS: list[Callable[[np.random.Generator, bytes], bytes]] = [
    bit_flips, byte_garbage, zip_structure_flips, truncation, appended_garbage,
    duplicated_member, extra_member, deflated, json_edit, json_text_flips, npy_member_flips,
    lying_npy_header]


# -- the loop ----------------------------------------------------------------------------------

def _fuzz(originals: dict, tmp_path: Path, n: int, seed: int) -> dict[str, int]:
    """Load ``n`` mutants of each original; returns how many loaded, by mutation."""
    loaded: dict[str, int] = {}
    for j, (what, (raw, loaders)) in enumerate(sorted(originals.items())):
        rng = np.random.default_rng([seed, j])
        for i in range(n):
            kind, data = mutate(rng, raw)
            path = tmp_path / f"{what}-{i}-{kind}.npz"
            path.write_bytes(data)
            for load in loaders:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        load(str(path))
                    loaded[kind] = loaded.get(kind, 0) + 1
                except (ModelFileError, EventFileError) as exc:
                    assert path.name in str(exc), (kind, str(exc))
                except Exception as exc:
                    raise AssertionError(f"{kind} mutant {path.name} (seed {seed}): "
                                         f"{type(exc).__name__}: {exc}") from exc
            path.unlink()
    return loaded


def _st_header_edit(rng: np.random.Generator, raw: bytes) -> bytes:
    """A safetensors file with one value of its JSON header (or of the mcint metadata in it)
    replaced; the header length is kept right."""
    n = int.from_bytes(raw[:8], "little")
    head = json.loads(raw[8:8 + n])
    if rng.random() < 0.5:
        head["__metadata__"]["mcint"] = json.dumps(
            _edit_json(rng, json.loads(head["__metadata__"]["mcint"])))
    else:
        head = _edit_json(rng, head)
    text = json.dumps(head).encode()
    return len(text).to_bytes(8, "little") + text + raw[8 + n:]


ST_MUTATIONS = [bit_flips, byte_garbage, truncation, appended_garbage, _st_header_edit]


def test_mutants_fail_with_one_clear_error(originals, tmp_path):
    _fuzz(originals, tmp_path, n=40, seed=0)


@pytest.mark.slow
def test_mutants_fail_with_one_clear_error_long(originals, tmp_path):
    _fuzz(originals, tmp_path, n=1500, seed=1)


@pytest.mark.parametrize("n", [60, pytest.param(3000, marks=pytest.mark.slow)])
def test_safetensors_mutants_fail_with_one_clear_error(tmp_path, n):
    """Model files in safetensors layout, read by mcint's own (numpy) reader."""
    pytest.importorskip("safetensors")
    v = VEGAS(g, 2, seed=0)
    v.train(2_000, nitn=2)
    raw = Path(v.save(str(tmp_path / "vegas.safetensors"))).read_bytes()
    rng = np.random.default_rng(7 + n)
    for i in range(n):
        kind = ST_MUTATIONS[int(rng.integers(len(ST_MUTATIONS)))]
        path = tmp_path / f"st-{i}-{kind.__name__}.safetensors"
        path.write_bytes(kind(rng, raw))
        for load in (serialize.read_header, lambda p: VEGAS.load(p, g)):
            try:
                load(str(path))
            except ModelFileError as exc:
                assert path.name in str(exc), str(exc)
