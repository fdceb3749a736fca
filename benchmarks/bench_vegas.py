"""mcint's VEGAS+ against vegas 6.4.1, side by side in one run.

    python benchmarks/bench_vegas.py            # full run (a few minutes on 2 cores)
    python benchmarks/bench_vegas.py --quick    # smoke run

1. Accuracy: the same integrands, calls per iteration and iterations (train ``nitn_train``
   adapting iterations, then ``nitn`` frozen ones) for both; the table gives the final error
   averaged over seeds and the ratio mcint/vegas (goal 0.85 - 1.15), plus the pulls against
   the exact value (honest errors).
2. Throughput, as ratios to vegas (> 1: mcint faster): the map (1e6 points, 8-d, forward +
   Jacobian), one adapt step (training data for 1e6 points + regrid), one full iteration
   (1e6 calls of a cheap 8-d integrand) and drawing a weighted sample of 1e6 points (mcint:
   ``sample(n, shuffle=False)``, full arrays; vegas: ``Integrator.sample`` + integrand, full
   arrays, and its streaming ``random_batch``, which keeps no arrays), for the numpy, numba and
   torch backends.

Every contender runs with the same thread settings (one thread; set before numpy is imported).
Timings are the best of several repeats; on a shared machine they are still noisy -- compare
ratios from one run only.
"""

from __future__ import annotations

import os

