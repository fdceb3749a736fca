"""PDFs: the lhagrid1 reader on a synthetic set, and the toy PDF's sum rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcint.pdf import LHAGrid, ToyPDF, find_set
from mcint.processes import DrellYan

PIDS = [-2, -1, 1, 2, 21]
COEF = {pid: (0.3 + 0.1 * k, -0.02 * (k + 1), 0.01 * k) for k, pid in enumerate(PIDS)}


def _linear(pid, x, q2):
    """Bilinear in (log x, log Q^2): reproduced exactly by the interpolation."""
    a, b, c = COEF[pid]
    return a + b * np.log(x) + c * np.log(q2)


def _write_set(root, name="ToySynth", func=_linear):
    d = root / name
    d.mkdir(parents=True)
    (d / f"{name}.info").write_text("SetDesc: synthetic test set\nFormat: lhagrid1\n"
                                   "NumMembers: 1\nFlavors: [-2, -1, 1, 2, 21]\n")
    xs = np.geomspace(1e-5, 1.0, 30)
    blocks = []
    for qs in (np.geomspace(1.0, 4.5, 5), np.geomspace(4.5, 1e4, 12)):
        rows = [" ".join(f"{func(p, x, q * q):.17e}" for p in PIDS) for x in xs for q in qs]
        blocks.append("\n".join([" ".join(f"{v:.17e}" for v in xs),
                                 " ".join(f"{v:.17e}" for v in qs),
                                 " ".join(str(0 if p == 21 else p) for p in PIDS), *rows]))
    (d / f"{name}_0000.dat").write_text("PdfType: central\nFormat: lhagrid1\n---\n"
                                        + "\n---\n".join(blocks) + "\n---\n")
    return d


def test_lhagrid_reads_and_interpolates_exactly(tmp_path, monkeypatch, backend):
    _write_set(tmp_path)
    monkeypatch.setenv("LHAPDF_DATA_PATH", str(tmp_path))
    pdf = LHAGrid.load("ToySynth")
    assert pdf.flavours == tuple(sorted(PIDS)) and len(pdf.subgrids) == 2
    rng = np.random.default_rng(0)
    x = np.exp(rng.uniform(math.log(1e-5), 0, 200))
    q2 = np.exp(rng.uniform(0, math.log(1e8), 200))
    for pid in PIDS:
        got = backend.to_numpy(pdf.xfxQ2(pid, backend.asarray(x), backend.asarray(q2)))
        assert np.allclose(got, _linear(pid, x, q2), rtol=1e-10, atol=1e-12)
    # gluon as 0 or 21; absent flavour is zero; outside the grid the edge value is frozen
    assert np.allclose(pdf.xfxQ2(0, x, q2), pdf.xfxQ2(21, x, q2))
    assert np.all(pdf.xfxQ2(5, x, q2) == 0)
    out = pdf.xfxQ2(2, np.array([1e-7]), np.array([1e10]))
    assert np.allclose(out, _linear(2, 1e-5, 1e8))


def test_lhagrid_nonlinear_function_is_exact_at_knots_and_close_between(tmp_path):
    def f(pid, x, q2):
        return x ** 0.3 * (1 - x) ** 3 * (1 + 0.1 * np.log(q2))

    d = _write_set(tmp_path, "Curvy", f)
    pdf = LHAGrid.load(str(d))
    xs = np.geomspace(1e-5, 1.0, 30)[3:-3]
    q2 = np.full_like(xs, np.geomspace(4.5, 1e4, 12)[4] ** 2)
    assert np.allclose(pdf.xfxQ2(2, xs, q2), f(2, xs, q2), rtol=1e-12)
    mid = np.sqrt(xs[:-1] * xs[1:])
    assert np.allclose(pdf.xfxQ2(2, mid, q2[:-1]), f(2, mid, q2[:-1]), rtol=0.02)


def test_lhagrid_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("LHAPDF_DATA_PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="LHAPDF_DATA_PATH"):
        find_set("NoSuchSet")
    monkeypatch.delenv("LHAPDF_DATA_PATH")
    with pytest.raises(FileNotFoundError, match="not set"):
        find_set("NoSuchSet")
    bad = tmp_path / "bad.dat"
    bad.write_text("Format: lhagrid1\n---\n1e-3 1e-2\n1 10\n21\n1.0\n2.0\n3.0\n---\n")
    with pytest.raises(ValueError, match="expected 4 rows"):
        LHAGrid.read(bad)
    bad.write_text("Format: lhagrid2\n---\n")
    with pytest.raises(ValueError, match="unsupported PDF format"):
        LHAGrid.read(bad)
    bad.write_text("Format: lhagrid1\n---\n1e-2 1e-3\n1 10\n21\n1\n2\n3\n4\n---\n")
    with pytest.raises(ValueError, match="x knots"):
        LHAGrid.read(bad)


def test_drell_yan_runs_with_an_lhagrid(tmp_path):
    def f(pid, x, q2):
        return (2.0 if pid > 0 else 0.5) * x ** 0.5 * (1 - x) ** 3

    pdf = LHAGrid.load(str(_write_set(tmp_path, "DYSet", f)))
    dy = DrellYan(pdf=pdf, zprime_mass=0.0, m_max=500.0)
    v = dy.evaluate(np.random.default_rng(1).random((20_000, 4)), 1).value
    assert np.all(np.isfinite(v)) and v.mean() > 0
    assert abs(v.mean() - dy.exact()) < 4 * v.std() / math.sqrt(v.size)


def test_toy_pdf_sum_rules():
    pdf = ToyPDF()
    assert pdf.is_toy and "toy" in repr(pdf)
    # substitute x = t^2 to remove the x^-1/2 end-point singularity of valence f(x)
    t, w = np.polynomial.legendre.leggauss(200)
    t = (t + 1) / 2
    w = w / 2
    x = t * t

    def integral(fx):
        return float(np.sum(w * fx(x) * 2 * t))

    uv = integral(lambda x: (pdf.xfxQ2(2, x) - pdf.xfxQ2(-2, x)) / x)
    dv = integral(lambda x: (pdf.xfxQ2(1, x) - pdf.xfxQ2(-1, x)) / x)
    assert uv == pytest.approx(2.0, rel=1e-8) and dv == pytest.approx(1.0, rel=1e-8)
    with pytest.raises(ValueError, match="PDG id"):
        pdf.xfxQ2(11, x)
