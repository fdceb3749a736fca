"""Processes with analytic leading-order matrix elements, ready to integrate.

* :class:`EEMuMu` -- ``e+ e- -> mu+ mu-`` via gamma/Z, single channel on ``[0, 1]^2``, exact;
* :class:`DrellYan` -- ``p p -> l+ l-`` via gamma/Z/Z', a 3-channel
  :class:`mcint.channels.MultiChannelIntegrand` on ``[0, 1]^4`` (quadrature reference);
* :class:`EEQQG` -- ``e+ e- -> q qbar g`` with a y-cut, single channel on ``[0, 1]^5``, exact.

All values are cross-section densities in pb; the callables are array-API code (every backend).
"""

from .drellyan import DrellYan
from .eemumu import EEMuMu
from .eeqqg import EEQQG
from .ew import EWParams

__all__ = ["EEMuMu", "DrellYan", "EEQQG", "EWParams"]
