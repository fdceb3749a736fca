"""Model files: round trips, atomic writes, and a clear error for every kind of bad file.

Nothing here needs torch: the saved-under-torch fixture is loaded and sampled with numpy (the
no_torch nox session runs this file)."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest

from mcint import serialize
from mcint.flows import Flow
from mcint.serialize import ModelFileError

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "flow_fixture.npz")
ARRAYS = {"a": np.arange(6.0).reshape(2, 3), "b.c": np.array([1, 2], dtype=np.int32),
          "f32": np.ones(4, dtype=np.float32)}


def _formats():
    out = ["model.npz", "model.mcint"]
    try:
        import safetensors  # noqa: F401

        out.append("model.safetensors")
    except ImportError:
        pass
    return out


@pytest.mark.parametrize("name", _formats())
def test_round_trip(tmp_path, name):
    p = tmp_path / name
    meta = {"dims": 3, "nested": {"x": [1.5, 2]}, "np": np.int64(4)}
    serialize.save(p, "thing", meta, ARRAYS)
    got_meta, arrays = serialize.load(p, expect_kind="thing")
    assert got_meta == {"dims": 3, "nested": {"x": [1.5, 2]}, "np": 4}
    assert set(arrays) == set(ARRAYS)
    for k, v in ARRAYS.items():
        assert arrays[k].dtype == v.dtype and np.array_equal(arrays[k], v)
    head = serialize.read_header(p)
    assert head["kind"] == "thing" and head["format_version"] == serialize.FORMAT_VERSION
    assert head["mcint_version"]
    assert [f for f in os.listdir(tmp_path) if f != name] == []  # no temporary files left


def test_atomic_overwrite_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "m.npz"
    serialize.save(p, "thing", {"v": 1}, ARRAYS)
    os.chmod(p, 0o640)
    with pytest.raises(TypeError, match="JSON"):
        serialize.save(p, "thing", {"v": object()}, ARRAYS)
    with pytest.raises(TypeError, match="numeric"):
        serialize.save(p, "thing", {"v": 2}, {"s": np.array(["text"])})
    assert serialize.load(p)[0] == {"v": 1}
    serialize.save(p, "thing", {"v": 3}, ARRAYS)
    assert serialize.load(p)[0] == {"v": 3}
    assert os.stat(p).st_mode & 0o777 == 0o640  # overwriting keeps the permissions
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_bad_names_and_paths(tmp_path):
    with pytest.raises(ValueError, match="array name"):
        serialize.save(tmp_path / "x.npz", "k", {}, {"__meta__": np.zeros(1)})
    with pytest.raises(ValueError, match="array name"):
        serialize.save(tmp_path / "x.npz", "k", {}, {"a/b": np.zeros(1)})
    with pytest.raises(ValueError, match="kind"):
        serialize.save(tmp_path / "x.npz", "", {}, {})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        serialize.save(tmp_path / "nodir" / "x.npz", "k", {}, {})


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        serialize.load(tmp_path / "nope.npz")


def test_foreign_files(tmp_path):
    p = tmp_path / "foreign.npz"
    np.savez(p, w=np.zeros(3))
    with pytest.raises(ModelFileError, match="not an mcint model file"):
        serialize.load(p)
    q = tmp_path / "junk.npz"
    q.write_bytes(b"hello, this is not a model")
    with pytest.raises(ModelFileError, match="not an mcint model file"):
        serialize.load(q)
    e = tmp_path / "empty.npz"
    e.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        serialize.load(e)
    with pytest.raises(ModelFileError, match="directory"):
        serialize.load(tmp_path)


def test_pickled_objects_are_refused(tmp_path):
    p = tmp_path / "evil.npz"
    serialize.save(p, "thing", {}, ARRAYS)
    with zipfile.ZipFile(p, "a") as zf, zf.open("obj.npy", "w") as g:
        np.lib.format.write_array(g, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ModelFileError, match=r"unexpected arrays \['obj'\]"):
        serialize.load(p)


@pytest.mark.parametrize("cut", [0.3, 0.7, 0.95])
def test_truncated_file(tmp_path, cut):
    p = tmp_path / "m.npz"
    serialize.save(p, "thing", {}, {"big": np.arange(20000.0)})
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ModelFileError, match="corrupt or truncated|not an mcint"):
        serialize.load(p)


def test_corrupted_bytes_are_detected(tmp_path):
    p = tmp_path / "m.npz"
    serialize.save(p, "thing", {}, {"big": np.arange(20000.0)})
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the array data: the zip CRC catches it
    p.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="corrupt"):
        serialize.load(p)


def _rewrite_header(src, dst, edit):
    with np.load(src, allow_pickle=False) as z:
        head = json.loads(bytes(z["__meta__"]).decode())
        arrays = {k: z[k] for k in z.files if k != "__meta__"}
    edit(head)
    buf = io.BytesIO()
    meta = np.frombuffer(json.dumps(head).encode(), dtype=np.uint8)
    np.savez(buf, __meta__=meta, **arrays)
    dst.write_bytes(buf.getvalue())


def test_wrong_kind_and_future_version(tmp_path):
    p = tmp_path / "m.npz"
    serialize.save(p, "vegas", {}, ARRAYS)
    with pytest.raises(ModelFileError, match="holds a 'vegas', expected a 'flow'"):
        serialize.load(p, expect_kind="flow")
    q = tmp_path / "future.npz"
    _rewrite_header(p, q, lambda h: h.update(format_version=99, mcint_version="9.0"))
    with pytest.raises(ModelFileError, match="format version 99.*upgrade mcint"):
        serialize.load(q)
    r = tmp_path / "noformat.npz"
    _rewrite_header(p, r, lambda h: h.pop("format"))
    with pytest.raises(ModelFileError, match="format='mcint'"):
        serialize.load(r)


def test_manifest_mismatch(tmp_path):
    p = tmp_path / "m.npz"
    serialize.save(p, "thing", {}, ARRAYS)
    q = tmp_path / "edited.npz"
    _rewrite_header(p, q, lambda h: h["arrays"].update(extra={"shape": [1], "dtype": "float64"}))
    with pytest.raises(ModelFileError, match="missing arrays \\['extra'\\]"):
        serialize.load(q)
    _rewrite_header(p, q, lambda h: h["arrays"]["a"].update(shape=[3, 2]))
    with pytest.raises(ModelFileError, match="wrong shape/dtype: a"):
        serialize.load(q)
    _rewrite_header(p, q, lambda h: h["arrays"].pop("f32"))
    with pytest.raises(ModelFileError, match="unexpected arrays \\['f32'\\]"):
        serialize.load(q)


# -- flows ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in _formats() if n != "model.mcint"])
def test_flow_save_load(tmp_path, name):
    rng = np.random.default_rng(0)
    flow = Flow(3, condition_dims=2, bins=5, hidden=(8,), masks="random", seed=4)
    flow = flow.map_arrays(lambda a: a + 0.3 * rng.normal(size=a.shape))
    flow.meta = {"trained_on": "nothing"}
    p = tmp_path / name
    flow.save(p)
    back = Flow.load(p)
    assert back.config == flow.config and back.meta == {"trained_on": "nothing"}
    for k, v in flow.arrays().items():
        assert np.array_equal(back.arrays()[k], v)
    x = rng.random((20, 3))
    c = rng.random((20, 2))
    assert np.array_equal(back.log_prob(x, c), flow.log_prob(x, c))


def test_flow_load_rejects_other_architecture(tmp_path):
    p = tmp_path / "f.npz"
    Flow(3, hidden=(8,)).save(p)
    q = tmp_path / "g.npz"

    def edit(h):
        h["meta"]["architecture"]["hidden"] = [16]

    _rewrite_header(p, q, edit)
    with pytest.raises(ModelFileError, match="do not match the architecture"):
        Flow.load(q)
    _rewrite_header(p, q, lambda h: h["meta"]["architecture"].update(coupling="glow"))
    with pytest.raises(ModelFileError, match="invalid flow architecture.*coupling"):
        Flow.load(q)
    _rewrite_header(p, q, lambda h: h["meta"]["architecture"].update(wavelets=3))
    with pytest.raises(ModelFileError, match="unknown flow architecture fields"):
        Flow.load(q)
    serialize.save(q, "vegas", {}, {})
    with pytest.raises(ModelFileError, match="expected a 'flow'"):
        Flow.load(q)


def test_fixture_trained_under_torch_samples_with_numpy():
    """The committed fixture (tests/data/make_flow_fixture.py) needs no torch to load or sample."""
    flow = Flow.load(FIXTURE, backend="numpy")
    assert flow.meta["generated_by"].endswith("make_flow_fixture.py")
    # the same function as under torch, at the points recorded when the file was written
    cx = np.asarray(flow.meta["check_x"])
    assert np.allclose(flow.log_prob(cx), flow.meta["check_log_prob"], atol=1e-10, rtol=0)
    x, lp = flow.sample(20000, rng=3)
    assert np.all((x >= 0) & (x <= 1))
    assert np.allclose(flow.log_prob(x), lp, atol=1e-10)
    # it learned Beta(2,5) x Beta(5,2): means 2/7 and 5/7, and a non-uniform density
    assert np.allclose(x.mean(axis=0), [2 / 7, 5 / 7], atol=0.02)
    assert lp.std() > 0.3


def test_fixture_samples_on_numba():
    pytest.importorskip("numba")
    import mcint.backends as B

    flow = Flow.load(FIXTURE, backend="numba")
    ref = Flow.load(FIXTURE)
    with B.use("numba"):
        x, lp = flow.sample(5000, rng=2)
    xr, lpr = ref.sample(5000, rng=2)
    assert np.allclose(x, xr, atol=1e-12) and np.allclose(lp, lpr, atol=1e-10)


# -- hostile and damaged files: one ModelFileError naming the file ---------------------------------

def _npy_header(shape, descr="<f8"):
    buf = io.BytesIO()
    np.lib.format.write_array_header_2_0(buf, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()


def _bomb(path, manifest_shape, header_shape, nbytes):
    """A model whose one array ``a`` is ``nbytes`` of deflated zeros (a few kB on disk)."""
    small = path.with_name("small.npz")
    serialize.save(small, "thing", {}, {"a": np.zeros(manifest_shape)})
    with zipfile.ZipFile(small) as z:
        meta = z.read("__meta__.npy")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("__meta__.npy", meta)
        with z.open("a.npy", "w", force_zip64=True) as f:
            f.write(_npy_header(header_shape))
            zeros = bytes(1 << 20)
            for _ in range(nbytes >> 20):
                f.write(zeros)
    return path


@pytest.mark.parametrize("header_shape", [(4 << 20,), (3,)], ids=["header-says-big", "header-lies"])
def test_zip_bomb_is_refused_before_inflating(tmp_path, header_shape):
    import tracemalloc

    p = _bomb(tmp_path / "bomb.npz", (3,), header_shape, 32 << 20)
    assert p.stat().st_size < (1 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"bomb.npz: arrays do not match the manifest: "
                                                 r"a: expected \(3,\) float64, got an entry of "
                                                 r"\d+ bytes"):
            serialize.load(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < (4 << 20)          # nothing inflated (the entry declares 32 MiB)


def test_compressed_entries_have_a_global_cap(tmp_path, monkeypatch):
    # the manifest agrees with the huge array: the cap on inflated bytes refuses it
    p = _bomb(tmp_path / "big.npz", (1 << 20,), (1 << 20,), 8 << 20)
    monkeypatch.setattr(serialize, "MAX_INFLATED_BYTES", 1 << 20)
    with pytest.raises(ModelFileError, match=r"big.npz: compressed entries would inflate to "
                                             r"more than 1048576 bytes"):
        serialize.load(p)


def _replace_entry(src, dst, name, data):
    with zipfile.ZipFile(src) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    entries[name] = data
    with zipfile.ZipFile(dst, "w") as z:
        for n, d in entries.items():
            z.writestr(n, d)
    return dst


def test_deeply_nested_or_broken_metadata(tmp_path):
    p = tmp_path / "m.npz"
    serialize.save(p, "thing", {}, ARRAYS)
    deep = (b'{"format": "mcint", "format_version": 1, "kind": "thing", "arrays": {}, "meta": '
            + b"[" * 100_000 + b"]" * 100_000 + b"}")
    for name, text, match in [
            ("deep.npz", deep, "corrupt metadata \\(nested too deeply\\)"),
            ("latin.npz", b'{"format": "mcint\xff"}', "corrupt metadata \\(not UTF-8"),
            ("cut.npz", b'{"format": "mcint", "form', "corrupt metadata \\(Unterminated")]:
        q = _replace_entry(p, tmp_path / name, "__meta__.npy",
                           _npy_header((len(text),), "|u1") + text)
        with pytest.raises(ModelFileError, match=f"{name}: {match}"):
            serialize.load(q)


@pytest.mark.parametrize("edit,match", [
    (lambda h: h["arrays"]["a"].update(dtype="object"),
     r"field 'header.arrays.a.dtype' must be a plain numeric dtype"),
    (lambda h: h["arrays"]["a"].update(shape=[-2, 3]),
     r"field 'header.arrays.a.shape\[0\]' must be an integer >= 0, got -2"),
    (lambda h: h["arrays"]["a"].update(shape="2x3"), r"field 'header.arrays.a.shape' must be"),
    (lambda h: h.update(format_version="1"), r"field 'format_version' must be an integer"),
    (lambda h: h.update(meta=[]), r"field 'header.meta' must be a dict, got \[\]"),
], ids=["object", "negative", "text-shape", "text-version", "meta-list"])
def test_header_fields_are_checked_by_schema(tmp_path, edit, match):
    p = tmp_path / "m.npz"
    serialize.save(p, "thing", {}, ARRAYS)
    q = tmp_path / "edited.npz"
    _rewrite_header(p, q, edit)
    for read in (serialize.load, serialize.read_header):
        with pytest.raises(ModelFileError, match="edited.npz: " + match):
            read(q)


def _cd_offset(raw, name):
    """Offset of ``name``'s record in the zip central directory."""
    i = raw.index(b"PK\x01\x02")
    while True:
        n = int.from_bytes(raw[i + 28:i + 30], "little")
        if raw[i + 46:i + 46 + n] == name.encode():
            return i
        i = raw.index(b"PK\x01\x02", i + 4)


