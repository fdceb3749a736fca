"""The built-in multi-jet example ``w2j``: ``p p -> g g -> W+(-> e+ nu_e) d u~`` at 13 TeV.

``mcint run w2j --events 1000 --out out/`` trains the multi-channel sampler (8 diagram
channels in 5 beam-mirror groups) on :class:`~.hadronic.HadronCollision` with the seeds' cuts
(jets pT > 20 GeV, |eta| < 5, Delta R > 0.4), a **toy PDF** (:class:`mcint.pdf.ToyPDF`, not a
fit: the cross section is not a physics prediction), fixed ``mu_F = M_Z`` and ``alpha_s =
0.118``, and writes LHE events with one leading-colour flow each (drawn by its leading-colour
weight, :mod:`.colourflow`), so a shower can read them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..events import ParticleEvents
from ..examples.physics import ProcessEvents
from .colourflow import colour_flows
from .hadronic import WJETS_CUTS, HadronCollision

__all__ = ["ColourFlowEvents", "W2J", "register_examples", "w2j"]

W2J = "g g > e+ ve d u~"
_BANNER = ("process: p p > g g > e+ ve d u~ (W+ -> e+ nu_e, one diagram channel each); 13 TeV; "
           "cuts: jet pT > 20 GeV, |eta| < 5, Delta R(j,j) > 0.4; mu_F = 91.1876 GeV fixed, "
           "alpha_s = 0.118 fixed; PDF: mcint.pdf.ToyPDF -- a TOY, NOT A FIT (LHAPDF id 0)")


def w2j(dims: int | None = None) -> HadronCollision:
    """The example's integrand (see the module docstring)."""
    return HadronCollision(W2J, 13000.0, cuts=WJETS_CUTS)


class ColourFlowEvents(ProcessEvents):
    """:class:`~mcint.examples.physics.ProcessEvents` with a leading-colour flow drawn per
    event (:func:`~.colourflow.colour_flows`); ``process`` is a :class:`HadronCollision`."""

    def to_particles(self, batch: Any, weight: Any, trials: Any = None) -> ParticleEvents:
        mom, pdg, x1, x2, scale = self._events(batch.x)
        colors, _ = colour_flows(self.process.process, mom, self.rng)
        ids = np.broadcast_to(np.asarray(pdg), (len(mom), np.shape(pdg)[-1]))
        pdf = np.column_stack([ids[:, 0], ids[:, 1], x1, x2, scale])
        return ParticleEvents(mom, pdg, self.status, weight, colors=colors, scale=scale,
                              aqed=self.aqed, aqcd=self.aqcd, channel=batch.channels,
                              trials=trials, pdf=pdf)


def _physics(proc: HadronCollision) -> ColourFlowEvents:
    half = proc.sqrt_s / 2
    return ColourFlowEvents(proc, (2212, 2212), (half, half), (-1, -1, 1, 1, 1, 1),
                            channel_arg=0, aqcd=proc.process.alpha_s,
                            aqed=1.0 / 132.2, banner={"mcintProcess": _BANNER})


def register_examples() -> None:
    """Register ``w2j`` with :mod:`mcint.examples` (idempotent)."""
    from .. import examples

    if "w2j" in examples._REGISTRY:
        return
    proc = w2j()
    examples.register(examples.Example(
        "w2j", "p p -> W+(-> e+ nu) d u~ from g g at 13 TeV, 8 diagram channels, TOY PDF, pb",
        proc.dims, lambda d: proc, event_format="lhe", unit="pb",
        defaults={"sampler": "nis", "train_calls": 100_000}, physics=_physics(proc)))
