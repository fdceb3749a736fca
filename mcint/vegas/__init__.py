"""VEGAS and VEGAS+ (adaptive map + adaptive stratified sampling), written once for every backend.

* :class:`AdaptiveMap` -- the piecewise-linear adaptive map, a :class:`mcint.transforms.Transform`
  on the unit hypercube whose ``grid`` (dims, ninc + 1) other samplers can start from;
* :class:`VEGAS` -- the integrator/sampler (``train``, ``integrate``, ``sample``).
"""

from .integrator import VEGAS
from .map import AdaptiveMap
from .stratify import Stratification, choose_ninc, choose_nstrat

__all__ = ["VEGAS", "AdaptiveMap", "Stratification", "choose_nstrat", "choose_ninc"]
