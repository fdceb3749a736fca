"""The bad-input catalogue (docs/bad-input.md): every kind of bad input gets a clear error that
says what is wrong, where, and what was expected -- and loses nothing (no half-written files,
no poisoned state). One test per kind; the docs table lists the same kinds."""

from __future__ import annotations

import io
import json
import os
import re
import warnings
import zipfile

import numpy as np
import pytest

import mcint
from mcint import IntegrandError, NonFiniteIntegrandError, serialize
from mcint.channels import ChannelEval, MultiChannelIntegrand
from mcint.nis import Integrator
from mcint.serialize import ModelFileError
from mcint.vegas import VEGAS, AdaptiveMap

SMALL = dict(batch_size=64, flow=dict(hidden=(8,), layers=2, bins=4))


def g(x):
    return np.exp(-np.sum((x - 0.5) ** 2, axis=1))


def vegas_run(f, dims=2, **kw):
    return VEGAS(f, dims, seed=0, **kw).integrate(200, nitn=1)


# -- 1-9: what the integrand returns ---------------------------------------------------------
def test_01_nonfinite_values_raise_with_count_and_point():
    f = lambda x: np.where(x[:, 0] > 0.5, np.nan, 1.0)  # noqa: E731
    with pytest.raises(NonFiniteIntegrandError,
                       match=r"returned \d+ non-finite value\(s\) out of \d+ \(first: nan "
                             r"at x=\[.*\]\); fix the integrand or pass nonfinite='zero'"):
        vegas_run(f)


def test_02_nonfinite_zero_policy_counts_them_with_a_warning():
    f = lambda x: np.where(x[:, 0] > 0.9, np.inf, 1.0)  # noqa: E731
    v = VEGAS(f, 2, seed=0, nonfinite="zero")
    with pytest.warns(RuntimeWarning, match="non-finite value.*counted as zero"):
        r = v.integrate(500, nitn=1)
    assert np.isfinite(r.value) and v.integrand.nonfinite_count > 0


@pytest.mark.parametrize("out,match", [
    (lambda x: np.ones(len(x) - 1), r"returned shape \(\d+,\); expected \(\d+,\) for a batch"),
    (lambda x: x, r"returned shape \(\d+, 2\); expected \(\d+,\)"),
    (lambda x: 1.0, r"returned shape \(\); expected \(\d+,\)"),
], ids=["short", "2d", "scalar"])
def test_03_wrong_output_shape(out, match):
    with pytest.raises(IntegrandError, match=match):
        vegas_run(out)


def test_04_none_output():
    with pytest.raises(IntegrandError, match=r"returned None; it must return an array of shape"):
        vegas_run(lambda x: None)


def test_05_complex_output():
    with pytest.raises(IntegrandError, match=r"complex values \(complex128\); return a real"):
        vegas_run(lambda x: np.ones(len(x)) * (1 + 1j))


def test_06_non_numeric_dtype():
    with pytest.raises(IntegrandError, match=r"returned dtype <U1; expected a real float array"):
        vegas_run(lambda x: np.array(["a"] * len(x)))


def test_07_integrand_exception_reraised_with_context():
    def boom(x):
        raise KeyError("pdf set")

    with pytest.raises(KeyError, match=r"pdf set.*raised by the integrand .* on a batch of "
                                       r"\d+ points; first point \[") as exc:
        vegas_run(boom)
    assert isinstance(exc.value.__cause__, KeyError)      # the original, with its traceback


def test_08_exception_that_cannot_be_rebuilt_becomes_integrand_error():
    class NeedsTwo(Exception):
        def __init__(self, a, b):
            super().__init__(a, b)

    def f(x):
        raise NeedsTwo(1, 2)

    with pytest.raises(IntegrandError, match=r"NeedsTwo: \(1, 2\) \[raised by the integrand"):
        vegas_run(f)


def test_09_points_of_the_wrong_dimension_reach_the_integrand():
    # the integrand reads column 5 of 2-d points: the IndexError names the batch and a point
    with pytest.raises(IndexError, match=r"index 5 is out of bounds.*raised by the integrand"):
        vegas_run(lambda x: x[:, 5])
    with pytest.raises(IntegrandError, match=r"points must have shape \(n, 3\), got \(4, 2\)"):
        mcint.Integrand(g, 3)(np.zeros((4, 2)), "numpy")


# -- 10-12: zero integrands, negative weights -----------------------------------------------
def test_10_zero_integrand_gives_zero_plus_minus_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = VEGAS(lambda x: np.zeros(len(x)), 2, seed=0)
        v.train(1_000, nitn=3)
        r = v.integrate(1_000, nitn=2)
    assert (r.value, r.error) == (0.0, 0.0)
    pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        it = Integrator(lambda x: np.zeros(len(x)), 2, seed=0, **SMALL)
        it.train(1_000)
        rn = it.integrate(1_000)
    assert (rn.value, rn.error) == (0.0, 0.0)


def test_11_negative_weights_where_unsupported():
    m = AdaptiveMap(2, 10)
    with pytest.raises(ValueError, match=r"f2 must be >= 0 .*pass abs\(f\) or f\*\*2"):
        m.add_training_data(np.full((5, 2), 0.5), -np.ones(5))
    with pytest.raises(ValueError, match=r"f2 must have shape \(5,\) like the 5 points y, "
                                         r"got \(4,\)"):
        m.add_training_data(np.full((5, 2), 0.5), np.ones(4))

    class NegativePrior(MultiChannelIntegrand):
        dims, n_channels = 2, 2

        def evaluate(self, r, c):
            return ChannelEval(np.ones(len(r)), np.tile([1.5, -0.5], (len(r), 1)))

    pytest.importorskip("torch")
    with pytest.raises(IntegrandError, match="channel 0: alpha_prior has negative entries"):
        Integrator(NegativePrior(), seed=0, **SMALL).train(500)


def test_12_unweighting_rejects_bad_maximum_and_nonfinite_weights():
    from mcint.events.unweight import unweight

    with pytest.raises(ValueError, match="w_max must be a positive finite number, got -1"):
        unweight(np.ones(10), w_max=-1)
    with pytest.raises(ValueError, match="weights contain NaN or inf"):
        unweight(np.array([1.0, np.nan]))


# -- 13-14: dimensions and channels ----------------------------------------------------------
@pytest.mark.parametrize("dims,match", [(0, "dims must be an integer >= 1, got 0"),
                                        (2.5, "dims must be an integer >= 1, got 2.5")])
def test_13_bad_dims(dims, match):
    with pytest.raises(ValueError, match=match):
        VEGAS(g, dims)


class Bad(MultiChannelIntegrand):
    dims, n_channels = 2, 2

    def __init__(self, mode):
        self.mode = mode

    def evaluate(self, r, c):
        n = len(r)
        if self.mode == "prior3":
            return ChannelEval(np.ones(n), np.full((n, 3), 1 / 3))
        if self.mode == "tuple":
            return (np.ones(n),)
        return ChannelEval(np.ones(n), None, np.ones(n))


@pytest.mark.parametrize("mode,match", [
    ("prior3", r"channel 0: alpha_prior has shape \(\d+, 3\); expected \(\d+, 2\)"),
    ("tuple", "Bad.evaluate must return a ChannelEval, got tuple"),
    ("feat", r"channel 0: features must have shape \(\d+, k\), got \(\d+,\)"),
])
def test_14_channel_mismatches(mode, match):
    pytest.importorskip("torch")
    with pytest.raises(IntegrandError, match=match):
        Integrator(Bad(mode), seed=0, **SMALL).train(500)
    with pytest.raises(ValueError, match=r"groups must give one group per channel \(2\), got 3"):
        Integrator(Bad(mode), groups=[0, 1, 2])
    with pytest.raises(TypeError, match="mapping 0 must be a mcint Transform, got int"):
        Integrator(g, 2, channels=[1, 2])


# -- 15-16: options, backends ----------------------------------------------------------------
@pytest.mark.parametrize("make,match", [
    (lambda: VEGAS(g, 2).integrate(-5), "calls must be an integer >= 10, got -5"),
    (lambda: VEGAS(g, 2, alpha=-1), r"alpha \(the map damping exponent\) must be a number in \[0, 10\], got -1"),
    (lambda: VEGAS(g, 2, beta=2), r"beta must be in \[0, 1\], got 2"),
    (lambda: VEGAS(g, 2, dtype="float16"), "dtype must be 'float64' or 'float32'"),
    (lambda: VEGAS(g, 2, nonfinite="ignore"), "nonfinite must be one of"),
    (lambda: VEGAS(g, 2, seed=-1), "seed must be a non-negative integer or None, got -1"),
    (lambda: VEGAS(g, 2, batch_size=0), "batch_size must be an integer >= 1, got 0"),
    (lambda: VEGAS(g, 2, nstrat=[2]), "nstrat has 1 entries but dims=2"),
    (lambda: VEGAS(g, 2, domain=[(0, 1)]), r"domain must be 2 \(low, high\) pairs"),
    (lambda: Integrator(g, 2, loss="nope"), "unknown loss 'nope'; choose one of"),
    (lambda: Integrator(g, 2, lr=-1), "lr must be a finite number > 0, got -1"),
    (lambda: Integrator(g, 2, defensive=1.5), r"defensive must be in \[0.0, 1.0\)"),
    (lambda: Integrator(g, 2, batch_size=0), "batch_size must be an integer >= 8, got 0"),
    (lambda: Integrator(g, 2).integrate(-1), "calls must be an integer >= 2, got -1"),
    (lambda: AdaptiveMap(2, 0), "ninc must be an integer >= 2, got 0"),
], ids=["calls<0", "alpha<0", "beta>1", "dtype", "nonfinite", "seed<0", "vegas-batch0",
        "nstrat", "domain", "loss", "lr<0", "defensive", "nis-batch0", "nis-calls<0", "ninc0"])
