"""Normalizing flows on the unit hypercube, written once against the array API.

``Flow`` (coupling blocks with rational-quadratic spline or affine transforms, MadNIS' default
architecture), its pieces (:mod:`.couplings`, :mod:`.splines`, :mod:`.masks`) and the plain MLP of
:mod:`.mlp` reused by other conditioners.

For the integrator::

    flow = Flow(dims, condition_dims=n_channels)          # multi-channel: one-hot condition
    tflow = flow.to("torch")                                # train: autograd through the same code
    opt = torch.optim.Adam(tflow.torch_parameters(), lr)    # leaf tensors, requires_grad set
    x, log_g = tflow.sample(n, rng=stream, condition=one_hot(channel, n_channels))
    log_g = tflow.log_prob(x, condition=...)                # density direction, differentiable
    flow = tflow.to("numba")                                # export: plain arrays, fused kernels
    flow.init_with_grid(vegas_map.grid)                     # start from a VEGAS grid (in place)
    flow.save("flow.npz"); Flow.load("flow.npz", backend="numpy")   # no torch, no pickle
"""

from .couplings import AffineCoupling, Coupling, RQSCoupling
from .flow import Flow, one_hot
from .masks import make_masks
from .mlp import apply_mlp, init_mlp
from .splines import rq_spline

__all__ = ["Flow", "Coupling", "RQSCoupling", "AffineCoupling", "make_masks", "apply_mlp",
           "init_mlp", "rq_spline", "one_hot"]
