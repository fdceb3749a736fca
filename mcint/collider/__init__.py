"""Collider cross sections built from parts: partonic matrix elements (UMAMI libraries or Python
callables), PDFs and running alpha_s, scales, cuts and one phase-space mapping per channel.

* :class:`HadronicProcess`, :class:`Subprocess`, :class:`Flavour`, :func:`mirrored`;
* :func:`scale`, :data:`DYNAMIC_SCALES` -- fixed and MadGraph's dynamical scale choices;
* :class:`ParticleCuts` -- cuts on particle groups (jet, bottom, lepton, photon, missing).
"""

from .cuts import GROUPS, ParticleCuts, group_of
from .process import Flavour, HadronicProcess, Subprocess, mirrored
from .scales import DYNAMIC_SCALES, check_scale, scale

__all__ = ["DYNAMIC_SCALES", "GROUPS", "Flavour", "HadronicProcess", "ParticleCuts",
           "Subprocess", "check_scale", "group_of", "mirrored", "scale"]
