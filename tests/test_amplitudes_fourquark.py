"""Two quark lines (mcint.amplitudes.fourquark): every four-quark 2 -> 2 process against
Ellis-Stirling-Webber table 7.1, crossings, Fermi antisymmetry, helicity selection, backends."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import mcint.amplitudes as A
from mcint.phasespace import PhaseSpace, RamboOnDiet

GS2 = 4 * math.pi * 0.118


def momenta(n: int, seed: int) -> np.ndarray:
    ps = PhaseSpace(RamboOnDiet(2), 1000.0)
    return np.asarray(ps.map(np.random.default_rng(seed).random((n, ps.dims)))[0])


def dot(a, b):
    return a[..., 0] * b[..., 0] - (a[..., 1:] * b[..., 1:]).sum(-1)


def stu(p):
    return 2 * dot(p[:, 0], p[:, 1]), -2 * dot(p[:, 0], p[:, 2]), -2 * dot(p[:, 0], p[:, 3])


# ESW table 7.1 (averaged and summed, over g^4); t = (p1 - p3)^2, u = (p1 - p4)^2
ESW = {
    "u d > u d": lambda s, t, u: 4 / 9 * (s * s + u * u) / t ** 2,
    "u d~ > u d~": lambda s, t, u: 4 / 9 * (s * s + u * u) / t ** 2,
    "u u > u u": lambda s, t, u: (4 / 9 * ((s * s + u * u) / t ** 2 + (s * s + t * t) / u ** 2)
                                  - 8 / 27 * s * s / (u * t)),
    "u~ u~ > u~ u~": lambda s, t, u: (4 / 9 * ((s * s + u * u) / t ** 2
                                               + (s * s + t * t) / u ** 2)
                                      - 8 / 27 * s * s / (u * t)),
    "u u~ > d d~": lambda s, t, u: 4 / 9 * (t * t + u * u) / s ** 2,
    "u u~ > u u~": lambda s, t, u: (4 / 9 * ((s * s + u * u) / t ** 2 + (u * u + t * t) / s ** 2)
                                    - 8 / 27 * u * u / (s * t)),
}


@pytest.mark.parametrize("name", list(ESW))
def test_esw_table(name):
    p = momenta(30, seed=1)
    pr = A.Process(name, alpha_s=0.118)
    assert pr.colour_basis == "4q"
    np.testing.assert_allclose(pr.matrix_element(p), GS2 ** 2 * ESW[name](*stu(p)), rtol=1e-12)


def test_crossing_and_identical_quark_antisymmetry():
    """u u~ > u u~ is u u > u u crossed (s <-> u in the unaveraged sum, same averages); the
    outgoing identical quarks of u u > u u can be swapped."""
    p = momenta(10, seed=2)
    s, t, u = stu(p)
    np.testing.assert_allclose(A.Process("u u~ > u u~").matrix_element(p),
                               GS2 ** 2 * ESW["u u > u u"](u, t, s), rtol=1e-12)
    pr = A.Process("u u > u u")
    np.testing.assert_allclose(pr.matrix_element(p[:, [0, 1, 3, 2]]), pr.matrix_element(p),
                               rtol=1e-12)
    np.testing.assert_allclose(pr.matrix_element(p[:, [1, 0, 2, 3]]), pr.matrix_element(p),
                               rtol=1e-12)
    assert pr.symmetry_factor == 0.5


def test_helicity_selection_and_parity():
    """Configurations left out vanish; parity doubling exact."""
    pr = A.Process("u u > u u")
    p = momenta(4, seed=3)
    every = list(itertools.product((1, -1), repeat=4))
    amps = np.asarray(pr.helicity_amplitudes(p, helicities=every))
    kept = set(pr.helicities) | {tuple(-h for h in c) for c in pr.helicities}
    dropped = [i for i, c in enumerate(every) if c not in kept]
    assert np.abs(amps[:, dropped]).max() < 1e-12 * np.abs(amps).max()
    full = pr.colour_sum(amps) * pr.factor / 2
    np.testing.assert_allclose(full, pr.matrix_element(p), rtol=1e-12)


def test_diagrams_are_qcd_and_bad_input():
    assert [str(d) for d in A.Process("u d > u d").diagrams] == ["t[1, 3]:21"]
    assert len(A.Process("u u~ > u u~").diagrams) == 2
    with pytest.raises(NotImplementedError):
        A.Process("u u~ > d d~ g")
    with pytest.raises(ValueError, match="gauge_leg"):
        A.Process("u d > u d").helicity_amplitudes(momenta(1, 4), gauge_leg=0)


def test_backends_agree(backend):
    pr = A.Process("u u~ > u u~")
    p = momenta(5, seed=5)
    out = pr.matrix_element(backend.asarray(p))
    assert backend.is_array(out)
    np.testing.assert_allclose(backend.to_numpy(out), pr.matrix_element(p), rtol=1e-12)
