"""Event files: pylhe reads LHE/LHEH5 back unchanged, npz round-trips, interruptions never corrupt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from mcint.events import (
    EventFileError,
    LHEWriter,
    NpzWriter,
    ParticleEvents,
    RunInfo,
    format_of,
    open_writer,
    read_npz,
    write_npz,
)


def dy_events(n: int, seed: int = 0) -> ParticleEvents:
    """Massless 2 -> 2 events (q qbar -> mu+ mu-) with random flavours and boosts."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(0.01, 0.5, n), rng.uniform(0.01, 0.5, n)
    e_beam = 6500.0
    pa = np.stack([x1 * e_beam, 0 * x1, 0 * x1, x1 * e_beam], axis=1)
    pb = np.stack([x2 * e_beam, 0 * x2, 0 * x2, -x2 * e_beam], axis=1)
    shat = 4 * x1 * x2 * e_beam**2
    m = np.sqrt(shat) / 2
    c, phi = rng.uniform(-1, 1, n), rng.uniform(0, 2 * np.pi, n)
    s = np.sqrt(1 - c * c)
    k = np.stack([m, m * s * np.cos(phi), m * s * np.sin(phi), m * c], axis=1)
    kb = k * np.array([1, -1, -1, -1])
    # boost along z from the partonic rest frame to the lab
    beta = (x1 - x2) / (x1 + x2)
    gam = 1 / np.sqrt(1 - beta**2)

    def boost(p):
        e = gam * (p[:, 0] + beta * p[:, 3])
        z = gam * (p[:, 3] + beta * p[:, 0])
        return np.stack([e, p[:, 1], p[:, 2], z], axis=1)

    mom = np.stack([pa, pb, boost(k), boost(kb)], axis=1)
    q = rng.integers(1, 5, n)
    pdg = np.stack([q, -q, np.full(n, 13), np.full(n, -13)], axis=1)
    return ParticleEvents(mom, pdg, [-1, -1, 1, 1], weight=np.full(n, 2.5),
                          channel=rng.integers(0, 2, n), trials=rng.integers(1, 9, n))


INFO = RunInfo(xsec=2.5, xerr=0.0125, beams=(2212, 2212), energies=(6500.0, 6500.0),
               pdf_sets=(303400, 303400), meta={"example": "test"})


def _read(path, strict=True):
    pylhe = pytest.importorskip("pylhe")
    with warnings.catch_warnings():
        if strict:
            warnings.simplefilter("error")  # pylhe turns XML errors into warnings
        f = pylhe.LHEFile.fromfile(path)
        return f, list(f.events)


@pytest.mark.parametrize("suffix", [".lhe", ".lheh5"])
def test_pylhe_reads_back_events_and_cross_section(tmp_path, suffix):
    if suffix == ".lheh5":
        pytest.importorskip("h5py")
    ev = [dy_events(7, 1), dy_events(5, 2)]
    path = tmp_path / f"ev{suffix}"
    with open_writer(path, INFO) as w:
        for b in ev:
            w.write(b)
    f, events = _read(path)
    assert len(events) == 12
    proc = f.init.procInfo
    assert len(proc) == 1
    assert proc[0].xSection == pytest.approx(INFO.xsec, rel=1e-10)
    assert proc[0].error == pytest.approx(INFO.xerr, rel=1e-10)
    ii = f.init.initInfo
    assert (ii.beamA, ii.beamB, ii.energyA, ii.PDFsetA) == (2212, 2212, 6500.0, 303400)
    mom = np.concatenate([b.momenta for b in ev])
    pdg = np.concatenate([b.pdg for b in ev])
    for i, e in enumerate(events):
        assert e.eventinfo.nparticles == 4
        assert e.eventinfo.weight == pytest.approx(2.5)
        for j, p in enumerate(e.particles):
            assert p.id == pdg[i, j]
            got = [p.e, p.px, p.py, p.pz]
            np.testing.assert_allclose(got, mom[i, j], rtol=1e-9, atol=1e-7)
            assert p.status == (-1 if j < 2 else 1)
            assert (p.mother1, p.mother2) == ((0, 0) if j < 2 else (1, 2))
            assert p.m == pytest.approx(0.0, abs=1e-6)
        # colour line through the q qbar pair, leptons colourless
        cols = [(p.color1, p.color2) for p in e.particles]
        assert cols == [(501, 0), (0, 501), (0, 0), (0, 0)]
    assert type(f).count_events(path) == 12


def test_lhe_particle_lines_have_13_fields(tmp_path):
    path = tmp_path / "ev.lhe"
    with LHEWriter(path, INFO) as w:
        w.write(dy_events(3))
    text = path.read_text()
    assert text.startswith('<LesHouchesEvents version="3.0">\n<header>')
    assert text.rstrip().endswith("</LesHouchesEvents>")
    blocks = text.split("<event>\n")[1:]
    assert len(blocks) == 3
    for b in blocks:
        lines = b.split("</event>")[0].strip("\n").split("\n")
        head = lines[0].split()
        assert len(head) == 6 and int(head[0]) == 4
        parts = [ln for ln in lines[1:] if not ln.startswith("#")]
        assert len(parts) == 4
        assert all(len(p.split()) == 13 for p in parts)
    assert "#mcint channel=" in text