def _patch(raw, at, value, size=2):
    return raw[:at] + value.to_bytes(size, "little") + raw[at + size:]


@pytest.mark.parametrize("damage,match", [
    ("encrypted", "zip entry 'a.npy' is marked encrypted"),
    ("version", r"corrupt or truncated model file \(NotImplementedError: zip file version"),
    ("method", "zip entry 'a.npy' uses compression method 99"),
    ("npy-header", "entry 'a' has an unreadable npy header"),
    ("npy-object", "entry 'a' has an unreadable npy header .*never objects"),
    ("npy-size", r"entry 'a' holds \d+ bytes, its header says \(2, 3\) float64"),
])
def test_damaged_containers_name_the_file(tmp_path, damage, match):
    """Bit flips that once escaped as tokenize.TokenError, NotImplementedError or
    RuntimeError ('encrypted, password required') from zipfile and numpy."""
    p = tmp_path / "m.npz"
    serialize.save(p, "thing", {}, ARRAYS)
    raw = p.read_bytes()
    cd = _cd_offset(raw, "a.npy")
    with zipfile.ZipFile(p) as z:
        local = z.getinfo("a.npy").header_offset
        data = z.read("a.npy")
    if damage == "encrypted":      # the flag in the central directory and the local header
        raw = _patch(_patch(raw, cd + 8, 1), local + 6, 1)
    elif damage == "version":
        raw = _patch(raw, cd + 6, 99)
    elif damage == "method":
        raw = _patch(_patch(raw, cd + 10, 99), local + 8, 99)
    else:
        hdr = {"npy-header": "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3,, }",
               "npy-object": "{'descr': '|O', 'fortran_order': False, 'shape': (6,), }",
               "npy-size": "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }"
               }[damage].ljust(117) + "\n"
        body = data[data.index(b"\n") + 1:]
        if damage == "npy-size":
            body += bytes(8)
        raw = _replace_entry(p, tmp_path / "tmp.npz", "a.npy", b"\x93NUMPY\x01\x00"
                             + len(hdr).to_bytes(2, "little") + hdr.encode() + body
                             ).read_bytes()
    q = tmp_path / "damaged.npz"
    q.write_bytes(raw)
    with pytest.raises(ModelFileError, match="damaged.npz: .*" + match):
        serialize.load(q)


