"""The fused numba phase-space kernels agree with their array-API references, keep the
mappings' exact properties, and run exactly when they should (numpy float64 on numba)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import mcint.backends as B
from mcint.phasespace import (
    BreitWigner,
    Decay,
    Diagram,
    DiagramMapping,
    Luminosity,
    PhaseSpace,
    PowerLaw,
    Propagator,
    RamboOnDiet,
    TChain,
    Uniform,
    massless_volume,
)
from mcint.phasespace.invariants import breit_wigner_forward, power_law_forward, uniform_forward
from mcint.phasespace.luminosity import luminosity_forward
from mcint.phasespace.rambo import solve_u
from mcint.phasespace.tchannel import t_channel
from mcint.phasespace.twobody import decay

pytest.importorskip("numba")

SQRT_S = 100.0
#: edge values mixed into the random numbers: near 0 and 1, and the middle
EDGES = np.array([1e-12, 1e-9, 1e-6, 1e-3, 0.5, 1 - 1e-3, 1 - 1e-6, 1 - 1e-9, 1 - 1e-12])
KERNEL_NAMES = [
    "phasespace-uniform-forward", "phasespace-breit-wigner-forward",
    "phasespace-power-law-forward", "phasespace-decay-forward", "phasespace-tchannel-forward",
    "phasespace-luminosity-forward", "phasespace-rambo-forward", "phasespace-diagram-forward",
    "phasespace-map-forward",
]


@pytest.fixture
def calls(numba_be, monkeypatch):
    """Count, per kernel name, the calls in which the fused kernel did the work."""
    counts = dict.fromkeys(KERNEL_NAMES, 0)
    for name in KERNEL_NAMES:
        impl = numba_be.kernels[name]

        def counted(*args, _impl=impl, _name=name, **kwargs):
            out = _impl(*args, **kwargs)
            counts[_name] += out is not NotImplemented
            return out

        monkeypatch.setitem(numba_be.kernels, name, counted)
    return counts


def _both(numba_be, fn, *args):
    """``(fused, reference)``: ``fn`` under the numba backend and under numpy."""
    with B.use(numba_be):
        fused = fn(*args)
    with B.use("numpy"):
        ref = fn(*args)
    fused = fused if isinstance(fused, tuple) else (fused,)
    ref = ref if isinstance(ref, tuple) else (ref,)
    assert len(fused) == len(ref)
    for a, b in zip(fused, ref):
        assert type(a) is type(b) and a.shape == b.shape and a.dtype == b.dtype
    return fused, ref


def _r(n, d, seed, edges=EDGES, frac=0.3):
    """Uniform random numbers with a fraction replaced by edge values."""
    rng = np.random.default_rng(seed)
    r = rng.random((n, d))
    mask = rng.random((n, d)) < frac
    r[mask] = rng.choice(edges, size=int(mask.sum()))
    return r


def _close(a, b, rtol=1e-12, atol=0.0, spread=None):
    """``|a - b| <= atol + rtol |b|``, widened by ``4 spread`` (see :func:`_wiggle`).

    Where the reference itself moves by over 1000 times that tolerance under the 4-ulp
    wiggle no comparison is meaningful: ``r`` within 1e-9 of 0 or 1 (the edge values mixed in
    on purpose: ``r`` near 1 has an absolute, not relative, precision of 1e-16, so ``1 - r``
    is known to 1e-7 there), or a cancellation along a t-channel line. Such points are
    skipped; they must be under a third of all (most points stay compared tightly). A few
    points (at most 0.5%) may still differ by more: four wiggles only bound the conditioning
    from below (e.g. ``|t| = 1e-13`` of ``s``, where ``1 - cos theta`` is a few ulp).
    """
    if spread is None:
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
        return
    with np.errstate(invalid="ignore"):  # 0 * inf, -inf - -inf: equal, caught by a == b
        tol = atol + rtol * np.abs(b) + 4.0 * spread
        wild = spread > 1e3 * (atol + rtol * np.abs(b))
        bad = ~(np.abs(a - b) <= tol) & ~(np.isnan(a) & np.isnan(b)) & ~(a == b) & ~wild
    assert wild.mean() < 1 / 3, f"{wild.sum()} of {wild.size} points ill-conditioned"
    assert bad.mean() <= 0.005, (f"{bad.sum()} of {bad.size} differ beyond the tolerance: max "
                                 f"|a - b| - tol = {np.max(np.abs(a - b)[bad] - tol[bad]):.3e}")


def _wiggle(fn, r, *rest):
    """How far the reference itself moves when ``r`` moves by 4 ulp towards either end.

    At ill-conditioned points (``cos theta`` within ~1e-12 of +-1, a Breit–Wigner ``tan``
    near ``pi/2``, limits that cancel along a t-channel line) an ulp-level difference in one
    transcendental function (numpy's SIMD ``exp``/``sin`` against libm's, which differ from one
    CPU to another) grows to 1e-9; there the fused and reference results may differ by that
    much and no more. Elsewhere this is ~1e-16 of the scale and the tolerance stays tight.
    Returns, per output, the largest ``|ref(r') - ref(r)|``.
    """
    eps = 4 * np.finfo(np.float64).eps
    with B.use("numpy"), np.errstate(all="ignore"):
        ref = fn(r, *rest)
        ref = ref if isinstance(ref, tuple) else (ref,)
        spread = [np.zeros(np.shape(a)) for a in ref]
        for rr in (r * (1 - eps), np.minimum(r * (1 + eps), 1.0), 1 - (1 - r) * (1 - eps),
                   np.maximum(1 - (1 - r) * (1 + eps), 0.0)):
            out = fn(rr, *rest)
            out = out if isinstance(out, tuple) else (out,)
            for k, (a, b) in enumerate(zip(out, ref)):
                d = np.abs(np.asarray(a) - np.asarray(b))
                spread[k] = np.fmax(spread[k], np.where(np.isfinite(d), d, 0.0))
    return tuple(spread)


def _check_log_weights(final, fused, ref, s, spread=None):
    """Fused vs reference log weights: 1e-12 (relative weights), except for massless RAMBO,
    whose fused weight is the exact volume and is checked against it: the reference sums
    Jacobian factors whose two-body momenta ``|p| = (M^2 - M_i^2) / 2M`` cancel as ``u -> 1``
    (its error reached 1e-12 for r within 1e-6 of 1, 3e-11 within 1e-9)."""
    if isinstance(final, RamboOnDiet) and final.massless:
        n = final.n_final
        exact = math.log(massless_volume(n, 1.0)) + (n - 2) * np.log(s)
        _close(fused, exact, rtol=0, atol=1e-13 * (1 + np.abs(exact).max()))
        _close(ref, exact, rtol=0, atol=1e-9)
    else:
        _close(fused, ref, rtol=0, atol=1e-12, spread=spread)


def _beams(n, seed):
    """Massless incoming ``p_a, p_b`` of random energies with small transverse kicks."""
    rng = np.random.default_rng(seed)
    out = []
    for sign in (1.0, -1.0):
        v = np.stack([rng.normal(0, 2, n), rng.normal(0, 2, n), sign * rng.uniform(30, 80, n)],
                     axis=1)
        out.append(np.concatenate([np.sqrt((v ** 2).sum(axis=1))[:, None], v], axis=1))
    return out[0], out[1]


def _boosted(n, seed, m_lo=20.0, m_hi=100.0):
    """Timelike parent momenta ``(n, 4)`` with masses in ``[m_lo, m_hi]``, boosted."""
    rng = np.random.default_rng(seed)
    p = np.empty((n, 4))
    p[:, 1:] = rng.normal(size=(n, 3)) * 40.0
    p[:, 0] = np.sqrt(rng.uniform(m_lo, m_hi, n) ** 2 + (p[:, 1:] ** 2).sum(axis=1))
    return p


# -- building blocks against their references -----------------------------------------------
@pytest.mark.parametrize("sampler,lo,hi", [
    (Uniform(), 1.0, 50.0), (BreitWigner(30.0, 3.0), 100.0, 4000.0),
    (BreitWigner(91.2, 2.5), 0.0, 1e6), (PowerLaw(0.0), 1.0, 50.0), (PowerLaw(0.5), 0.0, 50.0),
    (PowerLaw(0.7), 3.0, 50.0), (PowerLaw(1.0), 1.0, 1e4), (PowerLaw(1.0 - 1e-8), 13.0, 14.0),
    (PowerLaw(1.5), 2.0, 1e3), (PowerLaw(2.0), 0.5, 1e5)])
@pytest.mark.parametrize("limits", ["scalar", "array"])
def test_invariant_samplers(numba_be, calls, sampler, lo, hi, limits):
    n = 3000
    r = _r(n, 1, 1)[:, 0]
    r[:4] = [0.0, 1.0, 1e-300, 1 - 2 ** -53]
    if limits == "array":  # per-event limits, as in decay chains
        scale = np.random.default_rng(2).uniform(0.5, 1.0, n)
        lo, hi = lo * scale, hi * scale
    with np.errstate(divide="ignore"):  # r = 0 with lo = 0: s = 0, log ds/dr = -inf
        fused, ref = _both(numba_be, sampler.forward, r, lo, hi)
    for a, b, d in zip(fused, ref, _wiggle(sampler.forward, r, lo, hi)):
        _close(a, b, spread=d)
    assert sum(calls.values()) == 1


@pytest.mark.parametrize("masses", [(0.0, 0.0), (5.0, 0.0), (10.0, 30.0), (49.0, 50.0)])
@pytest.mark.parametrize("given_s", [False, True])
def test_two_body_decay(numba_be, calls, masses, given_s):
    n = 3000
    r = _r(n, 2, 3)
    r[:4] = [[0.0, 0.0], [1.0, 1.0], [0.5, 0.25], [0.0, 0.75]]
    p = _boosted(n, 4, m_lo=100.0, m_hi=200.0)
    s = (p[:, 0] ** 2 - (p[:, 1:] ** 2).sum(axis=1)) if given_s else None
    m1sq = masses[0] ** 2
    m2sq = np.full(n, masses[1] ** 2)  # arrays and scalars both
    fused, ref = _both(numba_be, decay, r, p, m1sq, m2sq, s)
    scale = np.abs(p).max()
    for a, b in zip(fused[:2], ref[:2]):
        _close(a, b, rtol=0, atol=1e-13 * scale)
    _close(fused[2], ref[2], rtol=0, atol=1e-13)
    np.testing.assert_array_equal(fused[1], p - fused[0])  # p2 = p - p1, as the reference
    assert calls["phasespace-decay-forward"] == 1


@pytest.mark.parametrize("sampler,prop_m2", [(Uniform(), 0.0), (PowerLaw(0.8), 80.0 ** 2),
                                             (PowerLaw(1.0), 10.0 ** 2),
                                             (BreitWigner(80.0, 2.0), 80.0 ** 2)])
@pytest.mark.parametrize("masses", [(0.0, 0.0), (3.0, 40.0)])
def test_t_channel_block(numba_be, calls, sampler, prop_m2, masses):
    n = 3000
    r = _r(n, 2, 5)
    pa, pb = _boosted(n, 6, 5.0, 10.0), _boosted(n, 7, 5.0, 10.0)
    pb[:, 1:] *= -1.0
    pb[:, 0] += 150.0  # well above threshold
    pa[:100, 0] = 0.5 * np.abs(pa[:100, 3])  # spacelike p_a, as deeper in a t-channel line
    args = (pa, pb, masses[0] ** 2, masses[1] ** 2, sampler, prop_m2)
    fused, ref = _both(numba_be, t_channel, r, *args)
    spread = _wiggle(t_channel, r, *args)
    scale = np.abs(pa + pb).max()
    for a, b, d in zip(fused[:2], ref[:2], spread):
        _close(a, b, rtol=0, atol=1e-13 * scale, spread=d)
    _close(fused[2], ref[2], rtol=0, atol=1e-12, spread=spread[2])
    _close(fused[0] + fused[1], pa + pb, rtol=0, atol=1e-13 * scale)
    assert calls["phasespace-tchannel-forward"] == 1


@pytest.mark.parametrize("lum", [Luminosity.flat(1e6, 50.0 ** 2),
                                 Luminosity.power_law(1e6, 50.0 ** 2),
                                 Luminosity.power_law(1.69e8, 10.0 ** 2, 1e6, nu=0.6),
                                 Luminosity.breit_wigner(1e6, 91.0, 2.5, 60.0 ** 2)])
def test_luminosity(numba_be, calls, lum):
    r = _r(3000, 2, 8)
    fused, ref = _both(numba_be, lum.forward, r)
    spread = _wiggle(lum.forward, r)
    _close(fused[0], ref[0], spread=spread[0])
    # log weights absolutely (log(-log tau) near tau = 1 cancels: see _wiggle)
    _close(fused[1], ref[1], rtol=0, atol=1e-13 * (1 + np.abs(ref[1])), spread=spread[1])
    assert calls["phasespace-luminosity-forward"] == 1


# -- whole mappings ----------------------------------------------------------------------------
def _diagrams():
    return {
        "s-chain": Diagram(Decay((Decay((0, 1), Propagator(30.0, 3.0)), Decay((2, 3)))),
                           [0.0, 1.0, 2.0, 0.5]),
        "t-chain": Diagram(TChain((0, Decay((1, 2), Propagator(20.0, 2.0)), 3),
                                  [Propagator(80.0), Propagator(10.0)]), [0.0, 1.0, 2.0, 0.0]),
        "2->2 t": Diagram(TChain((0, 1), [Propagator()]), [0.0, 0.0]),
        "2->3 t": Diagram(TChain((0, 1, 2), [Propagator(nu=0.8), Propagator(5.0, nu=1.0)]),
                          [0.0, 0.0, 4.0]),
        "s-power": Diagram(Decay((0, Decay((1, 2), Propagator(nu=0.5)))), [0.0, 0.0, 0.0]),
    }


def _mappings():
    d = _diagrams()
    return {
        "rambo n=2": PhaseSpace(RamboOnDiet(2), SQRT_S),
        "rambo n=4": PhaseSpace(RamboOnDiet(4), SQRT_S),
        "rambo n=7": PhaseSpace(RamboOnDiet(7), SQRT_S),
        "rambo massive": PhaseSpace(RamboOnDiet([1.0, 2.0, 3.0, 0.5]), 20.0),
        "rambo mixed": PhaseSpace(RamboOnDiet([0.0, 5.0, 0.0, 10.0, 0.0]), SQRT_S),
        "rambo beams": PhaseSpace(RamboOnDiet(4), 1000.0, Luminosity.power_law(1e6, 50.0 ** 2)),
        **{k: PhaseSpace(DiagramMapping(v), SQRT_S) for k, v in d.items()},
        "t-chain rest power": PhaseSpace(DiagramMapping(d["2->3 t"], PowerLaw(0.5)), SQRT_S),
        "t-chain beams bw": PhaseSpace(DiagramMapping(d["t-chain"]), 1000.0,
                                       Luminosity.breit_wigner(1e6, 91.0, 2.5, 60.0 ** 2)),
    }


MAPPINGS = list(_mappings())


@pytest.mark.parametrize("case", MAPPINGS)
def test_phase_space_map(numba_be, calls, case):
    ps = _mappings()[case]
    r = _r(2000, ps.dims, 9, edges=EDGES[1:-1])
    fused, ref = _both(numba_be, ps.map, r)
    spread = _wiggle(ps.map, r)
    scale = np.abs(ref[0][:, :2, 0]).sum(axis=1).max()
    _close(fused[0], ref[0], rtol=0, atol=1e-12 * scale, spread=spread[0])
    for a, b, d in zip(fused[1:3], ref[1:3], spread[1:3]):
        _close(a, b, spread=d)
    lum = lum_f = 0.0
    if ps.luminosity is not None:  # each side's own (their agreement: test_luminosity)
        lum = ps.luminosity.forward(r[:, :2])[1]
        with B.use(numba_be):
            lum_f = ps.luminosity.forward(r[:, :2])[1]
    s = ref[1] * ref[2] * ps.sqrt_s ** 2
    _check_log_weights(ps.final, fused[3] - lum_f, ref[3] - lum, s, spread[3])
    assert calls["phasespace-map-forward"] == 1


@pytest.mark.parametrize("case", [c for c in MAPPINGS if "beams" not in c])
def test_generate_alone(numba_be, calls, case):
    """``final.generate`` fused on its own (as processes with their own beams call it)."""
    ps = _mappings()[case]
    n = 1500
    r = _r(n, ps.final.n_random, 10, edges=EDGES[2:-2])
    pa, pb = _beams(n, 11)
    fused, ref = _both(numba_be, ps.final.generate, r, pa, pb)
    spread = _wiggle(ps.final.generate, r, pa, pb)
    scale = np.abs(pa + pb).max()
    _close(fused[0], ref[0], rtol=0, atol=1e-12 * scale, spread=spread[0])
    q = pa + pb
    _check_log_weights(ps.final, fused[1], ref[1], q[:, 0] ** 2 - (q[:, 1:] ** 2).sum(axis=1),
                       spread[1])
    name = "rambo" if isinstance(ps.final, RamboOnDiet) else "diagram"
    assert calls[f"phasespace-{name}-forward"] == 1


# -- exact properties of the fused mappings -----------------------------------------------------
@pytest.mark.parametrize("n_final", [2, 3, 4, 6, 9])
def test_fused_rambo_flat_weight_and_conservation(numba_be, n_final):
    ps = PhaseSpace(RamboOnDiet(n_final), SQRT_S)
    r = _r(4000, ps.dims, 13, edges=np.array([0.0, 1e-300, 1e-12, 1 - 1e-12, 1 - 2 ** -53]),
           frac=0.05)
    with B.use(numba_be):
        p, _, _, lw = ps.map(r)
    # r exactly at 0/1 may give a degenerate event: weight exactly zero, finite momenta
    assert np.all(np.isfinite(p)) and not np.isnan(lw).any()
    ok = lw > -np.inf
    assert ok.mean() > 0.9
    # flat: one value for every event, the exact volume
    assert np.all(lw[ok] == lw[ok][0])
    _close(np.exp(lw[ok][0]), massless_volume(n_final, SQRT_S ** 2), rtol=1e-13)
    dev = np.abs(p[ok, 2:].sum(axis=1) - p[ok, :2].sum(axis=1))
    assert dev.max() < 1e-12 * SQRT_S
    m2 = p[ok, 2:, 0] ** 2 - (p[ok, 2:, 1:] ** 2).sum(axis=-1)
    assert np.abs(m2).max() < 1e-9 * SQRT_S ** 2


@pytest.mark.parametrize("case", MAPPINGS)
def test_fused_conservation_on_shell_finite(numba_be, case):
    ps = _mappings()[case]
    r = _r(3000, ps.dims, 14)
    with B.use(numba_be), np.errstate(divide="ignore"):
        p, x1, x2, lw = ps.map(r)
    scale = np.abs(p[:, :2, 0]).sum(axis=1).max()
    assert np.all(np.isfinite(p))
    assert np.abs(p[:, 2:].sum(axis=1) - p[:, :2].sum(axis=1)).max() < 1e-12 * scale
    m2 = p[..., 0] ** 2 - (p[..., 1:] ** 2).sum(axis=-1)
    masses = np.array((0.0, 0.0) + ps.final.masses)
    assert np.abs(m2 - masses ** 2).max() < 1e-9 * scale ** 2
    assert not np.any(np.isnan(lw)) and np.all(np.isfinite(np.exp(lw)))


# -- the shared numerics ------------------------------------------------------------------------
def test_sincos_pi_is_libm_to_a_few_ulp():
    from mcint_numba.kernels import ps_math as M

    x = np.concatenate([np.linspace(-1.0, 1.0, 20001), [-1e-300, 1e-300, 0.25 + 1e-16]])
    out = np.array([M.sincos_pi(v) for v in x[::7]] + [M.sincos_pi(v) for v in x[-3:]])
    xs = np.concatenate([x[::7], x[-3:]])
    np.testing.assert_allclose(out[:, 0], np.sin(np.pi * xs), rtol=0, atol=5e-16)
    np.testing.assert_allclose(out[:, 1], np.cos(np.pi * xs), rtol=0, atol=5e-16)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 12])
def test_solve_u_block_is_bit_identical(k):
    from mcint_numba.kernels import ps_math as M
    from mcint_numba.kernels import ps_rambo

    r = _r(5000, 1, k, edges=np.array([0.0, 1e-300, 1e-17, 0.5, 1 - 2 ** -53, 1.0]))[:, 0]
    r[0] = np.nan
    tables = ps_rambo._tables((0.0,) * (k + 2))
    coef, split, r_split, n_bisect = tables[3:7]
    u = np.empty_like(r)
    M.solve_u_block(r, k, coef[k], split[k], r_split[k], n_bisect[k], u,
                    *M.block_scratch(r.shape[0]))
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(u, solve_u(r, k))


# -- when the fused kernels run, and when the reference does ------------------------------------
@pytest.mark.parametrize("case", ["rambo n=4", "s-chain"])
def test_reference_runs_for_float32(numba_be, calls, case):
    ps = _mappings()[case]
    r = np.random.default_rng(15).uniform(0.01, 0.99, (200, ps.dims))
    with B.use("numpy"):
        ref = ps.map(r)
    with B.use(numba_be):
        out32 = ps.map(r.astype(np.float32))  # the reference, in float32
    assert out32[0].dtype == np.float32
    assert sum(calls.values()) == 0
    np.testing.assert_allclose(out32[0], ref[0], rtol=0, atol=1e-3 * SQRT_S)


@pytest.mark.parametrize("lib", ["array_api_strict", "torch"])
def test_every_kernel_declines_other_arrays(numba_be, lib):
    mod = pytest.importorskip(lib)
    ps = _mappings()["t-chain beams bw"]
    rn = _r(10, ps.dims, 16)
    r, p4 = mod.asarray(rn), mod.asarray(_boosted(10, 17))
    r1, r2 = mod.asarray(rn[:, 0]), mod.asarray(rn[:, :2])
    k = numba_be.kernels
    args = {
        "phasespace-uniform-forward": (r1, 1.0, 2.0),
        "phasespace-breit-wigner-forward": (r1, 1.0, 2.0, 30.0, 3.0),
        "phasespace-power-law-forward": (r1, 1.0, 2.0, 1.0),
        "phasespace-decay-forward": (r2, p4, 0.0, 0.0),
        "phasespace-tchannel-forward": (r2, p4, p4, 0.0, 0.0, Uniform()),
        "phasespace-luminosity-forward": (r2, 1e6, Uniform(), 1.0, 1e6),
        "phasespace-rambo-forward": (r, p4, p4, (0.0,) * 4),
        "phasespace-diagram-forward": (r, p4, p4, ps.final),
        "phasespace-map-forward": (r, ps),
    }
    assert set(args) == set(KERNEL_NAMES)
    for name, a in args.items():
        assert k[name](*a) is NotImplemented, name


def test_unknown_samplers_and_subclasses_fall_back(numba_be, calls):
    class MyUniform(Uniform):
        pass

    class MyRambo(RamboOnDiet):
        pass

    r = _r(300, 2, 16)
    pa, pb = _boosted(300, 17, 1.0, 2.0), _boosted(300, 18, 1.0, 2.0)
    with B.use(numba_be):
        t_channel(r, pa, pb, 0.0, 0.0, MyUniform())
        uniform_forward(r[:, 0], 1.0, 2.0)
        ps = PhaseSpace(MyRambo(3), SQRT_S)
        ps.map(_r(300, ps.dims, 19))
    assert calls["phasespace-tchannel-forward"] == 0
    # the reference t-channel block's own sampler call is fused, and the direct one
    assert calls["phasespace-uniform-forward"] == 2
    # the map kernel inlines RamboOnDiet.generate, so it declines a subclass (which may
    # override it); the subclass's inherited generate still calls the fused RAMBO
    assert calls["phasespace-map-forward"] == 0 and calls["phasespace-rambo-forward"] == 1


def test_preconditions_are_the_references(numba_be):
    ps = PhaseSpace(RamboOnDiet(4), SQRT_S)
    bad = [np.zeros((5, ps.dims - 1)), np.zeros(ps.dims), np.zeros((5, ps.dims), dtype=int)]
    for r in bad:
        errors = []
        for be in ("numpy", numba_be):
            with B.use(be), pytest.raises((ValueError, TypeError)) as info:
                ps.map(r)
            errors.append((info.type, str(info.value)))
        assert errors[0] == errors[1]
    # a kernel called with too few random numbers declines; the reference's error follows
    r = np.full((5, 3), 0.5)
    pa, pb = _boosted(5, 20), _boosted(5, 21)
    assert numba_be.kernels["phasespace-rambo-forward"](r, pa, pb, (0.0,) * 4) is NotImplemented


def test_backend_fixture_runs_fused_only_on_numba(backend, calls):
    """On every backend the map equals numpy's; the fused kernels do the work only on numba."""
    ps = _mappings()["t-chain"]
    r = _r(200, ps.dims, 22)
    with B.use("numpy"):
        ref = ps.map(r)
    with B.use(backend):
        out = ps.map(backend.asarray(r))
    for a, b in zip(out, ref):
        np.testing.assert_allclose(backend.to_numpy(a), b, rtol=1e-12, atol=1e-10)
    fused = calls["phasespace-map-forward"]
    assert fused == (1 if backend.name == "numba" else 0)


def test_massive_rambo_weight_overflow_fallback(numba_be):
    """Extreme steps (u -> 0 with masses) take the per-factor logs, as the reference."""
    ps = PhaseSpace(RamboOnDiet([1e-3, 2.0, 1e-3, 3.0]), 1e4)
    r = _r(500, ps.dims, 23, edges=np.array([1e-300, 1e-200, 1 - 1e-12]), frac=0.5)
    fused, ref = _both(numba_be, ps.map, r)
    ok = np.isfinite(ref[3])
    assert ok.mean() > 0.5
    _close(fused[3][ok], ref[3][ok], rtol=0, atol=1e-9)
    assert math.isfinite(float(np.max(fused[3][ok])))


def test_all_kernels_registered(numba_be):
    missing = [n for n in KERNEL_NAMES if n not in numba_be.kernels]
    assert not missing
    for fn in (uniform_forward, breit_wigner_forward, power_law_forward, decay, t_channel,
               luminosity_forward):
        assert fn.kernel_name in numba_be.kernels


def test_lone_t_channel_program_runs_block_wise(numba_be):
    """A 2 -> 2 t-channel diagram is one t-channel block: it runs through the block-wise
    kernel (ps_tchannel.rows), longer lines and s-channel chains through the interpreter."""
    from mcint_numba.kernels import ps_diagram

    d = _diagrams()
    lone = ps_diagram.lone_t_channel(ps_diagram.program_for(DiagramMapping(d["2->2 t"])))
    assert lone is not None and lone[0] == 0 and lone[1] == lone[2] == 0.0
    for name in ("t-chain", "2->3 t", "s-chain"):
        assert ps_diagram.lone_t_channel(ps_diagram.program_for(DiagramMapping(d[name]))) is None
    # massive legs and a massive propagator with a power law: the same as the reference
    ps = PhaseSpace(DiagramMapping(Diagram(TChain((0, 1), [Propagator(80.0, nu=0.8)]),
                                           [3.0, 40.0])), SQRT_S)
    prog = ps_diagram.program_for(ps.final)
    assert ps_diagram.lone_t_channel(prog)[1:3] == (9.0, 1600.0)
    r = _r(2000, ps.dims, 31, edges=EDGES[2:-2])
    fused, ref = _both(numba_be, ps.map, r)
    spread = _wiggle(ps.map, r)
    _close(fused[0], ref[0], rtol=0, atol=1e-12 * SQRT_S, spread=spread[0])
    _close(fused[3], ref[3], rtol=0, atol=1e-12, spread=spread[3])
