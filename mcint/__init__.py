"""mcint: Monte Carlo integration and event sampling with VEGAS and neural importance sampling.

The maths is written once against the Python array API and runs on numpy, numba, torch and cupy;
pick a backend with ``backend="numba"``, the ``MCINT_BACKEND`` environment variable or
``mcint --backend``. ``import mcint`` imports none of torch, numba or cupy.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .backends import available, get_backend, use  # noqa: E402
from .batch import Batch  # noqa: E402
from .integrand import Integrand, IntegrandError, NonFiniteIntegrandError  # noqa: E402

# Public names resolved on first access, so importing mcint stays cheap.
_LAZY = {
    "VEGAS": "mcint.vegas",
    "AdaptiveMap": "mcint.vegas",
    "Integrator": "mcint.nis",
    "Flow": "mcint.flows",
    "SamplerWarning": "mcint.health",
    "transforms": "mcint.transforms",
    "phasespace": "mcint.phasespace",
    "processes": "mcint.processes",
    "events": "mcint.events",
    "examples": "mcint.examples",
}

__all__ = ["Batch", "Integrand", "IntegrandError", "NonFiniteIntegrandError", "available",
           "get_backend", "use", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'mcint' has no attribute {name!r}")
    m = importlib.import_module(mod)
    return m if mod.endswith("." + name) else getattr(m, name)
