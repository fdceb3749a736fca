"""Phase-space throughput: events per second of mcint's mappings, per backend, side by side.

    python benchmarks/bench_phasespace.py [--n 200000] [--section all|backends|madspace]
                                          [--n-madspace 1000000] [--rows t-channel,Chili]

Section ``madspace`` (when ``madspace`` is installed, ``pip install 'mcint[bench]'``): mcint on
numpy and numba against madspace 0.2.1 (MadGraph7's C++/SIMD phase-space engine), building
block by block, on the same random numbers, one thread each (madspace ``Context(1)``), process
CPU time, best of 3; ratio = madspace time / mcint numba time (> 1: mcint faster). Where the
mappings correspond (decay, t-channel block, VEGAS, luminosity) the weights are compared too:
madspace's weights carry no ``(2 pi)^(4 - 3n)`` factors, so the ratio must be one constant
("w ratio spread"). madspace's RAMBO is FastRambo (a rational-quadratic stand-in for RAMBO on
diet's mass equation: not flat, not the same map). Each row also checks both sides' momenta
(conservation and on-shell masses relative to sqrt(s)) and weights (all finite). Rows for the
three-body decay, the 2 -> 3 block in ``(t, s~)`` (weights compared: the same measure) and
Chili follow (``_new_mapping_rows``); ``--rows`` runs only the rows whose label contains one
of the given substrings.

Contenders, each forward map + weight on the same random numbers: RAMBO on diet (massless,
n = 4 and 6), an s-channel diagram chain (4 particles, Breit–Wigner), the Drell–Yan integrand
(map + |M|^2 + PDFs + prior, one channel), and the classic RAMBO (Kleiss–Stirling–Ellis,
plain numpy, 4n random numbers, not invertible) as an outside reference for n = 4 and 6, and
RAMBO on diet with the 54-step bisection for the intermediate masses that ``solve_u`` replaced
(numpy; same mapping, slower root finding); and an LHAPDF-style grid PDF (``LHAGrid``, synthetic
100 x 40 knots in 2 subgrids, one flavour) evaluated log-bicubically and bilinearly. One thread for everyone; best of 3. The machine is
shared: compare ratios from one run only.
"""

from __future__ import annotations

import os

for _k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_k] = "1"
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import mcint.backends as B  # noqa: E402
import mcint.phasespace.rambo as rambo_mod  # noqa: E402
from mcint.pdf import LHAGrid  # noqa: E402
from mcint.phasespace import Decay, Diagram, DiagramMapping, PhaseSpace, Propagator, RamboOnDiet  # noqa: E402
from mcint.processes import DrellYan  # noqa: E402


def classic_rambo(r: np.ndarray, n: int, sqrt_s: float) -> np.ndarray:
    """Kleiss–Stirling–Ellis RAMBO, massless, numpy (the reference contender)."""
    r = r.reshape(-1, n, 4)
    c = 2 * r[..., 0] - 1
    s = np.sqrt(1 - c * c)
    f = 2 * np.pi * r[..., 1]
    q0 = -np.log(r[..., 2] * r[..., 3])
    q = np.stack([q0, q0 * s * np.cos(f), q0 * s * np.sin(f), q0 * c], axis=-1)
    big = q.sum(axis=1)
    m = np.sqrt(big[:, 0] ** 2 - (big[:, 1:] ** 2).sum(-1))
    b = -big[:, 1:] / m[:, None]
    x = sqrt_s / m
    g = big[:, 0] / m
    a = 1 / (1 + g)
    bq = (b[:, None, :] * q[..., 1:]).sum(-1)
    p0 = x[:, None] * (g[:, None] * q[..., 0] + bq)
    pv = x[:, None, None] * (q[..., 1:] + b[:, None, :] * q[..., :1] + a[:, None, None]
                             * bq[..., None] * b[:, None, :])
    return np.concatenate([p0[..., None], pv], axis=-1)


