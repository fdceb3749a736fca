"""Normalizing flows on the unit hypercube, written once against the array API.

``Flow`` (coupling blocks with rational-quadratic spline or affine transforms, MadNIS' default
architecture), its pieces (:mod:`.couplings`, :mod:`.splines`, :mod:`.masks`) and the plain MLP of
:mod:`.mlp` reused by other conditioners.
"""

from .couplings import AffineCoupling, Coupling, RQSCoupling
from .flow import Flow, one_hot
from .masks import make_masks
from .mlp import apply_mlp, init_mlp
from .splines import rq_spline

__all__ = ["Flow", "Coupling", "RQSCoupling", "AffineCoupling", "make_masks", "apply_mlp",
           "init_mlp", "rq_spline", "one_hot"]
