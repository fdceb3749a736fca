"""Built-in examples: ready-made integrands for ``mcint run NAME`` and the docs.

>>> from mcint import examples
>>> examples.names()                                   # doctest: +SKIP
['camel', 'gauss', 'ring', 'ee-mumu', 'drell-yan']
>>> ex = examples.get("camel")
>>> f = ex.integrand()                                 # a callable on the unit hypercube
>>> round(ex.exact(), 4)
0.9983

Each :class:`Example` knows its dimension, its exact integral (where known), its default
sampler settings and how to turn sampled points into events: toy examples write ``.npz``
(points, weights, channels), physics examples write LHE with four-momenta and PDG ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import toys

__all__ = ["Example", "UnknownExample", "get", "names", "register"]


class UnknownExample(KeyError):
    """No built-in example of that name."""

    def __str__(self) -> str:  # KeyError quotes its message; show it as written
        return str(self.args[0]) if self.args else ""


@dataclass
class Example:
    """A built-in example.

    Attributes
    ----------
    name, description: what ``mcint examples`` lists.
    dims: default dimension; ``scalable`` examples accept other dims.
    make: ``make(dims) -> integrand`` (a callable on the unit cube, or a
        :class:`~mcint.channels.MultiChannelIntegrand`).
    exact_fn: ``exact_fn(dims) -> float`` where the integral is known exactly.
    event_format: ``"npz"`` (points) or ``"lhe"`` (particles).
    defaults: default run options (``train_calls``, ``sampler``, ...).
    physics: for physics examples, an object with ``to_particles(batch, weight)`` and
        ``run_info(xsec, xerr, weighting)`` (see :mod:`mcint.examples.physics`).
    unit: unit of the integral (``"pb"`` for cross sections).
    """

    name: str
    description: str
    dims: int
    make: Callable[[int], Any]
    exact_fn: Callable[[int], float] | None = None
    event_format: str = "npz"
    scalable: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)
    physics: Any = None
    unit: str = ""

    def resolve_dims(self, dims: int | None) -> int:
        """``dims`` if given and allowed, else the default; errors name the example."""
        if dims is None or dims == self.dims:
            return self.dims
        if not self.scalable:
            raise ValueError(f"the example {self.name!r} has a fixed dimension {self.dims}; "
                             f"got dims={dims}")
        if not isinstance(dims, int) or dims < 1:
            raise ValueError(f"dims must be a positive integer, got {dims!r}")
        return dims

    def integrand(self, dims: int | None = None) -> Any:
        """The integrand (in ``dims`` dimensions for scalable examples)."""
        return self.make(self.resolve_dims(dims))

    def exact(self, dims: int | None = None) -> float | None:
        """The exact integral, or ``None`` where it is not known in closed form."""
        if self.exact_fn is None:
            return None
        return float(self.exact_fn(self.resolve_dims(dims)))


_REGISTRY: dict[str, Example] = {}


def register(example: Example) -> Example:
    """Add an example to the registry (replacing one of the same name)."""
    _REGISTRY[example.name] = example
    return example


register(Example(
    "camel", "two Gaussian peaks on the diagonal (sigma 0.1), integral ~1", 4,
    lambda d: toys.camel(d), lambda d: toys.camel_exact(d), scalable=True,
    defaults={"train_calls": 200_000}))
register(Example(
    "gauss", "one narrow Gaussian at the centre (sigma 0.05), integral ~1", 4,
    lambda d: toys.gauss(d), lambda d: toys.gauss_exact(d), scalable=True,
    defaults={"train_calls": 100_000}))
register(Example(
    "ring", "a thin Gaussian ring (radius 0.3, width 0.02) in 2-d, integral ~1", 2,
    lambda d: toys.ring(d), lambda d: toys.ring_exact(d),
    defaults={"train_calls": 200_000}))

_PHYSICS_LOADED = False


def _load_physics() -> None:
    """Register the collider examples once mcint.processes provides them."""
    global _PHYSICS_LOADED
    if _PHYSICS_LOADED:
        return
    _PHYSICS_LOADED = True
    try:
        from . import physics
    except ImportError:  # mcint.processes not available in this build
        return
    for ex in physics.examples():
        register(ex)


#: examples whose module registers them on first use (building them takes a while):
#: ``name -> "module:function"`` that registers ``name``. :func:`names` lists them, so the
#: list of built-in examples is one list wherever it is shown
_LAZY: dict[str, str] = {"w2j": "mcint.amplitudes.example:register_examples"}


def _load_lazy(name: str) -> None:
    import importlib

    mod, _, fn = _LAZY[name].partition(":")
    try:
        getattr(importlib.import_module(mod), fn)()
    except ImportError:   # its module is not part of this build
        _LAZY.pop(name, None)


def names() -> list[str]:
    """Names of the built-in examples (those built on first use included)."""
    _load_physics()
    return list(_REGISTRY) + [n for n in _LAZY if n not in _REGISTRY]


def get(name: str) -> Example:
    """The example called ``name``; :class:`UnknownExample` lists the valid names."""
    _load_physics()
    if name not in _REGISTRY and name in _LAZY:
        _load_lazy(name)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownExample(f"unknown example {name!r}; built-in examples: "
                             f"{', '.join(names())}") from None