def test_duplicate_entries_are_refused(tmp_path):
    p = tmp_path / "m.npz"
    serialize.save(p, "thing", {}, ARRAYS)
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(p, "a") as z:
        z.writestr("a.npy", z.read("b.c.npy"))
    with pytest.raises(ModelFileError, match="m.npz: not a valid model file: zip entry "
                                             "'a.npy' is a duplicate"):
        serialize.load(p)


def test_only_regular_files_are_opened(tmp_path):
    """A FIFO named like a model once blocked `mcint info` forever."""
    import threading

    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    errors = []

    def load():
        try:
            serialize.load(fifo)
        except ModelFileError as exc:
            errors.append(str(exc))

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():   # unblock the reader so the process can exit
        with open(fifo, "wb"):
            pass
        pytest.fail("loading a FIFO blocked")
    assert errors and errors[0].endswith("pipe.npz: is a FIFO (named pipe), not a model file")


def test_json_named_npz_is_not_a_model(tmp_path):
    # '{"meta"' read as a safetensors header length once gave "needs the safetensors package"
    p = tmp_path / "x.npz"
    p.write_text('{"meta":{"a":1}}')
    with pytest.raises(ModelFileError, match=r"x.npz: not an mcint model file \(neither an "
                                             r".npz archive nor safetensors\)"):
        serialize.load(p)


def test_read_header_reads_no_array_data(tmp_path):
    p = tmp_path / "m.npz"
    serialize.save(p, "thing", {"v": 1}, {"big": np.arange(20000.0)})
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF   # inside the array: only reading it notices
    p.write_bytes(bytes(data))
    assert serialize.read_header(p)["meta"] == {"v": 1}
    with pytest.raises(ModelFileError, match="m.npz: corrupt or truncated model file "
                                             r"\(BadZipFile: Bad CRC-32"):
        serialize.load(p)


def test_safetensors_are_read_without_the_package(tmp_path, monkeypatch):
    import sys

    pytest.importorskip("safetensors")
    p = tmp_path / "m.safetensors"
    serialize.save(p, "thing", {"v": 1}, ARRAYS)
    monkeypatch.setitem(sys.modules, "safetensors", None)
    meta, arrays = serialize.load(p, expect_kind="thing")
    assert meta == {"v": 1} and all(np.array_equal(arrays[k], v) for k, v in ARRAYS.items())
