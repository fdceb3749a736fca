"""mcint.umami against test libraries written to the UMAMI 1.0 interface (tests/data/umami).

The libraries are compiled with the system C compiler into a temporary folder; without one the
tests skip and say why. The matrix elements are checked against mcint's own electroweak
formulas (mcint.processes.ew) and the built-in Drell-Yan process, the cross section of
e+e- -> mu+mu- against the analytic formula at several energies.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mcint import umami
from mcint.processes import ew


def two_body(sqrt_s: np.ndarray, cos: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Massless 2 -> 2 momenta in the c.m. frame: f along +z, l- at (cos, phi)."""
    e = sqrt_s / 2
    sin = np.sqrt(1 - cos ** 2)
    p = np.zeros((len(cos), 4, 4))
    p[:, 0] = np.stack([e, 0 * e, 0 * e, e], 1)
    p[:, 1] = np.stack([e, 0 * e, 0 * e, -e], 1)
    k = np.stack([e, e * sin * np.cos(phi), e * sin * np.sin(phi), e * cos], 1)
    p[:, 2] = k
    p[:, 3] = k * np.array([1, -1, -1, -1])
    return p


def test_metadata(umami_lib):
    me = umami.load(umami_lib())
    assert (me.particle_count, me.diagram_count, me.helicity_count) == (4, 2, 4)
    assert me.device == "cpu" and me.color_count == 1
    np.testing.assert_array_equal(me.masses, np.zeros(4))
    assert umami.load(umami_lib("-DNO_MASSES")).masses is None
    # metadata a library does not give is None, and so is the output it cannot make
    bare = umami.load(umami_lib("-DNO_AMP2"))
    assert bare.diagram_count is None
    with pytest.raises(umami.UmamiError, match="diagram count"):
        bare(np.zeros((1, 4, 4)) + 1.0, outputs=("diagram_amp2",))


@pytest.mark.parametrize("flavor,fermion,colour", [(0, ew.LEPTON, 1.0), (1, ew.UP, 1 / 3),
                                                   (2, ew.DOWN, 1 / 3)])
def test_matrix_element_matches_the_electroweak_formula(umami_lib, flavor, fermion, colour):
    rng = np.random.default_rng(flavor)
    n = 1000
    sqrt_s = rng.uniform(20, 300, n)
    p = two_body(sqrt_s, rng.uniform(-1, 1, n), rng.uniform(0, 2 * np.pi, n))
    out = umami.load(umami_lib())(p, flavor=flavor, outputs=("matrix_element", "diagram_amp2"))
    s = sqrt_s ** 2
    t = -0.5 * s * (1 - (p[:, 2, 3] / p[:, 2, 0]))
    u = -s - t
    ref = ew.me2(s, t, u, fermion, ew.LEPTON, ew.EWParams()) * colour
    np.testing.assert_allclose(out["matrix_element"], ref, rtol=1e-12)
    # the photon diagram alone: QED's (Q e^2)^2 2 (t^2 + u^2) / s^2 ... per helicity sum
    qed = ew.me2(s, t, u, fermion, ew.LEPTON, ew.EWParams(z=False)) * colour
    np.testing.assert_allclose(out["diagram_amp2"][:, 0], qed, rtol=1e-12)
    assert out["diagram_amp2"].shape == (n, 2) and np.all(out["diagram_amp2"] >= 0)


def test_drell_yan_partonic_matrix_element_per_point(umami_lib):
    """The library's u ubar / d dbar -> l- l+ against the built-in DrellYan's terms."""
    from mcint.processes import DrellYan

    dy = DrellYan(zprime_mass=0.0)
    me = umami.load(umami_lib())
    rng = np.random.default_rng(3)
    r = rng.random((500, 4))
    mom, x1, x2, _ = dy.phase_spaces[1].map(r)
    norm, terms = dy._terms(mom, x1, x2)
    lumis = dy._parton_lumis(x1, x2, x1 * x2 * dy.sqrt_s ** 2)
    for (a, b), term in terms.items():
        ref = term / lumis[(a, b)]           # |M|^2 without colour average (the norm has it)
        # the library's incoming fermion is its first leg: put the quark first
        p = mom if a > 0 else mom[:, [1, 0, 2, 3]]
        flav = 1 if abs(a) in (2, 4) else 2
        got = me(p, flavor=flav)["matrix_element"] * 3.0
        # 1e-12 relative, times the condition number of |M|^2: last-bit differences in the
        # invariants (DrellYan takes s = x1 x2 S and t from the +z parton, the library s = 2
        # p1.p2 and t from its first leg; they agree through momentum conservation) grow by
        # s / (M_Z Gamma_Z) ~ 40 at the Z peak and by s / |t| in forward scattering
        s_hat = x1 * x2 * dy.sqrt_s ** 2
        mz, wz = dy.params.mz, dy.params.wz
        t = -2 * np.einsum("ij,ij->i", mom[:, 0] * [1, -1, -1, -1], mom[:, 2])
        small = np.minimum(np.abs(t), np.abs(s_hat + t))
        cond = 1 + s_hat / np.hypot(s_hat - mz * mz, mz * wz) + s_hat / small
        rel = np.abs(got / ref - 1)
        assert np.all(rel <= 1e-12 * cond), (a, b, float(np.max(rel / cond)))



