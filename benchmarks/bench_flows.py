"""Sampling with mcint's Flow against madnis 1.0.0's Flow, same architecture, side by side.

    python benchmarks/bench_flows.py                  # 1e6 points, 4/8/16-d, float32 + float64
    python benchmarks/bench_flows.py --quick          # 1e5 points, 4/8-d, float32

Both flows have madnis' default architecture (``madnis.nn.Flow(dims)``: "log" masks,
2 ceil(log2 d) RQ-spline blocks with 10 bins, ReLU MLPs 32-32, uniform latent space), and mcint's
flow is given *madnis' own parameters* (randomised, so the map is not the identity): the table
first checks that both map the same latent points to the same x, then times
``sample(n) -> (x, log_prob)`` for madnis (torch) and mcint on the numpy, numba and torch
backends. Ratios are madnis' time over mcint's (> 1: mcint faster).

Every contender runs with the same thread settings (one thread, set before numpy/torch are
imported; numba kernels are serial). On a shared machine timings are noisy: compare the ratios
within one run; the CPU-time ratio (time on the core, waits excluded) is the steadier one.
"""

from __future__ import annotations

import os

for _k, _v in {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "MKL_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}.items():
    os.environ[_k] = _v

import argparse  # noqa: E402
import copy  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import mcint.backends as B  # noqa: E402
from mcint.flows import Flow  # noqa: E402


def madnis_flow(dims: int, seed: int):
    import torch
    from madnis.nn import Flow as MadnisFlow

    torch.manual_seed(seed)
    mf = MadnisFlow(dims)
    with torch.no_grad():  # non-trivial parameters: the zero-initialised last layers too
        for p in mf.parameters():
            fan_in = p.shape[1] if p.ndim == 2 else 1
            p.add_(0.5 * torch.randn_like(p) / fan_in**0.5)
    return mf


def mcint_from_madnis(mf, dims: int, dtype: str) -> Flow:
    """mcint's Flow with madnis' masks and parameters (``Linear.weight`` is ``W.T``)."""
    flow = Flow(dims, dtype=dtype)
    assert np.array_equal(flow.masks, mf.condition_masks.numpy()), "mask sets differ"
    arrays = {}
    for i, sub in enumerate(mf.subnets):
        linears = [m for m in sub.layers if hasattr(m, "weight")]
        for k, lin in enumerate(linears):
            arrays[f"couplings.{i}.w{k}"] = lin.weight.detach().numpy().T.astype(dtype)
            arrays[f"couplings.{i}.b{k}"] = lin.bias.detach().numpy().astype(dtype)
    expect = {k: v.shape for k, v in flow.arrays().items()}
    assert {k: v.shape for k, v in arrays.items()} == expect, "architectures differ"
    flow.set_arrays(arrays)
    return flow


def timed(fn, repeat: int) -> tuple[float, float]:
    """Best (wall, CPU) seconds of ``repeat`` calls. Every contender runs on one thread, so CPU
    time is the robust figure on a shared machine (waiting for the core is not counted)."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    return best, best_cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1e5 points, 4/8-d, float32")
    ap.add_argument("--n", type=int, default=None, help="points per sample (default 1e6)")
    ap.add_argument("--dims", default=None, help="comma-separated dims (default 4,8,16)")
    ap.add_argument("--dtypes", default=None, help="float32,float64 (default both)")
    ap.add_argument("--backends", default="numpy,numba,torch",
                    help="mcint backends; GPU ones (torch-cuda, cupy) are timed to completion")
    ap.add_argument("--madnis-device", default="cpu", choices=["cpu", "cuda"],
                    help="where madnis samples (cuda: compare with mcint's GPU backends)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-affine", action="store_true",
                    help="skip the affine-coupling table (fused numba vs array-API, float32)")
    args = ap.parse_args()
    n = args.n or (100_000 if args.quick else 1_000_000)
    dims_list = [int(d) for d in (args.dims or ("4,8" if args.quick else "4,8,16")).split(",")]
    dtypes = (args.dtypes or ("float32" if args.quick else "float32,float64")).split(",")
    backends = [b for b in args.backends.split(",") if b]

    import torch

    torch.set_num_threads(1)
    print(f"sampling {n:.0e} points; threads: 1 for every contender; torch {torch.__version__}")
    print(f"{'dims':>4} {'dtype':>8} {'contender':>14} {'wall s':>8} {'CPU s':>8} {'Mpts/s':>7} "
          f"{'madnis/this':>11} {'(CPU)':>6}  check")
    summary = []
    for dims in dims_list:
        mf = madnis_flow(dims, seed=dims)
        for dtype in dtypes:
            tdt = getattr(torch, dtype)
            mfd = mf.to(tdt)
            dev = torch.device(args.madnis_device)
            sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
            ref = mcint_from_madnis(mf, dims, dtype)
            # same latent points -> same data points (madnis' sampling direction)
            z = np.random.default_rng(0).random((2000, dims)).astype(dtype)
            with torch.no_grad():
                xm, ldm = mfd.transform(torch.as_tensor(z), inverse=True)
            x0, ld0 = ref.forward(z)
            dx = float(np.max(np.abs(x0 - xm.numpy())))
            dld = float(np.max(np.abs(ld0 - ldm.numpy())))
            mfs = copy.deepcopy(mfd).to(dev)  # Module.to moves in place: keep mf on the host
            with torch.no_grad():
                mfs.sample(1000, return_log_prob=True, dtype=tdt, device=dev)
                sync()
                tm, cm = timed(lambda mfs=mfs, tdt=tdt, dev=dev, sync=sync: (
                    mfs.sample(n, return_log_prob=True, dtype=tdt, device=dev), sync()),
                    args.repeat)
            print(f"{dims:>4} {dtype:>8} {'madnis-' + dev.type:>14} {tm:>8.2f} {cm:>8.2f} {n / tm / 1e6:>7.3f} "
                  f"{1.0:>11.2f} {1.0:>6.2f}  max|dx| {dx:.1e}, max|dlogdet| {dld:.1e} vs mcint")
            for be in backends:
                try:
                    backend = B.get_backend(be)
                except B.BackendUnavailable as exc:
                    print(f"{dims:>4} {dtype:>8} {be:>14}  unavailable: {exc}")
                    continue
                flow = ref.to(backend)
                with B.use(backend):
                    flow.sample(1000, rng=0)  # compile / warm up
                    backend.synchronize()
                    t, c = timed(lambda flow=flow, backend=backend: (
                        flow.sample(n, rng=1), backend.synchronize()), args.repeat)
                    xs, lps = flow.sample(2000, rng=2)
                # GPU streams draw other points: check the density at the backend's own points
                lpr = ref.log_prob(backend.to_numpy(xs))
                agree = float(np.max(np.abs(backend.to_numpy(lps) - lpr)))
                print(f"{dims:>4} {dtype:>8} {'mcint-' + be:>14} {t:>8.2f} {c:>8.2f} "
                      f"{n / t / 1e6:>7.3f} {tm / t:>11.2f} {cm / c:>6.2f}  max|dlogp| vs numpy log_prob "
                      f"{agree:.1e}")
                summary.append((dims, dtype, be, tm, t, cm, c))
    print(f"\nsummary, {n:.0e} points (ratio = madnis time / mcint time, > 1: mcint faster)")
    print(f"{'dims':>4} {'dtype':>8} {'backend':>8} {'madnis s':>9} {'mcint s':>8} {'ratio':>6} "
          f"{'CPU ratio':>9}")
    for dims, dtype, be, tm, t, cm, c in summary:
        print(f"{dims:>4} {dtype:>8} {be:>8} {tm:>9.2f} {t:>8.2f} {tm / t:>6.1f} {cm / c:>9.1f}")
    if not args.no_affine and "float32" in dtypes:
        affine_table(dims_list, n, args.repeat)


def affine_table(dims_list: list[int], n: int, repeat: int) -> None:
    """Affine-coupling flows (madnis' masks and MLP sizes, random parameters), float32: the
    fused numba kernel against the array-API code (run on numpy; float64 has no fused kernel)."""
    print(f"\naffine couplings, float32, {n:.0e} points: array-API (numpy) vs fused numba")
    print(f"{'dims':>4} {'array-API s':>11} {'fused s':>8} {'speed-up':>8} {'(CPU)':>6}  check")
    for dims in dims_list:
        rng = np.random.default_rng(dims)
        flow = Flow(dims, coupling="affine", dtype="float32").map_arrays(
            lambda a, rng=rng: (a + 0.5 * rng.standard_normal(a.shape)
                                / np.sqrt(a.shape[0])).astype(a.dtype))
        out = {}
        for be in ("numpy", "numba"):
            f = flow.to(be)
            with B.use(be):
                f.sample(1000, rng=0)
                out[be] = timed(lambda f=f: f.sample(n, rng=1), repeat), f.sample(2000, rng=2)
        (ta, ca), (xa, _) = out["numpy"]
        (tf, cf), (xf, _) = out["numba"]
        print(f"{dims:>4} {ta:>11.2f} {tf:>8.2f} {ta / tf:>8.2f} {ca / cf:>6.2f}  max|dx| "
              f"{float(np.max(np.abs(xa - xf))):.1e}")


if __name__ == "__main__":
    main()