for _k, _v in {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "MKL_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}.items():
    os.environ[_k] = _v

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

import mcint  # noqa: E402
from mcint.vegas import VEGAS, AdaptiveMap  # noqa: E402


# -- integrands with exact integrals ----------------------------------------------------------
def _gmass(mu: float, s: float) -> float:
    r2 = s * math.sqrt(2.0)
    return 0.5 * (math.erf((1 - mu) / r2) + math.erf(mu / r2))


def gauss(dims: int, s: float, mu: float = 0.5) -> tuple[Callable, float]:
    norm = (2 * math.pi * s * s) ** (-dims / 2)

    def f(x):
        return norm * np.exp(-np.sum((x - mu) ** 2, axis=1) / (2 * s * s))
    return f, _gmass(mu, s) ** dims


def camel(dims: int, s: float = 0.1 / math.sqrt(2)) -> tuple[Callable, float]:
    g1, e1 = gauss(dims, s, 1 / 3)
    g2, e2 = gauss(dims, s, 2 / 3)
    return (lambda x: 0.5 * (g1(x) + g2(x))), 0.5 * (e1 + e2)


def peaks(dims: int, c: float = 0.02) -> tuple[Callable, float]:
    a = np.linspace(0.2, 0.8, dims)

    def f(x):
        return np.prod(c / (c * c + (x - a) ** 2), axis=1) / math.pi**dims
    return f, math.prod(math.atan((1 - ai) / c) + math.atan(ai / c) for ai in a) / math.pi**dims


def zero_region(dims: int) -> tuple[Callable, float]:
    fact = float(math.factorial(dims))

    def f(x):
        return np.where(np.sum(x, axis=1) < 1.0, fact, 0.0)
    return f, 1.0


def ring(r0: float = 0.3, s: float = 0.02) -> tuple[Callable, float]:
    def f(x):
        r = np.sqrt(np.sum((x - 0.5) ** 2, axis=1))
        return np.exp(-((r - r0) ** 2) / (2 * s * s))
    # int_0^inf 2 pi r exp(-(r - r0)^2 / 2s^2) dr; the ring lies 10 sigma inside the square
    exact = 2 * math.pi * (s * s * math.exp(-r0 * r0 / (2 * s * s))
                           + r0 * s * math.sqrt(math.pi / 2) * (1 + math.erf(r0 / (s * math.sqrt(2)))))
    return f, exact


CASES = [
    # name, (f, exact), dims, calls per iteration
    ("gauss-4d (s=0.05)", gauss(4, 0.05), 4, 20_000),
    ("camel-2d", camel(2), 2, 10_000),
    ("camel-4d", camel(4), 4, 20_000),
    ("camel-8d", camel(8), 8, 50_000),
    ("peaks-6d (Lorentz)", peaks(6), 6, 40_000),
    ("zero-region-4d", zero_region(4), 4, 20_000),
    ("ring-2d", ring(), 2, 10_000),
]


# -- accuracy ------------------------------------------------------------------------------
def run_vegas(f, dims, calls, nitn_train, nitn, seed):
    import gvar
    import vegas

    gvar.ranseed(seed)
    integ = vegas.Integrator(dims * [[0.0, 1.0]])
    fb = vegas.batchintegrand(f)
    integ(fb, nitn=nitn_train, neval=calls)
    r = integ(fb, nitn=nitn, neval=calls, adapt=False)
    return r.mean, r.sdev


def run_mcint(f, dims, calls, nitn_train, nitn, seed, backend):
    v = VEGAS(f, dims, backend=backend, seed=seed)
    # mcint's calls are the total of all iterations (vegas' neval is per iteration)
    v.train(calls * nitn_train, nitn=nitn_train)
    r = v.integrate(calls * nitn, nitn=nitn)
    return r.value, r.error


def accuracy(args) -> None:
    print(f"\n== accuracy: train {args.nitn_train} x calls, then {args.nitn} x calls frozen; "
          f"{args.seeds} seeds; mcint backend {args.acc_backend} ==")
    head = (f"{'integrand':<20} {'calls':>7} {'vegas err':>10} {'mcint err':>10} "
            f"{'ratio':>6} {'vegas |pull|':>12} {'mcint |pull|':>12} {'t vegas':>8} {'t mcint':>8}")
    print(head)
    print("-" * len(head))
    ratios = []
    for name, (f, exact), dims, calls in CASES:
        calls = calls // 4 if args.quick else calls
        ev, em, pv, pm, tv, tm = [], [], [], [], 0.0, 0.0
        for seed in range(args.seeds):
            t = time.perf_counter()
            val, err = run_vegas(f, dims, calls, args.nitn_train, args.nitn, seed + 1)
            tv += time.perf_counter() - t
            ev.append(err / exact)
            pv.append(abs(val - exact) / err)
            t = time.perf_counter()
            val, err = run_mcint(f, dims, calls, args.nitn_train, args.nitn, seed + 1,
                                 args.acc_backend)
            tm += time.perf_counter() - t
            em.append(err / exact)
            pm.append(abs(val - exact) / err)
        ratio = float(np.mean(em) / np.mean(ev))
        ratios.append(ratio)
        print(f"{name:<20} {calls:>7} {np.mean(ev):>10.3e} {np.mean(em):>10.3e} {ratio:>6.3f} "
              f"{np.mean(pv):>12.2f} {np.mean(pm):>12.2f} {tv:>8.2f} {tm:>8.2f}")
    print(f"relative errors (error / exact), averaged over seeds; ratio = mcint / vegas; "
          f"geometric mean ratio {math.exp(np.mean(np.log(ratios))):.3f}, "
          f"range [{min(ratios):.3f}, {max(ratios):.3f}]")


# -- throughput ----------------------------------------------------------------------------
def interleaved_best(contenders: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Best time of each contender, the contenders taking turns (fair under changing load)."""
    for fn in contenders.values():
        fn()  # warm-up (numba compilation, allocator)
    best = dict.fromkeys(contenders, math.inf)
    for _ in range(repeats):
        for name, fn in contenders.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def throughput(args) -> None:
    import gvar
    import vegas

    n = 200_000 if args.quick else 1_000_000
    dims = 8
    rng = np.random.default_rng(0)
    y = rng.random((n, dims))
    f2 = np.ascontiguousarray(np.exp(-np.sum((y - 0.3) ** 2, axis=1) * 20) ** 2)
    vm = vegas.AdaptiveMap(dims * [[0.0, 1.0]], ninc=1000)
    vm.add_training_data(y, f2)
    vm.adapt(alpha=0.5)
    grid = np.array(vm.grid)
    xbuf = np.empty_like(y)
    jbuf = np.empty(n)
    fcheap, _ = gauss(dims, 0.2)
    gvar.ranseed(1)
    vinteg = vegas.Integrator(dims * [[0.0, 1.0]])
    vfb = vegas.batchintegrand(fcheap)
    vinteg(vfb, nitn=1, neval=n)

    def vegas_sample():
        # vegas' own sampler: full (x, wgt) arrays, then weights f(x) * wgt
        wgt, x = vinteg.sample(nbatch=n, mode="lbatch")
        fcheap(x) * wgt

    def vegas_stream():
        # vegas' batch iterator: views into work buffers, no full arrays kept
        for x, w in vinteg.random_batch():
            fcheap(x) * w

    tasks: dict[str, dict[str, Callable[[], None]]] = {
        "map": {"vegas": lambda: vm.map(y, xbuf, jbuf)},
        "adapt": {"vegas": lambda: (vm.add_training_data(y, f2), vm.adapt(alpha=0.5))},
        "iteration": {"vegas": lambda: vinteg(vfb, nitn=1, neval=n)},
        "sample": {"vegas": vegas_sample},
        "stream": {"vegas": vegas_stream},
    }
    names = []
    for bname in args.backends:
        try:
            be = mcint.get_backend(bname)
        except Exception as exc:  # noqa: BLE001 - report and go on
            print(f"skip {bname}: {exc}")
            continue
        if bname.startswith("torch"):
            be.torch.set_num_threads(1)
        names.append(bname)
        m = AdaptiveMap(dims, grid=grid, backend=be)
        yb = be.asarray(y)
        f2b = be.asarray(f2)
        integ = VEGAS(fcheap, dims, backend=be, seed=1)
        integ.train(n, nitn=1)

        def mc_map(m=m, yb=yb, be=be):
            with mcint.use(be):
                m.forward_jac(yb)
            be.synchronize()

        def mc_adapt(m=m, yb=yb, f2b=f2b, be=be):
            with mcint.use(be):
                m.add_training_data(yb, f2b)
                m.adapt(alpha=0.5)
            be.synchronize()

        def mc_sample(integ=integ, be=be):
            integ.sample(n, shuffle=False)
            be.synchronize()

        tasks["map"][bname] = mc_map
        tasks["adapt"][bname] = mc_adapt
        tasks["iteration"][bname] = lambda integ=integ: integ.train(n, nitn=1)
        tasks["sample"][bname] = mc_sample
        tasks["stream"][bname] = mc_sample
    reps = args.repeats
    times = {k: interleaved_best(c, reps if k in ("map", "adapt") else max(2, reps // 2))
             for k, c in tasks.items()}
    print(f"\n== throughput: {n:.0e} points, {dims}-d, best of {reps} (contenders interleaved); "
          f"ratio = vegas time / mcint time (> 1: mcint faster) ==")
    head = f"{'task':<36} {'vegas [ms]':>10}" + "".join(
        f" {b + ' [ms]':>12} {'ratio':>6}" for b in names)
    print(head)
    print("-" * len(head))
    labels = {"map": "map forward + jacobian", "adapt": "adapt step (training + regrid)",
              "iteration": "full iteration (cheap integrand)",
              "sample": "sample x + weights (vegas .sample)",
              "stream": "same, vegas streaming random_batch"}
    for key, label in labels.items():
        t = times[key]
        line = f"{label:<36} {1e3 * t['vegas']:>10.1f}"
        for b in names:
            line += f" {1e3 * t[b]:>12.1f} {t['vegas'] / t[b]:>6.2f}"
        print(line)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small smoke run")
    p.add_argument("--seeds", type=int, default=None, help="seeds per integrand (default 6)")
    p.add_argument("--nitn-train", type=int, default=10)
    p.add_argument("--nitn", type=int, default=5)
    p.add_argument("--backends", default="numpy,numba,torch",
                   help="backends for the throughput table")
    p.add_argument("--acc-backend", default="numba",
                   help="backend for the accuracy table (CPU backends give identical numbers)")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--skip-throughput", action="store_true")
    args = p.parse_args()
    args.seeds = args.seeds or (2 if args.quick else 6)
    args.repeats = args.repeats or (2 if args.quick else 5)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if args.acc_backend not in mcint.available():
        args.acc_backend = "numpy"
    try:
        import vegas
    except ImportError:
        raise SystemExit("this benchmark needs vegas 6.4.1 (pip install 'mcint[bench]')") from None
    print(f"mcint {mcint.__version__} vs vegas {vegas.__version__}; threads: "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; cpus: {os.cpu_count()}")
    if not args.skip_accuracy:
        accuracy(args)
    if not args.skip_throughput:
        throughput(args)


if __name__ == "__main__":
    main()
