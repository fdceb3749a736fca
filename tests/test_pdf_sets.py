"""LHAPDF sets as a whole (the .info file, members, LHAGLUE id) and the running alpha_s."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_pdf import _linear, _write_set

from mcint.pdf import AlphaSGrid, AlphaSRunning, LHAGrid, PDFSet, PDFSetError


def _info(d, extra: str) -> None:
    (d / f"{d.name}.info").write_text(
        "SetDesc: synthetic test set\nFormat: lhagrid1\nNumMembers: 1\nSetIndex: 90400\n"
        "Particle: 2212\nFlavors: [-2, -1, 1, 2, 21]\nMZ: 91.1876\n" + extra)


def test_set_info_members_and_lhaglue_id(tmp_path, monkeypatch):
    d = _write_set(tmp_path)
    _info(d, "AlphaS_MZ: 0.118\nAlphaS_OrderQCD: 1\nAlphaS_Type: ode\n")
    monkeypatch.setenv("LHAPDF_DATA_PATH", str(tmp_path))
    s = PDFSet.load("ToySynth")
    assert s.lhaglue_id == 90400 and s.particle == 2212 and s.num_members == 1
    assert s.flavours == (-2, -1, 1, 2, 21)
    x, q2 = np.array([1e-3, 0.2]), np.array([10.0, 1e4])
    np.testing.assert_allclose(s.member(0).xfxQ2(2, x, q2), _linear(2, x, q2), rtol=1e-10)
    assert s.member(0) is s.member(0)                       # read once
    # the RGE at 2 loops from AlphaS_MZ (OrderQCD 1 = NLO)
    assert s.alpha_s(91.1876 ** 2) == pytest.approx(0.118, rel=1e-12)
    assert s.alpha_s(100.0) == pytest.approx(0.1779, abs=2e-4)
    with pytest.raises(PDFSetError, match="members 0..0"):
        s.member(1)


def test_set_alpha_s_from_its_grid(tmp_path):
    d = _write_set(tmp_path)
    run = AlphaSRunning(0.118, loops=2)
    # knots split at the charm and bottom thresholds (where the slope jumps), as sets have them
    qs = np.concatenate([np.geomspace(1.0, 1.51, 10), np.geomspace(1.51, 4.92, 25),
                         np.geomspace(4.92, 1e4, 60)])
    _info(d, "AlphaS_Type: ipol\nAlphaS_Qs: [" + ", ".join(f"{q:.17g}" for q in qs)
          + "]\nAlphaS_Vals: [" + ", ".join(f"{run(q * q):.17g}" for q in qs) + "]\n")
    s = PDFSet.load(d)
    assert isinstance(s.alpha_s, AlphaSGrid)
    q = np.geomspace(1.2, 9e3, 300)
    # between knots: the cubic's error, largest next to a threshold (one-sided slopes there)
    np.testing.assert_allclose(s.alpha_s(q * q), run(q * q), rtol=2e-4)
    np.testing.assert_allclose(s.alpha_s(qs * qs), run(qs * qs), rtol=1e-13)


def test_bad_sets_give_one_error_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LHAPDF_DATA_PATH", str(tmp_path))
    with pytest.raises(PDFSetError, match="'Nope' not found"):
        PDFSet.load("Nope")
    d = _write_set(tmp_path)
    (d / "ToySynth.info").write_text("NumMembers: [1\n")
    with pytest.raises(PDFSetError, match="ToySynth.info"):
        PDFSet.load("ToySynth")
    (d / "ToySynth.info").write_text("NumMembers: many\n")
    with pytest.raises(PDFSetError, match="NumMembers must be an integer"):
        PDFSet.load("ToySynth")
    (d / "ToySynth.info").write_text("NumMembers: 1\nFlavors: [1, 2]\n")
    with pytest.raises(PDFSetError, match="neither an alpha_s grid"):
        _ = PDFSet.load("ToySynth").alpha_s


@pytest.mark.parametrize("loops", [1, 2, 3])
def test_running_alpha_s_solves_the_rge(loops):
    """Against scipy's ODE solver on the same equation, across the b threshold; 1 loop also
    against the closed form."""
    integrate = pytest.importorskip("scipy.integrate")
    from mcint.pdf.alphas import beta_coefficients

    a = AlphaSRunning(0.118, loops=loops, masses=(1.5, 4.8, 173.0))

    def rhs(t, y, nf):
        b = beta_coefficients(nf)[:loops]
        return [-y[0] ** 2 * sum(bi * y[0] ** i for i, bi in enumerate(b))]

    t_mz, t_b = math.log(91.1876 ** 2), math.log(4.8 ** 2)
    a0 = 0.118 / (4 * math.pi)
    sol5 = integrate.solve_ivp(rhs, (t_mz, t_b), [a0], args=(5,), rtol=1e-12, atol=1e-16,
                               dense_output=True)
    a_b = sol5.y[0, -1]
    sol4 = integrate.solve_ivp(rhs, (t_b, math.log(2.0 ** 2)), [a_b], args=(4,), rtol=1e-12,
                               atol=1e-16, dense_output=True)
    for q in (2.5, 4.0, 6.0, 30.0, 91.1876):
        t = math.log(q * q)
        ref = 4 * math.pi * (sol4.sol(t)[0] if t < t_b else sol5.sol(t)[0])
        assert a(q * q) == pytest.approx(ref, rel=1e-8), q
    if loops == 1:
        b0 = 11 - 10 / 3
        for q in (10.0, 50.0, 150.0):
            exact = 0.118 / (1 + 0.118 * b0 / (4 * math.pi) * math.log(q * q / 91.1876 ** 2))
            assert a(q * q) == pytest.approx(exact, rel=1e-8)
    # continuous at the threshold, decreasing with Q
    assert a(4.8 ** 2 * (1 - 1e-9)) == pytest.approx(a(4.8 ** 2 * (1 + 1e-9)), rel=1e-7)
    q = np.geomspace(1.0, 1e5, 200)
    assert np.all(np.diff(a(q * q)) < 0)


def test_lhagrid_agrees_with_madspace_per_point(tmp_path):
    """madspace's PdfGrid/PartonDensity (the MG7 engine's own LHAPDF-format interpolator) and
    mcint's reader on the same set, point by point (runs where madspace is installed)."""
    ms = pytest.importorskip("madspace")
    from test_pdf import PIDS

    def f(pid, x, q2):
        k = PIDS.index(pid)
        return (1 - x) ** (3 + k) * x ** -0.2 * (1 + 0.1 * np.log(q2)) * (0.5 + 0.1 * k)

    dat = _write_set(tmp_path, func=f) / "ToySynth_0000.dat"
    grid = ms.PdfGrid(str(dat))
    ctx = ms.Context(1)
    grid.initialize_globals(ctx)
    ids = [0 if p == 21 else p for p in PIDS]          # madspace names the gluon 0
    rt = ms.FunctionRuntime(ms.PartonDensity(grid, ids).function(), ctx)
    rng = np.random.default_rng(0)
    x = np.exp(rng.uniform(math.log(1e-5), math.log(0.9), 2000))
    q = np.exp(rng.uniform(math.log(1.5), math.log(9e3), 2000))
    out = rt(x, q)
    theirs = np.asarray(out[0] if isinstance(out, (list, tuple)) else out)
    ours = np.stack([LHAGrid.read(dat).xfxQ2(p, x, q * q) for p in PIDS], axis=1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
