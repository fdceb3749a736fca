"""Bijections on batches of points, written once against the array API.

Every transform maps an ``(n, d)`` batch and returns the log-determinant of its Jacobian::

    y, log_det = t.forward(x)    # log_det = log|det dy/dx|, shape (n,)
    x, log_det = t.inverse(y)    # log_det = log|det dx/dy| = -(forward log_det at x)

The array namespace comes from the inputs (``array_namespace(x)``), never from a global, so the
same object runs on numpy, torch (with autograd), cupy or array-api-strict. Parameters are plain
arrays held in attributes named by ``_array_attrs``; :meth:`Transform.to` converts them all to
another backend/dtype, and :meth:`Transform.arrays` flattens them for export.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from array_api_compat import array_namespace

from ..backends import Backend, get_backend


def namespace(*arrays: Any) -> Any:
    """The array-API namespace of ``arrays`` (a thin alias kept for one import site)."""
    return array_namespace(*arrays)


def check_batch(x: Any, dims: int | None, what: str = "x") -> Any:
    """Validate an ``(n, d)`` floating batch; returns its namespace."""
    xp = array_namespace(x)
    if getattr(x, "ndim", None) != 2:
        raise ValueError(f"{what} must be a 2-d (n, dims) batch, got shape {tuple(x.shape)}")
    if dims is not None and x.shape[1] != dims:
        raise ValueError(f"{what} has {x.shape[1]} columns but the transform has dims={dims}")
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{what} must be float32 or float64, got {x.dtype}")
    return xp


class Transform:
    """Base class of bijections ``R^d -> R^d`` on ``(n, d)`` batches."""

    #: number of dimensions, or ``None`` if any
    dims: int | None = None
    #: names of attributes holding parameter arrays
    _array_attrs: tuple[str, ...] = ()
    #: names of attributes holding child transforms (single or sequences)
    _children: tuple[str, ...] = ()

    def forward(self, x: Any) -> tuple[Any, Any]:
        """Map ``x -> y`` and return ``(y, log|det dy/dx|)``."""
        raise NotImplementedError

    def inverse(self, y: Any) -> tuple[Any, Any]:
        """Map ``y -> x`` and return ``(x, log|det dx/dy|)``."""
        raise NotImplementedError

    def __call__(self, x: Any) -> Any:
        return self.forward(x)[0]

    @property
    def inv(self) -> Transform:
        """The inverse bijection."""
        return Inverse(self)

    def __matmul__(self, other: Transform) -> Compose:
        """``a @ b`` applies ``b`` first, then ``a`` (function composition)."""
        return Compose([other, self])

    # -- parameters ------------------------------------------------------------------------
    def _child_items(self) -> Iterator[tuple[str, Transform]]:
        for attr in self._children:
            val = getattr(self, attr)
            if isinstance(val, Transform):
                yield attr, val
            elif isinstance(val, Sequence):
                for i, t in enumerate(val):
                    yield f"{attr}.{i}", t

    def arrays(self, prefix: str = "") -> dict[str, Any]:
        """All parameter arrays of this transform and its children, by dotted name."""
        out = {f"{prefix}{a}": getattr(self, a) for a in self._array_attrs}
        for name, child in self._child_items():
            out.update(child.arrays(f"{prefix}{name}."))
        return out

    def map_arrays(self, fn: Any) -> Transform:
        """A shallow copy with ``fn`` applied to every parameter array (recursively)."""
        new = copy.copy(self)
        for a in self._array_attrs:
            setattr(new, a, fn(getattr(self, a)))
        for attr in self._children:
            val = getattr(self, attr)
            if isinstance(val, Transform):
                setattr(new, attr, val.map_arrays(fn))
            elif isinstance(val, Sequence):
                setattr(new, attr, type(val)(t.map_arrays(fn) for t in val))
        return new

    def to(self, backend: str | Backend | None = None, dtype: Any = None) -> Transform:
        """A copy whose parameters live on ``backend`` (and have ``dtype``, if given)."""
        be = get_backend(backend)

        def conv(a: Any) -> Any:
            if a is None:
                return None
            xp = array_namespace(a)
            is_float = xp.isdtype(a.dtype, "real floating")
            return be.asarray(a, dtype=dtype if (dtype is not None and is_float) else None)

        return self.map_arrays(conv)


class Inverse(Transform):
    """The inverse of a transform (forward and inverse swapped)."""

    _children = ("base",)

    def __init__(self, base: Transform) -> None:
        self.base = base
        self.dims = base.dims

    def forward(self, x: Any) -> tuple[Any, Any]:
        return self.base.inverse(x)

    def inverse(self, y: Any) -> tuple[Any, Any]:
        return self.base.forward(y)

    @property
    def inv(self) -> Transform:
        return self.base

    def __repr__(self) -> str:
        return f"Inverse({self.base!r})"


class Compose(Transform):
    """Apply transforms in order: ``Compose([a, b])`` maps ``x -> b(a(x))``."""

    _children = ("transforms",)

    def __init__(self, transforms: Iterable[Transform]) -> None:
        ts: list[Transform] = []
        for t in transforms:
            if not isinstance(t, Transform):
                raise TypeError(f"Compose takes Transforms, got {type(t).__name__}")
            ts.extend(t.transforms if isinstance(t, Compose) else [t])
        if not ts:
            raise ValueError("Compose needs at least one transform")
        dims = {t.dims for t in ts if t.dims is not None}
        if len(dims) > 1:
            raise ValueError(f"cannot compose transforms of different dims {sorted(dims)}")
        self.transforms = ts
        self.dims = dims.pop() if dims else None

    def forward(self, x: Any) -> tuple[Any, Any]:
        log_det = 0
        for t in self.transforms:
            x, ld = t.forward(x)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, y: Any) -> tuple[Any, Any]:
        log_det = 0
        for t in reversed(self.transforms):
            y, ld = t.inverse(y)
            log_det = log_det + ld
        return y, log_det

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"