def test_lheh5_extra_columns(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "ev.lheh5"
    ev = dy_events(9)
    with open_writer(path, INFO) as w:
        w.write(ev)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["mcint/channel"][:], ev.channel)
        cols = [c if isinstance(c, str) else c.decode() for c in f["events"].attrs["properties"]]
        np.testing.assert_array_equal(f["events"][:, cols.index("trials")], ev.trials)
        assert bool(f["mcint"].attrs["complete"]) is True


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    x, w, c = rng.random((50, 3)), rng.normal(size=50), rng.integers(0, 4, 50)
    p = write_npz(tmp_path / "ev.npz", x, w, c, meta={"xsec": 1.5})
    got = read_npz(p)
    np.testing.assert_array_equal(got.x, x)
    np.testing.assert_array_equal(got.weight, w)
    np.testing.assert_array_equal(got.channel, c)
    assert got.meta["xsec"] == 1.5 and got.complete and len(got) == 50
    # the file is plain arrays: numpy reads it without pickle
    with np.load(p, allow_pickle=False) as z:
        assert set(z.files) == {"x", "weight", "channel", "meta"}


def test_npz_round_trip_from_backend_arrays(tmp_path, backend):
    be = backend
    x = be.asarray(np.linspace(0, 1, 12).reshape(6, 2), dtype="float64")
    w = be.asarray(np.arange(6.0), dtype="float64")
    p = write_npz(tmp_path / "ev.npz", x, w)
    got = read_npz(p)
    np.testing.assert_array_equal(got.x, be.to_numpy(x))
    np.testing.assert_array_equal(got.channel, np.zeros(6, dtype=np.int64))


@pytest.mark.parametrize("bad", ["missing", "pickle", "foreign", "garbage", "future"])
def test_read_npz_rejects_bad_files(tmp_path, bad):
    p = tmp_path / "bad.npz"
    if bad == "pickle":
        np.savez(p, x=np.array([{"a": 1}], dtype=object), weight=np.zeros(1),
                 channel=np.zeros(1, dtype=np.int64), meta=np.asarray("{}"))
    elif bad == "foreign":
        np.savez(p, y=np.zeros(3))
    elif bad == "garbage":
        p.write_bytes(b"PK\x03\x04 this is not a zip file")
    elif bad == "future":
        np.savez(p, x=np.zeros((1, 1)), weight=np.zeros(1), channel=np.zeros(1, dtype=np.int64),
                 meta=np.asarray('{"format": "mcint-events", "version": 99}'))
    with pytest.raises(EventFileError, match="bad.npz"):
        read_npz(p)


def test_bad_event_arrays_are_named():
    with pytest.raises(ValueError, match=r"momenta must have shape \(n, k, 4\)"):
        ParticleEvents(np.zeros((3, 4)), [1, 2], [-1, 1], np.ones(3))
    with pytest.raises(ValueError, match="pdg must have shape"):
        ParticleEvents(np.zeros((3, 2, 4)), [1, 2, 3], [-1, 1], np.ones(3))
    with pytest.raises(ValueError, match=r"weight must be a scalar or have shape \(3,\)"):
        ParticleEvents(np.zeros((3, 2, 4)), [1, 2], [-1, 1], np.ones(4))
    with pytest.raises(ValueError, match="xsec must be finite"):
        RunInfo(float("nan"), 0.0)
    with pytest.raises(ValueError, match="cannot tell the event format"):
        format_of("events.txt")
    with pytest.raises(ValueError, match="needs the run information"):
        open_writer("x.lhe")


def test_unwritable_paths_fail_before_any_work(tmp_path):
    with pytest.raises(EventFileError, match="does not exist"):
        NpzWriter(tmp_path / "no" / "such" / "dir.npz")
    with pytest.raises(EventFileError, match="is a directory"):
        NpzWriter(tmp_path)
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(EventFileError, match="not writable"):
            NpzWriter(ro / "ev.npz")


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.endswith(".part"))


@pytest.mark.parametrize("suffix", [".lhe", ".lheh5", ".npz"])
def test_exception_mid_stream_leaves_valid_file_with_events_so_far(tmp_path, suffix):
    if suffix == ".lheh5":
        pytest.importorskip("h5py")
    path = tmp_path / f"ev{suffix}"
    with pytest.raises(RuntimeError, match="boom"), open_writer(path, INFO, checkpoint_every=None) as w:
        for i in range(3):
            b = dy_events(4, i)
            if suffix == ".npz":
                w.write_batch(b.momenta.reshape(4, -1), b.weight, b.channel)
            else:
                w.write(b)
        raise RuntimeError("boom")
    assert _leftovers(tmp_path) == []
    if suffix == ".npz":
        got = read_npz(path)
        assert len(got) == 12 and not got.complete
    else:
        f, events = _read(path)
        assert len(events) == 12
    if suffix == ".lhe":
        assert "incomplete" in path.read_text()