def bisect_u(r, k):
    """The previous solver: 54 bisection steps on ``(k+1) u^k - k u^(k+1) = r`` (reference)."""
    lo, hi = np.zeros_like(r), np.ones_like(r)
    for _ in range(54):
        mid = 0.5 * (lo + hi)
        below = mid ** k * ((k + 1) - k * mid) < r
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def synthetic_grid(interpolation: str) -> LHAGrid:
    """A 100 x (10 + 30) knot, 2-subgrid lhagrid1 set of a PDF-like shape, in a temp file."""
    import tempfile
    from pathlib import Path

    xs = np.geomspace(1e-6, 1.0, 100)
    blocks = []
    for qs in (np.geomspace(1.4, 4.75, 10), np.geomspace(4.75, 1e5, 30)):
        v = xs[:, None] ** -0.2 * (1 - xs[:, None]) ** 3 * (1 + 0.05 * np.log(qs[None, :] ** 2))
        blocks.append("\n".join([" ".join(f"{a:.17e}" for a in xs), " ".join(f"{a:.17e}" for a in qs), "21",
                                 *(f"{a:.17e}" for a in v.ravel())]))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.dat"
        path.write_text("Format: lhagrid1\n---\n" + "\n---\n".join(blocks) + "\n---\n")
        return LHAGrid.read(path, interpolation=interpolation)


def best(fn, reps: int = 3) -> float:
    fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)

# -- mcint vs madspace ------------------------------------------------------------------------
SQRT_S = 100.0


def cpu_best(fn, reps: int = 3) -> float:
    """Best of ``reps`` process CPU times (after one warm-up call), seconds."""
    fn()
    ts = []
    for _ in range(reps):
        t = time.process_time()
        fn()
        ts.append(time.process_time() - t)
    return min(ts)


def momenta_check(p: np.ndarray, p_in: np.ndarray, masses, scale: float) -> str:
    """``cons`` max |sum p_out - p_in| / scale, ``shell`` max |p^2 - m^2| / scale^2."""
    cons = np.abs(p.sum(axis=1) - p_in).max() / scale
    m2 = p[..., 0] ** 2 - (p[..., 1:] ** 2).sum(axis=-1)
    shell = np.abs(m2 - np.asarray(masses) ** 2).max() / scale ** 2
    return f"cons {cons:.0e} shell {shell:.0e}"


def weight_check(w: np.ndarray, other: np.ndarray | None = None) -> str:
    """Finite fraction; with ``other``, the spread of ``w / other`` (0: one constant)."""
    out = f"w finite {np.isfinite(w).mean():.3f}"
    if other is not None:
        ratio = w / other
        out += f" w ratio spread {np.std(ratio) / abs(np.mean(ratio)):.0e}"
    return out


def _ms_runtime(ms, ctx, mapping):
    return ms.FunctionRuntime(mapping.forward_function(), ctx)


def _ms_vegas(ms, ctx, grid: np.ndarray):
    """A madspace VEGAS map holding ``grid`` (written through its .npy global format)."""
    import tempfile
    from pathlib import Path

    m = ms.VegasMapping(grid.shape[0], grid.shape[1] - 1)
    m.initialize_globals(ctx)
    with tempfile.TemporaryDirectory() as d:
        ctx.save_globals(d)
        f = Path(d) / f"{m.grid_name()}.npy"
        raw = f.read_bytes()
        head = raw[:10 + int.from_bytes(raw[8:10], "little")]  # its header, Fortran order
        f.write_bytes(head + np.asarray(grid[None], dtype="<f8").tobytes(order="F"))
        ctx.delete_global(m.grid_name())
        ctx.load_globals(d)
    return _ms_runtime(ms, ctx, m)


def _cm_beams(n: int) -> tuple[np.ndarray, np.ndarray]:
    e = 0.5 * SQRT_S
    pa, pb = np.zeros((n, 4)), np.zeros((n, 4))
    pa[:, 0], pa[:, 3], pb[:, 0], pb[:, 3] = e, e, e, -e
    return pa, pb


