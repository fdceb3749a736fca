"""Tree-level QCD and W amplitudes written once against the array API.

Berends-Giele recursion of colour-ordered off-shell currents (spinor-helicity wavefunctions,
complex arrays batched over events and helicities), full-colour sums in the DDM (gluons) or
quark-line (``(T^a1...T^an)_ij``) basis with a colour matrix computed once per process, and
helicity sums over the configurations that can be non-zero; two quark lines (one gluon
exchanged) in a two-element colour basis. :class:`HadronCollision` is the hadron-collider
multi-channel integrand of a process (PDFs, cuts, one channel per diagram, beam-mirror groups);
:func:`colour_flows` picks leading-colour flows for event files. Runs on numpy, numba, torch (with
autograd), cupy and array-api-strict. See ``docs/amplitudes.md``.

>>> import numpy as np
>>> proc = Process("g g > g g", alpha_s=0.118)
>>> p = np.array([[[50, 0, 0, 50], [50, 0, 0, -50], [50, 50, 0, 0], [50, -50, 0, 0]]], float)
>>> # 90 degrees: 9/2 (3 - tu/s^2 - su/t^2 - st/u^2) = 9/2 (3 - 1/4 + 2 + 2)
>>> round(float(proc.matrix_element(p)[0] / (4 * np.pi * 0.118) ** 2), 10)
30.375
"""

from .channels import PartonicProcess, UnmappableDiagram, symmetry_groups, to_topology
from .colourflow import colour_flows
from .couplings import EWParameters
from .diagrams import Diagram, Line
from .hadronic import WJETS_CUTS, HadronCollision
from .particles import PARTICLES, parse_process
from .process import Process

__all__ = ["Process", "EWParameters", "Diagram", "Line", "PARTICLES", "parse_process",
           "PartonicProcess", "UnmappableDiagram", "to_topology", "symmetry_groups",
           "HadronCollision", "WJETS_CUTS", "colour_flows"]
