"""torch backend (CPU and CUDA). Training differentiates mcint's array-API code through it.

Its kernels serve torch tensors whatever backend is current (:mod:`mcint.backends.dispatch`):
on CPU each rational-quadratic spline runs as one fused autograd node (:mod:`.fused`, numba
forward and backward), and the MLP layers and channel weights as native torch ops
(:mod:`.mlp`, any device). ``MCINT_FUSED=0`` turns them all off."""

from __future__ import annotations

from typing import Any

import numpy as np

from mcint.backends import Backend, BackendUnavailable
from mcint.backends.dispatch import declare
from mcint.backends.rng import NumpyStream


def kernel_table() -> dict:
    """The torch kernels, by ``@fusable`` name (all differentiable: autograd nodes)."""
    from . import fused, mlp

    return {
        "rq-spline": declare(fused.rq_spline, dtypes=("float32", "float64"), grad=True),
        "mlp": declare(mlp.mlp_layers, grad=True),
        "stacked-mlp": declare(mlp.stacked_mlp_layers, grad=True),
        "channel-log-weights": declare(mlp.normalized_log_weights, grad=True),
    }


class TorchBackend(Backend):
    name = "torch"
    numpy_native = False

    def __init__(self, device: str = "cpu") -> None:
        super().__init__()
        import array_api_compat.torch as xp
        import torch

        self.torch = torch
        self.xp = xp
        self.device = torch.device(device)
        if self.device.type == "cuda":
            self.name = "torch-cuda"
            self.gpu = True
        self.kernels = kernel_table()

    def _is_native(self, a: Any) -> bool:
        return isinstance(a, self.torch.Tensor)

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        torch = self.torch
        dt = None if dtype is None else self.dtype(dtype)
        if isinstance(a, torch.Tensor):
            return a.to(device=self.device, dtype=dt)
        if not isinstance(a, np.ndarray):
            a = self.to_numpy(a) if hasattr(a, "__dlpack__") else np.asarray(a)
        return torch.as_tensor(a, dtype=dt, device=self.device)

    def to_numpy(self, a: Any) -> np.ndarray:
        if isinstance(a, self.torch.Tensor):
            return a.detach().cpu().numpy()
        return super().to_numpy(a)

    def rng(self, seed: int | None = None):
        if self.device.type == "cuda":
            return TorchStream(seed, self)
        return NumpyStream(seed, self)

    def bincount(self, idx: Any, weights: Any = None, minlength: int = 0) -> Any:
        if weights is not None and self.device.type == "cuda":
            return self.sorted_bincount(idx, weights, minlength)  # CUDA's adds atomically
        return self.torch.bincount(idx.to(self.torch.int64), weights=weights, minlength=minlength)

    def logsumexp(self, a: Any, axis: int = -1) -> Any:
        return self.torch.logsumexp(a, dim=axis)

    def grad_mode(self) -> bool:
        return self.torch.is_grad_enabled()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)


class TorchStream:
    """torch.Generator on the device: no host round trip for GPU sampling."""

    def __init__(self, seed: int | None, backend: TorchBackend) -> None:
        torch = backend.torch
        self.backend = backend
        self.seed = seed
        self._gen = torch.Generator(device=backend.device)
        if seed is None:
            self._gen.seed()
        else:
            self._gen.manual_seed(int(seed))

    def _dt(self, dtype: Any) -> Any:
        return self.backend.dtype(dtype if dtype is not None else "float64")

    def uniform(self, shape, dtype: Any = "float64"):
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return self.backend.torch.rand(shape, generator=self._gen, dtype=self._dt(dtype),
                                       device=self.backend.device)

    def normal(self, shape, dtype: Any = "float64"):
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return self.backend.torch.randn(shape, generator=self._gen, dtype=self._dt(dtype),
                                        device=self.backend.device)

    def integers(self, low: int, high: int, shape):
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return self.backend.torch.randint(low, high, shape, generator=self._gen,
                                          device=self.backend.device)

    def categorical(self, probs: Any, n: int):
        torch = self.backend.torch
        p = self.backend.asarray(probs, dtype="float64")
        return torch.multinomial(p, n, replacement=True, generator=self._gen)

    def spawn(self) -> TorchStream:
        seed = int(self.integers(0, 2**62, 1)[0])
        return TorchStream(seed, self.backend)

    @property
    def state(self) -> dict:
        return {"kind": "torch", "state": self._gen.get_state().cpu().numpy().tolist()}

    @state.setter
    def state(self, value: dict) -> None:
        if value.get("kind") != "torch":
            raise ValueError(f"cannot restore a {value.get('kind')!r} RNG state into a torch stream")
        t = self.backend.torch.tensor(value["state"], dtype=self.backend.torch.uint8)
        self._gen.set_state(t)


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise BackendUnavailable("torch is not installed (pip install torch)") from exc
    return torch


def plugin() -> Backend:
    _import_torch()
    return TorchBackend("cpu")


def plugin_cuda() -> Backend:
    torch = _import_torch()
    if not torch.cuda.is_available():
        raise BackendUnavailable("torch is installed but no CUDA device is available")
    return TorchBackend("cuda")
