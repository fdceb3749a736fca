"""mcint.amplitudes: tree-level QCD and W matrix elements against textbook formulas, Parke-Taylor,
gauge invariance, Bose symmetry, crossing, and across backends (incl. torch autograd)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

import mcint.amplitudes as A
from mcint.amplitudes import colour
from mcint.amplitudes import spinors as S
from mcint.amplitudes.diagrams import diagrams
from mcint.phasespace import PhaseSpace, RamboOnDiet

ALPHA_S = 0.118
GS2 = 4 * math.pi * ALPHA_S
N_C = 3


def momenta(n_final: int, n: int, sqrt_s: float = 1000.0, seed: int = 0) -> np.ndarray:
    """``(n, 2 + n_final, 4)`` massless momenta (beams along +-z, partonic c.m. frame)."""
    ps = PhaseSpace(RamboOnDiet(n_final), sqrt_s)
    r = np.random.default_rng(seed).random((n, ps.dims))
    return np.asarray(ps.map(r)[0])


def dot(a, b):
    return a[..., 0] * b[..., 0] - (a[..., 1:] * b[..., 1:]).sum(-1)


def mandelstam(p):
    s = 2 * dot(p[:, 0], p[:, 1])
    t = -2 * dot(p[:, 0], p[:, 2])
    u = -2 * dot(p[:, 0], p[:, 3])
    return s, t, u


_CACHE: dict[str, A.Process] = {}


def proc(name: str) -> A.Process:
    if name not in _CACHE:
        _CACHE[name] = A.Process(name, alpha_s=ALPHA_S)
    return _CACHE[name]


def unaveraged(pr: A.Process, p) -> np.ndarray:
    """sum over all helicities and colours (the averaging undone)."""
    return np.asarray(pr.matrix_element(p)) / pr.average


# -- process strings and bookkeeping -------------------------------------------------------------
def test_process_attributes():
    pr = proc("g g > g g g")
    assert pr.particles == (21,) * 5
    assert pr.symmetry_factor == pytest.approx(1 / 6)
    assert len(pr.diagrams) == 25
    assert pr.colour_basis == "ddm" and len(pr.orders) == 6
    w = proc("u d~ > e+ ve")
    assert w.particles == (2, -1, -11, 12)
    assert w.symmetry_factor == 1.0
    (d,) = w.diagrams
    (line,) = d.lines
    assert (line.legs, abs(line.pdg), line.kind) == ((2, 3), 24, "s")
    assert (line.mass, line.width) == (80.379, 2.085)
    qg = proc("u g > u g")
    kinds = sorted(ln.kind for dg in qg.diagrams for ln in dg.lines)
    assert kinds == ["s", "t", "t"]  # s-channel quark, t-channel gluon, u-channel quark
    assert proc("u u~ > g g").symmetry_factor == 0.5


def test_diagram_counts():
    # the classic numbers of Feynman diagrams
    assert [len(diagrams([21] * n, {})) for n in (4, 5, 6)] == [4, 25, 220]
    assert len(diagrams([-2, 2, 21, 21, 21], {})) == 16
    assert len(diagrams([-2, 1, -11, 12, 21, 21], {24: (80.4, 2.1)})) == 8


@pytest.mark.parametrize("bad, exc", [
    ("g g g", ValueError),                 # no '>'
    ("g x > g g", ValueError),             # unknown particle
    ("g > g g", ValueError),               # one incoming
    ("u d~ > e- ve~", ValueError),         # charge
    ("u s~ > e+ ve", ValueError),          # unit CKM
    ("u u~ > d d~ g", NotImplementedError),  # two quark lines with a gluon
    ("e+ e- > mu+ mu-", NotImplementedError),
    ("u u~ > g", ValueError),              # one outgoing
])
def test_bad_processes(bad, exc):
    with pytest.raises(exc):
        A.Process(bad)


def test_bad_momenta():
    with pytest.raises(ValueError, match="shape"):
        proc("g g > g g").matrix_element(np.zeros((3, 5, 4)))


def test_ew_parameters():
    ew = A.EWParameters()
    assert ew.gw2 == pytest.approx(4 * math.sqrt(2) * 1.1663787e-5 * 80.379 ** 2)
    assert ew.sw2 == pytest.approx(0.22301, abs=1e-5)
    assert 1 / ew.alpha == pytest.approx(132.2, abs=0.2)
    with pytest.raises(ValueError):
        A.EWParameters(mw=-1.0)


# -- spinors and colour ----------------------------------------------------------------------------
def _gammas():
    i2, sx = np.eye(2), np.array([[0, 1], [1, 0]])
    sy, sz = np.array([[0, -1j], [1j, 0]]), np.diag([1.0, -1.0])
    sig, sigb = [i2, sx, sy, sz], [i2, -sx, -sy, -sz]
    z = np.zeros((2, 2))
    return [np.block([[z, sig[m]], [sigb[m], z]]) for m in range(4)]


def test_dirac_algebra_against_matrices():
    g = _gammas()
    metric = np.diag([1.0, -1.0, -1.0, -1.0])
    rng = np.random.default_rng(1)
    a, c, r = (rng.normal(size=(6, 4)) + 1j * rng.normal(size=(6, 4)) for _ in range(3))
    slash = [sum(metric[m, m] * a[i, m] * g[m] for m in range(4)) for i in range(6)]
    col = S.stack(S.slash_col(S.components(a), S.components(c)))
    row = S.stack(S.row_slash(S.components(r), S.components(a)))
    cur = S.stack(S.vector_current(S.components(r), S.components(c)))
    for i in range(6):
        np.testing.assert_allclose(col[i], slash[i] @ c[i], atol=1e-13)
        np.testing.assert_allclose(row[i], r[i] @ slash[i], atol=1e-13)
        np.testing.assert_allclose(cur[i], [r[i] @ g[m] @ c[i] for m in range(4)], atol=1e-13)


def test_spinors_and_polarisations():
    g = _gammas()
    metric = np.diag([1.0, -1.0, -1.0, -1.0])
    k = momenta(4, 2).reshape(-1, 4)  # includes both beams, along +z and -z
    q = np.roll(k, 1, axis=0)
    xk, xq = S.weyl_spinors(S.components(k)), S.weyl_spinors(S.components(q))
    kslash = [sum(metric[m, m] * k[i, m] * g[m] for m in range(4)) for i in range(len(k))]
    ub = {h: S.stack(S.outgoing_quark(xk, h)) for h in (1, -1)}
    v = {h: S.stack(S.outgoing_antiquark(xk, h)) for h in (1, -1)}
    for i in range(len(k)):
        for h in (1, -1):  # Dirac equation
            assert np.abs(ub[h][i] @ kslash[i]).max() < 1e-12 * k[i, 0]
            assert np.abs(kslash[i] @ v[h][i]).max() < 1e-12 * k[i, 0]
        # completeness: sum_h v vbar = k-slash (massless)
        vv = sum(np.outer(v[h][i], v[h][i].conj() @ g[0]) for h in (1, -1))
        np.testing.assert_allclose(vv, kslash[i], atol=1e-12 * k[i, 0])
    np.testing.assert_allclose(np.abs(S.angle(xk, xq)) ** 2, 2 * dot(k, q), rtol=1e-12)
    np.testing.assert_allclose(np.abs(S.square(xk, xq)) ** 2, 2 * dot(k, q), rtol=1e-12)
    ep, em = (S.polarisation(xk, xq, h) for h in (1, -1))
    np.testing.assert_allclose(S.stack(em), S.stack(ep).conj(), atol=1e-14)
    kc, qc = S.components(k), S.components(q)
    for e in (ep, em):
        assert np.abs(S.mdot(e, kc)).max() < 1e-12 * k[:, 0].max()
        assert np.abs(S.mdot(e, qc)).max() < 1e-12 * k[:, 0].max()
        conj = tuple(np.conj(x) for x in e)
        np.testing.assert_allclose(S.mdot(e, conj), -1, atol=1e-13)
    assert np.abs(S.mdot(ep, tuple(np.conj(x) for x in em))).max() < 1e-13


def test_colour_matrices_exact():
    f = Fraction
    assert colour.colour_matrix_exact("line", 0) == ((f(3),),)
    assert colour.colour_matrix_exact("line", 1) == ((f(8),),)
    # Tr(T^a T^b T^b T^a) = N C_F'^2, Tr(T^a T^b T^a T^b) = -(N^2 - 1)/N with Tr(TT) = 1
    assert colour.colour_matrix_exact("line", 2) == ((f(64, 3), f(-8, 3)), (f(-8, 3), f(64, 3)))
    # DDM, 4 gluons: sum |ft ft|^2 = 2^2 * N^2 (N^2 - 1), the off-diagonal half of it
    assert colour.colour_matrix_exact("ddm", 2) == ((f(288), f(144)), (f(144), f(288)))
    c = colour.colour_matrix("ddm", 3)
    assert np.allclose(c, c.T) and np.all(np.linalg.eigvalsh(c) > -1e-9)


def test_ddm_equals_trace_basis():
    """Colour-dressed 5-gluon amplitudes: the DDM basis (6 orderings) equals the trace basis
    (24 orderings, partial amplitudes computed independently by the recursion)."""
    pr = proc("g g > g g g")
    p = momenta(3, 2, seed=5)
    traces = [(0,) + o for o in itertools.permutations(range(1, 5))]
    a_tr = pr.helicity_amplitudes(p, orders=traces)
    a_ddm = pr.helicity_amplitudes(p)
    t = colour.generators()
    rng = np.random.default_rng(2)
    for _ in range(4):
        a = rng.integers(0, 8, size=5)
        c_tr = np.array([np.trace(np.linalg.multi_dot([t[a[i]] for i in o])) for o in traces])
        c_ddm = np.array([colour.colour_factor("ddm", o, tuple(a))
                          for o in colour.orderings(3)])
        m_tr = a_tr @ c_tr
        m_ddm = a_ddm @ c_ddm
        scale = np.abs(m_tr).max() + np.abs(a_ddm).max()
        assert np.abs(m_tr - m_ddm).max() < 1e-12 * scale


# -- textbook 2 -> 2 and 2 -> 3 -----------------------------------------------------------------
def test_gg_gg_textbook():
    p = momenta(2, 20, seed=1)
    s, t, u = mandelstam(p)
    ref = GS2 ** 2 * 4.5 * (3 - t * u / s ** 2 - s * u / t ** 2 - s * t / u ** 2)
    np.testing.assert_allclose(proc("g g > g g").matrix_element(p), ref, rtol=1e-12)


def _qqbar_gg(s, t, u):
    """ESW table 7.1 / PDG: q qbar -> g g, averaged, over g^4."""
    return 32 / 27 * (t * t + u * u) / (t * u) - 8 / 3 * (t * t + u * u) / s ** 2


def test_qqbar_gg_and_crossings():
    p = momenta(2, 20, seed=2)
    s, t, u = mandelstam(p)
    np.testing.assert_allclose(proc("u u~ > g g").matrix_element(p),
                               GS2 ** 2 * _qqbar_gg(s, t, u), rtol=1e-12)
    # q(p1) g(p2) -> q(p3) g(p4): cross s <-> t in the unaveraged sum (one fermion crossed: -1)
    # and average over 3 * 8 colours instead of 3 * 3: -(4 * 9) / (4 * 24) = -3/8
    qg = -3 / 8 * _qqbar_gg(t, s, u)
    np.testing.assert_allclose(qg, -4 / 9 * (s * s + u * u) / (s * u) + (s * s + u * u) / t ** 2,
                               rtol=1e-12)
    np.testing.assert_allclose(proc("u g > u g").matrix_element(p), GS2 ** 2 * qg, rtol=1e-12)
    np.testing.assert_allclose(proc("g g > d d~").matrix_element(p),
                               GS2 ** 2 * (9 / 64) * _qqbar_gg(s, t, u), rtol=1e-12)
    np.testing.assert_allclose(proc("u~ g > u~ g").matrix_element(p), GS2 ** 2 * qg, rtol=1e-12)


@pytest.mark.parametrize("theta", [1e-2, 1e-4, 1e-6])
def test_near_the_beam(theta):
    """Final state almost along the beams (the -z momenta included): no precision loss in the
    spinors or the polarisations (the reference is the other beam)."""
    e = 500.0
    sin, cos = math.sin(theta), math.cos(theta)
    p = np.array([[[e, 0, 0, e], [e, 0, 0, -e], [e, e * sin, 0, e * cos],
                   [e, -e * sin, 0, -e * cos]]])
    s = 4 * e * e
    t = -s * math.sin(theta / 2) ** 2
    u = -s - t
    ref = 4.5 * (3 - t * u / s ** 2 - s * u / t ** 2 - s * t / u ** 2)
    np.testing.assert_allclose(proc("g g > g g").matrix_element(p), GS2 ** 2 * ref, rtol=1e-12)
    qg = -4 / 9 * (s * s + u * u) / (s * u) + (s * s + u * u) / t ** 2
    np.testing.assert_allclose(proc("u g > u g").matrix_element(p), GS2 ** 2 * qg, rtol=1e-12)


def test_time_reversal_crossing():
    """The unaveraged sum |M|^2 is unchanged when every leg is crossed (all-outgoing momenta
    P -> -P, flavours kept) and under time reversal of the W process."""
    p = momenta(2, 6, seed=3)
    # u(p1) u~(p2) -> g(p3) g(p4) has all-outgoing (u~ -p1, u -p2, g p3, g p4); g(p3) g(p4) ->
    # u(p2) u~(p1) has exactly minus those
    np.testing.assert_allclose(unaveraged(proc("u u~ > g g"), p),
                               unaveraged(proc("g g > u u~"), p[:, [2, 3, 1, 0], :]),
                               rtol=1e-12)
    np.testing.assert_allclose(unaveraged(proc("u d~ > e+ ve"), p),
                               unaveraged(proc("e+ ve > u d~"), p[:, [2, 3, 0, 1], :]),
                               rtol=1e-12)


def test_five_gluons_parke_taylor():
    """All 5-gluon amplitudes are MHV or anti-MHV: sum |M|^2 = 2 g^6 N^3 (N^2 - 1)
    sum_{i<j} s_ij^4 sum_{S5/Z5} 1 / (s_12 s_23 s_34 s_45 s_51) (exact in N for 5 gluons)."""
    p = momenta(3, 20, seed=4)
    allout = p.copy()
    allout[:, :2] *= -1
    s = {(i, j): 2 * dot(allout[:, i], allout[:, j]) for i in range(5) for j in range(5)}
    s4 = sum(s[i, j] ** 4 for i, j in itertools.combinations(range(5), 2))
    cyc = sum(1 / np.prod([s[o[k], o[(k + 1) % 5]] for k in range(5)], axis=0)
              for o in ((0,) + q for q in itertools.permutations(range(1, 5))))
    ref = 2 * GS2 ** 3 * N_C ** 3 * (N_C ** 2 - 1) * s4 * cyc / 256
    np.testing.assert_allclose(proc("g g > g g g").matrix_element(p), ref, rtol=1e-12)


def _w_denominator(s, ew):
    return np.abs(s - ew.mw ** 2 + 1j * ew.mw * ew.ww) ** 2


def test_w_production_analytic():
    """u d~ -> W+ -> e+ nu_e: |M|^2 = g_w^4 (p_u.p_e)(p_d.p_nu) / (3 |s - M^2 + i M G|^2)
    (spins 1/4, colours delta_ij delta_ij / 9 = 1/3); the e+ follows the d~: (1 - cos)^2 in the
    angle to the u."""
    pr = proc("u d~ > e+ ve")
    ew = pr.ew
    p = momenta(2, 20, sqrt_s=85.0, seed=6)
    s = 2 * dot(p[:, 0], p[:, 1])
    ref = ew.gw2 ** 2 * dot(p[:, 0], p[:, 2]) * dot(p[:, 1], p[:, 3]) / (3 * _w_denominator(s, ew))
    me = pr.matrix_element(p)
    np.testing.assert_allclose(me, ref, rtol=1e-12)
    cos_e = p[:, 2, 3] / p[:, 2, 0]
    shape = me / (1 - cos_e) ** 2
    np.testing.assert_allclose(shape, shape[0], rtol=1e-10)
    # integrated: sigma = g_w^4 s / (576 pi |D|^2) = pi alpha^2 s / (36 sw^4 |D|^2)
    c, w = np.polynomial.legendre.leggauss(8)
    e = np.sqrt(s[0]) / 2
    sin = np.sqrt(1 - c * c)
    pp = np.zeros((8, 4, 4))
    pp[:, 0] = [e, 0, 0, e]
    pp[:, 1] = [e, 0, 0, -e]
    pp[:, 2] = np.stack([np.full(8, e), e * sin, 0 * c, e * c], axis=1)
    pp[:, 3] = np.stack([np.full(8, e), -e * sin, 0 * c, -e * c], axis=1)
    # d sigma / d Omega = |M|^2 / (64 pi^2 s) for massless 2 -> 2
    sigma = (pr.matrix_element(pp) * w).sum() * 2 * math.pi / (64 * math.pi ** 2 * s[0])
    assert sigma == pytest.approx(ew.gw2 ** 2 * s[0] / (576 * math.pi
                                                        * _w_denominator(s[0], ew)), rel=1e-12)


def test_w_plus_jet_analytic():
    """u d~ -> e+ nu g: (4/9) g_s^2 g_w^4 (p_e.p_nu) [(p_u.p_e)^2 + (p_d.p_nu)^2] /
    ((p_u.p_g)(p_d.p_g) |D|^2), the crossing of e+ e- -> q qbar g (the soft-gluon limit fixes
    the normalisation: 2 C_F g_s^2 p_u.p_d / (p_u.k p_d.k) times the W + 0 jet |M|^2)."""
    pr = proc("u d~ > e+ ve g")
    ew = pr.ew
    p = momenta(3, 20, sqrt_s=300.0, seed=7)
    u, d, e, v, g = (p[:, i] for i in range(5))
    ref = (4 / 9) * GS2 * ew.gw2 ** 2 * dot(e, v) * (dot(u, e) ** 2 + dot(d, v) ** 2) \
        / (dot(u, g) * dot(d, g) * _w_denominator(2 * dot(e, v), ew))
    np.testing.assert_allclose(pr.matrix_element(p), ref, rtol=1e-12)
    # W-: u~ d -> e- ve~ g is the CP conjugate (dot products unchanged)
    np.testing.assert_allclose(proc("u~ d > e- ve~ g").matrix_element(p), ref, rtol=1e-12)


def _boost(p, beta):
    b2 = beta @ beta
    gamma = 1 / math.sqrt(1 - b2)
    bp = p[..., 1:] @ beta
    e = gamma * (p[..., 0] + bp)
    vec = p[..., 1:] + ((gamma - 1) * bp / b2 + gamma * p[..., 0])[..., None] * beta
    return np.concatenate([e[..., None], vec], axis=-1)


def test_w_two_jets_soft_limit():
    """A soft gluon factorises: |M(u d~ -> e+ ve g k)|^2 -> g_s^2 [3 S_ug + 3 S_dg - S_ud / 3]
    |M(u d~ -> e+ ve g)|^2 with S_ij = 2 p_i.p_j / (p_i.k p_j.k) (colour-correlated eikonal)."""
    born = momenta(3, 5, sqrt_s=300.0, seed=8)
    n = np.random.default_rng(9).normal(size=(5, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    ratios = []
    for lam in (1e-3, 1e-4):
        rows = []
        for i in range(5):
            k = lam * 300.0 * np.concatenate([[1.0], n[i]])
            fin = born[i, 2:]
            # boost the hard final state to recoil against k, then rebuild the beams along z
            # the Born final state is at rest with mass e_h: this boost gives it momentum -k
            e_h = fin[:, 0].sum()
            fin = _boost(fin, -k[1:] / math.hypot(e_h, lam * 300.0))
            tot = fin.sum(axis=0) + k
            ea, eb = (tot[0] + tot[3]) / 2, (tot[0] - tot[3]) / 2
            rows.append(np.concatenate([[[ea, 0, 0, ea], [eb, 0, 0, -eb]], fin, [k]]))
        p = np.array(rows)
        u, d, g, k = p[:, 0], p[:, 1], p[:, 4], p[:, 5]
        sij = lambda a, b, k=k: 2 * dot(a, b) / (dot(a, k) * dot(b, k))
        eik = GS2 * (3 * sij(u, g) + 3 * sij(d, g) - sij(u, d) / 3) / 2
        me = proc("u d~ > e+ ve g g").matrix_element(p)
        ratios.append(me / (eik * proc("u d~ > e+ ve g").matrix_element(born)))
    # corrections are O(lambda): ten times softer, about ten times closer
    assert np.abs(ratios[0] - 1).max() < 0.02
    assert np.abs(ratios[1] - 1).max() < 0.2 * np.abs(ratios[0] - 1).max()


# -- symmetries -------------------------------------------------------------------------------------
GAUGE = [("g g > g g g", 3), ("g g > g g g g", 4), ("u u~ > g g g", 3), ("u g > u g g", 3),
         ("u d~ > e+ ve g g", 4), ("g g > e+ ve d u~", 4), ("g u > e+ ve d g", 4)]


@pytest.mark.parametrize("name, nf", GAUGE)
def test_ward_identity(name, nf):
    """eps -> k for any gluon: every colour-ordered amplitude vanishes."""
    pr = proc(name)
    p = momenta(nf, 3, seed=10)
    amps = pr.helicity_amplitudes(p)
    scale = np.abs(amps).max(axis=(1, 2))
    for g in pr.gluons:
        zero = pr.helicity_amplitudes(p, gauge_leg=g)
        assert (np.abs(zero).max(axis=(1, 2)) / (scale * p[:, g, 0])).max() < 1e-10


@pytest.mark.parametrize("name, nf", GAUGE)
def test_reference_independence(name, nf):
    pr = proc(name)
    p = momenta(nf, 3, seed=11)
    refs = list(pr.references())
    for g in pr.gluons:  # another leg as reference
        refs[g] = next(j for j in range(len(refs) - 1, -1, -1) if j != g)
    other = pr.colour_sum(pr.helicity_amplitudes(p, references=refs))
    base = pr.colour_sum(pr.helicity_amplitudes(p))
    np.testing.assert_allclose(other, base, rtol=1e-11)


@pytest.mark.parametrize("name, nf, swap", [
    ("g g > g g g", 3, (2, 4)), ("g g > g g g g", 4, (3, 5)), ("u u~ > g g g", 3, (2, 3)),
    ("u d~ > e+ ve g g", 4, (4, 5)), ("g g > e+ ve d u~", 4, (0, 1))])
def test_bose_symmetry(name, nf, swap):
    pr = proc(name)
    p = momenta(nf, 4, seed=12)
    order = list(range(p.shape[1]))
    order[swap[0]], order[swap[1]] = swap[1], swap[0]
    q = p[:, order, :]
    np.testing.assert_allclose(pr.matrix_element(q), pr.matrix_element(p), rtol=1e-12)


def test_six_gluon_permutations():
    """The DDM basis singles out the first and last gluon; the full-colour |M|^2 must not:
    swap both of them with other legs."""
    pr = proc("g g > g g g g")
    p = momenta(4, 3, seed=13)
    np.testing.assert_allclose(pr.matrix_element(p[:, [1, 0, 2, 3, 5, 4], :]),
                               pr.matrix_element(p), rtol=1e-12)


@pytest.mark.parametrize("name, nf", [("g g > g g g", 3), ("u u~ > g g", 2),
                                      ("u d~ > e+ ve g", 3)])
def test_helicity_selection(name, nf):
    """The configurations left out vanish, and the parity doubling is exact."""
    pr = proc(name)
    p = momenta(nf, 3, seed=14)
    every = list(itertools.product((1, -1), repeat=len(pr.particles)))
    amps = pr.helicity_amplitudes(p, helicities=every)
    kept = set(pr.helicities)
    partners = {tuple(-h for h in c) for c in kept} if pr._parity == 2 else set()
    dropped = [i for i, c in enumerate(every) if c not in kept and c not in partners]
    assert np.abs(amps[:, dropped]).max() < 1e-12 * np.abs(amps).max()
    full = pr.colour_sum(amps) * pr.factor / pr._parity
    np.testing.assert_allclose(full, pr.matrix_element(p), rtol=1e-12)


# -- backends and autograd ----------------------------------------------------------------------------
@pytest.mark.parametrize("name, nf", [("g g > g g g", 3), ("u d~ > e+ ve g g", 4),
                                      ("u g > u g", 2)])
def test_backends_agree(backend, name, nf):
    pr = proc(name)
    p = momenta(nf, 5, seed=15)
    ref = pr.matrix_element(p)
    x = backend.asarray(p)
    out = pr.matrix_element(x)
    assert backend.is_array(out)
    assert tuple(out.shape) == (5,)
    np.testing.assert_allclose(backend.to_numpy(out), ref, rtol=1e-12)


def test_chunked_equals_single_pass():
    pr = A.Process("g g > g g g")
    p = momenta(3, 11, seed=16)
    one = pr.matrix_element(p)
    pr.chunk_size = 4
    np.testing.assert_allclose(pr.matrix_element(p), one, rtol=1e-14)
    assert pr.matrix_element(p[:0]).shape == (0,)


@pytest.mark.parametrize("name, nf", [("g g > g g g", 3), ("u d~ > e+ ve g g", 4)])
def test_torch_autograd(name, nf):
    torch = pytest.importorskip("torch")
    pr = proc(name)
    ps = PhaseSpace(RamboOnDiet(nf), 500.0)
    r0 = np.random.default_rng(17).random((3, ps.dims))
    r = torch.tensor(r0, requires_grad=True)
    pr.matrix_element(ps.map(r)[0]).sum().backward()
    grad = r.grad.numpy()
    f = lambda x: pr.matrix_element(np.asarray(ps.map(x)[0]))
    eps = 1e-6
    fd = np.stack([(f(r0 + eps * e) - f(r0 - eps * e)) / (2 * eps)
                   for e in np.eye(ps.dims)], axis=-1)
    assert np.abs(grad - fd).max() < 1e-6 * np.abs(fd).max()
