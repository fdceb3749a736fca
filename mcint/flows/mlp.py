"""A plain multilayer perceptron: parameters are a list of ``(W, b)`` arrays, maths is array-API.

The same parameters run on every backend; during training they are torch tensors with
``requires_grad`` and torch autograd differentiates :func:`apply_mlp` directly::

    params = init_mlp([4, 32, 32, 10], seed=1)        # numpy arrays, last layer zero
    y = apply_mlp(params, x, activation="relu")        # x: (n, 4) array of any backend

``W`` has shape ``(fan_in, fan_out)`` (so a layer is ``x @ W + b``, no transpose), ``b`` has shape
``(fan_out,)``. Used by the flow conditioners and by the channel-weight network of the neural
integrator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ..backends import fusable

__all__ = ["init_mlp", "apply_mlp", "mlp_layers", "ACTIVATIONS", "mlp_sizes"]


def _relu(xp: Any, x: Any) -> Any:
    # exact (x + x = 2x, then halved), and its backward is much cheaper on torch than that of
    # maximum(x, 0.0) (which also differentiates the scalar it promoted to a tensor)
    return (x + xp.abs(x)) * 0.5


def _leaky_relu(xp: Any, x: Any) -> Any:
    return xp.where(x > 0, x, 0.01 * x)


def _tanh(xp: Any, x: Any) -> Any:
    return xp.tanh(x)


def _sigmoid(xp: Any, x: Any) -> Any:
    return 1.0 / (1.0 + xp.exp(-x))


def _silu(xp: Any, x: Any) -> Any:
    return x / (1.0 + xp.exp(-x))


def _gelu(xp: Any, x: Any) -> Any:
    # tanh approximation (the standard has no erf); torch's gelu(approximate="tanh")
    c = 0.7978845608028654  # sqrt(2/pi)
    return 0.5 * x * (1.0 + xp.tanh(c * (x + 0.044715 * x * x * x)))


def _elu(xp: Any, x: Any) -> Any:
    return xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0.0)))


def _softplus(xp: Any, x: Any) -> Any:
    return xp.logaddexp(x, xp.zeros_like(x))


#: activation name -> ``fn(xp, x)``
ACTIVATIONS: dict[str, Callable[[Any, Any], Any]] = {
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "tanh": _tanh,
    "sigmoid": _sigmoid,
    "silu": _silu,
    "gelu": _gelu,
    "elu": _elu,
    "softplus": _softplus,
}


def _activation(name: str) -> Callable[[Any, Any], Any]:
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}"
        ) from None


def mlp_sizes(n_in: int, hidden: Sequence[int], n_out: int) -> list[int]:
    """Layer sizes ``[n_in, *hidden, n_out]`` after checking they are positive integers."""
    sizes = [n_in, *hidden, n_out]
    for s in sizes:
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 1:
            raise ValueError(f"MLP layer sizes must be positive integers, got {sizes}")
    return [int(s) for s in sizes]


def init_mlp(sizes: Sequence[int], seed: int | np.random.Generator | None = 0, *,
             zero_last: bool = True, dtype: str = "float64") -> list[tuple[np.ndarray, np.ndarray]]:
    """Initial parameters of an MLP with layer sizes ``sizes = [n_in, h1, ..., n_out]``.

    Weights and biases are drawn like torch's ``nn.Linear`` default (uniform in
    ``+-1/sqrt(fan_in)``). With ``zero_last`` the last layer is zero, so the network outputs zeros
    at initialisation: a flow whose couplings start as the identity (as in MadNIS).
    Returns numpy arrays; move them with ``backend.asarray``.
    """
    if len(sizes) < 2:
        raise ValueError(f"an MLP needs at least input and output sizes, got {list(sizes)}")
    sizes = mlp_sizes(sizes[0], list(sizes[1:-1]), sizes[-1])
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    params = []
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if zero_last and k == len(sizes) - 2:
            w = np.zeros((fan_in, fan_out))
            b = np.zeros(fan_out)
        else:
            bound = 1.0 / np.sqrt(fan_in)
            w = rng.uniform(-bound, bound, size=(fan_in, fan_out))
            b = rng.uniform(-bound, bound, size=fan_out)
        params.append((w.astype(dtype), b.astype(dtype)))
    return params


def apply_mlp(params: Sequence[tuple[Any, Any]], x: Any, activation: str = "relu") -> Any:
    """Evaluate the MLP on a batch ``x`` of shape ``(n, n_in)``; returns ``(n, n_out)``.

    The activation (``relu``, ``leaky_relu``, ``tanh``, ``sigmoid``, ``silu``, ``gelu`` (tanh
    approximation), ``elu``, ``softplus``) acts between layers, not after the last one. The
    parameters must be arrays of ``x``'s namespace and dtype.
    """
    _activation(activation)
    if x.ndim != 2 or x.shape[1] != params[0][0].shape[0]:
        raise ValueError(f"MLP input must have shape (n, {params[0][0].shape[0]}), "
                         f"got {tuple(x.shape)}")
    return mlp_layers(x, tuple(params), activation)


@fusable("mlp")
def mlp_layers(x: Any, params: Sequence[tuple[Any, Any]], activation: str) -> Any:
    """The layers of :func:`apply_mlp` after its checks (a backend may fuse them: torch runs
    one ``addmm`` node per layer and native activations, about half the autograd nodes)."""
    act = ACTIVATIONS[activation]
    xp = array_namespace(x, params[0][0])
    last = len(params) - 1
    for k, (w, b) in enumerate(params):
        x = x @ w + b
        if k != last:
            x = act(xp, x)
    return x