def test_exception_before_any_event_leaves_nothing(tmp_path):
    path = tmp_path / "ev.lhe"
    with pytest.raises(KeyboardInterrupt), open_writer(path, INFO):
        raise KeyboardInterrupt
    assert not path.exists() and _leftovers(tmp_path) == []


def test_checkpoints_publish_valid_partial_files(tmp_path):
    path = tmp_path / "ev.lhe"
    w = open_writer(path, INFO, checkpoint_every=0)
    w.write(dy_events(3, 0))
    _, events = _read(path)
    assert len(events) == 3          # published at the checkpoint, before close
    w.write(dy_events(2, 1))
    w.close()
    f, events = _read(path)
    assert len(events) == 5 and "incomplete" not in path.read_text()
    assert _leftovers(tmp_path) == []


_KILL_SCRIPT = textwrap.dedent("""
    import sys, numpy as np
    sys.path.insert(0, {tests!r})
    from test_events import dy_events, INFO
    from mcint.events import open_writer, RunInfo
    path = sys.argv[1]
    w = open_writer(path, INFO, checkpoint_every=0)
    i = 0
    ready = False
    while True:                      # killed from outside
        b = dy_events(50, i)
        if path.endswith(".npz"):
            w.write_batch(b.momenta.reshape(50, -1), b.weight)
        else:
            w.write(b)
        i += 1
        # ready once three batches are published, however slowly this machine copies
        if w._stream.published_events >= 150 and not ready:
            ready = True
            print("ready", flush=True)
""")


@pytest.mark.parametrize("suffix", [".lhe", ".lheh5", ".npz"])
def test_sigkill_mid_write_never_leaves_a_corrupt_file(tmp_path, suffix):
    if suffix == ".lheh5":
        pytest.importorskip("h5py")
    path = tmp_path / f"ev{suffix}"
    script = _KILL_SCRIPT.format(tests=str(Path(__file__).parent))
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # let it get well into later writes and checkpoints
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    if suffix == ".npz":
        n = len(read_npz(path))
    else:
        _, events = _read(path)
        n = len(events)
    assert n >= 150 and n % 50 == 0   # whole batches only: the published file is consistent
    # a new writer for the same path removes the killed writer's temporaries
    assert _leftovers(tmp_path)
    write_npz(path.with_suffix(".npz"), np.zeros((1, 1)), np.zeros(1))
    if suffix == ".npz":
        assert _leftovers(tmp_path) == []


def test_lhe_gz_banner_and_pdf_lines_read_back(tmp_path):
    """``.lhe.gz``: gzip members per checkpoint read as one file by pylhe; the banner blocks
    and the ``#pdf`` lines are in the file."""
    import dataclasses
    import gzip

    from mcint.events import format_of

    assert format_of("x.LHE.gz") == "lhe"
    info = dataclasses.replace(INFO, banner={"MGRunCard": "[beam]\ne_cm = 13000.0\n",
                                             "slha": "BLOCK MASS\n  23 9.118760e+01\n"})
    path = tmp_path / "ev.lhe.gz"
    ev = [dy_events(4, 1), dy_events(3, 2)]
    for b in ev:
        n = len(b)
        b.pdf = np.column_stack([b.pdg[:, 0], b.pdg[:, 1], np.full(n, 0.01), np.full(n, 0.02),
                                 np.full(n, 91.0)])
    with open_writer(path, info) as w:
        w.write(ev[0])
        w.checkpoint()                   # a gzip member ends here; the snapshot is a valid file
        _, snap = _read(path)
        assert len(snap) == 4 and "mcint: incomplete" in gzip.open(path, "rt").read()
        w.write(ev[1])
    text = gzip.open(path, "rt").read()
    assert "<MGRunCard>" in text and "e_cm = 13000.0" in text and "<slha>" in text
    assert text.count("#pdf ") == 7 and text.rstrip().endswith("</LesHouchesEvents>")
    f, events = _read(path)
    assert len(events) == 7
    assert f.init.procInfo[0].xSection == pytest.approx(INFO.xsec)
    mom = np.concatenate([b.momenta for b in ev])
    np.testing.assert_allclose([[p.e, p.px, p.py, p.pz] for p in events[5].particles], mom[5],
                               rtol=1e-9, atol=1e-7)
    with pytest.raises(ValueError, match="not a valid XML tag"):
        open_writer(tmp_path / "bad.lhe", dataclasses.replace(INFO, banner={"a b": "x"}))