def _madspace_rows(ms, ctx, n: int, rng: np.random.Generator) -> list:
    """``(label, mcint_fn, madspace_fn | None, check(mcint_out, madspace_out))`` per row."""
    from mcint.phasespace import Luminosity, TChain, Uniform
    from mcint.phasespace.tchannel import t_channel
    from mcint.phasespace.twobody import decay
    from mcint.vegas import AdaptiveMap

    rows = []
    pa, pb = _cm_beams(n)
    p_in = pa + pb
    for k in (4, 6):  # RAMBO, final state only (c.m. frame) and the full map with beams
        fs = RamboOnDiet(k)
        r = rng.random((n, fs.n_random))
        cols = [np.ascontiguousarray(r[:, j]) for j in range(fs.n_random)]
        e_cm = np.full(n, SQRT_S)
        rt = _ms_runtime(ms, ctx, ms.FastRamboMapping(k, True, True))

        def check_fs(a, b, k=k):
            pb_ = np.stack(b[:-1], axis=1)
            return (f"mcint {momenta_check(a[0], p_in, [0.0] * k, SQRT_S)} "
                    f"{weight_check(np.exp(a[1]))}; madspace "
                    f"{momenta_check(pb_, p_in, [0.0] * k, SQRT_S)} {weight_check(b[-1])}")

        rows.append((f"RAMBO n={k} final state",
                     lambda fs=fs, r=r: fs.generate(r, pa, pb),
                     lambda rt=rt, cols=cols, e_cm=e_cm: rt(*cols, e_cm), check_fs))
        ps = PhaseSpace(fs, SQRT_S)
        rt_full = _ms_runtime(ms, ctx, ms.PhaseSpaceMapping([0.0] * (k + 2), SQRT_S,
                                                            leptonic=True))

        def check_full(a, b, k=k):
            return (f"mcint {momenta_check(a[0][:, 2:], p_in, [0.0] * k, SQRT_S)} "
                    f"{weight_check(np.exp(a[3]))}; madspace "
                    f"{momenta_check(b[0][:, 2:], p_in, [0.0] * k, SQRT_S)} "
                    f"{weight_check(b[3])}")

        rows.append((f"RAMBO n={k} full (beams)", lambda ps=ps, r=r: ps.map(r),
                     lambda rt=rt_full, r=r: rt(r), check_full))
    # 2 -> 2 t-channel block: |t| flat and phi flat on both sides (phi differs by pi)
    r = rng.random((n, 2))
    r_t, r_phi = np.ascontiguousarray(r[:, 0]), np.ascontiguousarray(r[:, 1])
    zero = np.zeros(n)
    rt = _ms_runtime(ms, ctx, ms.TwoToTwoParticleScattering(True))

    def check_2(a, b):
        w_a = np.exp(a[2])
        return (f"mcint {momenta_check(np.stack(a[:2], 1), p_in, [0.0, 0.0], SQRT_S)} "
                f"{weight_check(w_a, b[2])}; madspace "
                f"{momenta_check(np.stack(b[:2], 1), p_in, [0.0, 0.0], SQRT_S)} "
                f"{weight_check(b[2])}")

    rows.append(("2->2 t-channel block", lambda r=r: t_channel(r, pa, pb, 0.0, 0.0, Uniform()),
                 lambda rt=rt: rt(r_phi, r_t, zero, zero, pa, pb), check_2))
    ps = PhaseSpace(DiagramMapping(Diagram(TChain((0, 1), [Propagator()]), [0.0, 0.0])), SQRT_S)
    L = ms.LineRef
    topo = ms.Topology(ms.Diagram([0.0, 0.0], [0.0, 0.0], [ms.Propagator()],
                                  [[L("i0"), L("o0"), L("p0")], [L("i1"), L("o1"), L("p0")]]))
    rt_full = _ms_runtime(ms, ctx, ms.PhaseSpaceMapping(topo, SQRT_S, leptonic=True,
                                                        invariant_power=0.0))

    def check_2full(a, b):
        return (f"mcint {momenta_check(a[0][:, 2:], p_in, [0.0, 0.0], SQRT_S)} "
                f"{weight_check(np.exp(a[3]), b[3])}; madspace "
                f"{momenta_check(b[0][:, 2:], p_in, [0.0, 0.0], SQRT_S)} {weight_check(b[3])}")

    rows.append(("2->2 t-channel full", lambda ps=ps, r=r: ps.map(r),
                 lambda rt=rt_full, r=r: rt(r), check_2full))
    # 1 -> 2 decay of boosted parents (mass 100) into masses 10 and 30
    par = np.empty((n, 4))
    par[:, 1:] = rng.normal(size=(n, 3)) * 50.0
    par[:, 0] = np.sqrt(SQRT_S ** 2 + (par[:, 1:] ** 2).sum(axis=1))
    m0, m1, m2 = np.full(n, SQRT_S), np.full(n, 10.0), np.full(n, 30.0)
    rt = _ms_runtime(ms, ctx, ms.TwoBodyDecay(False))
    scale = par[:, 0].max()

    def check_dec(a, b):
        return (f"mcint {momenta_check(np.stack(a[:2], 1), par, [10.0, 30.0], scale)} "
                f"{weight_check(np.exp(a[2]), b[2])}; madspace "
                f"{momenta_check(np.stack(b[:2], 1), par, [10.0, 30.0], scale)} "
                f"{weight_check(b[2])}")

    rows.append(("1->2 decay (boosted)", lambda r=r: decay(r, par, 100.0, 900.0),
                 lambda rt=rt: rt(r_phi, r_t, m0, m1, m2, par), check_dec))
    # VEGAS map, 8-d, 64 bins, a non-uniform grid (the same one on both sides)
    w = rng.random((8, 64)) ** 3 + 1e-3
    c = np.cumsum(w, axis=1)
    grid = np.concatenate([np.zeros((8, 1)), c / c[:, -1:]], axis=1)
    grid[:, -1] = 1.0
    y = rng.random((n, 8))
    vmap = AdaptiveMap(8, grid=grid)
    rt_v = _ms_vegas(ms, ctx, grid)

    def check_v(a, b):
        return (f"x max diff {np.abs(a[0] - b[0]).max():.0e} mcint {weight_check(a[1], b[1])}; "
                f"madspace {weight_check(b[1])}")

    rows.append(("VEGAS map 8-d 64 bins", lambda: vmap.forward_jac(y), lambda: rt_v(y), check_v))
    # luminosity: s_hat ~ 1/s_hat (nu = 1) on both sides; madspace's x1 = tau^r_x, i.e. r_x = 1 - r2
    s_had, s_min = 1.69e8, 50.0 ** 2
    lum = Luminosity.power_law(s_had, s_min)
    r_s, r_x = r_t, np.ascontiguousarray(1.0 - r[:, 1])
    try:
        rt_l = _ms_runtime(ms, ctx, ms.Luminosity(s_had, s_min, s_had, 1.0))
        ms_lum = lambda: rt_l(r_s, r_x)  # noqa: E731
    except Exception as exc:  # noqa: BLE001 - madspace 0.2.1: Luminosity cannot be built
        print(f"(madspace Luminosity unavailable: {type(exc).__name__}: {exc})")
        ms_lum = None

    def check_l(a, b):
        x = a[0]
        ok = f"mcint x in (0,1] {np.all((x > 0) & (x <= 1)):d} {weight_check(np.exp(a[1]))}"
        if b is None:
            return ok
        return ok + f"; x1 max diff {np.abs(x[:, 0] - b[0]).max():.0e} {weight_check(b[-1])}"

    rows.append(("luminosity (1/s_hat)", lambda: lum.forward(r), ms_lum, check_l))
    rows += _new_mapping_rows(ms, ctx, n, rng)
    return rows


