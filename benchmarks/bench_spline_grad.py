"""The fused differentiable spline's kernels, float32: row-vectorised vs per-value, side by side.

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_spline_grad.py [--reps 40]

Contenders on the same float32 arrays (10 bins): ``spline_grad32`` (what training runs) and the
per-value float64-scratch kernels of ``spline_grad`` (``exps`` + ``rqs_forward``, then
``rqs_backward``: what float64 runs, and what float32 ran before). Forward and backward times in
ns per value (minimum over interleaved repetitions, one thread). Shared machine: compare ratios.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

MINS = (1e-3, 1e-3, 1e-3)


def _per_value(sg, x, p, gy, gl, out):
    y, ld, gx, gp = out
    t0 = time.perf_counter()
    ex = sg.exps(p)
    aux = np.empty((*x.shape, 4))
    sg.rqs_forward(x, np.arange(x.shape[1]), p, ex, False, *MINS, y, ld, aux)
    t1 = time.perf_counter()
    sg.rqs_backward(x, p, ex, aux, gy, gl, *MINS, gx, gp)
    return t1 - t0, time.perf_counter() - t1


def _vectorised(sg, x, p, gy, gl, out):
    y, ld, gx, gp = out
    t0 = time.perf_counter()
    state = sg.forward(x, p, MINS, y, ld)
    t1 = time.perf_counter()
    sg.backward(state, x, p, gy, gl, MINS, gx, gp)
    return t1 - t0, time.perf_counter() - t1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=40)
    args = ap.parse_args()
    from mcint_numba.kernels import spline_grad as sg

    rng = np.random.default_rng(0)
    f32 = np.float32
    print(f"float32, 10 bins, ns/value (min of {args.reps} interleaved reps, 1 thread)")
    print(f"{'rows':>5s} {'k':>2s} | {'fwd per-value':>13s} {'vectorised':>10s} {'ratio':>5s} | "
          f"{'bwd per-value':>13s} {'vectorised':>10s} {'ratio':>5s}")
    for n in (256, 512, 1024):
        for k in (1, 4, 8):
            x = rng.random((n, k)).astype(f32)
            p = (2.0 * rng.standard_normal((n, k, 31))).astype(f32)
            gy = rng.standard_normal((n, k)).astype(f32)
            gl = rng.standard_normal(n).astype(f32)
            outs = [(np.empty_like(x), np.empty(n, f32), np.empty_like(x), np.empty_like(p))
                    for _ in range(2)]
            ts: list[list] = [[], []]
            for r in range(args.reps + 1):  # the first: compilation / cache load
                for c, fn in enumerate((_per_value, _vectorised)):
                    t = fn(sg, x, p, gy, gl, outs[c])
                    if r:
                        ts[c].append(t)
            a, b = (np.min(np.array(t), axis=0) / (n * k) * 1e9 for t in ts)
            # the two must agree (float32 output rounding)
            for u, v in zip(outs[0], outs[1]):
                scale = 1.0 + np.abs(u.astype(np.float64))
                assert float(np.max(np.abs(u - v) / scale)) < 1e-5
            print(f"{n:5d} {k:2d} | {a[0]:13.1f} {b[0]:10.1f} {b[0] / a[0]:5.2f} | "
                  f"{a[1]:13.1f} {b[1]:10.1f} {b[1] / a[1]:5.2f}")


if __name__ == "__main__":
    main()
