"""One NIS training step, part by part: mcint (fused spline and pure array-API path) vs madnis.

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_train_step.py
        [--dims 2,8] [--batches 256,1024] [--dtype float32] [--reps 200]

Same architecture for all (madnis' default ``Flow(dims)``: "log" masks, 3x32 ReLU MLPs, 10 bins;
mcint's copy gets madnis' randomised parameters). Parts of a step, timed separately:

* ``fwd``: ``log_prob`` of a batch with gradients, and a loss (``-mean``);
* ``bwd``: ``loss.backward()``;
* ``opt``: the optimiser step: mcint's as in ``mcint.nis.optim.Optimizer`` (finite check,
  gradient clipping, fused Adam, zero_grad), madnis' as in its integrator (Adam, zero_grad);
* ``draw``: drawing the next batch with its log density, no gradients (mcint: the numba views
  of the torch parameters the integrator draws through; madnis: ``Flow.sample`` under no_grad).

Contenders: ``mcint`` (fused differentiable numba spline, the default on torch CPU),
``mcint-pure`` (``MCINT_FUSED=0``: autograd through the array-API reference) and ``madnis``.
Medians of interleaved repetitions, one thread each. The last column, ``ms/1e5``, is the
step time scaled to 1e5 integrand calls (``1e5 / batch`` fresh steps): that compares mcint at
its batch (256) with madnis at its batch (1024). Shared machine: compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

PARTS = ("fwd", "bwd", "opt", "draw")


def madnis_flow(dims: int, seed: int, dtype):
    import torch
    from madnis.nn import Flow as MadnisFlow

    torch.manual_seed(seed)
    mf = MadnisFlow(dims)
    with torch.no_grad():  # non-trivial parameters, the zero-initialised last layers too
        for p in mf.parameters():
            fan_in = p.shape[1] if p.ndim == 2 else 1
            p.add_(0.5 * torch.randn_like(p) / fan_in**0.5)
    return mf.to(dtype)


def mcint_flow(mf, dims: int, dtype: str):
    from mcint.flows import Flow

    flow = Flow(dims, dtype=dtype)
    arrays = {}
    for i, sub in enumerate(mf.subnets):
        linears = [m for m in sub.layers if hasattr(m, "weight")]
        for k, lin in enumerate(linears):
            arrays[f"couplings.{i}.w{k}"] = lin.weight.detach().double().numpy().T.astype(dtype)
            arrays[f"couplings.{i}.b{k}"] = lin.bias.detach().double().numpy().astype(dtype)
    flow.set_arrays(arrays)
    return flow.to("torch")


class McintStep:
    def __init__(self, mf, dims: int, n: int, dtype: str, fused: bool) -> None:
        import torch

        import mcint.backends as B
        from mcint.nis.optim import Optimizer

        self.torch, self.B, self.fused, self.n = torch, B, fused, n
        self.flow = mcint_flow(mf, dims, dtype)
        self.params = self.flow.torch_parameters()
        self.opt = Optimizer(self.params, 1e-4, clip=10.0)
        self.numba = B.get_backend("numba")
        # the integrator's draw path: numba arrays sharing memory with the torch leaves
        self.view = self.flow.map_arrays(lambda a: a.detach().numpy())
        self.view.backend = self.numba
        self.rng = self.numba.rng(1)
        self.x = None

    def run(self) -> dict[str, float]:
        torch = self.torch
        os.environ["MCINT_FUSED"] = "1" if self.fused else "0"
        t = {}
        t0 = time.perf_counter()
        with torch.no_grad(), self.B.use(self.numba):
            x, lq = self.view.sample(self.n, self.rng)
        x = torch.from_numpy(x)
        t1 = time.perf_counter()
        loss = -self.flow.log_prob(x).mean()
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        o = self.opt
        if bool(torch.isfinite(loss)):
            o.apply_gradients()
        o.opt.zero_grad(set_to_none=True)
        t4 = time.perf_counter()
        t.update(draw=t1 - t0, fwd=t2 - t1, bwd=t3 - t2, opt=t4 - t3)
        return t


class MadnisStep:
    def __init__(self, mf, n: int, dtype) -> None:
        import torch

        self.torch, self.mf, self.n, self.dtype = torch, mf, n, dtype
        self.opt = torch.optim.Adam(mf.parameters(), 1e-4)

    def run(self) -> dict[str, float]:
        torch = self.torch
        t0 = time.perf_counter()
        with torch.no_grad():
            x, lq = self.mf.sample(self.n, return_log_prob=True, dtype=self.dtype)
        t1 = time.perf_counter()
        self.opt.zero_grad()
        loss = -self.mf.log_prob(x).mean()
        t2 = time.perf_counter()
        loss.isnan().item()
        loss.backward()
        t3 = time.perf_counter()
        self.opt.step()
        t4 = time.perf_counter()
        return dict(draw=t1 - t0, fwd=t2 - t1, bwd=t3 - t2, opt=t4 - t3)


def check_agreement(dims: int, dtype: str) -> float:
    """max |grad(fused) - grad(pure)| / (1 + |grad|) over all flow parameters, float64."""
    import torch

    mf = madnis_flow(dims, 7, torch.float64)
    grads = []
    x = torch.rand(512, dims, dtype=torch.float64)
    for fused in (True, False):
        os.environ["MCINT_FUSED"] = "1" if fused else "0"
        fl = mcint_flow(mf, dims, "float64")
        ps = fl.torch_parameters()
        (-fl.log_prob(x).mean()).backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in ps]))
    return float(((grads[0] - grads[1]).abs() / (1 + grads[1].abs())).max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", default="2,8")
    ap.add_argument("--batches", default="256,1024")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--reps", type=int, default=150)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    tdt = getattr(torch, args.dtype)
    print(f"one training step, ms (median of {args.reps} interleaved reps); {args.dtype}; "
          f"1 thread each; torch {torch.__version__}")
    print(f"{'dims':>4} {'batch':>5} {'contender':>11} " + " ".join(f"{p:>6}" for p in PARTS)
          + f" {'total':>7} {'/madnis':>7} {'ms/1e5':>7}")
    per_1e5: dict[tuple[int, str, int], float] = {}
    for dims in [int(d) for d in args.dims.split(",")]:
        print(f"     float64 gradients fused vs pure, {dims}-d: max rel. diff "
              f"{check_agreement(dims, args.dtype):.1e}")
        for n in [int(b) for b in args.batches.split(",")]:
            mf = madnis_flow(dims, dims, tdt)
            runners = {"mcint": McintStep(mf, dims, n, args.dtype, True),
                       "mcint-pure": McintStep(mf, dims, n, args.dtype, False),
                       "madnis": MadnisStep(mf, n, tdt)}
            times: dict[str, list[dict[str, float]]] = {k: [] for k in runners}
            for r in range(args.reps + 5):
                for name, run in runners.items():
                    t = run.run()
                    if r >= 5:  # warm-up (compilation, allocator)
                        times[name].append(t)
            med = {name: {p: statistics.median(t[p] for t in ts) * 1e3 for p in PARTS}
                   for name, ts in times.items()}
            tot_m = sum(med["madnis"].values())
            for name, m in med.items():
                tot = sum(m.values())
                per_1e5[(dims, name, n)] = tot * 1e5 / n
                print(f"{dims:>4} {n:>5} {name:>11} " + " ".join(f"{m[p]:>6.2f}" for p in PARTS)
                      + f" {tot:>7.2f} {tot / tot_m:>7.2f} {tot * 1e5 / n:>7.0f}")
    os.environ.pop("MCINT_FUSED", None)
    batches = [int(b) for b in args.batches.split(",")]
    if 256 in batches and 1024 in batches:
        print("\nper 1e5 integrand calls, mcint at batch 256 vs madnis at batch 1024 "
              "(fresh steps only):")
        for dims in [int(d) for d in args.dims.split(",")]:
            mad = per_1e5[(dims, "madnis", 1024)]
            for name in ("mcint", "mcint-pure"):
                v = per_1e5[(dims, name, 256)]
                print(f"  {dims}-d {name:>10}: {v:7.0f} ms vs madnis {mad:7.0f} ms, "
                      f"ratio {v / mad:.2f}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