def _new_mapping_rows(ms, ctx, n: int, rng: np.random.Generator) -> list:
    """Rows for the mappings that are array-API code only (no fused kernel: numba runs the
    numpy code): three-body decay, the 2 -> 3 block, Chili. The two sides parametrise
    differently (madspace: energies and angles for 1 -> 3, a different pT map and recoil-
    relative azimuths for Chili), so only validity is compared; the 2 -> 3 block with flat
    ``t`` and ``s~`` (arcsine) is the same measure on both sides: weights to one constant."""
    from mcint.phasespace import Chili, two_to_three
    from mcint.phasespace.threebody import three_body_decay

    rows = []
    # 1 -> 3 decay of a parent at rest, masses 10, 20, 30 (mcint: s_12 flat and two decays)
    masses = [10.0, 20.0, 30.0]
    par = np.zeros((n, 4))
    par[:, 0] = SQRT_S
    r5 = rng.random((n, 5))
    cols = [np.ascontiguousarray(r5[:, j]) for j in range(5)]
    rt = _ms_runtime(ms, ctx, ms.ThreeBodyDecay(False))
    mcol = [np.full(n, m) for m in [SQRT_S] + masses]

    def check_3(a, b):
        return (f"mcint {momenta_check(a[0], par, masses, SQRT_S)} "
                f"{weight_check(np.exp(a[1]))}; madspace "
                f"{momenta_check(np.stack(b[:3], 1), par, masses, SQRT_S)} "
                f"{weight_check(b[3])}")

    rows.append(("1->3 decay (at rest)", lambda: three_body_decay(r5, par, masses),
                 lambda: rt(*cols, *mcol, par), check_3))
    # 2 -> 3 block: p_a, p_b along z, a recoil p3 (mass 5) fixed; flat t and s~ (arcsine)
    pa, pb = _cm_beams(n)
    p3 = np.zeros((n, 4))
    p3[:, 1:] = np.clip(rng.normal(size=(n, 3)) * 10.0, -25.0, 25.0)  # well inside
    p3[:, 0] = np.sqrt(25.0 + (p3[:, 1:] ** 2).sum(axis=1))
    r2 = rng.random((n, 2))
    rt_b = _ms_runtime(ms, ctx, ms.TwoToThreeParticleScattering())
    choice = (r2[:, 1] >= 0.5).astype(np.int32)
    u = np.ascontiguousarray(np.abs(2 * r2[:, 1] - 1))
    r_t = np.ascontiguousarray(r2[:, 0])
    zero = np.zeros(n)
    p12 = pa + pb - p3

    def check_b(a, b):
        return (f"mcint {momenta_check(np.stack(a[:2], 1), p12, [0.0, 0.0], SQRT_S)} "
                f"{weight_check(np.exp(a[2]), b[2])}; madspace "
                f"{momenta_check(np.stack(b[:2], 1), p12, [0.0, 0.0], SQRT_S)} "
                f"{weight_check(b[2])}")

    rows.append(("2->3 block (s~, t)",
                 lambda: two_to_three(r2, pa, pb, p3, 0.0, 0.0),
                 lambda: rt_b(choice, u, r_t, zero, zero, pa, pb, p3), check_b))
    # Chili, 4 massless jets at 13 TeV, pT > 20 GeV (first three), |y| < 5
    e_lhc, k = 13000.0, 4
    chili = Chili([0.0] * k, e_lhc, pt_min=[20.0] * (k - 1) + [0.0], y_max=5.0)
    rc = rng.random((n, chili.dims))
    ccols = [np.ascontiguousarray(rc[:, j]) for j in range(chili.dims)]
    rt_c = _ms_runtime(ms, ctx, ms.ChiliMapping(k, [5.0] * k, [20.0] * k))
    e_col, m_cols = np.full(n, e_lhc), [np.zeros(n)] * k

    def check_c(a, b):
        ok = np.isfinite(a[3])
        pm = np.stack(b[:-1], 1)
        okm = b[-1] > 0
        return (f"mcint {momenta_check(a[0][ok][:, 2:], a[0][ok][:, :2].sum(1), [0.0] * k, e_lhc)}"
                f" inside {ok.mean():.3f}; madspace "
                f"{momenta_check(pm[okm][:, 2:], pm[okm][:, :2].sum(1), [0.0] * k, e_lhc)}"
                f" inside {okm.mean():.3f}")

    rows.append(("Chili n=4 (13 TeV)", lambda: chili.map(rc),
                 lambda: rt_c(*ccols, e_col, *m_cols), check_c))
    return rows


