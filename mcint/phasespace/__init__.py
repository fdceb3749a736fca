"""Collider phase space: invertible, differentiable maps from the unit hypercube to events.

Building blocks (array-API code: numpy, numba, torch with autograd, cupy, strict):

* :mod:`.kinematics` -- four-vectors, boosts, rotations, pT/eta/Delta R;
* :mod:`.invariants` -- invariant-mass samplers (flat, Breit–Wigner, ``1/s^nu``);
* :mod:`.luminosity` -- ``(x1, x2) <-> (tau, y)`` (flat, ``1/s``, resonant);
* :mod:`.twobody`, :mod:`.tchannel` -- two-body decays and the 2 -> 2 t-channel block;
* :mod:`.rambo` -- RAMBO on diet (massless: flat weight; massive);
* :mod:`.threebody` -- three-body decays (one invariant, two two-body decays);
* :mod:`.twotothree` -- the 2 -> 3 block in the invariants ``(t, s~)``;
* :mod:`.cutranges` -- invariant ranges narrowed to mass cuts;
* :mod:`.chili` -- Chili: hadron-collider phase space from pT, y, phi (native pT/y cuts);
* :mod:`.topology`, :mod:`.chains` -- channels from diagrams (s-channel chains, t-channel lines);
* :mod:`.prior` -- MadGraph channel-weight prior; :mod:`.cuts` -- cuts as masks.

Conventions (weights include the ``(2 pi)^(4-3n)`` factors) are in :mod:`.base`.
"""

from .base import FinalStateMapping, PhaseSpace
from .chains import DiagramMapping
from .chili import Chili
from .cutranges import Narrowed, NarrowedPropagator, mass_window, narrow_luminosity
from .cuts import Cuts, DeltaRMin, EtaMax, MassRange, PtMin, efficiency
from .invariants import BreitWigner, InvariantMap, PowerLaw, Uniform, propagator_sampler
from .luminosity import Luminosity
from .prior import channel_prior, log_propagator_weight
from .rambo import RamboOnDiet, massless_volume
from .threebody import ThreeBodyDecay, three_body_decay, three_body_decay_inverse
from .topology import Decay, Diagram, Propagator, TChain
from .twotothree import TwoToThree, two_to_three, two_to_three_inverse

__all__ = [
    "PhaseSpace", "FinalStateMapping", "DiagramMapping", "RamboOnDiet", "massless_volume",
    "Luminosity", "Uniform", "BreitWigner", "PowerLaw", "InvariantMap", "propagator_sampler",
    "Diagram", "Decay", "TChain", "Propagator", "channel_prior", "log_propagator_weight",
    "Cuts", "PtMin", "EtaMax", "DeltaRMin", "MassRange", "efficiency",
    "ThreeBodyDecay", "three_body_decay", "three_body_decay_inverse",
    "Narrowed", "NarrowedPropagator", "narrow_luminosity", "mass_window", "Chili",
    "TwoToThree", "two_to_three", "two_to_three_inverse",
]
