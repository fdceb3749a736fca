"""LHAGrid's log-bicubic interpolation (LHAPDF's LogBicubicInterpolator scheme) against maths:
knots, polynomial reproduction, the predicted cubic error, convergence order, subgrid edges,
extrapolation, backends."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcint.pdf import LHAGrid


def _write(path, xs, qsubs, func, pids=(21, 2)):
    """An lhagrid1 file; ``func`` may be a list (one function per subgrid)."""
    blocks = []
    for k, qs in enumerate(qsubs):
        f = func[k] if isinstance(func, list) else func
        rows = [" ".join(f"{f(p, x, q * q):.17e}" for p in pids) for x in xs for q in qs]
        blocks.append("\n".join([" ".join(f"{v:.17e}" for v in xs),
                                 " ".join(f"{v:.17e}" for v in qs),
                                 " ".join(str(p) for p in pids), *rows]))
    path.write_text("Format: lhagrid1\n---\n" + "\n---\n".join(blocks) + "\n---\n")
    return path


def _uniform(lo, hi, n):
    return np.exp(np.linspace(math.log(lo), math.log(hi), n))


def _smooth(p, x, q2):
    """A PDF-like shape: x^a (1-x)^b times a polynomial in log Q^2."""
    lq = np.log(q2)
    return x ** -0.2 * (1 - x) ** 3 * (1 + 0.1 * lq - 0.004 * lq * lq) * (1 if p == 21 else 0.5)


XS = np.geomspace(1e-5, 1.0, 49)
QSUBS = [np.geomspace(1.3, 4.75, 6), np.geomspace(4.75, 1e4, 12)]


def _cells(xs, qsubs, tx=0.5, tq=0.5, xmax=0.5):
    """Points at fraction (tx, tq) of every (log x, log Q^2) cell, x below xmax."""
    lx = np.log(xs)
    xm = np.exp(lx[:-1] + tx * np.diff(lx))
    xm = xm[xm < xmax]
    qm = np.concatenate([np.exp(2 * (np.log(q[:-1]) + tq * np.diff(np.log(q)))) for q in qsubs])
    x, q2 = np.meshgrid(xm, qm)
    return x.ravel(), q2.ravel()


def test_logcubic_beats_linear_between_knots_and_is_exact_at_knots(tmp_path):
    path = _write(tmp_path / "s.dat", XS, QSUBS, _smooth)
    cub, lin = LHAGrid.read(path), LHAGrid.read(path, interpolation="linear")
    assert cub.interpolation == "logcubic" and "logcubic" in repr(cub)
    x, q2 = _cells(XS, QSUBS)
    exact = _smooth(21, x, q2)
    e_cub = np.max(np.abs(cub.xfxQ2(21, x, q2) / exact - 1))
    e_lin = np.max(np.abs(lin.xfxQ2(21, x, q2) / exact - 1))
    # measured: logcubic 9.4e-4, linear 1.5e-2 (x < 0.5, 49 x knots, 17 Q knots)
    assert e_cub < 1.2e-3 and e_lin > 10 * e_cub, (e_cub, e_lin)
    for k, qs in enumerate(QSUBS):  # every knot of both subgrids (the boundary one lies in the upper)
        xk, qk = np.meshgrid(XS, qs[:-1] if k == 0 else qs)
        xk, q2k = xk.ravel(), qk.ravel() ** 2
        for pid in (21, 2):
            assert np.allclose(cub.xfxQ2(pid, xk, q2k), _smooth(pid, xk, q2k), rtol=1e-13,
                               atol=1e-15)


def test_quadratics_in_log_x_and_log_q2_reproduced_on_uniform_knots(tmp_path):
    # central differences are exact for quadratics on equal spacing, so Hermite is exact in every
    # cell whose four x and four Q neighbours are all knots (not the edge intervals)
    def f(p, x, q2):
        lx, lq = np.log(x), np.log(q2)
        return (2.0 + 0.3 * lx + 0.05 * lx * lx) * (1.0 - 0.2 * lq + 0.03 * lq * lq)

    xs, qs = _uniform(1e-4, 1e-1, 11), _uniform(2.0, 200.0, 8)
    pdf = LHAGrid.read(_write(tmp_path / "q.dat", xs, [qs], f))
    rng = np.random.default_rng(0)
    lx, lq = np.log(xs), 2 * np.log(qs)
    x = np.exp(rng.uniform(lx[1], lx[-2], 500))
    q2 = np.exp(rng.uniform(lq[1], lq[-2], 500))
    assert np.allclose(pdf.xfxQ2(21, x, q2), f(21, x, q2), rtol=1e-12, atol=0)
    # in an edge interval the one-sided difference is not exact for a quadratic
    xe = np.exp(np.full(5, 0.5 * (lx[0] + lx[1])))
    assert np.max(np.abs(pdf.xfxQ2(21, xe, np.full(5, 30.0)) / f(21, xe, np.full(5, 30.0)) - 1)) > 1e-6


def test_cubic_in_log_x_has_the_predicted_central_difference_error(tmp_path):
    """For ``f = c lx^3`` on knots spaced ``h`` the central-difference slopes are off by
    ``e = c h^2`` (= h^2 f'''/6), so Hermite is off by ``e h (2t^3 - 3t^2 + t)`` inside."""
    c = 0.01

    def f(p, x, q2):
        return c * np.log(x) ** 3 + 0.0 * q2

    xs = _uniform(1e-4, 1e-1, 9)
    h = math.log(xs[1] / xs[0])
    pdf = LHAGrid.read(_write(tmp_path / "c.dat", xs, [_uniform(2.0, 50.0, 4)], f))
    for t in (0.25, 0.5, 0.8):
        x = np.exp(np.log(xs[2:-2]) + t * h)
        err = pdf.xfxQ2(21, x, np.full_like(x, 10.0)) - f(21, x, 0.0)
        assert np.allclose(err, c * h ** 3 * (2 * t ** 3 - 3 * t ** 2 + t), rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("axis", ["x", "q"])
def test_convergence_order(tmp_path, axis):
    """Halving the spacing: error at t = 1/4 of a cell falls ~8x (h^3) for logcubic, ~4x for
    linear, on a fixed interior region."""
    def fx(p, x, q2):
        lx = np.log(x)
        return np.exp(0.3 * lx) * (1 + 0.2 * np.sin(lx)) * (1 + 0.05 * np.log(q2))

    def fq(p, x, q2):
        lq = np.log(q2)
        return (1 - 0.1 * np.log(x)) * np.exp(0.2 * lq) * (1 + 0.3 * np.cos(lq))

    errs = {"linear": [], "logcubic": []}
    for n in (17, 33, 65):
        if axis == "x":
            xs, qs, f = _uniform(1e-4, 1e-1, n), _uniform(2.0, 100.0, 5), fx
            lx = np.log(xs)
            pts = np.exp(lx[:-1] + 0.25 * np.diff(lx))
            pts = pts[(pts > 1e-3) & (pts < 1e-2)]
            x, q2 = pts, np.full_like(pts, 30.0)
        else:
            xs, qs, f = _uniform(1e-4, 1e-1, 6), _uniform(2.0, 100.0, n), fq
            lq = 2 * np.log(qs)
            pts = np.exp(lq[:-1] + 0.25 * np.diff(lq))
            q2 = pts[(pts > 16.0) & (pts < 1600.0)]
            x = np.full_like(q2, 3e-3)
        path = _write(tmp_path / f"{axis}{n}.dat", xs, [qs], f)
        for m in errs:
            errs[m].append(np.max(np.abs(LHAGrid.read(path, m).xfxQ2(21, x, q2) - f(21, x, q2))))
    for m, (lo, hi) in {"linear": (3.3, 4.7), "logcubic": (6.5, 9.5)}.items():
        ratios = [a / b for a, b in zip(errs[m], errs[m][1:])]
        assert all(lo < r < hi for r in ratios), (m, ratios, errs[m])


def test_subgrid_edges_are_respected(tmp_path):
    """A kink at the flavour threshold (piecewise linear in log Q^2) is reproduced exactly: no
    finite difference reaches across the subgrid boundary. A jump stays a jump, and a function
    continuous at the boundary is interpolated continuously through it."""
    qb2 = 4.75 ** 2

    def kink(p, x, q2):
        lq = np.log(q2 / qb2)
        return (1 + 0.2 * np.log(x)) * np.where(lq < 0, 1 - 0.4 * lq, 1 + 0.1 * lq)

    pdf = LHAGrid.read(_write(tmp_path / "k.dat", XS, QSUBS, kink))
    rng = np.random.default_rng(1)
    x = np.exp(rng.uniform(math.log(1e-5), 0, 400))
    q2 = np.exp(rng.uniform(2 * math.log(1.3), 2 * math.log(1e4), 400))
    assert np.allclose(pdf.xfxQ2(21, x, q2), kink(21, x, q2), rtol=1e-12, atol=1e-13)

    def zero(p, x, q2):
        return 0.0 * x

    pj = LHAGrid.read(_write(tmp_path / "j.dat", XS, QSUBS, [zero, _smooth]))  # a heavy flavour
    pc = LHAGrid.read(_write(tmp_path / "c.dat", XS, QSUBS, _smooth))
    xs = np.geomspace(1e-5, 0.9, 50)
    below, above = np.full_like(xs, qb2 * (1 - 1e-12)), np.full_like(xs, qb2 * (1 + 1e-12))
    assert np.all(pj.xfxQ2(21, xs, below) == 0.0)
    assert np.array_equal(pj.xfxQ2(21, xs, above), pc.xfxQ2(21, xs, above))  # upper grid only
    assert np.allclose(pc.xfxQ2(21, xs, below), pc.xfxQ2(21, xs, above), rtol=1e-10)


def test_two_q_knot_subgrid_falls_back_to_bilinear(tmp_path):
    qsubs = [np.array([1.3, 4.75]), np.geomspace(4.75, 1e4, 8)]
    path = _write(tmp_path / "f.dat", XS, qsubs, _smooth)
    x, q2 = _cells(XS, qsubs[:1], tx=0.3, tq=0.6)
    a = LHAGrid.read(path).xfxQ2(2, x, q2)
    b = LHAGrid.read(path, interpolation="linear").xfxQ2(2, x, q2)
    assert np.array_equal(a, b)


def test_outside_the_grid_is_frozen_and_never_nan(tmp_path, backend):
    pdf = LHAGrid.read(_write(tmp_path / "o.dat", XS, QSUBS, _smooth))
    x = np.array([0.0, -1.0, 1e-300, 1e-9, 2.0, np.inf, 0.01, 0.01, 0.01, 1e-9])
    q2 = np.array([10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 0.0, -5.0, 1e30, 1e30])
    got = backend.to_numpy(pdf.xfxQ2(2, backend.asarray(x), backend.asarray(q2)))
    assert np.all(np.isfinite(got))
    xc = np.clip(x, 1e-5, 1.0)
    q2c = np.clip(q2, 1.3 ** 2, 1e8)
    assert np.allclose(got, pdf.xfxQ2(2, xc, q2c), rtol=1e-14, atol=1e-15)  # frozen at the edge
    corner = (xc == 1e-5) & ((q2c == 1.3 ** 2) | (q2c == 1e8))  # clamped onto a knot
    assert np.allclose(got[corner], _smooth(2, xc, q2c)[corner], rtol=1e-12)


def test_same_values_on_every_backend(tmp_path, backend):
    pdf = LHAGrid.read(_write(tmp_path / "b.dat", XS, QSUBS, _smooth))
    rng = np.random.default_rng(2)
    x = np.exp(rng.uniform(math.log(1e-6), 0.1, (40, 5)))  # 2-d input, some outside the grid
    q2 = np.exp(rng.uniform(0, math.log(1e9), (40, 5)))
    ref = pdf.xfxQ2(21, x, q2)
    got = pdf.xfxQ2(21, backend.asarray(x), backend.asarray(q2))
    assert tuple(got.shape) == (40, 5)
    assert np.allclose(backend.to_numpy(got), ref, rtol=1e-12, atol=1e-15)


def test_autograd_through_logcubic(tmp_path):
    torch = pytest.importorskip("torch")
    pdf = LHAGrid.read(_write(tmp_path / "g.dat", XS, QSUBS, _smooth))
    x0 = np.geomspace(2e-5, 0.5, 30)
    x = torch.tensor(x0, requires_grad=True)
    pdf.xfxQ2(21, x, torch.tensor(50.0, dtype=torch.float64)).sum().backward()
    h = 1e-7 * x0
    fd = (pdf.xfxQ2(21, x0 + h, 50.0) - pdf.xfxQ2(21, x0 - h, 50.0)) / (2 * h)
    assert np.allclose(x.grad.numpy(), fd, rtol=1e-5)


def test_interpolation_option_errors(tmp_path):
    path = _write(tmp_path / "e.dat", XS, QSUBS, _smooth)
    with pytest.raises(ValueError, match="'logcubic' or 'linear'"):
        LHAGrid.read(path, interpolation="cubic")
    few = _write(tmp_path / "few.dat", np.array([1e-3, 1e-2, 1e-1]), QSUBS, _smooth)
    with pytest.raises(ValueError, match="needs >= 4 x knots"):
        LHAGrid.read(few)
    assert LHAGrid.read(few, interpolation="linear").xfxQ2(21, np.array([0.05]), 20.0).shape == (1,)


def _lhapdf_scalar(xs, qs, v, x, q2):
    """LHAPDF's LogBicubicInterpolator for one subgrid, one point, written out with loops (a
    transcription of its algorithm as documented there, independent of the vectorised code)."""
    lx, lq = np.log(xs), np.log(qs ** 2)
    nx, nq = len(xs), len(qs)
    ix = min(max(int(np.searchsorted(lx, math.log(x), side="right")) - 1, 0), nx - 2)
    iq = min(max(int(np.searchsorted(lq, math.log(q2), side="right")) - 1, 0), nq - 2)

    def ddlogx(i, j):
        if i == 0:
            return (v[1, j] - v[0, j]) / (lx[1] - lx[0])
        if i == nx - 1:
            return (v[i, j] - v[i - 1, j]) / (lx[i] - lx[i - 1])
        return 0.5 * ((v[i, j] - v[i - 1, j]) / (lx[i] - lx[i - 1])
                      + (v[i + 1, j] - v[i, j]) / (lx[i + 1] - lx[i]))

    def cubic(t, vl, vdl, vh, vdh):
        return ((2 * t ** 3 - 3 * t ** 2 + 1) * vl + (t ** 3 - 2 * t ** 2 + t) * vdl
                + (-2 * t ** 3 + 3 * t ** 2) * vh + (t ** 3 - t ** 2) * vdh)

    dx = lx[ix + 1] - lx[ix]
    tx = (math.log(x) - lx[ix]) / dx

    def vq(j):
        return cubic(tx, v[ix, j], ddlogx(ix, j) * dx, v[ix + 1, j], ddlogx(ix + 1, j) * dx)

    d1 = lq[iq + 1] - lq[iq]
    vl, vh = vq(iq), vq(iq + 1)
    if iq == 0:
        vdl = (vh - vl) / d1
    else:
        vdl = 0.5 * ((vh - vl) / d1 + (vl - vq(iq - 1)) / (lq[iq] - lq[iq - 1]))
    if iq + 1 == nq - 1:
        vdh = (vh - vl) / d1
    else:
        vdh = 0.5 * ((vh - vl) / d1 + (vq(iq + 2) - vh) / (lq[iq + 2] - lq[iq + 1]))
    return cubic((math.log(q2) - lq[iq]) / d1, vl, vdl * d1, vh, vdh * d1)


def test_matches_a_scalar_transcription_of_lhapdf_on_uneven_knots(tmp_path):
    # uneven knots (log-spaced, then linear towards x = 1, like real sets) and two subgrids
    xs = np.unique(np.concatenate([np.geomspace(1e-6, 0.1, 20), np.linspace(0.1, 1.0, 12)]))
    qsubs = [np.array([1.4, 1.9, 2.6, 3.3, 4.2, 4.75]), np.geomspace(4.75, 1e5, 15) ** 1.02]
    qsubs[1][0] = 4.75
    pdf = LHAGrid.read(_write(tmp_path / "u.dat", xs, qsubs, _smooth))
    rng = np.random.default_rng(5)
    x = np.exp(rng.uniform(math.log(1e-6), 0, 300))
    q2 = np.exp(rng.uniform(2 * math.log(1.4), 2 * math.log(qsubs[1][-1]), 300))
    got = pdf.xfxQ2(2, x, q2)
    vals = [_smooth(2, xs[:, None], qs[None, :] ** 2) for qs in qsubs]
    for xi, qi, gi in zip(x, q2, got):
        k = 0 if qi < 4.75 ** 2 else 1  # the threshold itself belongs to the upper subgrid
        ref = _lhapdf_scalar(xs, qsubs[k], vals[k], xi, qi)
        assert gi == pytest.approx(ref, rel=1e-12, abs=1e-15)
