"""The 2 -> 3 block in ``(t, s~)``: the volume, the numerical Jacobian, round trips, the identity
with the flat-phi t-channel block, conservation on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_phasespace import _dalitz
from test_phasespace_threebody import _phi3

from mcint.phasespace import (
    BreitWigner,
    PhaseSpace,
    PowerLaw,
    TwoToThree,
    Uniform,
    two_to_three,
    two_to_three_inverse,
)
from mcint.phasespace import kinematics as K
from mcint.phasespace.tchannel import t_channel

SQRT_S = 100.0

MAPPINGS = {
    "flat": TwoToThree([0.0, 0.0, 0.0]),
    "flat no arcsine": TwoToThree([0.0, 0.0, 0.0], arcsine=False),
    "s23 power": TwoToThree([0.0, 0.0, 0.0], s23_sampler=PowerLaw(0.7)),
    "massive": TwoToThree([5.0, 10.0, 20.0], s12_sampler=BreitWigner(40.0, 5.0),
                          t1=(PowerLaw(0.8), 30.0 ** 2), t2=(PowerLaw(1.0), 10.0 ** 2),
                          s23_sampler=BreitWigner(45.0, 8.0)),
}


def _volume(masses):
    if not any(masses):
        return SQRT_S ** 2 / (256 * math.pi ** 3)
    return _phi3(SQRT_S, masses)


@pytest.mark.parametrize("case", list(MAPPINGS))
def test_volume(case):
    """The integral of the weight is the three-body volume, whatever the samplers."""
    fs = MAPPINGS[case]
    ps = PhaseSpace(fs, SQRT_S)
    r = np.random.default_rng(1).random((200_000, 5))
    w = np.exp(ps.map(r)[3])
    mean, err = w.mean(), w.std() / math.sqrt(len(w))
    exact = _volume(list(fs.masses))
    assert abs(mean - exact) < 4 * err and err < 0.01 * exact


@pytest.mark.parametrize("case", list(MAPPINGS))
def test_log_weight_matches_numerical_jacobian(case, num_log_det):
    """dPhi_3 = dm12^2 dm23^2 dcos dphi dchi / (1024 pi^5 s) in Dalitz + Euler coordinates."""
    ps = PhaseSpace(MAPPINGS[case], SQRT_S)
    r = np.random.default_rng(5).uniform(0.02, 0.98, (300, 5))
    r[:, 4] = np.where(np.abs(r[:, 4] - 0.5) < 0.02, 0.3, r[:, 4])  # away from the fold

    def y(rr):
        return _dalitz(ps.map(rr)[0][:, 2:])

    yy = y(r)
    keep = (np.abs(yy[:, 3]) < 3.0) & (np.abs(yy[:, 4]) < 3.0) & (np.abs(yy[:, 2]) < 0.99)
    r = r[keep]
    lw = ps.map(r)[3]
    expect = num_log_det(y, r) - math.log(1024 * math.pi ** 5 * SQRT_S ** 2)
    np.testing.assert_allclose(lw, expect, atol=1e-5)


def _beams(n, seed):
    """Off-axis, unequal incoming momenta (massless) and a recoil p3 (massive) well inside."""
    rng = np.random.default_rng(seed)
    out = []
    for sign in (1.0, -1.0):
        v = np.stack([rng.normal(0, 3, n), rng.normal(0, 3, n), sign * rng.uniform(40, 60, n)],
                     axis=1)
        out.append(np.concatenate([np.sqrt((v ** 2).sum(axis=1))[:, None], v], axis=1))
    return out


def test_flat_arcsine_block_is_the_flat_phi_t_channel_block():
    """With a flat ``s~`` and the arcsine fold, ``dphi`` is flat: the weight is exactly the
    (t, phi) block's, and ``t`` is the same function of ``r_t``."""
    n = 2000
    pa, pb = _beams(n, 2)
    rng = np.random.default_rng(3)
    p3 = np.empty((n, 4))
    p3[:, 1:] = rng.normal(0, 8, (n, 3))
    p3[:, 0] = np.sqrt(25.0 + (p3[:, 1:] ** 2).sum(axis=1))
    r = rng.uniform(1e-3, 1 - 1e-3, (n, 2))
    r[:, 1] = np.where(np.abs(r[:, 1] - 0.5) < 1e-3, 0.25, r[:, 1])  # the fold: phi = pi
    for sampler, m2 in [(Uniform(), 0.0), (PowerLaw(0.8), 30.0 ** 2)]:
        p1, p2, lw = two_to_three(r, pa, pb, p3, 4.0, 9.0, sampler, Uniform(), m2)
        q1, q2, lw_t = t_channel(r, pa, pb - p3, 4.0, 9.0, sampler, m2)
        np.testing.assert_allclose(lw, lw_t, rtol=0, atol=1e-10)
        np.testing.assert_allclose(K.mass2(pa - p1), K.mass2(pa - q1), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(p1 + p2, pa + pb - p3, rtol=0, atol=1e-12 * 120)
        np.testing.assert_allclose(K.mass2(p1), 4.0, atol=1e-9 * 120 ** 2)


@pytest.mark.parametrize("s_sampler", [Uniform(), PowerLaw(0.7), BreitWigner(46.0, 3.0)])
def test_weight_finite_and_continuous_at_the_s_tilde_limits(s_sampler):
    """With the arcsine fold the weight at ``r_s`` = 0, 1/2, 1 (``s~`` on a limit, where
    ``du'/dr_s`` and ``sqrt((s~_max - s~)(s~ - s~_min))`` both vanish) is the finite limit, and
    ``r_s`` 1e-12 .. 1e-7 away gives the same (no 0/0, no lost digits)."""
    pa, pb = (np.repeat(p, 9, axis=0) for p in _beams(1, 8))
    p3 = np.zeros((9, 4))
    p3[:, 0], p3[:, 1] = 20.0, 5.0
    r_s = [0.0, 1e-12, 1e-7, 0.5, 0.5 + 1e-12, 0.5 - 1e-7, 1 - 1e-7, 1 - 1e-12, 1.0]
    r = np.stack([np.full(9, 0.3), r_s], axis=1)
    lw = two_to_three(r, pa, pb, p3, 0.0, 0.0, Uniform(), s_sampler)[2]
    assert np.all(np.isfinite(lw))
    ends, middle = lw[[0, 1, 2, 6, 7, 8]], lw[3:6]
    np.testing.assert_allclose(ends, ends[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(middle, middle[0], rtol=0, atol=1e-6)


def test_block_samples_s_tilde_by_its_sampler():
    """``s~ = (p2 + p3)^2`` is what the ``s~`` sampler drew: a Breit–Wigner peak shows."""
    n = 20000
    pa, pb = _beams(n, 4)
    p3 = np.zeros((n, 4))
    p3[:, 0], p3[:, 3] = 20.0, 5.0
    r = np.random.default_rng(5).random((n, 2))
    bw = BreitWigner(46.0, 0.2)
    p1, p2, lw = two_to_three(r, pa, pb, p3, 0.0, 0.0, Uniform(), bw)
    st = K.mass2(p2 + p3)
    near = np.abs(np.sqrt(np.maximum(st, 0)) - 46.0) < 0.1
    flat = two_to_three(r, pa, pb, p3, 0.0, 0.0, Uniform(), Uniform())[1]
    assert near.mean() > 3 * (np.abs(np.sqrt(np.maximum(K.mass2(flat + p3), 0)) - 46.0)
                              < 0.1).mean()
    r_back, lw_back = two_to_three_inverse(p1, pa, pb, p3, Uniform(), bw, m1sq=0.0, m2sq=0.0)
    inner = np.all((r > 1e-3) & (r < 1 - 1e-3), axis=1) & (np.abs(r[:, 1] - 0.5) > 1e-3)
    np.testing.assert_allclose(r_back[inner], r[inner], rtol=0, atol=1e-8)
    np.testing.assert_allclose(lw_back[inner], lw[inner], rtol=0, atol=1e-7)


@pytest.mark.parametrize("case", list(MAPPINGS))
def test_conservation_onshell_round_trip(backend, case):
    fs = MAPPINGS[case]
    n = 1000
    pa, pb = _beams(n, 6)
    r_np = np.random.default_rng(7).uniform(1e-4, 1 - 1e-4, (n, 5))
    r_np[:, 4] = np.where(np.abs(r_np[:, 4] - 0.5) < 1e-4, 0.25, r_np[:, 4])
    p, lw = fs.generate(backend.asarray(r_np), backend.asarray(pa), backend.asarray(pb))
    p, lw = backend.to_numpy(p), backend.to_numpy(lw)
    assert np.all(np.isfinite(lw)) and np.all(np.isfinite(p))
    scale = (pa + pb)[:, 0].max()
    assert np.abs(p.sum(axis=1) - (pa + pb)).max() < 1e-12 * scale
    m2 = p[..., 0] ** 2 - (p[..., 1:] ** 2).sum(axis=-1)
    assert np.abs(m2 - np.asarray(fs.masses) ** 2).max() < 1e-9 * scale ** 2
    rb, lwb = fs.invert(backend.asarray(p), backend.asarray(pa), backend.asarray(pb))
    rb, lwb = backend.to_numpy(rb), backend.to_numpy(lwb)
    # r near the s~ limits is ill-conditioned (s~ is known to ulp(s) only): compare the bulk
    np.testing.assert_allclose(np.median(np.abs(rb - r_np)), 0, atol=1e-13)
    assert np.quantile(np.abs(rb - r_np).max(axis=1), 0.99) < 1e-9
    assert np.quantile(np.abs(lwb - lw), 0.99) < 1e-8


def test_autograd_through_two_to_three():
    torch = pytest.importorskip("torch")
    fs = MAPPINGS["massive"]
    ps = PhaseSpace(fs, SQRT_S)
    r = torch.rand(64, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    r = (0.01 + 0.98 * r).requires_grad_(True)
    p, _, _, lw = ps.map(r)
    (p.sum() + lw.sum()).backward()
    assert torch.all(torch.isfinite(r.grad))


def test_two_to_three_bad_input():
    with pytest.raises(ValueError, match="3 masses"):
        TwoToThree([0.0, 0.0])
    with pytest.raises(ValueError, match="positive lower limit"):
        TwoToThree([0.0, 0.0, 0.0], s12_sampler=PowerLaw(1.0))
    with pytest.raises(ValueError, match="mass"):
        TwoToThree([0.0, -1.0, 0.0])


# -- the fused numba kernel (backends/mcint_numba/kernels/ps_twotothree.py) --------------------
@pytest.mark.parametrize("samplers", [
    (Uniform(), 0.0, Uniform(), True), (Uniform(), 0.0, Uniform(), False),
    (PowerLaw(0.8), 30.0 ** 2, PowerLaw(0.7), True),
    (BreitWigner(80.0, 2.0), 80.0 ** 2, BreitWigner(46.0, 3.0), True)])
@pytest.mark.parametrize("masses", [(0.0, 0.0), (3.0, 10.0)])
def test_fused_block_matches_reference(numba_be, samplers, masses):
    from test_phasespace_kernels import _close, _wiggle

    import mcint.backends as B

    t_s, prop, s_s, arcsine = samplers
    n = 3000
    pa, pb = _beams(n, 11)
    rng = np.random.default_rng(12)
    p3 = np.empty((n, 4))
    p3[:, 1:] = np.clip(rng.normal(0, 8, (n, 3)), -20, 20)
    p3[:, 0] = np.sqrt(25.0 + (p3[:, 1:] ** 2).sum(axis=1))
    r = rng.random((n, 2))
    mask = rng.random(r.shape) < 0.2
    edges = np.array([0.0, 1e-12, 1e-6, 0.5, 0.5 + 1e-9, 1 - 1e-6, 1 - 1e-12, 1.0])
    r[mask] = rng.choice(edges, size=int(mask.sum()))
    args = (pa, pb, p3, masses[0] ** 2, masses[1] ** 2, t_s, s_s, prop, arcsine)

    def ref_fn(rr, *a):
        return two_to_three.reference(rr, *a)

    fused = numba_be.kernels["phasespace-two-to-three-forward"](r, *args)
    assert fused is not NotImplemented
    with np.errstate(all="ignore"):
        ref = ref_fn(r, *args)
    spread = _wiggle(ref_fn, r, *args)
    scale = (pa + pb)[:, 0].max()
    for a, b, d in zip(fused[:2], ref[:2], spread[:2]):
        _close(a, b, rtol=0, atol=1e-13 * scale, spread=d)
    _close(fused[2], ref[2], rtol=0, atol=1e-12, spread=spread[2])
    np.testing.assert_allclose(fused[0] + fused[1], pa + pb - p3, rtol=0, atol=1e-13 * scale)
    with B.use(numba_be):  # through the dispatch
        np.testing.assert_array_equal(two_to_three(r, *args)[0], fused[0])


def test_fused_block_declines(numba_be):
    class MyUniform(Uniform):
        pass

    k = numba_be.kernels["phasespace-two-to-three-forward"]
    pa, pb = _beams(5, 1)
    p3 = np.zeros((5, 4))
    p3[:, 0] = 10.0
    r = np.full((5, 2), 0.3)
    assert k(r, pa, pb, p3, 0.0, 0.0, MyUniform()) is NotImplemented
    assert k(r.astype(np.float32), pa, pb, p3, 0.0, 0.0) is NotImplemented
