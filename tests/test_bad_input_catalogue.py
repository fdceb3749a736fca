"""The bad-input catalogue (docs/bad-input.md): every kind of bad input gets a clear error that
says what is wrong, where, and what was expected -- and loses nothing (no half-written files,
no poisoned state). One test per kind; the docs table lists the same kinds."""

from __future__ import annotations

import io
import json
import os
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
    (lambda: VEGAS(g, 2, alpha=-1), "alpha must be a finite number >= 0, got -1"),
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
        with pytest.raises(ModelFileError, match="Object arrays cannot be loaded"):
            load()
    assert not marker.exists()


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
        with zipfile.ZipFile(dst) as z:
            entries = {n: z.read(n) for n in z.namelist()}
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.frombuffer(json.dumps(header).encode(), np.uint8))
        entries["__meta__.npy"] = buf.getvalue()
        with zipfile.ZipFile(dst, "w") as z:
            for n, data in entries.items():
                z.writestr(n, data)
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

    with pytest.raises(ModelFileError, match=r"grid must be a float array of shape \(2, ninc "
                                             r"\+ 1\), got int64"):
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

    with pytest.raises(ModelFileError, match="checkpoint state lacks 'rng_train'"):
        Integrator.resume(_rewrite(files / "ck.npz", tmp_path / "a.npz",
                                   edit_arrays=drop_state), g)

    def drop_all(meta, arrays):
        del meta["state"]

    with pytest.raises(ModelFileError, match="checkpoint metadata lacks 'options'/'state'"):
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