def test_ee_mumu_cross_section_at_several_energies(umami_lib):
    """sigma = int |M|^2 / (2 s) dPhi_2 by Gauss-Legendre in cos: the analytic formula."""
    me = umami.load(umami_lib())
    x, w = np.polynomial.legendre.leggauss(32)
    for sqrt_s in (10.0, 60.0, 91.1876, 200.0, 1000.0):
        p = two_body(np.full(32, sqrt_s), x, np.zeros(32))
        m = me(p)["matrix_element"]
        s = sqrt_s ** 2
        # dPhi_2 = d cos d phi / (32 pi^2) for massless particles; phi integrates to 2 pi
        sigma = np.sum(w * m) * 2 * np.pi / (32 * np.pi ** 2) / (2 * s)
        exact = ew.sigma_total(s, ew.LEPTON, ew.LEPTON, ew.EWParams())
        assert sigma == pytest.approx(exact, rel=1e-12), sqrt_s


def test_helicity_and_diagram_choices_follow_their_shares(umami_lib):
    me = umami.load(umami_lib())
    n = 40_000
    p = two_body(np.full(n, 91.1876), np.full(n, 0.3), np.zeros(n))
    rng = np.random.default_rng(0)
    out = me(p, random_helicity=rng.random(n), random_diagram=rng.random(n),
             outputs=("matrix_element", "diagram_amp2", "helicity_index", "diagram_index",
                      "color_index"))
    assert out["helicity_index"].dtype == np.int64 and set(np.unique(out["color_index"])) == {0}
    amp2 = out["diagram_amp2"][0]
    share = np.mean(out["diagram_index"] == 1)
    expect = amp2[1] / amp2.sum()
    assert abs(share - expect) < 5 * np.sqrt(expect * (1 - expect) / n)
    assert set(np.unique(out["helicity_index"])) <= {0, 1, 2, 3}


def test_parameters_and_param_card(umami_lib, tmp_path):
    card = tmp_path / "param_card.dat"
    card.write_text("# test card\nMZ 100.0\nWZ 3.0\n")
    me = umami.load(umami_lib(), param_card=card)
    assert me.get_parameter("MZ") == 100.0
    me.set_parameter("MZ", 91.1876)
    me.set_parameter("WZ", 2.4952)
    p = two_body(np.array([91.1876]), np.array([0.0]), np.array([0.0]))
    ref = umami.load(umami_lib())(p)["matrix_element"]
    np.testing.assert_allclose(me(p)["matrix_element"], ref, rtol=1e-14)
    # a thread gets its own instance, with the parameters set before it started
    got = {}
    t = threading.Thread(target=lambda: got.update(me(p)))
    t.start()
    t.join()
    np.testing.assert_allclose(got["matrix_element"], ref, rtol=1e-14)


def test_batches_of_any_size(umami_lib):
    me = umami.load(umami_lib())
    rng = np.random.default_rng(1)
    p = two_body(np.full(7, 50.0), rng.uniform(-1, 1, 7), rng.uniform(0, 6, 7))
    full = me(p)["matrix_element"]
    for k in (0, 1, 3):
        np.testing.assert_array_equal(me(p[:k])["matrix_element"], full[:k])


@pytest.mark.parametrize("status", [1, 2, 3, 4, 6, 7])
def test_every_error_status_is_one_clear_error(umami_lib, status):
    me = umami.load(umami_lib(f"-DFAIL_STATUS={status}"))
    p = two_body(np.full(2, 50.0), np.zeros(2), np.zeros(2))
    with pytest.raises(umami.UmamiError) as exc:
        me(p)
    msg = str(exc.value)
    assert "umami_matrix_element" in msg and umami.Status(status).name in msg
    assert str(me.path) in msg


def test_failing_initialisation_bad_card_missing_symbol_and_nan(umami_lib, tmp_path):
    with pytest.raises(umami.UmamiError, match="umami_initialize.*ERROR"):
        umami.load(umami_lib("-DFAIL_INIT=1"))
    with pytest.raises(umami.UmamiError, match="param card"):
        umami.load(umami_lib(), param_card=tmp_path / "missing.dat")
    with pytest.raises(umami.UmamiError, match="does not export umami_free"):
        umami.load(umami_lib("-DNO_FREE"))
    with pytest.raises(umami.UmamiError, match=r"HELICITY_COUNT\) gave -1, not a count"):
        umami.load(umami_lib("-DBAD_COUNT"))
    with pytest.raises(umami.UmamiError, match="does not exist"):
        umami.load(tmp_path / "nothing.so")
    junk = tmp_path / "junk.so"
    junk.write_bytes(b"not a shared library")
    with pytest.raises(umami.UmamiError, match="cannot load"):
        umami.load(junk)
    me = umami.load(umami_lib("-DRETURN_NAN"))
    p = two_body(np.full(5, 50.0), np.zeros(5), np.zeros(5))
    with pytest.raises(umami.UmamiNonFiniteError, match="2 non-finite"):
        me(p)


def test_bad_arguments(umami_lib):
    me = umami.load(umami_lib())
    with pytest.raises(ValueError, match=r"shape \(n, 4, 4\)"):
        me(np.zeros((3, 3, 4)))
    p = two_body(np.full(3, 50.0), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="unknown UMAMI outputs"):
        me(p, outputs=("weight",))
    with pytest.raises(ValueError, match="flavor"):
        me(p, flavor=[0, 1])
    with pytest.raises(umami.UmamiError, match="UNSUPPORTED_INPUT|ERROR"):
        me(p, flavor=7)
