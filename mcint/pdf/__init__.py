"""Parton distribution functions: LHAPDF sets (``.info`` + ``lhagrid1`` members, running
alpha_s) and a toy analytic PDF.

Both expose ``xfxQ2(pid, x, q2) -> x f(x, Q^2)`` on arrays of any backend (PDG ids: 1..6
quarks, negative for antiquarks, 21 gluon). :class:`ToyPDF` is a **toy** for examples and tests,
not a fit to data.
"""

from .alphas import AlphaSGrid, AlphaSRunning
from .lhagrid import LHAGrid, find_set
from .sets import PDFSet, PDFSetError
from .toy import ToyPDF

__all__ = ["AlphaSGrid", "AlphaSRunning", "LHAGrid", "PDFSet", "PDFSetError", "ToyPDF",
           "find_set"]
