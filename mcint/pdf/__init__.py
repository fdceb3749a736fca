"""Parton distribution functions: an LHAPDF ``lhagrid1`` reader and a toy analytic PDF.

Both expose ``xfxQ2(pid, x, q2) -> x f(x, Q^2)`` on arrays of any backend (PDG ids: 1..6
quarks, negative for antiquarks, 21 gluon). :class:`ToyPDF` is a **toy** for examples and tests,
not a fit to data.
"""

from .lhagrid import LHAGrid, find_set
from .toy import ToyPDF

__all__ = ["LHAGrid", "ToyPDF", "find_set"]
