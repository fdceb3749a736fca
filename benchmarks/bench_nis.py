"""mcint's neural importance sampling vs madnis 1.0.0, side by side, at equal integrand calls.

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_nis.py [--quick]
        [--calls N] [--eval N] [--only camel16,ring] [--seed S] [--repeat R] [--device cuda]

Both contenders train with the same budget of integrand calls (default 1e6; ``--quick``: 1e5),
on CPU with one thread each (torch.set_num_threads(1) for both), then integrate with the same
number of fresh calls. Printed per integrand and contender: estimate, pull against the exact
value, relative standard deviation of the weights (sqrt(N) x relative error), unweighting
efficiency (bootstrap-median maximum, arXiv:2001.10028, the same code for both), training wall
time, and the ratios mcint/madnis. Timings on a shared machine are noisy: compare the ratios.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# -- integrands (numpy, unit cube) with exact integrals -------------------------------------------
# camel, ring and the signed toy are mcint.examples.toys (one definition for the benchmark, the
# tests and the examples); the widths are the ones the published figures refer to
CAMEL_SIGMA = 0.1 / math.sqrt(2)      # exp(-|x - mu|^2 / 0.1^2)


def camel(d: int):
    from mcint.examples import toys

    return toys.camel(d, CAMEL_SIGMA), d, toys.camel_exact(d, CAMEL_SIGMA)


def ring():
    from mcint.examples import toys

    return toys.ring(), 2, toys.ring_exact()


def signed_two_peak(d: int = 2, s: float = 0.05):
    """A positive and a negative Gaussian peak (MadNIS' signed toy): tests |f|-sampling."""
    from mcint.examples import toys

    return toys.signed_two_peak(d, s), d, toys.signed_two_peak_exact(d, s)


#: mcint options per benchmark entry (the table marks them); madnis runs at its defaults
MCINT_OPTIONS = {"signed": {"split_sign": True}}


def correlated_gaussian(d: int = 6, s: float = 0.05, rho: float = 0.9):
    """A Gaussian ridge along the diagonal: correlations no axis-aligned grid captures."""
    cov = s * s * (rho * np.ones((d, d)) + (1 - rho) * np.eye(d))
    prec = np.linalg.inv(cov)
    norm = 1.0 / math.sqrt((2 * math.pi) ** d * np.linalg.det(cov))

    def f(x):
        y = x - 0.5
        return norm * np.exp(-0.5 * np.einsum("ni,ij,nj->n", y, prec, y))

    # marginal sigma s: the mass outside the cube is < d * 2 * Phi(-10) ~ 1e-22
    return f, d, 1.0


# -- a Drell-Yan-like 3-channel problem ----------------------------------------------------------
MZ, GZ, MZP, GZP = 91.19, 2.44, 400.0, 20.0
SMIN, SMAX = 50.0**2, 600.0**2


def dy_density(s):
    """d sigma/ds (arbitrary units): photon continuum + Z + Z' Breit-Wigners."""
    return (1e3 / s + 1e5 / ((s - MZ**2) ** 2 + (MZ * GZ) ** 2)
            + 4e5 / ((s - MZP**2) ** 2 + (MZP * GZP) ** 2))


def dy_f(x):
    """x[:, 0] -> s linearly on [SMIN, SMAX], x[:, 1] -> cos(theta) on [-1, 1]."""
    s = SMIN + (SMAX - SMIN) * x[:, 0]
    c = 2 * x[:, 1] - 1
    return dy_density(s) * 0.375 * (1 + c * c) * (SMAX - SMIN) * 2


def dy_exact() -> float:
    # angular part integrates to 1; s part by a fine trapezoid in the BW-flattened variable
    from numpy import arctan, tan
    total = 0.0
    a0, a1 = arctan((SMIN - MZ**2) / (MZ * GZ)), arctan((SMAX - MZ**2) / (MZ * GZ))
    t = np.linspace(a0, a1, 2_000_001)
    s = MZ**2 + MZ * GZ * tan(t)
    ds = MZ * GZ / np.cos(t) ** 2
    y = dy_density(s) * ds
    total = float(np.sum((y[1:] + y[:-1]) * 0.5 * np.diff(t)))
    return total


def dy_mappings():
    """Channel maps of the s-coordinate: BW(Z), BW(Z'), 1/s; cos(theta) flat."""
    from mcint.transforms import Transform

    class SMap(Transform):
        def __init__(self, kind, m=0.0, g=0.0):
            self.dims, self.kind, self.m, self.g = 2, kind, m, g

        def _bounds(self):
            if self.kind == "bw":
                return (math.atan((SMIN - self.m**2) / (self.m * self.g)),
                        math.atan((SMAX - self.m**2) / (self.m * self.g)))
            return math.log(SMIN), math.log(SMAX)

        def forward(self, r):
            from array_api_compat import array_namespace
            xp = array_namespace(r)
            a0, a1 = self._bounds()
            t = a0 + (a1 - a0) * r[:, 0]
            if self.kind == "bw":
                s = self.m**2 + self.m * self.g * xp.tan(t)
                ds = (a1 - a0) * self.m * self.g / xp.cos(t) ** 2
            else:
                s = xp.exp(t)
                ds = (a1 - a0) * s
            x0 = (s - SMIN) / (SMAX - SMIN)
            x0 = xp.clip(x0, 0.0, 1.0)
            return xp.stack([x0, r[:, 1]], axis=1), xp.log(ds / (SMAX - SMIN))

        def inverse(self, x):
            from array_api_compat import array_namespace
            xp = array_namespace(x)
            a0, a1 = self._bounds()
            s = SMIN + (SMAX - SMIN) * x[:, 0]
            if self.kind == "bw":
                t = xp.atan((s - self.m**2) / (self.m * self.g))
                ds = (a1 - a0) * self.m * self.g / xp.cos(t) ** 2
            else:
                t = xp.log(s)
                ds = (a1 - a0) * s
            r0 = xp.clip((t - a0) / (a1 - a0), 0.0, 1.0)
            return xp.stack([r0, x[:, 1]], axis=1), -xp.log(ds / (SMAX - SMIN))

    return [SMap("bw", MZ, GZ), SMap("bw", MZP, GZP), SMap("log")]


# -- the real Drell-Yan process (mcint.processes): 3 channels (photon, Z, Z') in 4 dims -----------
try:
    from mcint.channels import MultiChannelIntegrand
except ImportError:  # pragma: no cover - run from a checkout without the package
    MultiChannelIntegrand = ()

#: feature (remapped point) widths of the multi-channel processes, for madnis' Integrand
FEATURES = {"DrellYan": 4}


def drellyan_process():
    from mcint.processes import DrellYan

    proc = DrellYan()
    return None, proc.dims, proc.exact(), proc


def warm_up() -> None:
    """Pay one-off costs (imports, numba's cached kernels, torch's first backward) outside
    the timings, for both contenders alike."""
    f, d, _ = camel(2)
    for fn in (run_mcint, run_madnis):
        try:
            fn(f, d, 6000, 2000, 0, None)
        except Exception:  # a missing contender is reported later
            pass


# -- contenders -----------------------------------------------------------------------------------
def run_mcint(f, d, calls, n_eval, seed, channels=None, **opts):
    from mcint.nis import Integrator

    if isinstance(channels, MultiChannelIntegrand):
        it = Integrator(channels, seed=seed, **opts)
    else:
        it = Integrator(f, d, channels=channels, seed=seed, **opts)
    t0 = time.perf_counter()
    it.train(calls)
    t_train = time.perf_counter() - t0
    r = it.integrate(n_eval)
    b = it.sample(min(n_eval, 200_000))
    return dict(value=r.value, error=r.error, rel_std=r.metrics["rel_std"],
                weights=np.asarray(b.to_numpy().weights), train=t_train)


def run_madnis(f, d, calls, n_eval, seed, channels=None, device="cpu", **_opts):
    import torch
    from madnis.integrator import Integrand, Integrator

    torch.manual_seed(seed)
    if isinstance(channels, MultiChannelIntegrand):
        proc = channels
        it = Integrator(Integrand(madnis_channel_fn(proc), input_dim=d,
                                  channel_count=proc.n_channels, remapped_dim=_features(proc),
                                  has_channel_weight_prior=True), dims=d, device=device)
    elif channels is None:
        def fn(x):
            return torch.from_numpy(f(x.double().cpu().numpy())).to(x.device, x.dtype)

        it = Integrator(fn, dims=d, device=device)
    else:
        maps = channels

        def fn(r, c):
            rn = r.double().cpu().numpy()
            cn = c.cpu().numpy()
            out = np.zeros(len(rn))
            alpha = np.zeros((len(rn), len(maps)))
            xs = np.zeros_like(rn)
            for k in range(len(maps)):
                m = cn == k
                if not m.any():
                    continue
                x, lj = maps[k].forward(rn[m])
                out[m] = f(x) * np.exp(lj)
                lg = np.stack([mp.inverse(x)[1] for mp in maps], axis=1)
                p = np.exp(lg - lg.max(axis=1, keepdims=True))
                alpha[m] = p / p.sum(axis=1, keepdims=True)
                xs[m] = x
            T = lambda a: torch.from_numpy(a).to(r.device, r.dtype)
            return T(out), T(xs), T(alpha)

        it = Integrator(Integrand(fn, input_dim=d, channel_count=len(maps), remapped_dim=d,
                                  has_channel_weight_prior=True), dims=d, device=device)
    return madnis_measure(it, calls, n_eval)


def _features(proc) -> int:
    return getattr(proc, "features_dim", None) or FEATURES[type(proc).__name__]


def madnis_channel_fn(proc):
    """madnis' integrand ``fn(r, c)`` for an mcint multi-channel integrand: the same
    per-channel evaluation mcint gets (value, features, prior weights)."""
    import torch

    def fn(r, c):
        rn = r.double().cpu().numpy()
        cn = c.cpu().numpy()
        out = np.zeros(len(rn))
        feats = np.zeros((len(rn), _features(proc)))
        alpha = np.zeros((len(rn), proc.n_channels))
        for k in np.unique(cn):
            m = cn == k
            ev = proc.evaluate(rn[m], int(k))
            out[m], feats[m], alpha[m] = ev.value, ev.features, ev.alpha_prior
        T = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(r.device, r.dtype)  # noqa: E731
        return T(out), T(feats), T(alpha)

    return fn


def madnis_measure(it, calls: int, n_eval: int) -> dict:
    """Train a madnis integrator on ``calls`` integrand calls, then integrate and sample."""
    steps = max(calls // it.batch_size, 1)
    t0 = time.perf_counter()
    it.train(steps)
    t_train = time.perf_counter() - t0
    m = it.integration_metrics(n_eval)
    b = it.sample(min(n_eval, 200_000))
    return dict(value=m.integral, error=m.error, rel_std=m.rel_stddev,
                weights=b.weights.double().cpu().numpy(), train=t_train)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1e5 training calls instead of 1e6")
    p.add_argument("--calls", type=int, default=None)
    p.add_argument("--eval", type=int, default=None, help="integration calls (default calls/5)")
    p.add_argument("--only", default="", help="comma-separated subset of the integrand names")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="train both on the CPU (default) or on the GPU (mcint: backend "
                        "torch-cuda; madnis: device cuda)")
    p.add_argument("--no-madnis", action="store_true")
    p.add_argument("--repeat", type=int, default=1,
                   help="train each contender this many times, taking turns; report the "
                        "fastest training time (same seed: the same numbers every time)")
    p.add_argument("--no-warmup", action="store_true",
                   help="do not pay one-off costs (imports, kernel loading) before timing")
    a = p.parse_args(argv)
    calls = a.calls or (100_000 if a.quick else 1_000_000)
    n_eval = a.eval or max(calls // 5, 20_000)

    import torch
    torch.set_num_threads(1)
    # both sides build an Adam optimiser: pay torch's one-off optimiser import before timing
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    from mcint import diagnostics as D

    problems = {
        "camel2": camel(2), "camel4": camel(4), "camel8": camel(8), "camel16": camel(16),
        "ring": ring(), "signed": signed_two_peak(), "corr6": correlated_gaussian(6),
    }
    sel = [s for s in a.only.split(",") if s]
    rows = []
    names = list(problems) + ["drellyan3", "dy_lhc"]
    if not a.no_warmup:
        warm_up()
    for name in names:
        if sel and name not in sel:
            continue
        if name == "drellyan3":
            f, d, exact, ch = dy_f, 2, dy_exact(), dy_mappings()
        elif name == "dy_lhc":
            f, d, exact, ch = drellyan_process()
        else:
            (f, d, exact), ch = problems[name], None
        res = {}
        contenders = [("mcint", run_mcint)] + ([] if a.no_madnis else [("madnis", run_madnis)])
        # repeats take turns (mcint, madnis, mcint, ...): a slow spell of the machine then hits
        # both; each run repeats the same seeded numbers, only the fastest training time counts
        for rep in range(a.repeat):
            for who, fn in contenders:
                if who in res and res[who] is None:
                    continue  # failed once: no repeats
                try:
                    opts = dict(MCINT_OPTIONS.get(name, {}))
                    if a.device == "cuda":
                        opts.update(backend="torch-cuda") if who == "mcint" else opts.update(
                            device="cuda")
                    r = fn(f, d, calls, n_eval, a.seed, ch, **opts)
                except Exception as exc:  # report, keep going
                    print(f"{name:10s} {who:6s} FAILED: {type(exc).__name__}: {exc}",
                          flush=True)
                    res[who] = None
                    continue
                if who in res:
                    res[who]["train"] = min(res[who]["train"], r["train"])
                    same = "" if r["value"] == res[who]["value"] else " (another estimate!)"
                    print(f"{name:10s} {who:6s} repeat {rep + 1}: train={r['train']:.1f}s{same}",
                          flush=True)
                else:
                    res[who] = r
        res = {k: v for k, v in res.items() if v is not None}
        for who, r in res.items():
            r["pull"] = (r["value"] - exact) / r["error"] if r["error"] > 0 else math.inf
            r["uweff"] = D.unweighting_efficiency(r["weights"]).efficiency
            print(f"{name:10s} {who:6s} I={r['value']:.6g} +- {r['error']:.2g} (exact {exact:.6g})"
                  f" pull={r['pull']:+.2f} rel_std={r['rel_std']:.4g} uw_eff={r['uweff']:.4g} "
                  f"train={r['train']:.1f}s", flush=True)
        rows.append((name, res))
    print()
    print(f"calls={calls} eval={n_eval}  ({a.device}; 1 CPU thread each; shared machine: ratios matter)")
    hdr = (f"{'integrand':10s} | {'rel_std mcint':>13s} {'madnis':>8s} {'ratio':>6s} | "
           f"{'uw_eff mcint':>12s} {'madnis':>8s} | {'pull mcint':>10s} {'madnis':>7s} | "
           f"{'train mcint':>11s} {'madnis':>7s} {'ratio':>6s}")
    print(hdr)
    print("-" * len(hdr))
    for name, res in rows:
        m, q = res.get("mcint"), res.get("madnis")
        if m is None:
            continue

        def g(r, k, fmt):
            return format(r[k], fmt) if r is not None else "-"

        ratio = (m["rel_std"] / q["rel_std"]) if q else math.nan
        tr = (m["train"] / q["train"]) if q else math.nan
        mark = name + ("*" if name in MCINT_OPTIONS else "")
        print(f"{mark:10s} | {m['rel_std']:13.4g} {g(q, 'rel_std', '8.4g'):>8s} {ratio:6.2f} | "
              f"{m['uweff']:12.4g} {g(q, 'uweff', '8.4g'):>8s} | {m['pull']:+10.2f} "
              f"{g(q, 'pull', '+7.2f'):>7s} | {m['train']:10.1f}s {g(q, 'train', '6.1f'):>6s}s "
              f"{tr:6.2f}")
    for name, o in MCINT_OPTIONS.items():
        if any(n == name for n, _ in rows):
            print(f"* {name}: mcint with {', '.join(f'{k}={v!r}' for k, v in o.items())}"
                  + (" (positive and negative parts as two channels, a flow each)"
                     if o.get("split_sign") else ""))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    sys.exit(main())
