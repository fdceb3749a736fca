"""The full sampler as users run it: ``sample`` and ``integrate`` at default settings, mcint vs
madnis 1.0.0, side by side in one process, one thread each.

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_sampler.py
        [--dims 8] [--train 100000] [--points 1000000] [--repeat 3] [--backends numpy,numba]

Both contenders train on the same 8-d camel (the training budget only has to give a sensible
model: speed is what is measured), then draw ``--points`` weighted points with their default
``sample`` (and mcint's ``integrate``), the integrand included on both sides. The integrand is a
cheap numpy camel, timed on its own and subtracted in the "excl. f" column, so the column compares
the samplers (flow, base map, defensive mixture, channel bookkeeping, conversions). Times are
process CPU seconds, best of ``--repeat``; the machine's load is printed with them.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _best(fn, repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dims", type=int, default=8)
    p.add_argument("--train", type=int, default=100_000, help="training integrand calls")
    p.add_argument("--points", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--backends", default="numpy,numba")
    p.add_argument("--no-madnis", action="store_true")
    a = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from mcint.examples import toys

    d, n = a.dims, a.points
    f = toys.camel(d, 0.1 / math.sqrt(2))
    x = np.random.default_rng(0).random((n, d))
    t_f = _best(lambda: f(x), a.repeat)
    print(f"# {platform.processor() or platform.machine()}, load {os.getloadavg()[0]:.2f}, "
          f"{d}-d camel, {a.train} training calls, {n} points, CPU s best of {a.repeat}")
    print(f"# the integrand alone: {t_f:.3f} s")
    print(f"{'contender':<22}{'call':<12}{'CPU s':>9}{'excl. f':>9}{'vs madnis':>11}")
    rows = []
    if not a.no_madnis:
        from madnis.integrator import Integrator as MIntegrator

        def fn(xt):
            return torch.from_numpy(f(xt.double().numpy())).to(xt.dtype)

        torch.manual_seed(1)
        mi = MIntegrator(fn, dims=d)
        mi.train(max(1, a.train // mi.batch_size))
        t = _best(lambda: mi.sample(n), a.repeat)
        rows.append(("madnis 1.0.0", "sample", t))
    from mcint import available
    from mcint.nis import Integrator

    for be in a.backends.split(","):
        if be not in available():
            print(f"# backend {be} not installed: skipped")
            continue
        it = Integrator(f, d, seed=1, backend=be)
        it.train(a.train)
        it.sample(1000), it.integrate(1000)      # compile / warm caches outside the timing
        rows.append((f"mcint {be}", "sample", _best(lambda it=it: it.sample(n), a.repeat)))
        rows.append((f"mcint {be}", "integrate", _best(lambda it=it: it.integrate(n), a.repeat)))
    ref = next((t for name, call, t in rows if name.startswith("madnis")), None)
    for name, call, t in rows:
        ratio = "" if ref is None else f"{(ref - t_f) / max(t - t_f, 1e-9):9.2f}x"
        print(f"{name:<22}{call:<12}{t:9.3f}{t - t_f:9.3f}{ratio:>11}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
