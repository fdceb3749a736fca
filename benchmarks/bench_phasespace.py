"""Phase-space throughput: events per second of mcint's mappings, per backend, side by side.

    python benchmarks/bench_phasespace.py [--n 200000]

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    n = ap.parse_args().n
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
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