def madspace_table(n: int, rows: str = "") -> None:
    """mcint (numpy, numba) against madspace, block by block; skipped without madspace.

    ``rows``: comma-separated substrings; only rows whose label contains one of them run."""
    try:
        import madspace as ms
    except ImportError:
        print("madspace is not installed (pip install 'mcint[bench]'): no madspace table")
        return
    ctx = ms.Context(1)
    rng = np.random.default_rng(0)
    backends = [b for b in ("numpy", "numba") if b in B.available()]
    from importlib.metadata import version

    print(f"\n== mcint vs madspace {version('madspace')}: {n:.0e} points, float64, "
          f"one thread, CPU time best of 3 [ms]; ratio = madspace / mcint numba ==")
    head = (f"{'row':26s}" + "".join(f" {b:>8s}" for b in backends)
            + f" {'madspace':>8s} {'ratio':>6s}")
    print(head + "  checks")
    print("-" * (len(head) + 8))
    wanted = [w.strip() for w in rows.split(",") if w.strip()]
    for label, mc, msf, check in _madspace_rows(ms, ctx, n, rng):
        if wanted and not any(w in label for w in wanted):
            continue
        times, outs = {}, {}
        for b in backends:
            with B.use(b):
                times[b] = cpu_best(mc)
                outs[b] = mc()
        t_ms = cpu_best(msf) if msf is not None else float("nan")
        out_ms = msf() if msf is not None else None
        last = outs[backends[-1]]
        ratio = t_ms / times[backends[-1]]
        line = f"{label:26s}" + "".join(f" {1e3 * times[b]:8.1f}" for b in backends)
        print(f"{line} {1e3 * t_ms:8.1f} {ratio:6.2f}  {check(last, out_ms)}")
    # the dispatch trap: a map on the numba backend called outside mcint.use runs numpy code
    from mcint.vegas import AdaptiveMap

    if "numba" in backends:
        y = rng.random((n, 8))
        vmap = AdaptiveMap(8, ninc=64, backend="numba")
        t_out = cpu_best(lambda: vmap.forward_jac(y))
        with B.use("numba"):
            t_in = cpu_best(lambda: vmap.forward_jac(y))
        print(f"VEGAS map, backend='numba': inside mcint.use('numba') {1e3 * t_in:.1f} ms, "
              f"outside {1e3 * t_out:.1f} ms (fused kernels follow the current backend)")



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--n-madspace", type=int, default=1_000_000)
    ap.add_argument("--section", choices=("all", "backends", "madspace"), default="all")
    ap.add_argument("--rows", default="", help="madspace rows to run: comma-separated label "
                    "substrings (e.g. 't-channel,decay'); default all")
    args = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    if args.section in ("all", "madspace"):
        madspace_table(args.n_madspace, args.rows)
    if args.section in ("all", "backends"):
        backends_table(args.n)


