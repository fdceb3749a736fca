"""Les Houches Event files (LHE 3.0, hep-ph/0609017), readable by pylhe, MadGraph tools, Pythia.

Layout written::

    <LesHouchesEvents version="3.0">
    <header>
    <mcint version="..."><![CDATA[ {run metadata as JSON} ]]></mcint>
    </header>
    <init>
     IDBMUP1 IDBMUP2 EBMUP1 EBMUP2 PDFGUP1 PDFGUP2 PDFSUP1 PDFSUP2 IDWTUP NPRUP
     XSECUP XERRUP XMAXUP LPRUP
    <generator name="mcint" version="...">...</generator>
    </init>
    <event>
     NUP IDPRUP XWGTUP SCALUP AQEDUP AQCDUP
     IDUP ISTUP MOTHUP1 MOTHUP2 ICOLUP1 ICOLUP2 PUP1 PUP2 PUP3 PUP4 PUP5 VTIMUP SPINUP
     ...                                 (one line per particle, all 13 fields)
    #pdf ID1 ID2 X1 X2 SCALE             (optional line: partons, momentum fractions, PDF scale)
    #mcint channel=C                     (optional line, multi-channel runs)
    </event>
    ...
    </LesHouchesEvents>

``PUP1..5`` are ``px py pz E m`` in GeV; ``SPINUP`` is the helicity (9: unknown). An event
writes only the particles it holds (``ParticleEvents.present``: e.g. an intermediate resonance,
status 2, of the event's channel). ``RunInfo.banner`` blocks (run card, param card as
``slha``) follow ``<mcint>`` in the header. A name ending in ``.gz`` writes gzip (``.lhe.gz``). A
file published by a checkpoint or by an interrupted
run is complete XML and carries the comment ``<!-- mcint: incomplete ... -->`` before the
closing tag.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
from pathlib import Path
from typing import Any

from ._writer import EventWriter
from .particles import ParticleEvents, RunInfo

_EVENT_HEAD = " {:d} {:d} {:+.10e} {:.10e} {:.10e} {:.10e}\n"
_PARTICLE = (" {:d} {:d} {:d} {:d} {:d} {:d} {:+.10e} {:+.10e} {:+.10e} {:.10e} {:.10e}"
             " {:.4e} {:.4e}\n")
CLOSING = "</LesHouchesEvents>\n"


def _version() -> str:
    from .. import __version__

    return __version__


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


_TAG = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def header_xml(info: RunInfo) -> str:
    """The ``<header>`` block: mcint's version and the run metadata as JSON, then the banner
    blocks of :attr:`RunInfo.banner` (e.g. ``MGRunCard`` with the run card as read, ``slha``
    with the param card, which Pythia reads from there), each as CDATA."""
    meta = json.dumps(info.meta or {}, indent=1, sort_keys=True, default=str)
    parts = [f"<header>\n<mcint version=\"{_version()}\">{_cdata(meta)}</mcint>\n"]
    for tag, text in (info.banner or {}).items():
        if not _TAG.match(tag):
            raise ValueError(f"banner block name {tag!r} is not a valid XML tag")
        parts.append(f"<{tag}>\n{_cdata(str(text))}\n</{tag}>\n")
    parts.append("</header>\n")
    return "".join(parts)


def init_xml(info: RunInfo) -> str:
    """The ``<init>`` block for one process."""
    (ba, bb), (ea, eb) = info.beams, info.energies
    (ga, gb), (sa, sb) = info.pdf_groups, info.pdf_sets
    return ("<init>\n"
            f" {int(ba):d} {int(bb):d} {float(ea):.10e} {float(eb):.10e} {int(ga):d} {int(gb):d}"
            f" {int(sa):d} {int(sb):d} {int(info.weighting):d} 1\n"
            f" {info.xsec:.10e} {info.xerr:.10e} {float(info.xmax):.10e} {int(info.process_id):d}\n"
            f"<generator name=\"mcint\" version=\"{_version()}\">mcint Monte Carlo integration"
            "</generator>\n"
            "</init>\n")


def format_events(ev: ParticleEvents) -> str:
    """The ``<event>`` blocks of a batch, as one string (only the columns each event holds,
    :meth:`ParticleEvents.layout`)."""
    k = ev.n_particles
    p = ev.momenta
    head = zip(ev.process_id.tolist(), ev.weight.tolist(), ev.scale.tolist(), ev.aqed.tolist(),
               ev.aqcd.tolist())
    pdg, status = ev.pdg.tolist(), ev.status.tolist()
    keep, moth = ev.layout()
    keep, mothers = keep.tolist(), moth.tolist()
    col = ev.colors.tolist()
    # LHE's PUP order is (px, py, pz, E)
    mom = p[..., [1, 2, 3, 0]].tolist()
    mass = ev.masses.tolist()
    chan = None if ev.channel is None else ev.channel.tolist()
    pdf = None if ev.pdf is None else ev.pdf.tolist()
    spin, life = ev.spin.tolist(), float(ev.lifetime)
    out: list[str] = []
    for i, (pid, w, q, aqed, aqcd) in enumerate(head):
        out.append("<event>\n")
        out.append(_EVENT_HEAD.format(sum(keep[i]), pid, w, q, aqed, aqcd))
        for j in range(k):
            if not keep[i][j]:
                continue
            px, py, pz, e = mom[i][j]
            out.append(_PARTICLE.format(pdg[i][j], status[i][j], mothers[i][j][0],
                                        mothers[i][j][1], col[i][j][0], col[i][j][1], px, py, pz,
                                        e, mass[i][j], life, spin[i][j]))
        if pdf is not None:
            a, b, x1, x2, q = pdf[i]
            out.append(f"#pdf {int(a):d} {int(b):d} {x1:.10e} {x2:.10e} {q:.10e}\n")
        if chan is not None:
            out.append(f"#mcint channel={chan[i]:d}\n")
        out.append("</event>\n")
    return "".join(out)


class LHEWriter(EventWriter):
    """Stream events into a Les Houches Event file (see the module docstring).

    >>> info = RunInfo(xsec=1.2, xerr=0.01, beams=(2212, 2212), energies=(6500., 6500.))
    >>> with LHEWriter("events.lhe", info) as w:    # doctest: +SKIP
    ...     w.write(ParticleEvents(momenta, pdg, status, weight))
    """

    format = "lhe"

    def __init__(self, path: str | os.PathLike[str], info: RunInfo, *,
                 checkpoint_every: float | None = 60.0) -> None:
        super().__init__(path, checkpoint_every=checkpoint_every)
        self.info = info
        #: ``.lhe.gz``: gzip members, one per checkpoint (concatenated members are one stream)
        self.gzip = str(path).lower().endswith(".gz")
        try:
            self._raw = open(self._stream.tmp, "wb")
            self._open_member()
            self._fh.write('<LesHouchesEvents version="3.0">\n')
            self._fh.write(header_xml(info))
            self._fh.write(init_xml(info))
        except BaseException:
            self._release()
            self._stream.discard()
            raise

    def _open_member(self) -> None:
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="wb") if self.gzip else None
        self._fh = io.TextIOWrapper(self._gz if self.gzip else self._raw, encoding="utf-8")

    def _append(self, events: Any) -> int:
        if not isinstance(events, ParticleEvents):
            raise TypeError(f"LHEWriter.write takes ParticleEvents, got {type(events).__name__}")
        self._fh.write(format_events(events))
        return len(events)

    def _flush(self) -> None:
        if self._raw.closed:
            return
        self._fh.flush()
        if self.gzip:
            # a snapshot copy must hold whole gzip members: end this one, start the next
            self._fh.detach()
            self._gz.close()
            self._raw.flush()
            self._open_member()

    def _release(self) -> None:
        raw = getattr(self, "_raw", None)
        if raw is None or raw.closed:
            return
        fh = getattr(self, "_fh", None)
        if fh is not None:
            fh.flush()
            fh.detach()
        if getattr(self, "_gz", None) is not None:
            self._gz.close()
        raw.close()

    def _close_off(self, path: Path, complete: bool) -> None:
        text = ""
        if not complete:
            text += (f"<!-- mcint: incomplete file, {self.n_events} events written so far"
                     " (checkpoint or interrupted run) -->\n")
        text += CLOSING
        if self.gzip:
            with gzip.open(path, "ab") as fh:
                fh.write(text.encode("utf-8"))
        else:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(text)