def test_15_invalid_options(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_16_unknown_or_uninstalled_backend():
    with pytest.raises(ValueError, match=r"unknown backend 'jax'; available backends: numpy"):
        VEGAS(g, 2, backend="jax")
    with pytest.raises(TypeError, match="the integrand must be callable, got int"):
        VEGAS(3, 2)


# -- 17-25: model and checkpoint files ---------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    v = VEGAS(g, 2, seed=0)
    v.train(1_000, nitn=2)
    v.save(str(d / "v.npz"))
    Integrator(g, 2, seed=0, **SMALL).save(str(d / "ck.npz"))
    return d


def test_17_foreign_files_text_and_plain_npz(files, tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    with pytest.raises(ModelFileError, match=r"notes.txt: not an mcint model file \(neither"):
        VEGAS.load(str(tmp_path / "notes.txt"), g)
    with pytest.raises(ModelFileError, match=r"plain.npz: not an mcint model file \(an .npz "
                                             r"archive without a '__meta__' entry\)"):
        Integrator.resume(str(tmp_path / "plain.npz"), g)
    with pytest.raises(FileNotFoundError, match="model file .*missing.npz' does not exist"):
        VEGAS.load(str(tmp_path / "missing.npz"), g)
    with pytest.raises(ModelFileError, match="is a directory, not a model file"):
        VEGAS.load(str(tmp_path), g)


class _Payload:
    """Unpickling this would create a marker file: the loader must never do it."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_18_pickle_payloads_are_refused_without_unpickling(files, tmp_path):
    marker = tmp_path / "PWNED"
    _Payload.marker = str(marker)
    evil = np.empty(1, dtype=object)
    evil[0] = _Payload()
    header = serialize.read_header(files / "v.npz")
    header["arrays"]["evil"] = {"shape": [1], "dtype": "object"}
    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(files / "v.npz") as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "__meta__.npy":
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.frombuffer(json.dumps(header).encode(),
                                                             np.uint8))
                data = buf.getvalue()
            dst.writestr(name, data)
        buf = io.BytesIO()
        np.lib.format.write_array(buf, evil, allow_pickle=True)
        dst.writestr("evil.npy", buf.getvalue())
    assert b"PWNED" in path.read_bytes()  # the payload really is in the file
    for load in (lambda: VEGAS.load(str(path), g), lambda: serialize.load(path)):
        with pytest.raises(ModelFileError, match=r"evil.npz: field 'header.arrays.evil.dtype' "
                                                 r"must be a plain numeric dtype"):
            load()
    # a manifest that lies (float64): the entry's own npy header is refused before any data
    header["arrays"]["evil"]["dtype"] = "float64"
    lying = _replace_meta(path, tmp_path / "lying.npz", header)
    with pytest.raises(ModelFileError, match=r"lying.npz: corrupt model file: entry 'evil' has "
                                             r"an unreadable npy header .*never objects"):
        serialize.load(lying)
    assert not marker.exists()


def _replace_meta(src, dst, header):
    """``src`` with its metadata entry replaced by ``header`` (valid zip CRCs: no damage)."""
    with zipfile.ZipFile(src) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(json.dumps(header).encode(), np.uint8))
    entries["__meta__.npy"] = buf.getvalue()
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in entries.items():
            z.writestr(n, data)
    return dst


def test_19_truncated_empty_and_bit_flipped_files(files, tmp_path):
    raw = (files / "ck.npz").read_bytes()

    def flipped(at):
        return raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1:]

    # a flip inside stored bytes (the metadata and the largest array); a flip in zip
    # bookkeeping that no reader uses (a local header's extra field) changes nothing loaded
    with zipfile.ZipFile(files / "ck.npz") as z:
        infos = {i.filename: i for i in z.infolist()}

    def payload_middle(info):
        extra = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
        start = info.header_offset + 30 + len(info.filename.encode()) + extra
        return start + info.compress_size // 2

    biggest = max(infos.values(), key=lambda i: i.compress_size)
    cases = {"trunc.npz": raw[: len(raw) // 2], "empty.npz": b"",
             "flip.npz": flipped(payload_middle(biggest)),
             "flipmeta.npz": flipped(payload_middle(infos["__meta__.npy"]))}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ModelFileError, match=rf"{name}: (corrupt or truncated|empty file)"):
            Integrator.resume(str(tmp_path / name), g)


def test_20_wrong_kind_of_file(files):
    with pytest.raises(ModelFileError, match="holds a 'vegas', expected a 'nis-checkpoint'"):
        Integrator.resume(str(files / "v.npz"), g)
    with pytest.raises(ModelFileError, match="holds a 'nis-checkpoint', expected a 'vegas'"):
        VEGAS.load(str(files / "ck.npz"), g)


def _rewrite(src, dst, edit_header=None, edit_arrays=None):
    meta, arrays = serialize.load(src)
    kind = serialize.read_header(src)["kind"]
    arrays = dict(arrays)
    if edit_arrays:
        edit_arrays(meta, arrays)
    serialize.save(dst, kind, meta, arrays)
    if edit_header:
        header = serialize.read_header(dst)
        edit_header(header)
        _replace_meta(dst, dst, header)
    return str(dst)


def test_21_file_from_a_future_version(files, tmp_path):
    p = _rewrite(files / "v.npz", tmp_path / "future.npz",
                 edit_header=lambda h: h.update(format_version=99, mcint_version="9.0"))
    with pytest.raises(ModelFileError, match=r"written by mcint 9.0 in file format version 99; "
                                             r"this mcint .* reads versions up to 1: upgrade"):
        VEGAS.load(p, g)


def test_22_arrays_with_wrong_shapes_or_dtypes(files, tmp_path):
    def narrow(meta, arrays):
        arrays["grid"] = arrays["grid"].astype(np.int64)

    with pytest.raises(ModelFileError, match=r"array 'grid' must be a float array of shape "
                                             r"\(2, ninc \+ 1\) with ninc >= 2, got int64"):
        VEGAS.load(_rewrite(files / "v.npz", tmp_path / "a.npz", edit_arrays=narrow), g)

    def reshape(meta, arrays):
        k = "flow0:couplings.0.w1"
        arrays[k] = arrays[k][:, :-1]

    with pytest.raises(ModelFileError, match=r"flow 0: arrays do not match the architecture: "
                                             r"wrong shape/dtype: couplings.0.w1: expected "
                                             r"\(8, \d+\) float32, got \(8, \d+\) float32"):
        Integrator.resume(_rewrite(files / "ck.npz", tmp_path / "b.npz", edit_arrays=reshape), g)

    def retype(meta, arrays):
        k = "flow0:couplings.0.b0"
        arrays[k] = arrays[k].astype(np.float64)

    with pytest.raises(ModelFileError, match=r"couplings.0.b0: expected \(8,\) float32, got "
                                             r"\(8,\) float64"):
        Integrator.resume(_rewrite(files / "ck.npz", tmp_path / "c.npz", edit_arrays=retype), g)

    # the manifest in the header disagrees with the stored array (edited file)
    p = _rewrite(files / "v.npz", tmp_path / "d.npz",
                 edit_header=lambda h: h["arrays"]["grid"].update(shape=[3, 7]))
    with pytest.raises(ModelFileError, match=r"grid: expected \(3, 7\) float64, got"):
        VEGAS.load(p, g)


def test_23_checkpoint_with_missing_entries(files, tmp_path):
    def drop_state(meta, arrays):
        del meta["state"]["rng_train"]

    with pytest.raises(ModelFileError, match=r"a.npz: field 'state.rng_train' is missing "
                                             r"\(corrupt, or written by another mcint"):
        Integrator.resume(_rewrite(files / "ck.npz", tmp_path / "a.npz",
                                   edit_arrays=drop_state), g)

    def drop_all(meta, arrays):
        del meta["state"]

    with pytest.raises(ModelFileError, match=r"b.npz: field 'meta.state' is missing"):
        Integrator.resume(_rewrite(files / "ck.npz", tmp_path / "b.npz", edit_arrays=drop_all),
                          g)


def test_24_checkpoint_for_another_integrand(files):
    with pytest.raises(ModelFileError, match=r"checkpoint is for 1 channel\(s\) in 2 dims, the "
                                             r"integrand has 1 in 3"):
        Integrator.resume(str(files / "ck.npz"), lambda x: x[:, 0], dims=3)
    with pytest.raises(ModelFileError, match=r"checkpoint is for 1 channel\(s\) in 2 dims, the "
                                             r"integrand has 2 in 2"):
        Integrator.resume(str(files / "ck.npz"), Bad("prior3"))


# -- 25-26: unwritable paths -------------------------------------------------------------------
def test_25_unwritable_model_paths_leave_nothing(files, tmp_path):
    v = VEGAS.load(str(files / "v.npz"), g)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FileNotFoundError, match="directory '.*nowhere' does not exist"):
        v.save(str(tmp_path / "nowhere" / "v.npz"))
    with pytest.raises(NotADirectoryError, match="afile' is a file, not a directory"):
        v.save(str(tmp_path / "afile" / "v.npz"))
    with pytest.raises(IsADirectoryError, match="it is a directory; give a file name"):
        v.save(str(tmp_path))
    if os.geteuid() != 0:      # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(PermissionError):
            v.save(str(ro / "v.npz"))
        assert os.listdir(ro) == []
    assert sorted(os.listdir(tmp_path)) == ["afile"]   # no temporary files left behind


def test_26_unwritable_event_paths_fail_before_any_work(tmp_path):
    from mcint.events import open_writer
    from mcint.events._atomic import EventFileError

    with pytest.raises(EventFileError, match="output directory '.*nowhere' does not exist"):
        open_writer(tmp_path / "nowhere" / "ev.npz")
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(EventFileError, match="dir.npz' is a directory; give a file name"):
        open_writer(tmp_path / "dir.npz")
    with pytest.raises(ValueError, match=r"cannot tell the event format of '.*ev.xyz': use one"):
        open_writer(tmp_path / "ev.xyz")


# -- 27-28: sizes that do not fit in memory ----------------------------------------------------
def test_27_vegas_splits_big_iterations_into_batches():
    seen = []

    def f(x):
        seen.append(len(x))
        return g(x)

    v = VEGAS(f, 2, seed=0, batch_size=1_000)
    v.integrate(20_000, nitn=1)
    v.sample(5_000)
    # chunks of about batch_size points (a hypercube is never split between two calls)
    biggest_cube = int(np.max(np.asarray(v.strat.allocation())))
    assert max(seen) <= 1_000 + biggest_cube and sum(seen) >= 25_000 and len(seen) >= 20
    from mcint.vegas import choose_nstrat

    ns = choose_nstrat(10**13, 2, 0.75, 0.75, 10**7)     # instant, at most 1e7 hypercubes
    assert np.prod(ns) <= 10**7


def test_28_nis_absurd_sizes_get_a_memory_message():
    it = Integrator(g, 2, seed=0, **SMALL)
    with open("/proc/sys/vm/overcommit_memory") if os.path.exists(
            "/proc/sys/vm/overcommit_memory") else io.StringIO("1") as fh:
        if fh.read().strip() == "1":
            pytest.skip("memory overcommit always on: a huge allocation would not fail at once")
    with pytest.raises(MemoryError, match=r"integrate\(calls=1000000000000\) draws "
                                          r"1000000000000 points at once and ran out of memory "
                                          r"\(.*\); pass iterations=k"):
        it.integrate(10**12)


# -- 29-34: integrand scale, points the integrand writes, seeds, calls and other options -------
@pytest.mark.parametrize("c", [1e-200, 1e200])
def test_29_integrand_scale_does_not_change_the_answer(c):
    # before: error 0.0 at 1e-200 (squares underflowed), OverflowError from results at 1e200
    ref = VEGAS(g, 2, seed=1).integrate(3_000, nitn=3)
    r = VEGAS(lambda x: c * g(x), 2, seed=1).integrate(3_000, nitn=3)
    assert r.error > 0
    assert r.value / c == pytest.approx(ref.value, rel=1e-12)
    assert r.error / r.value == pytest.approx(ref.error / ref.value, rel=1e-12)
    pytest.importorskip("torch")
    # float32 NIS: 1e-46 is below float32's smallest number; before: 0 +- 0
    a = Integrator(g, 2, seed=0, **SMALL)
    b = Integrator(lambda x: 1e-46 * g(x), 2, seed=0, **SMALL)
    for it in (a, b):
        it.train(500)
    ra, rb = a.integrate(1_000), b.integrate(1_000)
    assert rb.error > 0 and rb.value / 1e-46 == pytest.approx(ra.value, rel=1e-3)


def _writes_points(x):
    v = x[:, 0].copy()
    x[:] = 0.5          # would turn every sampled event into (0.5, 0.5)
    return v


class _WritesR(MultiChannelIntegrand):
    dims, n_channels = 2, 2

    def evaluate(self, r, c):
        r[:, 0] = 0.5
        return ChannelEval(np.ones(len(r)), np.full((len(r), 2), 0.5))


def test_30_integrand_writing_into_its_points_is_refused():
    with pytest.raises(IntegrandError, match=r"the integrand Integrand\(_writes_points, dims=2\) "
                                             r"wrote into its input points x; .*read-only"):
        vegas_run(_writes_points)
    # reading them is fine, also returning a view of them: the values are copied
    v = VEGAS(lambda x: x[:, 0], 2, seed=0)
    v.train(1_000, nitn=2)
    b = v.sample(200)
    assert b.x.flags.writeable and b.f.flags.writeable and np.unique(b.x).size > 100
    pytest.importorskip("torch")
    with pytest.raises(IntegrandError, match=r"wrote into its input points x"):
        Integrator(_writes_points, 2, seed=0, **SMALL).train(500)
    with pytest.raises(IntegrandError, match=r"_WritesR.evaluate for channel 0 .*read-only; "
                                             r"evaluate must not write into its points r"):
        Integrator(_WritesR(), seed=0, **SMALL).train(500)


@pytest.mark.parametrize("seed", [-1, 1.5, True, np.random.default_rng(0), "1"],
                         ids=["negative", "float", "bool", "generator", "str"])
def test_31_seeds_are_checked_alike_by_vegas_and_nis(seed):
    msg = "seed must be a non-negative integer or None, got "
    with pytest.raises(ValueError, match=msg):
        VEGAS(g, 2, seed=seed)
    with pytest.raises(ValueError, match=msg):
        Integrator(g, 2, seed=seed)
    assert Integrator(g, 2, seed=np.uint32(3)).options["seed"] == 3


def test_32_the_nan_advice_is_an_option_the_integrator_takes():
    pytest.importorskip("torch")
    f = lambda x: np.where(x[:, 0] > 0.9, np.nan, 1.0)  # noqa: E731
    with pytest.raises(NonFiniteIntegrandError, match=r"pass nonfinite='zero' to count them"):
        Integrator(f, 2, seed=0, **SMALL).train(500)
    it = Integrator(f, 2, seed=0, nonfinite="zero", **SMALL)
    with pytest.warns(RuntimeWarning, match="counted as zero"):     # row 2
        it.train(500)
        assert it.nonfinite_points > 0 and np.isfinite(it.integrate(500).value)


def test_33_calls_are_a_total_budget_with_at_least_10_per_iteration():
    seen = []
    v = VEGAS(lambda x: seen.append(len(x)) or g(x), 2, seed=0)
    v.train(20_000, nitn=10)            # 10 iterations of about 2_000, not 10 x 20_000
    assert 0.9 * 20_000 <= sum(seen) <= 20_000
    with pytest.raises(ValueError, match=r"calls=50 over nitn=10 iterations gives 5 calls per "
                                         r"iteration; need at least 10 per iteration"):
        v.train(50, nitn=10)


@pytest.mark.parametrize("make,match", [
    (lambda: Integrator(g, 2, channel_weights="no"), "channel_weights must be True or False"),
    (lambda: Integrator(g, 2, vegas_init="no"), "vegas_init must be True or False, got 'no'"),
    (lambda: Integrator(g, 2, split_sign=1), "split_sign must be False, True or 'auto', got 1"),
    (lambda: Integrator(g, 2, history_length=0), "history_length must be an integer >= 1"),
    (lambda: Integrator(g, 2, drop_interval=0), "drop_interval must be an integer >= 1, got 0"),
    (lambda: Integrator(g, 2, freeze_channel_weights=-1),
     "freeze_channel_weights must be an integer >= 0, got -1"),
    (lambda: Integrator(g, 2, cw_hidden=[0]), r"cw_hidden\[i\] must be an integer >= 1, got 0"),
    (lambda: Integrator(g, 2, prior=[-1, 2]), "prior must be 'integrand', 'uniform' or finite"),
    (lambda: Integrator(g, 2, **SMALL).integrate(100, iterations=0),
     "iterations must be an integer >= 1, got 0"),
    (lambda: Integrator(g, 2, **SMALL).integrate(100, uniform_ratio=2),
     r"uniform_ratio must be in \[0, 1\], got 2"),
    (lambda: VEGAS(g, 2, neval_frac="a"), r"neval_frac must be a number in \[0, 1\], got 'a'"),
    (lambda: VEGAS(g, 2).integrate(1_000, adapt="x"), "adapt must be True or False, got 'x'"),
    (lambda: VEGAS(g, 2).sample(10, stratified="yes"), "stratified must be True or False"),
], ids=["channel_weights", "vegas_init", "split_sign", "history_length", "drop_interval",
        "freeze", "cw_hidden", "prior", "iterations", "uniform_ratio", "neval_frac", "adapt",
        "stratified"])
def test_34_options_that_were_taken_as_given(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# -- C1-C16: the command line's runs, resume and messages --------------------------------------
CLI_FAST = ["--train-calls", "4000", "--integrate-calls", "4000", "--calibration-calls",
            "20000", "--progress", "none", "--no-plot"]


def _cli(capsys, *argv):
    """(exit status, stdout, stderr lines) of ``mcint ARGV`` run in this process."""
    from mcint.cli import main

    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, [ln for ln in err.splitlines() if ln.strip()]


def _temps(d):
    return sorted(p.name for p in d.iterdir() if p.name.endswith((".tmp", ".part")))


def test_35_a_peak_nobody_sampled_is_documented_with_numbers():
    """Row 35: the limit of the defensive share is stated with measured numbers, and the
    remedy it names is tested (tests/test_honest_results.py)."""
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "bad-input.md").read_text()
    assert "| 35 | A peak nobody sampled |" in doc and "vegas_init=False" in doc
    import test_honest_results as h

    assert hasattr(h, "test_far_narrow_peak_is_found_without_the_vegas_pre_map")


@pytest.mark.parametrize("seed", [-1, 1.5, True, "1"], ids=["negative", "float", "bool", "str"])
def test_36_unweighting_seeds_are_checked_like_the_integrators(seed):
    from mcint.events import unweight
    from mcint.events.unweight import unweighted_events

    msg = "seed must be a non-negative integer or None, got "
    w = np.random.default_rng(0).random(100)
    # before: raw numpy errors (`expected non-negative integer`, `SeedSequence expects int`)
    # and seed=True taken as 1
    with pytest.raises(ValueError, match=msg):
        unweight(w, seed=seed)
    v = VEGAS(g, 2, seed=0)
    with pytest.raises(ValueError, match=msg):
        next(unweighted_events(v, 5, w_max=2.0, seed=seed))
    # a Generator stays a valid source of the accept/reject numbers
    assert unweight(w, seed=np.random.default_rng(1)).indices.size > 0


def test_02_nis_nonfinite_zero_warns_once_per_call_with_the_count():
    pytest.importorskip("torch")
    f = lambda x: np.where(x[:, 0] > 0.9, np.nan, 1.0)  # noqa: E731
    it = Integrator(f, 2, seed=0, nonfinite="zero", **SMALL)
    for call in (lambda: it.train(256), lambda: it.integrate(1000), lambda: it.sample(500)):
        before = it.nonfinite_points
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            call()
        # before: not a word (the NIS integrator swallowed the integrand's warnings)
        msgs = [str(w.message) for w in got if issubclass(w.category, RuntimeWarning)]
        new = it.nonfinite_points - before
        assert new > 0 and len(msgs) == 1, msgs
        assert f"the integrand returned {new} non-finite value(s); counted as zero" in msgs[0]


# -- 37-40: budgets, options and sizes that failed later or silently -------------------------
def test_37_train_with_fewer_calls_than_one_batch_warns():
    pytest.importorskip("torch")
    from mcint import SamplerWarning

    it = Integrator(g, 2, seed=0, vegas_init=False, **SMALL)
    # before: no step, no word; the model stayed untrained
    with pytest.warns(SamplerWarning, match=r"train\(calls=10\) made no optimisation step: 10 "
                                            r"calls are fewer than one step's batch \(64\); the "
                                            r"sampler is untrained \(give calls >= 64\)"):
        it.train(10)
    assert it.step == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", SamplerWarning)
        it.train(64)                    # one whole batch: one step, no warning
    assert it.step >= 1


@pytest.mark.parametrize("kw,match", [
    ({"clip": 0}, r"clip \(the gradient-norm clip\) must be None \(off\) or a finite number > 0, "
                  r"got 0"),
    ({"clip": -1}, r"clip .* got -1"),
    ({"clip": float("nan")}, r"clip .* got nan"),
    ({"clip": float("inf")}, r"clip .* got inf"),
    ({"clip": 10**400}, r"clip .* got 1000"),
    ({"clip": True}, r"clip .* got True"),
    ({"lr": 10**400}, r"lr must be a finite number > 0, got 1000"),
    ({"schedule": "abc"}, r"unknown lr schedule 'abc'; choose one of \['constant', 'cosine', "
                          r"'exponential', 'onecycle'\] or pass a callable"),
], ids=["clip-0", "clip-neg", "clip-nan", "clip-inf", "clip-huge", "clip-bool", "lr-huge",
        "schedule"])
def test_38_training_options_checked_at_construction(kw, match):
    # before: accepted, then ValueError/OverflowError at the first train() (or, for
    # schedule, at the first step)
    with pytest.raises(ValueError, match=match):
        Integrator(g, 2, **kw)
    Integrator(g, 2, clip=2**70, schedule=lambda t: 1.0)   # a big finite clip is a clip


@pytest.mark.parametrize("alpha", [2**70, 1000, 10.5, float("nan"), float("inf"), -1, True, "1"])
def test_39_vegas_alpha_bounded(alpha):
    ALPHA_MAX = 10.0    # noqa: N806 (mcint.vegas.map.ALPHA_MAX, the documented bound)
    # before: 2**70 -> ZeroDivisionError in the numba adapt kernel, a NaN grid on numpy;
    # 1000 the same
    with pytest.raises(ValueError, match=r"alpha \(the map damping exponent\) must be a "
                                         rf"number in \[0, {ALPHA_MAX:g}\], got "):
        VEGAS(g, 2, alpha=alpha)
    with pytest.raises(ValueError, match=r"alpha \(the map damping exponent\)"):
        AdaptiveMap(2).adapt(alpha=alpha)
    v = VEGAS(g, 2, alpha=ALPHA_MAX, seed=0)     # the bound itself adapts to a finite grid
    v.train(4000, nitn=4)
    assert np.isfinite(np.asarray(v.map.grid)).all()


def test_40_vegas_absurd_sizes_get_a_memory_message():
    v = VEGAS(g, 2, seed=0)
    v.train(2000, nitn=2)
    with open("/proc/sys/vm/overcommit_memory") if os.path.exists(
            "/proc/sys/vm/overcommit_memory") else io.StringIO("1") as fh:
        if fh.read().strip() == "1":
            pytest.skip("memory overcommit always on: a huge allocation would not fail at once")
    # before: MemoryError: Unable to allocate 7.28 TiB ... and nothing else
    with pytest.raises(MemoryError, match=r"sample\(1000000000000\) ran out of memory \(.*\); "
                                          r"draw fewer points per call"):
        v.sample(10**12)


@pytest.mark.parametrize("target,file", [("camel", "events.npz"),
                                         ("ee-mumu", "diagnostics.npz")])
def test_C1_full_disk_is_one_line_and_leaves_no_temporary(tmp_path, capsys, monkeypatch,
                                                          target, file):
    import errno

    if target == "ee-mumu":
        pytest.importorskip("mcint.processes")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    # every .npz write hits a full disk: camel's npz events; ee-mumu (LHE events) the model,
    # which is only a warning, then diagnostics.npz
    monkeypatch.setattr(np, "savez", full)
    out = tmp_path / "o"
    rc, _, err = _cli(capsys, "run", target, "--sampler", "vegas", "--events", "50", "--out",
                      out, *CLI_FAST)
    assert rc == 1 and len(err) == 1, err
    assert err[0].startswith("mcint: error: no space left on device writing "), err
    assert file in err[0] and "MCINT_DEBUG" not in err[0]
    assert _temps(out) == []                    # failed writes take their temporaries along


def test_C2_temporaries_of_killed_runs_are_removed_foreign_files_kept(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    stale = [".checkpoint.npz.k3j2h1g0.tmp",          # mcint.serialize's name (no pid)
             ".diagnostics.npz.999999999.tmp",         # a writer whose pid is gone
             ".run.json.999999999.x1y2.tmp", ".events.npz.999999999.abcd.part"]
    foreign = [".notes.tmp", "keep.tmp", ".other.npz.999999999.tmp"]
    for name in stale + foreign:
        (out / name).write_text("x")
    rc, _, err = _cli(capsys, "run", "camel", "--sampler", "vegas", "--events", "50", "--out",
                      out, *CLI_FAST)
    assert rc == 0, err
    assert _temps(out) == sorted(foreign)
    assert not (out / ".mcint.lock").exists()   # the run's lock goes with the run


def _fake_run(d, integrand="camel", sampler="nis", backend="numpy", status="training"):
    """A run directory as an interrupted `mcint run` leaves it (the checkpoint is a stub:
    everything tested here is decided before it is read)."""
    d.mkdir(parents=True, exist_ok=True)
    opts = {"integrand": integrand, "seed": 3, "backend": None, "sampler": None,
            "events": 10, "out": str(d)}
    (d / "run.json").write_text(json.dumps({
        "integrand": integrand, "dims": 2, "sampler": sampler, "backend": backend,
        "seed": 3, "status": status, "options": opts, "files": {"model": "model.npz"}}))
    (d / "checkpoint.npz").write_bytes(b"stub")
    return d


def test_C3_resume_keeps_the_recorded_backend(tmp_path, monkeypatch, capsys):
    from mcint.cli.config import ConfigError
    from mcint.cli.resume import load_resume

    d = _fake_run(tmp_path / "r")                # backend resolved to numpy, not in the card
    monkeypatch.setenv("MCINT_BACKEND", "torch")
    cfg, _ = load_resume(str(d), {})
    assert cfg.backend == "numpy" and cfg.sampler == "nis"
    assert load_resume(str(d), {"backend": "NumPy"})[0].backend == "numpy"
    with pytest.raises(ConfigError, match="cannot resume on backend 'torch': the run trained "
                                          "on 'numpy'"):
        load_resume(str(d), {"backend": "torch"})


_HELPER = """
import numpy as np
open({marker!r}, "w").write("ran")       # what untrusted code could do
def f(x):
    return np.exp(-np.sum((x - 0.5) ** 2, axis=1) / 0.1)
"""


def test_C4_code_named_by_a_run_file_runs_only_when_trusted(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "dl"
    marker = tmp_path / "RAN"
    d.mkdir()
    (d / "helper.py").write_text(_HELPER.format(marker=str(marker)))
    VEGAS(g, 2, seed=0).save(str(d / "model.npz"))
    (d / "run.json").write_text(json.dumps({"integrand": "helper.py:f", "dims": 2,
                                            "files": {"model": "model.npz"}}))
    sample = ["sample", d / "model.npz", "--events", "20", "--calibration-calls", "2000",
              "--progress", "none"]
    rc, _, err = _cli(capsys, *sample, "--out", tmp_path / "a.npz")
    assert rc == 2 and len(err) == 1 and "--trust-run-file" in err[0], err
    assert "names the integrand 'helper.py:f', which imports and runs" in err[0]
    _fake_run(tmp_path / "r", integrand=str(d / "helper.py") + ":f")
    rc, _, err = _cli(capsys, "run", "--resume", tmp_path / "r")
    assert rc == 2 and "--trust-run-file" in err[0], err
    assert not marker.exists()                  # nothing was imported
    rc, _, err = _cli(capsys, *sample, "--out", tmp_path / "b.npz", "--trust-run-file")
    assert rc == 0 and marker.exists(), err      # an explicit choice
    marker.unlink()
    rc, _, err = _cli(capsys, *sample, "--out", tmp_path / "c.npz", "--integrand",
                      d / "helper.py:f")
    assert rc == 0 and marker.exists(), err


def test_C5_a_second_run_on_the_same_outputs_fails_at_once(tmp_path, capsys):
    from mcint.cli.rundir import RunLock

    out = tmp_path / "o"
    out.mkdir()
    lock = RunLock(out).acquire()              # a run writing there now
    try:
        rc, _, err = _cli(capsys, "run", "camel", "--sampler", "vegas", "--out", out, *CLI_FAST)
    finally:
        lock.release()
    assert rc == 75 and len(err) == 1, err
    assert f"another mcint process (pid {os.getpid()}) is writing to" in err[0]
    assert ".mcint.lock" in err[0]
    assert sorted(os.listdir(out)) == []


def test_C6_earlier_outputs_need_force_which_removes_all_of_them(tmp_path, capsys):
    pytest.importorskip("mcint.processes")
    out = tmp_path / "o"
    base = ["run", "ee-mumu", "--sampler", "vegas", "--events", "50", *CLI_FAST]
    assert _cli(capsys, *base, "--format", "npz", "--out", out)[0] == 0
    rc, _, err = _cli(capsys, *base, "--out", out)
    assert rc == 2 and "holds the outputs of an earlier run (run.json" in err[0], err
    assert "give --force" in err[0]
    assert _cli(capsys, *base, "--out", out, "--force")[0] == 0
    assert not (out / "events.npz").exists() and (out / "events.lhe").is_file()
    # --out NAME.lhe then NAME.lheh5 in one folder: NAME.run.json etc. would be shared
    assert _cli(capsys, *base, "--out", tmp_path / "p" / "ee.lhe")[0] == 0
    rc, _, err = _cli(capsys, *base, "--format", "npz", "--out", tmp_path / "p" / "ee.npz")
    assert rc == 2 and "ee.run.json" in err[0], err
    assert (tmp_path / "p" / "ee.lhe").is_file()


_ATEXIT_SIGNAL = """
import atexit, sys, time
from mcint import cli

atexit.register(time.sleep, 3)        # a slow shutdown: the second Ctrl-C lands in it

def interrupted(args):
    raise KeyboardInterrupt

cli.COMMANDS["examples"] = interrupted
sys.argv = ["mcint", "examples"]
rc = cli.main()                       # as the console script calls it
print("stopping", flush=True)
sys.exit(rc)
"""


def test_C7_a_second_ctrl_c_during_shutdown_is_quiet():
    import signal
    import subprocess
    import sys
    import time

    p = subprocess.Popen([sys.executable, "-c", _ATEXIT_SIGNAL], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "stopping"
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert err.strip().splitlines() == ["mcint: interrupted (event files hold the events "
                                        "written so far, marked incomplete)"], err


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1"])
def test_C8_flush_every_must_be_finite_and_positive(tmp_path, capsys, value):
    rc, _, err = _cli(capsys, "run", "camel", "--flush-every", value, "--out", tmp_path / "o")
    assert rc == 2 and len(err) == 1, err
    assert "flush_every must be a finite number of seconds > 0" in err[0]
    assert not (tmp_path / "o").exists()


def test_C8_train_calls_raised_by_the_sampler_are_reported(tmp_path, capsys):
    out = tmp_path / "o"
    rc, stdout, err = _cli(capsys, "run", "camel", "--sampler", "vegas", "--events", "50",
                           "--out", out, *CLI_FAST, "--train-calls", "10")
    assert rc == 0, err
    import re

    rep = json.loads((out / "run.json").read_text())
    used = rep["history"][-1]["calls"]          # VEGAS trains whole iterations of a minimum
    want = f"train_calls 10 was raised to {used} integrand calls"
    assert used > 10 and re.search(rf"^warning: {want}", stdout, re.M), stdout
    assert any(w.startswith(want) for w in rep["warnings"])


def test_C8_train_calls_too_few_for_one_nis_step_are_reported(tmp_path, capsys):
    pytest.importorskip("torch")
    rc, out, _ = _cli(capsys, "run", "camel", *CLI_FAST, "--sampler", "nis", "--train-calls",
                      "10", "--events", "20", "--out", tmp_path / "o")
    msg = ("train_calls 10 is fewer than one step of the NIS sampler takes: it made no step, "
           "the sampler is untrained")
    # before: not a word; run.json's history was empty and the model untrained
    assert rc == 0 and "warning: " + msg in out, out
    assert any(msg in w for w in json.loads((tmp_path / "o" / "run.json").read_text())
               ["warnings"])


def test_C9_run_card_vegas_nitn_and_out_follow_the_card(tmp_path, capsys, monkeypatch):
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "run.toml").write_text('integrand = "camel"\nsampler = "vegas"\nevents = 50\n'
                                    'out = "o"\n[sampler_options]\nnitn = 5\n')
    monkeypatch.chdir(tmp_path)
    rc, _, err = _cli(capsys, "run", "cards/run.toml", *CLI_FAST)
    assert rc == 0, err
    rep = json.loads((cards / "o" / "run.json").read_text())     # next to the card
    assert len(rep["history"]) == 5                              # nitn honoured
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("cmd", ["run", "sample"])
def test_C10_unknown_output_suffix(tmp_path, capsys, cmd):
    target = ["camel"] if cmd == "run" else [tmp_path / "m.npz", "--integrand", "camel"]
    if cmd == "sample":
        VEGAS(g, 4, seed=0).save(str(tmp_path / "m.npz"))
    rc, _, err = _cli(capsys, cmd, *target, "--out", tmp_path / "ev.root")
    assert rc == 2 and len(err) == 1, err
    assert "'.root' is not an event file suffix" in err[0]
    assert not (tmp_path / "ev.root").exists()


def _doc_exit_codes():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "bad-input.md").read_text()
    section = text.split("## Exit status", 1)[1].split("\n## ", 1)[0]
    rows = [ln.split("|")[1:3] for ln in section.splitlines() if ln.startswith("| ")]
    return {int(c.strip()): m.strip().replace("`", "") for c, m in rows if c.strip().isdigit()}


def test_C11_one_exit_code_table_documented_and_kept(tmp_path, capsys):
    from mcint.cli import EXIT_CODES

    assert _doc_exit_codes() == EXIT_CODES
    (tmp_path / "afile").write_text("")
    (tmp_path / "boom.py").write_text("def f(x):\n    raise RuntimeError('broken integrand')\n")
    cases = [(["run", "camel", "--out", tmp_path / "afile"], 2, "cannot create output "
              "directory"),
             (["run", "camel", "--out", tmp_path / "afile" / "x"], 2, "cannot create"),
             (["run", "ee-mumu", "--dims", "3"], 2, "fixed dimension 2"),
             (["run", "camel", "--sampler", "vegas", "--sampler", "mcmc"], 2, "invalid choice"),
             (["run", "camel", "--sampler", "vegas", "--out", tmp_path / "v",
               "--sampler-options"], 2, "unrecognized arguments"),
             (["run", f"{tmp_path / 'boom.py'}:f", "--dims", "2", "--sampler", "vegas",
               "--out", tmp_path / "b", *CLI_FAST], 1, "broken integrand")]
    if os.path.isdir("/proc"):
        cases.append((["run", "camel", "--out", "/proc/x"], 2, "cannot create output"))
    for argv, code, match in cases:
        rc, _, err = _cli(capsys, *argv)
        assert (rc, len(err)) == (code, 1) and match in err[0], (argv, rc, err)
        assert ("MCINT_DEBUG" in err[0]) == (code == 1), err   # the hint only for failures


_NO_TORCH_BACKEND_ERROR = """
import sys, time
from mcint.cli import main
t = time.perf_counter()
rc = main(["run", "camel", "--backend", "jax"])
sys.modules["array_api_strict"] = None        # as where array-api-strict is not installed
rc2 = main(["run", "camel", "--backend", "strict"])
assert "torch" not in sys.modules, "listing backend names imported torch"
sys.exit(10 * rc + rc2)
"""


def test_C12_messages_name_what_was_meant(tmp_path, capsys, monkeypatch):
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", _NO_TORCH_BACKEND_ERROR], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 22, p.stderr
    lines = p.stderr.strip().splitlines()
    assert "unknown backend 'jax'; available backends: numpy" in lines[0]
    assert "pip install 'mcint[strict]'" in lines[1], lines
    monkeypatch.chdir(tmp_path)
    (tmp_path / "old" / "run.json").parent.mkdir()
    (tmp_path / "old" / "run.json").write_text("{}")
    (tmp_path / "card.toml").write_text('integrand = "camel"\nevnts = 10\n')
    for argv, match in [
            (["run", "old"], "'old' is a directory, not an example, module:function, "
                             "file.py:function or run card (.toml); it holds an mcint run: "
                             "`mcint sample old`"),
            (["run", "camel", "--evnts", "3"], "(did you mean '--events'?)"),
            (["run", "card.toml"], "unknown key 'evnts' (did you mean 'events'?)"),
            (["run", "camell"], "(did you mean 'camel'?)"),
            (["run", "camel", "--backend", "nmupy"], "(did you mean 'numpy'?)")]:
        rc, _, err = _cli(capsys, *argv)
        assert rc == 2 and len(err) == 1 and match in err[0], (argv, err)


def test_C13_help_defaults_card_keys_and_vegas_resume(tmp_path, capsys):
    from mcint.cli.config import FIELDS

    rc, out, _ = _cli(capsys, "run", "--help")
    assert rc == 0
    assert "(default: 10000)" in out and "(default: 0.001, as MadGraph)" in out
    card = out.split("run card keys", 1)[1]
    assert all(f"\n  {k} " in card for k in FIELDS)
    rc, _, err = _cli(capsys, "run", "--resume", _fake_run(tmp_path / "v", sampler="vegas"))
    assert rc == 2 and "uses VEGAS, which keeps no checkpoint" in err[0], err




def test_C13_vegas_resume_prints_the_command_to_start_it_again(tmp_path, capsys):
    d = _fake_run(tmp_path / "v x", integrand="ee-mumu", sampler="vegas")
    rc, _, err = _cli(capsys, "run", "--resume", d)
    # before: "start it again with `mcint run ... --force`", a literal "..."
    assert rc == 2 and len(err) == 1, err
    assert "..." not in err[0]
    want = f"`mcint run ee-mumu --sampler vegas --backend numpy --seed 3 --events 10 " \
           f"--out '{d}' --force`"
    assert err[0].endswith(want), err


def test_C15_unknown_example_lists_every_example(capsys):
    import subprocess
    import sys

    rc, out, _ = _cli(capsys, "examples")
    listed = [ln.split()[0] for ln in out.splitlines()[1:] if ln.strip()]
    # a fresh process: nothing registered on first use yet
    p = subprocess.run([sys.executable, "-m", "mcint.cli", "run", "nosuchexample"],
                       capture_output=True, text=True, timeout=120)
    err = [ln for ln in p.stderr.splitlines() if ln.strip()]
    # before: the error's list left out w2j, which `mcint examples` shows
    assert rc == 0 and p.returncode == 2 and "w2j" in listed, listed
    assert len(err) == 1 and err[0].endswith("built-in examples: " + ", ".join(listed)), err


def test_C16_nonfinite_flag_and_summary_line(tmp_path, capsys):
    (tmp_path / "nanf.py").write_text(
        "import numpy as np\n"
        "def f(x):\n"
        "    return np.where(x[:, 0] > 0.95, np.nan, 1.0 + x[:, 1])\n")
    args = [f"{tmp_path / 'nanf.py'}:f", "--dims", "2", "--sampler", "vegas", "--train-calls",
            "20000", "--events", "20", "--no-plot", "--progress", "none"]
    rc, _, err = _cli(capsys, "run", *args, "--out", tmp_path / "r")
    assert rc == 1 and "non-finite" in err[0] and "nonfinite='zero'" in err[0], err
    # before: no --nonfinite flag ("unrecognized arguments"), and a card's nonfinite went to
    # sampler_options, with raw RuntimeWarnings per batch on stderr
    rc, out, err = _cli(capsys, "run", *args, "--out", tmp_path / "z", "--nonfinite", "zero")
    rep = json.loads((tmp_path / "z" / "run.json").read_text())
    n = rep["metrics"]["nonfinite_points"]
    assert rc == 0 and err == [] and n > 0 and rep["options"]["nonfinite"] == "zero", err
    assert f"nonfinite       {n} integrand values were NaN/inf and counted as zero" in out
    # mcint sample of that model: counted the same way (before: raw warnings per batch)
    rc, out, err = _cli(capsys, "sample", tmp_path / "z", "--integrand",
                        f"{tmp_path / 'nanf.py'}:f", "--events", "20", "--progress", "none")
    assert rc == 0 and err == [] and re.search(r"nonfinite +\d+ integrand values", out), err
    rc, _, err = _cli(capsys, "run", *args, "--out", tmp_path / "b", "--nonfinite", "skip")
    assert rc == 2 and "--nonfinite: invalid choice: 'skip'" in err[0], err


def test_C14_quickstart_blocks_each_run_alone():
    """Every python block of docs/quickstart.md imports what it uses (a reader copies one)."""
    import ast
    import builtins
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "quickstart.md").read_text()
    for block in re.findall(r"^```python[^\n]*\n(.*?)^```", text, re.S | re.M):
        tree = ast.parse(block)
        bound = set(dir(builtins))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                bound.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.arg)):
                bound.add(node.name if isinstance(node, ast.FunctionDef) else node.arg)
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Load)}
        assert used <= bound, f"undefined in a quickstart block: {sorted(used - bound)}"


# -- F1-F9: hostile and damaged model, checkpoint, event and run files ------------------------
# Every failure to read a file is one ModelFileError / EventFileError (ConfigError for run
# files) naming the file and what is wrong; tests/test_file_fuzz.py loads random mutants.

def _events(path, **meta_edit):
    from mcint.events import write_npz

    write_npz(path, np.random.default_rng(0).random((50, 2)), np.full(50, 0.5), meta={"xsec": 1.0})
    if meta_edit:
        with np.load(path) as z:
            data = dict(z)
        meta = json.loads(str(data["meta"]))
        meta.update(meta_edit)
        data["meta"] = np.asarray(json.dumps(meta))
        np.savez(path, **data)
    return path


def _deflated_zeros(zf, name, header, nbytes):
    with zf.open(name, "w", force_zip64=True) as f:
        f.write(header)
        for _ in range(nbytes >> 20):
            f.write(bytes(1 << 20))


def _npy_header(shape, descr="<f8"):
    buf = io.BytesIO()
    np.lib.format.write_array_header_2_0(buf, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()


def test_F1_zip_bombs_are_refused_before_inflating(files, tmp_path):
    import tracemalloc

    # a model: a few kB on disk, an entry declaring 32 MiB where the manifest says (2, 3)
    header = serialize.read_header(files / "v.npz")
    header["arrays"] = {"grid": {"shape": [2, 3], "dtype": "float64"}}
    model = tmp_path / "bomb.npz"
    with zipfile.ZipFile(model, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("__meta__.npy", _npy_header((len(json.dumps(header)),), "|u1")
                   + json.dumps(header).encode())
        _deflated_zeros(z, "grid.npy", _npy_header((2, 2 << 20)), 32 << 20)
    # an event file: x declares 4 Mi rows where the metadata says 50 events
    events = _events(tmp_path / "ev.npz")
    with zipfile.ZipFile(events) as z:
        entries = {n: z.read(n) for n in z.namelist() if n != "x.npy"}
    bomb_events = tmp_path / "evbomb.npz"
    with zipfile.ZipFile(bomb_events, "w", zipfile.ZIP_DEFLATED) as z:
        for n, data in entries.items():
            z.writestr(n, data)
        _deflated_zeros(z, "x.npy", _npy_header((2 << 20, 2)), 32 << 20)
    from mcint.events import EventFileError, read_npz

    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"bomb.npz: arrays do not match the manifest: "
                                                 r"grid: expected \(2, 3\) float64, got an "
                                                 r"entry of 33554560 bytes"):
            VEGAS.load(str(model), g)
        with pytest.raises(EventFileError, match=r"evbomb.npz': array 'x' is float64 \(2097152, "
                                                 r"2\), expected a float array of 2 dimension\(s\) "
                                                 r"with 50 rows"):
            read_npz(bomb_events)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < (4 << 20)      # before: 32 MiB inflated (4 GB took 55 s and 3.9 GB)


def test_F2_metadata_nested_too_deeply(files, tmp_path):
    deep = (b'{"format": "mcint", "format_version": 1, "kind": "nis-checkpoint", "arrays": {}, '
            b'"meta": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    with zipfile.ZipFile(files / "ck.npz") as src, \
            zipfile.ZipFile(tmp_path / "deep.npz", "w") as dst:
        for n in src.namelist():
            dst.writestr(n, src.read(n) if n != "__meta__.npy"
                         else _npy_header((len(deep),), "|u1") + deep)
    with pytest.raises(ModelFileError, match=r"deep.npz: corrupt metadata \(nested too deeply\)"):
        Integrator.resume(str(tmp_path / "deep.npz"), g)   # before: RecursionError


@pytest.mark.parametrize("section,key,value,match", [
    ("state", "step", float("inf"), r"field 'state.step' must be an integer >= 0, got inf"),
    ("state", "step", "abc", r"field 'state.step' must be an integer >= 0, got 'abc'"),
    ("state", "rng_sample", {}, r"field 'state.rng_sample.kind' is missing"),
    ("state", "active", [], r"field 'state.active' must be a list of 1 items, each true or "
                            r"false, got \[\]"),
    ("state", "log", 5, r"field 'state.log' must be a list of items, each a dict"),
    ("state", "dims", 2.0, r"field 'state.dims' must be an integer >= 1, got 2.0"),
    ("options", "bogus", 1, r"field 'options' has unknown entries \['bogus'\] \(written by a "
                            r"newer mcint, or edited\)"),
    ("options", "lr", "fast", r"field 'options.lr' must be null or a finite number >= 0"),
    ("options", "loss", "nope", r"its options do not build an Integrator .*: unknown loss "
                                r"'nope'"),
    ("options", "flow", {"hidden": [10**6]}, r"field 'options.flow' describes flows of ~\d+ "
                                             r"parameters each, the file holds \d+"),
], ids=["step-inf", "step-text", "rng-empty", "active-empty", "log-int", "dims-float",
        "unknown-option", "lr-text", "unknown-loss", "huge-flow"])
def test_F3_checkpoint_fields_checked_by_schema(files, tmp_path, section, key, value, match):
    def edit(meta, arrays):
        meta[section][key] = value

    p = _rewrite(files / "ck.npz", tmp_path / "bad.npz", edit_arrays=edit)
    # before: OverflowError, ValueError, IndexError, TypeError without the file name (and a
    # flow of 10^12 parameters allocated before anything was compared)
    with pytest.raises(ModelFileError, match="bad.npz: " + match):
        Integrator.resume(p, g)


def _zip_record(raw, name, central):
    """Offset of ``name``'s central directory record (``central``) or local header."""
    sig = b"PK\x01\x02" if central else b"PK\x03\x04"
    at, skip = (46, 28) if central else (30, 26)
    i = raw.index(sig)
    while raw[i + at:i + at + int.from_bytes(raw[i + skip:i + skip + 2], "little")] != \
            name.encode():
        i = raw.index(sig, i + 4)
    return i


@pytest.mark.parametrize("damage,match", [
    ("encrypted", r"corrupt model file: zip entry '__meta__.npy' is marked encrypted"),
    ("version", r"corrupt or truncated model file \(NotImplementedError: zip file version "
                r"9.9\)"),
    ("npy-header", r"corrupt model file: entry '__meta__' has an unreadable npy header"),
], ids=["encrypted", "version", "npy-header"])
def test_F4_damaged_zip_containers(files, tmp_path, damage, match):
    """Single damaged bits that escaped as RuntimeError ('... is encrypted, password
    required'), NotImplementedError and tokenize.TokenError."""
    raw = (files / "ck.npz").read_bytes()
    cd, local = (_zip_record(raw, "__meta__.npy", c) for c in (True, False))
    if damage == "encrypted":
        raw = raw[:cd + 8] + b"\x01" + raw[cd + 9:]
        raw = raw[:local + 6] + b"\x01" + raw[local + 7:]
    elif damage == "version":
        raw = raw[:cd + 6] + bytes([99]) + raw[cd + 7:]
    else:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            entries = {n: z.read(n) for n in z.namelist()}
        meta = entries["__meta__.npy"]
        entries["__meta__.npy"] = meta.replace(b"'shape': (", b"'shape': ((", 1)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for n, data in entries.items():
                z.writestr(n, data)
        raw = buf.getvalue()
    (tmp_path / "damaged.npz").write_bytes(raw)
    with pytest.raises(ModelFileError, match="damaged.npz: " + match):
        Integrator.resume(str(tmp_path / "damaged.npz"), g)


def _info(capsys, path):
    from mcint.cli import main

    rc = main(["info", str(path)])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 2 and len(err) == 1, err
    return err[0]


def test_F5_not_a_regular_file_or_not_a_model(tmp_path, capsys):
    import threading

    (tmp_path / "x.npz").write_text('{"meta":{"a":1}}')
    # before: "reading .safetensors needs the safetensors package"
    assert _info(capsys, tmp_path / "x.npz").endswith(
        "x.npz: not an mcint model file (neither an .npz archive nor safetensors)")
    if not hasattr(os, "mkfifo"):
        return
    os.mkfifo(tmp_path / "m.npz")
    got = []

    def load():   # before: blocked forever in open()
        try:
            VEGAS.load(str(tmp_path / "m.npz"), g)
        except ModelFileError as exc:
            got.append(str(exc))

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():
        with open(tmp_path / "m.npz", "wb"):
            pass
    assert got and got[0].endswith("m.npz: is a FIFO (named pipe), not a model file"), got


def test_F6_nan_parameters_are_refused_at_load(files, tmp_path):
    def nan_weight(meta, arrays):
        k = "flow0:couplings.0.w1"
        arrays[k] = arrays[k].copy()
        arrays[k][0, 0] = np.nan

    p = _rewrite(files / "ck.npz", tmp_path / "nan.npz", edit_arrays=nan_weight)
    # before: loaded; sampling then failed with "the integrand returned ... non-finite
    # value(s) ... fix the integrand"
    with pytest.raises(ModelFileError, match=r"nan.npz: array 'flow0:couplings.0.w1' holds 1 "
                                             r"NaN/inf value\(s\)"):
        Integrator.resume(p, g)

    def inf_grid(meta, arrays):
        arrays["grid"] = arrays["grid"].copy()
        arrays["grid"][0, 1] = np.inf

    p = _rewrite(files / "v.npz", tmp_path / "vinf.npz", edit_arrays=inf_grid)
    with pytest.raises(ModelFileError, match=r"vinf.npz: not a usable VEGAS file: array "
                                             r"'grid': grid must be finite"):
        VEGAS.load(p, g)


@pytest.mark.parametrize("edit,match", [
    ({"version": "abc"}, r"field 'meta.version' must be an integer >= 1, got 'abc'"),
    ({"version": None}, r"field 'meta.version' must be an integer >= 1, got None"),
    ({"version": float("inf")}, r"field 'meta.version' must be an integer >= 1, got inf"),
    ({"n_events": 49}, r"array 'x' is float64 \(50, 2\), expected a float array of 2 "
                       r"dimension\(s\) with 49 rows"),
    ({"xsec": "1 pb"}, r"field 'meta.xsec' must be a finite number, got '1 pb'"),
    ({"complete": "yes"}, r"field 'meta.complete' must be true or false, got 'yes'"),
], ids=["version-text", "version-null", "version-inf", "n_events", "xsec-text", "complete"])
def test_F7_event_files_with_bad_metadata(tmp_path, edit, match):
    from mcint.events import EventFileError, read_npz

    p = _events(tmp_path / "ev.npz", **edit)
    # before: ValueError, TypeError or OverflowError from int(meta["version"])
    with pytest.raises(EventFileError, match="ev.npz': " + match):
        read_npz(p)


@pytest.mark.parametrize("key,value,match", [
    ("dims", "abc", r"field 'meta.dims' must be an integer >= 1, got 'abc'"),
    ("nitn", float("inf"), r"field 'meta.nitn' must be an integer >= 1, got inf"),
    ("rng_state", {"kind": "numpy-pcg64", "state": 2**200, "inc": 1, "has_uint32": 0,
                   "uinteger": 0},
     r"field 'meta.rng_state.state' must be an integer in \[0, 2\*\*128 - 1\]"),
    ("strat", {"nstrat": [10**9, 10**9], "neval": 10, "sum_sigf": 1.0},
     r"array 'sigf' must be float \(1000000000000000000,\), one per hypercube"),
    ("domain", [[0, 1], [1, 0]], r"its settings do not build a VEGAS: domain needs finite "
                                 r"low < high"),
], ids=["dims", "nitn", "rng-state", "strat", "domain"])
def test_F8_vegas_files_with_bad_fields(files, tmp_path, key, value, match):
    def edit(meta, arrays):
        meta[key] = value

    p = _rewrite(files / "v.npz", tmp_path / "bad.npz", edit_arrays=edit)
    # before: OverflowError for the RNG state; the others without the field's name
    with pytest.raises(ModelFileError, match="bad.npz: not a usable VEGAS file: " + match):
        VEGAS.load(p, g)
    # a huge ninc is a cap for later adaptation: nothing of that size is allocated at load
    p = _rewrite(files / "v.npz", tmp_path / "cap.npz",
                 edit_arrays=lambda meta, arrays: meta.update(ninc=10**12))
    v = VEGAS.load(p, g)
    assert v.max_ninc == 10**12 and v.map.ninc == VEGAS.load(str(files / "v.npz"), g).map.ninc


@pytest.mark.parametrize("content,match", [
    ('{"integrand": "camel", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
     r"run.json': corrupt run file \(nested too deeply\)"),
    ('{"integrand": "camel", "files": 5}',
     r"run.json': field 'run.files' must be a dict, got 5"),
    ('{"integrand": 5}', r"run.json': field 'run.integrand' must be a string, got 5"),
], ids=["deep", "files", "integrand"])
def test_F9_run_files_with_bad_fields(tmp_path, capsys, content, match):
    import re

    (tmp_path / "run.json").write_text(content)
    # before: RecursionError, AttributeError, TypeError (as "unexpected" errors)
    line = _info(capsys, tmp_path / "run.json")
    assert re.search(match, line), line


def _lhe(tmp_path):
    pytest.importorskip("pylhe")
    from mcint.cli import main

    rc = main(["run", "ee-mumu", "--sampler", "vegas", "--events", "20", "--train-calls",
               "2000", "--out", str(tmp_path / "ok" / "ee.lhe"), "--no-plot", "--progress",
               "none"])
    assert rc == 0
    return (tmp_path / "ok" / "ee.lhe").read_text()


def test_F10_lhe_events_with_nan_weights(tmp_path, capsys):
    from mcint.events import EventFileError, read_events

    text = _lhe(tmp_path)
    i = text.index("<event>\n") + len("<event>\n")
    j = text.index("\n", i)
    head = text[i:j].split()
    head[2] = "nan"                       # XWGTUP of the first event
    p = tmp_path / "nan.lhe"
    p.write_text(text[:i] + " ".join(head) + text[j:])
    # before: read, and plotted without a word (the npz and LHEH5 readers refuse NaN weights)
    with pytest.raises(EventFileError, match=r"nan.lhe': event weights contain NaN or inf"):
        read_events(p)


def test_F11_damaged_event_files_are_an_input_error_for_mcint_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from mcint.cli import main

    text = _lhe(tmp_path)
    capsys.readouterr()
    bad = {"trunc.lhe": text[: len(text) // 2], "txt.lheh5": "not hdf5"}
    for name, content in bad.items():
        (tmp_path / name).write_text(content)
    _events(tmp_path / "ev.npz", version="abc")
    for name in [*bad, "ev.npz"]:
        rc = main(["plot", str(tmp_path / name), "--out", str(tmp_path / "plots")])
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        # before: status 1 and "(MCINT_DEBUG=1 shows the traceback)", as for a crash
        assert rc == 2 and len(err) == 1 and name in err[0], (name, rc, err)
        assert "MCINT_DEBUG" not in err[0], err


def test_F6_mcint_info_runs_the_loaders_array_checks(files, tmp_path, capsys):
    def nan_weight(meta, arrays):
        k = "flow0:couplings.0.w1"
        arrays[k] = arrays[k].copy()
        arrays[k][0, 0] = np.nan

    def inf_grid(meta, arrays):
        arrays["grid"] = arrays["grid"].copy()
        arrays["grid"][0, 1] = np.inf

    # before: exit 0 and a description of a model that no loader accepts
    p = _rewrite(files / "ck.npz", tmp_path / "nan.npz", edit_arrays=nan_weight)
    assert _info(capsys, p).endswith("nan.npz: array 'flow0:couplings.0.w1' holds 1 NaN/inf "
                                     "value(s) (a diverged or corrupted model; it cannot be "
                                     "used)")
    p = _rewrite(files / "v.npz", tmp_path / "vinf.npz", edit_arrays=inf_grid)
    assert _info(capsys, p).endswith("vinf.npz: not a usable VEGAS file: array 'grid': grid "
                                     "must be finite")
    from mcint.cli import main

    assert main(["info", str(files / "ck.npz")]) == 0      # a good model is still described
    capsys.readouterr()


@pytest.mark.parametrize("model,key,value,match", [
    ("ck.npz", "clip", 0, r"its options do not build an Integrator .*: clip \(the "
                          r"gradient-norm clip\) must be None \(off\) or a finite number > 0, "
                          r"got 0"),
    ("ck.npz", "schedule", "abc", r"its options do not build an Integrator .*: unknown lr "
                                  r"schedule 'abc'"),
    # the file's schema bounds alpha as the constructor does: mcint info refuses it too
    ("v.npz", "alpha", 1000, r"not a usable VEGAS file: field 'meta.alpha' must be a finite "
                             r"number in \[0, 10.0\], got 1000"),
    ("v.npz", "alpha", 2**70, r"not a usable VEGAS file: field 'meta.alpha' must be a finite "
                              r"number in \[0, 10.0\]"),
], ids=["ck-clip", "ck-schedule", "v-alpha", "v-alpha-huge"])
def test_F12_option_values_the_constructor_refuses(files, tmp_path, model, key, value, match):
    def edit(meta, arrays):
        (meta["options"] if model == "ck.npz" else meta)[key] = value

    p = _rewrite(files / model, tmp_path / "bad.npz", edit_arrays=edit)
    # before: loaded; training failed later (clip, schedule) or adapting divided by zero
    # (alpha) with no file named
    with pytest.raises(ModelFileError, match="bad.npz: " + match):
        (Integrator.resume if model == "ck.npz" else VEGAS.load)(p, g)


def test_F13_event_files_without_events_for_mcint_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from mcint.cli import main
    from mcint.events import open_writer, write_npz
    from mcint.events.particles import RunInfo

    names = ["e.lhe", "e.npz", "x.npz"]
    for name in names[:2]:
        open_writer(tmp_path / name, RunInfo(1.0, 0.1, beams=(11, -11),
                                             energies=(45.0, 45.0))).close()
    write_npz(tmp_path / "x.npz", np.zeros((0, 2)), np.zeros(0))
    try:
        import h5py  # noqa: F401
        open_writer(tmp_path / "e.lheh5", RunInfo(1.0, 0.1)).close()
        names.append("e.lheh5")
    except ImportError:
        pass
    for name in names:
        rc = main(["plot", str(tmp_path / name), "--out", str(tmp_path / "plots")])
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        # before: ValueError from mcint.plots, exit 1 with the MCINT_DEBUG hint
        assert rc == 2 and len(err) == 1, (name, rc, err)
        assert err[0].endswith(f"{name}' holds no events to plot") and "MCINT_DEBUG" not in err[0]
    assert not (tmp_path / "plots").exists()