def backends_table(n: int) -> None:
    chain = Diagram(Decay((Decay((0, 1), Propagator(30.0, 3.0)), Decay((2, 3)))), [0.0] * 4)
    dy = DrellYan()
    cases = {
        "rambo-diet n=4": PhaseSpace(RamboOnDiet(4), 100.0),
        "rambo-diet n=6": PhaseSpace(RamboOnDiet(6), 100.0),
        "s-chain n=4": PhaseSpace(DiagramMapping(chain), 100.0),
    }
    rng = np.random.default_rng(0)
    print(f"{n} events, times in ms (best of 3); ratio = numpy time / backend time")
    print(f"{'contender':22s} {'backend':8s} {'ms':>9s} {'Mev/s':>7s} {'vs numpy':>8s}")
    for name, ps in list(cases.items()) + [("drell-yan ch.1", None)]:
        dims = ps.dims if ps is not None else 4
        r = rng.random((n, dims))
        ref = None
        for bname in ("numpy", "numba", "torch"):
            try:
                be = B.get_backend(bname)
            except Exception:
                continue
            rb = be.asarray(r)
            with B.use(be):
                if ps is not None:
                    t = best(lambda ps=ps, rb=rb: ps.map(rb))
                else:
                    t = best(lambda rb=rb: dy.evaluate(rb, 1))
            ref = ref or t
            print(f"{name:22s} {bname:8s} {1e3 * t:9.1f} {n / t / 1e6:7.2f} {ref / t:8.2f}")
    xq = np.exp(rng.uniform(np.log(1e-6), 0.0, (2, n)))
    xq[1] = np.exp(rng.uniform(np.log(2.0), np.log(1e10), n))
    for interp in ("logcubic", "linear"):
        pdf = synthetic_grid(interp)
        for bname in ("numpy", "torch"):
            try:
                be = B.get_backend(bname)
            except Exception:
                continue
            xb, qb = be.asarray(xq[0]), be.asarray(xq[1])
            t = best(lambda pdf=pdf, xb=xb, qb=qb: pdf.xfxQ2(21, xb, qb))
            print(f"{'pdf ' + interp:22s} {bname:8s} {1e3 * t:9.1f} {n / t / 1e6:7.2f}")
    new_solver = rambo_mod.solve_u
    for k in (4, 6):
        ps = cases[f"rambo-diet n={k}"]
        r = rng.random((n, ps.dims))
        t_new = best(lambda r=r, ps=ps: ps.map(r))
        rambo_mod.solve_u = bisect_u
        try:
            t_old = best(lambda r=r, ps=ps: ps.map(r))
        finally:
            rambo_mod.solve_u = new_solver
        print(f"{'rambo-diet n=' + str(k) + ' bisect':22s} {'numpy':8s} {1e3 * t_old:9.1f} "
              f"{n / t_old / 1e6:7.2f}   (solve_u: {1e3 * t_new:.1f} ms, {t_old / t_new:.2f}x)")
    for k in (4, 6):
        r = rng.random((n, 4 * k))
        t = best(lambda r=r, k=k: classic_rambo(r, k, 100.0))
        print(f"{'classic RAMBO n=' + str(k):22s} {'numpy':8s} {1e3 * t:9.1f} {n / t / 1e6:7.2f}")


if __name__ == "__main__":
    main()
