"""The normalizing flow on the unit hypercube: a stack of coupling blocks, written once.

    flow = Flow(4)                                 # MadNIS' default architecture, numpy arrays
    x, log_prob = flow.sample(10_000, rng=1)       # x in [0, 1]^4, log of its density
    flow.log_prob(x)                               # the same numbers, from x

Training runs the same code on torch tensors::

    tflow = flow.to("torch")
    opt = torch.optim.Adam(tflow.torch_parameters(), lr=1e-3)
    loss = -tflow.log_prob(x_train).mean(); loss.backward(); opt.step()
    tflow.save("flow.npz"); Flow.load("flow.npz", backend="numba")   # no torch needed to load

The latent distribution is uniform on [0, 1]^d, so ``log_prob(x) = log|det dz/dx|``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device

from ..backends import Backend, get_backend
from ..transforms import Transform
from .couplings import AffineCoupling, Coupling, RQSCoupling
from .masks import make_masks
from .splines import DEFAULT_MIN, reduce_bins, unnormalise

__all__ = ["Flow", "one_hot", "FORMAT_KIND"]

#: ``kind`` of saved flow files (see :mod:`mcint.serialize`)
FORMAT_KIND = "flow"
COUPLINGS = ("rqs", "affine")


def _default_chunk(backend: Any) -> int | None:
    """Rows per pass: bounded on the CPU (temporaries stay in cache), one pass on a GPU (every
    pass costs dozens of kernel launches; 32k-row chunks made cupy sampling 4x slower)."""
    return None if backend.gpu else 1 << 15


def one_hot(index: Any, num: int, dtype: Any = None) -> Any:
    """``(n, num)`` one-hot rows for integer ``index`` (n,): the condition of a multi-channel flow."""
    xp = array_namespace(index)
    if dtype is None:
        dtype = xp.float64
    ar = xp.arange(num, device=device(index))
    return xp.astype(index[:, None] == ar[None, :], dtype)


class Flow(Transform):
    """Coupling-block normalizing flow from the uniform latent space [0, 1]^d onto [0, 1]^d.

    Args:
        dims: number of dimensions.
        condition_dims: width of the optional ``condition`` array (n, condition_dims) appended to
            every conditioner's input (a one-hot channel index, context); 0 for none.
        bins: spline bins (``coupling="rqs"``).
        layers: number of coupling blocks; default ``2 ceil(log2 dims)`` (MadNIS' default).
        hidden: hidden layer sizes of each conditioner MLP; MadNIS' default is ``(32, 32)``
            (its ``layers=3, units=32``).
        coupling: ``"rqs"`` (rational-quadratic splines) or ``"affine"`` (affine in logit space).
        masks: ``"log"`` (MadNIS' default), ``"exchange"``, ``"random"`` (seeded by ``seed``), or
            a boolean array (layers, dims), ``True`` = conditioning input, ``False`` = transformed.
        activation: conditioner activation (see :data:`mcint.flows.mlp.ACTIVATIONS`).
        dtype: parameter dtype, ``"float64"`` or ``"float32"``; inputs must match it.
        seed: seed of the (hidden-layer) initialisation; last layers start at zero (identity).
        backend: where the parameters live (default: the current backend).
        min_bin_width, min_bin_height, min_bin_derivative: spline regularisation (as MadNIS).
        affine_clamp: soft bound on the log-scale of affine couplings.

    Blocks are stored in the density direction (``couplings[0]`` acts first on data in
    :meth:`inverse`), as in MadNIS, so :meth:`init_with_grid` sets the blocks nearest the data.
    """

    _children = ("couplings",)

    def __init__(self, dims: int, *, condition_dims: int = 0, bins: int = 10,
                 layers: int | None = None, hidden: Sequence[int] = (32, 32),
                 coupling: str = "rqs", masks: Any = "log", activation: str = "relu",
                 dtype: str = "float64", seed: int | None = 0,
                 backend: str | Backend | None = None, min_bin_width: float = DEFAULT_MIN,
                 min_bin_height: float = DEFAULT_MIN, min_bin_derivative: float = DEFAULT_MIN,
                 affine_clamp: float = 2.0) -> None:
        if not isinstance(dims, (int, np.integer)) or isinstance(dims, bool) or dims < 1:
            raise ValueError(f"dims must be a positive integer, got {dims!r}")
        if not isinstance(condition_dims, (int, np.integer)) or condition_dims < 0:
            raise ValueError(f"condition_dims must be a non-negative integer, got "
                             f"{condition_dims!r}")
        if coupling not in COUPLINGS:
            raise ValueError(f"unknown coupling {coupling!r}; use one of {COUPLINGS}")
        if dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
        hidden = tuple(int(h) for h in hidden)
        mask_arr = make_masks(int(dims), masks, layers, seed)
        self.dims = int(dims)
        self.condition_dims = int(condition_dims)
        self.dtype = dtype
        self.config: dict[str, Any] = {
            "dims": self.dims, "condition_dims": self.condition_dims, "bins": int(bins),
            "hidden": list(hidden), "coupling": coupling,
            "masks": mask_arr.astype(int).tolist(),
            "mask_kind": masks if isinstance(masks, str) else "user",
            "activation": activation, "dtype": dtype,
            "min_bin_width": float(min_bin_width), "min_bin_height": float(min_bin_height),
            "min_bin_derivative": float(min_bin_derivative), "affine_clamp": float(affine_clamp),
        }
        rng = np.random.default_rng(seed)
        common = dict(hidden=hidden, condition_dims=self.condition_dims, activation=activation,
                      seed=rng, dtype=dtype)
        blocks: list[Coupling] = []
        for m in mask_arr:
            if coupling == "rqs":
                blocks.append(RQSCoupling(m, bins=bins, min_bin_width=min_bin_width,
                                          min_bin_height=min_bin_height,
                                          min_bin_derivative=min_bin_derivative, **common))
            else:
                blocks.append(AffineCoupling(m, clamp=affine_clamp, **common))
        self.couplings = blocks
        #: free-form JSON-able metadata saved with the flow (e.g. what it was trained on)
        self.meta: dict[str, Any] = {}
        self.backend = get_backend(backend)
        #: rows per pass when evaluating big batches (bounds temporaries; None = one pass)
        self.chunk_size: int | None = _default_chunk(self.backend)
        if self.backend.name != "numpy" or dtype != "float64":
            self._set_arrays({k: self.backend.asarray(v, dtype=dtype)
                              for k, v in self.arrays().items()})

    # -- properties --------------------------------------------------------------------------
    @property
    def masks(self) -> np.ndarray:
        """The ``(layers, dims)`` boolean masks (True = conditioning input)."""
        return np.asarray(self.config["masks"], dtype=bool)

    @property
    def layers(self) -> int:
        return len(self.couplings)

    def __repr__(self) -> str:
        c = self.config
        return (f"Flow(dims={self.dims}, condition_dims={self.condition_dims}, "
                f"coupling={c['coupling']!r}, layers={self.layers}, bins={c['bins']}, "
                f"hidden={tuple(c['hidden'])}, backend={self.backend.name!r}, "
                f"dtype={self.dtype!r})")

    # -- parameters --------------------------------------------------------------------------
    def parameters(self) -> list[Any]:
        """Every parameter array, in a fixed order (see :meth:`arrays` for names)."""
        return list(self.arrays().values())

    def set_arrays(self, arrays: dict[str, Any]) -> None:
        """Replace parameters in place by name (names as in :meth:`arrays`); no checks."""
        self._set_arrays(arrays)

    def _set_arrays(self, arrays: dict[str, Any]) -> None:
        for name, a in arrays.items():
            obj: Any = self
            *path, attr = name.split(".")
            for p in path:
                obj = obj[int(p)] if p.isdigit() else getattr(obj, p)
            setattr(obj, attr, a)

    def to(self, backend: str | Backend | None = None, dtype: Any = None) -> Flow:
        """A copy with parameters on ``backend`` (and ``dtype`` "float64"/"float32", if given)."""
        if dtype is not None and dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
        new = super().to(backend, dtype)
        assert isinstance(new, Flow)
        new.backend = get_backend(backend)
        new.couplings = list(new.couplings)
        if dtype is not None:
            new.dtype = dtype
            new.config = {**self.config, "dtype": dtype}
        if new.backend.gpu or self.backend.gpu:  # a CPU setting means nothing on a GPU
            new.chunk_size = _default_chunk(new.backend)
        return new

    def torch_parameters(self) -> list[Any]:
        """The parameters as leaf torch tensors with ``requires_grad`` set, for an optimiser."""
        params = self.parameters()
        if not all(type(p).__module__.startswith("torch") for p in params):
            raise TypeError(f"the flow's parameters live on backend {self.backend.name!r}; "
                            f"use flow.to('torch') first")
        for p in params:
            if not p.is_leaf:
                raise ValueError("flow parameters are not leaf tensors (results of a computation);"
                                 " re-create them with flow.to('torch')")
            p.requires_grad_(True)
        return params

    def requires_grad_(self, flag: bool = True) -> Flow:
        """Set ``requires_grad`` on every (torch) parameter; returns ``self``."""
        for p in self.torch_parameters():
            p.requires_grad_(flag)
        return self

    # -- validation --------------------------------------------------------------------------
    def _check(self, x: Any, condition: Any, what: str, unit: bool) -> Any:
        if getattr(x, "ndim", None) != 2 or x.shape[1] != self.dims:
            raise ValueError(f"{what} must have shape (n, {self.dims}) for this {self.dims}-d flow,"
                             f" got {tuple(getattr(x, 'shape', ()))}")
        w = self.couplings[0].w0
        try:
            xp = array_namespace(x, w)
        except TypeError:
            raise TypeError(f"{what} is a {type(x).__module__}.{type(x).__name__} but the flow's "
                            f"parameters live on backend {self.backend.name!r}; convert it with "
                            f"flow.backend.asarray(...) or move the flow with flow.to(...)") from None
        if x.dtype != w.dtype:
            raise TypeError(f"{what} has dtype {x.dtype} but the flow's parameters are {w.dtype}; "
                            f"convert the input or use flow.to(dtype=...)")
        lo, hi = (float(xp.min(x)), float(xp.max(x))) if x.shape[0] else (0.0, 1.0)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            bad = np.flatnonzero(~np.all(np.isfinite(self.backend.to_numpy(x)), axis=1))
            raise ValueError(f"{what} contains non-finite values (nan/inf) in {bad.size} row(s), "
                             f"first rows {bad[:5].tolist()}")
        if unit and (lo < 0.0 or hi > 1.0):
            raise ValueError(f"{what} must lie in the unit cube [0, 1]^{self.dims}, got values in "
                             f"[{lo:g}, {hi:g}]")
        if condition is None:
            if self.condition_dims:
                raise ValueError(f"this flow needs a condition array of shape (n, "
                                 f"{self.condition_dims}); got condition=None")
        else:
            if not self.condition_dims:
                raise ValueError("this flow has condition_dims=0 but a condition was given")
            if getattr(condition, "ndim", None) != 2 or tuple(condition.shape) != (
                    x.shape[0], self.condition_dims):
                raise ValueError(f"condition must have shape ({x.shape[0]}, "
                                 f"{self.condition_dims}), got "
                                 f"{tuple(getattr(condition, 'shape', ()))}")
            if condition.dtype != w.dtype:
                raise TypeError(f"condition has dtype {condition.dtype}, the flow {w.dtype}")
            if not bool(xp.all(xp.isfinite(condition))):
                raise ValueError("condition contains non-finite values (nan/inf)")
        return xp

    # -- maps --------------------------------------------------------------------------------
    def _run(self, x: Any, condition: Any, inverse: bool) -> tuple[Any, Any]:
        xp = array_namespace(x)
        n = x.shape[0]
        step = self.chunk_size
        if step is None or n <= step:
            return self._run_blocks(x, condition, inverse)
        ys, lds = [], []
        for i in range(0, n, step):
            j = min(i + step, n)  # array-api-strict rejects slices past the end
            c = None if condition is None else condition[i:j, :]
            y, ld = self._run_blocks(x[i:j, :], c, inverse)
            ys.append(y)
            lds.append(ld)
        return xp.concat(ys, axis=0), xp.concat(lds, axis=0)

    def _run_blocks(self, x: Any, condition: Any, inverse: bool) -> tuple[Any, Any]:
        blocks = self.couplings if inverse else self.couplings[::-1]
        log_det = None
        for b in blocks:
            x, ld = b.inverse(x, condition) if inverse else b.forward(x, condition)
            log_det = ld if log_det is None else log_det + ld
        return x, log_det

    def forward(self, z: Any, condition: Any = None) -> tuple[Any, Any]:
        """Latent ``z`` in [0, 1]^d -> data ``x``; returns ``(x, log|det dx/dz|)``."""
        self._check(z, condition, "z", unit=True)
        return self._run(z, condition, inverse=False)

    def inverse(self, x: Any, condition: Any = None) -> tuple[Any, Any]:
        """Data ``x`` in [0, 1]^d -> latent ``z``; returns ``(z, log|det dz/dx|)``."""
        self._check(x, condition, "x", unit=True)
        return self._run(x, condition, inverse=True)

    def log_prob(self, x: Any, condition: Any = None) -> Any:
        """Log density of the flow at ``x`` (n, d); ``-inf`` outside the unit cube."""
        xp = self._check(x, condition, "x", unit=False)
        inside = xp.all((x >= 0.0) & (x <= 1.0), axis=1)
        _, ld = self._run(xp.clip(x, 0.0, 1.0), condition, inverse=True)
        return xp.where(inside, ld, -float("inf"))

    def prob(self, x: Any, condition: Any = None) -> Any:
        """Density of the flow at ``x``."""
        xp = array_namespace(x)
        return xp.exp(self.log_prob(x, condition))

    def sample(self, n: int, rng: Any = None, condition: Any = None) -> tuple[Any, Any]:
        """Draw ``n`` points: returns ``(x, log_prob)`` on the flow's backend.

        ``rng``: a seed, a stream from ``backend.rng(seed)`` (advanced in place), or ``None``
        for fresh entropy. ``condition``: (n, condition_dims) for a conditional flow.
        """
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        stream = rng if hasattr(rng, "uniform") else self.backend.rng(rng)
        z = stream.uniform((int(n), self.dims), dtype=self.dtype)
        x, ld = self.forward(z, condition)
        return x, -ld

    # -- VEGAS initialisation ----------------------------------------------------------------
    def init_with_grid(self, grid: Any) -> Flow:
        """Make the flow reproduce a VEGAS grid (in place; build optimisers afterwards).

        ``grid``: ``(dims, N + 1)`` bin edges on [0, 1] of an equal-probability map (N >= bins).
        The grid is reduced to ``bins`` spline bins per dimension (:func:`reduce_bins`) and set
        as the constant output (zero last-layer weights, biases = spline parameters) of the first
        two blocks, which must transform complementary sets of dimensions ("log"/"exchange"
        masks); the other blocks are left as they are (identity when freshly built). Needs
        ``coupling="rqs"``.

        Alternative without this method: compose ``vegas_map @ flow`` (a
        :class:`~mcint.transforms.Compose`), keeping the VEGAS map fixed and the flow learning
        the rest.
        """
        c = self.config
        if c["coupling"] != "rqs":
            raise ValueError("init_with_grid needs spline couplings (coupling='rqs')")
        g = np.asarray(self.backend.to_numpy(grid) if not isinstance(grid, np.ndarray) else grid,
                       dtype=np.float64)
        if g.ndim != 2 or g.shape[0] != self.dims:
            raise ValueError(f"grid must have shape ({self.dims}, N + 1), got {g.shape}")
        m = self.masks
        if self.dims > 1 and (len(m) < 2 or np.any(m[0] == m[1])):
            raise ValueError("init_with_grid needs the first two blocks to transform "
                             "complementary dimensions (masks 'log' or 'exchange')")
        w, h, d = reduce_bins(g, c["bins"])
        u = unnormalise(w, h, d, c["min_bin_width"], c["min_bin_height"],
                        c["min_bin_derivative"])
        for b in self.couplings[: 1 if self.dims == 1 else 2]:
            mlp = list(b.mlp)
            wl, bl = mlp[-1]
            new_b = u[b._trafo_idx].reshape(-1)
            mlp[-1] = (self.backend.asarray(np.zeros(tuple(wl.shape)), dtype=self.dtype),
                       self.backend.asarray(new_b, dtype=self.dtype))
            b.set_mlp(mlp)
        return self

    # -- files -------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the flow to ``path`` (``.npz``, or ``.safetensors``) atomically; no pickle.

        The file holds the architecture (``config``), :attr:`meta` and the parameter arrays.
        """
        from .. import serialize

        arrays = {k: self.backend.to_numpy(v) for k, v in self.arrays().items()}
        serialize.save(path, FORMAT_KIND, {"architecture": dict(self.config), "user": self.meta},
                       arrays)

    @classmethod
    def from_config(cls, config: dict[str, Any], backend: str | Backend | None = None) -> Flow:
        """A new flow (fresh parameters) with the architecture ``config`` (as in saved files)."""
        known = {"dims", "condition_dims", "bins", "hidden", "coupling", "masks", "mask_kind",
                 "activation", "dtype", "min_bin_width", "min_bin_height", "min_bin_derivative",
                 "affine_clamp"}
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"unknown flow architecture fields {sorted(unknown)} (a file from a "
                             f"newer mcint?)")
        try:
            cfg = {k: v for k, v in config.items() if k != "mask_kind"}
            masks = np.asarray(cfg.pop("masks"), dtype=bool)
            flow = cls(masks=masks, backend=backend, **cfg)
            flow.config["mask_kind"] = config.get("mask_kind", "user")
            return flow
        except KeyError as exc:
            raise ValueError(f"flow architecture lacks field {exc}") from None

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str | Backend | None = None) -> Flow:
        """Read a flow written by :meth:`save`; works without torch and never runs code."""
        from .. import serialize

        meta, arrays = serialize.load(path, expect_kind=FORMAT_KIND)
        arch = meta.get("architecture")
        if not isinstance(arch, dict):
            raise serialize.ModelFileError(f"{os.fspath(path)}: flow file has no architecture")
        try:
            flow = cls.from_config(arch, backend="numpy")
        except (ValueError, TypeError) as exc:
            raise serialize.ModelFileError(f"{os.fspath(path)}: invalid flow architecture: "
                                           f"{exc}") from None
        expect = {k: (tuple(v.shape), str(v.dtype)) for k, v in flow.arrays().items()}
        serialize.check_arrays(arrays, expect, where=os.fspath(path))
        serialize.check_finite(arrays, os.fspath(path))
        flow._set_arrays(arrays)
        flow.meta = dict(meta.get("user") or {})
        be = get_backend(backend)
        return flow if be.name == "numpy" else flow.to(be)
