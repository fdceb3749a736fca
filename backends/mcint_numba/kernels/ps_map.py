"""Fused :meth:`PhaseSpace.map` (reference: :func:`mcint.phasespace.base.phase_space_map`).

Luminosity (if any), beams and the final state run as fused kernels writing straight into the
``(n, 2 + n_final, 4)`` momenta array (the reference concatenates copies). Final states: exactly
``RamboOnDiet`` (:mod:`.ps_rambo`) or ``DiagramMapping`` with built-in samplers
(:mod:`.ps_diagram`); beams without or with an exact ``Luminosity`` of a built-in sampler.
Anything else, subclasses included, and anything but numpy float64 ``r``, returns
``NotImplemented``. The batch was checked by :meth:`PhaseSpace.map` (``check_batch``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mcint.phasespace.base import PhaseSpace
from mcint.phasespace.luminosity import Luminosity
from mcint.phasespace.rambo import RamboOnDiet

from .. import kernel
from . import ps_diagram, ps_luminosity, ps_rambo
from . import ps_math as M


@M.jit
def _beams(x1, x2, e, out):  # pragma: no cover - compiled
    for i in range(out.shape[0]):
        a, b = e * x1[i], e * x2[i]
        out[i, 0, 0], out[i, 0, 1], out[i, 0, 2], out[i, 0, 3] = a, 0.0, 0.0, a
        out[i, 1, 0], out[i, 1, 1], out[i, 1, 2], out[i, 1, 3] = b, 0.0, 0.0, -e * x2[i]


def _final_runner(final: Any) -> Any:
    """``run(rf, pa, pb, out, lw)`` for a final state the kernels fuse, else ``None``."""
    if type(final) is RamboOnDiet:
        tables = ps_rambo._tables(tuple(float(m) for m in final.masses))
        return lambda rf, pa, pb, out, lw: ps_rambo._rambo(rf, pa, pb, *tables, out, lw)
    prog = ps_diagram.program_for(final)
    if prog is None:
        return None
    return lambda rf, pa, pb, out, lw: ps_diagram.run(prog, rf, pa, pb, out, lw)


@kernel("phasespace-map-forward")
def phase_space_map(r: Any, ps: Any) -> Any:
    if type(ps) is not PhaseSpace or not M.is_f64(r, None, ps.dims):
        return NotImplemented
    lum = ps.luminosity
    code = None
    if lum is not None:
        code = M.sampler_code(lum.sampler) if type(lum) is Luminosity else None
        if code is None:
            return NotImplemented
    run = _final_runner(ps.final)
    if run is None:
        return NotImplemented
    n = r.shape[0]
    out, lw = np.empty((n, 2 + ps.n_final, 4)), np.empty(n)
    if lum is None:
        x1 = x2 = np.ones(n)
        rf, ld = r, None
    else:
        x, ld = np.empty((n, 2)), np.empty(n)
        ps_luminosity._luminosity(r, *code, float(lum.s_hat_min), float(lum.s_hat_max),
                                  math.log(lum.s_hadronic), x, ld)
        x1, x2, rf = x[:, 0], x[:, 1], r[:, 2:]
    _beams(x1, x2, 0.5 * ps.sqrt_s, out)
    run(rf, out[:, 0, :], out[:, 1, :], out[:, 2:, :], lw)
    return out, x1, x2, (lw if ld is None else ld + lw)
