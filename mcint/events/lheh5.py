"""LHEH5 event files: the HDF5 layout of arXiv:1905.05120 / 2309.13154 (version 2), as pylhe reads.

Datasets (float64 tables whose column names are in the ``properties`` attribute)::

    init       (10,)      beamA beamB energyA energyB PDFgroupA PDFgroupB PDFsetA PDFsetB
                          weightingStrategy numProcesses
    procInfo   (1, 6)     procId npLO npNLO xSection error unitWeight
    events     (n, 10)    pid nparticles start trials scale fscale rscale aqed aqcd NOMINAL
    particles  (m, 13)    id status mother1 mother2 color1 color2 px py pz e m lifetime spin
    version    (3,)       2 6 0
    xml/header            the LHE ``<header>`` block (run metadata)
    mcint/channel (n,)    channel index of each event; ``mcint`` attrs: complete, n_events

h5py is an optional dependency (``pip install mcint[events]``), imported when a writer opens.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ._writer import EventWriter
from .lhe import _version, header_xml
from .particles import ParticleEvents, RunInfo

INIT_COLUMNS = ("beamA", "beamB", "energyA", "energyB", "PDFgroupA", "PDFgroupB", "PDFsetA",
                "PDFsetB", "weightingStrategy", "numProcesses")
PROCINFO_COLUMNS = ("procId", "npLO", "npNLO", "xSection", "error", "unitWeight")
EVENT_COLUMNS = ("pid", "nparticles", "start", "trials", "scale", "fscale", "rscale", "aqed",
                 "aqcd", "NOMINAL")
PARTICLE_COLUMNS = ("id", "status", "mother1", "mother2", "color1", "color2", "px", "py", "pz",
                    "e", "m", "lifetime", "spin")
GENERATOR_COLUMNS = ("name", "version", "description", "extraAttributes")


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise ImportError("writing LHEH5 files needs h5py: pip install 'mcint[events]' "
                          "(or write .lhe / .npz instead)") from None
    return h5py


def _columns(ds: Any, cols: tuple[str, ...]) -> None:
    names = [c.encode() for c in cols]
    ds.attrs["properties"] = names
    ds.attrs[ds.name.rsplit("/", 1)[-1]] = names


class LHEH5Writer(EventWriter):
    """Stream events into an LHEH5 (HDF5) file; same interface as :class:`~mcint.events.LHEWriter`."""

    format = "lheh5"

    def __init__(self, path: str | os.PathLike[str], info: RunInfo, *,
                 checkpoint_every: float | None = 60.0, chunk_rows: int = 1024) -> None:
        h5py = _h5py()
        super().__init__(path, checkpoint_every=checkpoint_every)
        self.info = info
        try:
            self._f = h5py.File(self._stream.tmp, "w")
            self._create(h5py, info, chunk_rows)
        except BaseException:
            self._release()
            self._stream.discard()
            raise
        self._n_particles = 0

    def _create(self, h5py: Any, info: RunInfo, chunk_rows: int) -> None:
        f = self._f
        init = f.create_dataset("init", data=np.array(
            [*info.beams, *info.energies, *info.pdf_groups, *info.pdf_sets, info.weighting, 1],
            dtype="f8"))
        _columns(init, INIT_COLUMNS)
        init.attrs["generatorName"] = "mcint"
        init.attrs["generatorVersion"] = _version()
        init.attrs["generatorDescription"] = "mcint Monte Carlo integration"
        init.attrs["generatorExtraAttributes"] = "{}"
        proc = f.create_dataset("procInfo", data=np.array(
            [[info.process_id, np.nan, np.nan, info.xsec, info.xerr, info.xmax]], dtype="f8"))
        _columns(proc, PROCINFO_COLUMNS)
        gen = f.create_dataset("generators", data=[["mcint", _version(),
                                                    "mcint Monte Carlo integration", "{}"]],
                               dtype=h5py.string_dtype("utf-8"))
        _columns(gen, GENERATOR_COLUMNS)
        f.create_dataset("events", shape=(0, len(EVENT_COLUMNS)), maxshape=(None, len(EVENT_COLUMNS)),
                         dtype="f8", chunks=(chunk_rows, len(EVENT_COLUMNS)))
        _columns(f["events"], EVENT_COLUMNS)
        f.create_dataset("particles", shape=(0, len(PARTICLE_COLUMNS)),
                         maxshape=(None, len(PARTICLE_COLUMNS)), dtype="f8",
                         chunks=(chunk_rows, len(PARTICLE_COLUMNS)))
        _columns(f["particles"], PARTICLE_COLUMNS)
        f.create_dataset("version", data=np.array([2, 6, 0], dtype="i8"))
        xml = f.create_group("xml")
        hdr = xml.create_dataset("header", data=header_xml(info),
                                 dtype=h5py.string_dtype("utf-8"))
        _columns(hdr, ("header",))
        g = f.create_group("mcint")
        g.create_dataset("channel", shape=(0,), maxshape=(None,), dtype="i8", chunks=(chunk_rows,))
        g.attrs["meta"] = json.dumps(info.meta or {}, default=str)
        g.attrs["complete"] = False
        g.attrs["n_events"] = 0

    def _append(self, events: Any) -> int:
        if not isinstance(events, ParticleEvents):
            raise TypeError(f"LHEH5Writer.write takes ParticleEvents, got {type(events).__name__}")
        ev = events
        n, k = len(ev), ev.n_particles
        if n == 0:
            return 0
        keep, mothers = ev.layout()
        counts = keep.sum(axis=1)
        start = self._n_particles + np.concatenate([[0], np.cumsum(counts)[:-1]]).astype("f8")
        trials = np.full(n, np.nan) if ev.trials is None else ev.trials
        nan = np.full(n, np.nan)
        rows = np.stack([ev.process_id.astype("f8"), counts.astype("f8"), start, trials,
                         ev.scale, nan, nan, ev.aqed, ev.aqcd, ev.weight], axis=1)
        p = ev.momenta
        part = np.empty((n, k, len(PARTICLE_COLUMNS)))
        part[..., 0] = ev.pdg
        part[..., 1] = ev.status
        part[..., 2:4] = mothers
        part[..., 4:6] = ev.colors
        part[..., 6:9] = p[..., 1:4]
        part[..., 9] = p[..., 0]
        part[..., 10] = ev.masses
        part[..., 11] = ev.lifetime
        part[..., 12] = ev.spin
        part = part[keep]
        _extend(self._f["events"], rows)
        _extend(self._f["particles"], part)
        chan = np.zeros(n, dtype=np.int64) if ev.channel is None else ev.channel
        _extend(self._f["mcint/channel"], chan)
        self._n_particles += int(counts.sum())
        return n

    def _flush(self) -> None:
        f = getattr(self, "_f", None)
        if f is not None and f.id.valid:
            f["mcint"].attrs["n_events"] = self.n_events
            f.flush()

    def _release(self) -> None:
        f = getattr(self, "_f", None)
        if f is not None and f.id.valid:
            f.close()

    def _close_off(self, path: Path, complete: bool) -> None:
        with _h5py().File(path, "r+") as f:
            f["mcint"].attrs["complete"] = complete
            f["mcint"].attrs["n_events"] = int(f["events"].shape[0])


def _extend(ds: Any, rows: np.ndarray) -> None:
    n0 = ds.shape[0]
    ds.resize(n0 + rows.shape[0], axis=0)
    ds[n0:] = rows
