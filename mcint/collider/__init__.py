"""Collider cross sections built from parts: partonic matrix elements (UMAMI libraries or Python
callables), PDFs and running alpha_s, scales, cuts and one phase-space mapping per channel.

* :class:`HadronicProcess`, :class:`Subprocess`, :class:`Flavour`, :func:`mirrored`;
* :func:`scale`, :data:`DYNAMIC_SCALES` -- fixed and MadGraph's dynamical scale choices;
* :class:`ParticleCuts` -- cuts on particle groups (jet, bottom, lepton, photon, missing);
* :class:`ColliderEvents`, :class:`Resonance`, :class:`EventRecord` -- event records with the
  library's colour flow and helicities and the channel's resonances;
* :func:`check_color_flow` -- the rules of an LHE colour flow;
* :func:`read_topologies` -- channels from a topologies JSON file.
"""

from .card import read_topologies
from .color import check_color_flow, color_type, net_color
from .cuts import GROUPS, ParticleCuts, group_of
from .events import BW_CUTOFF, ColliderEvents, Resonance
from .process import EventRecord, Flavour, HadronicProcess, Subprocess, mirrored
from .scales import DYNAMIC_SCALES, check_scale, scale

__all__ = ["BW_CUTOFF", "DYNAMIC_SCALES", "GROUPS", "ColliderEvents", "EventRecord", "Flavour",
           "HadronicProcess", "ParticleCuts", "Resonance", "Subprocess", "check_color_flow",
           "check_scale", "color_type", "group_of", "mirrored", "net_color", "read_topologies", "scale"]
