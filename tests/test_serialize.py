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
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
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
