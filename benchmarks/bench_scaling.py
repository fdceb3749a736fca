"""Multi-channel NIS against the number of channels: W+2, W+3 and W+4 partons from g g.

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_scaling.py [--quick]
        [--steps N] [--only 2,3,4]

Processes (mcint.amplitudes.hadronic.HadronCollision, 13 TeV, jets pT > 20 GeV, |eta| < 5,
Delta R > 0.4, TOY PDF): ``g g > e+ ve d u~`` (8 channels), ``... g`` (48), ``... g g`` (384
channels, 123 beam-mirror groups; diagrams with a four-gluon vertex have no channel). Each runs
in a fresh subprocess: NIS with a flow per group and learned channel weights trains a fixed
number of steps of 1024 calls; printed per process: channels, groups, build time, seconds per
training step, the matrix element's share of it (the same calls evaluated alone), peak resident
memory, and the rel. std of the weights of a short integration (quality at a fixed, small
budget: not converged).

``--quality CALLS`` instead trains NIS (a flow per group, learned channel weights) and MG-style
multi-channel VEGAS (a grid per channel on the same diagram mappings, prior channel weights:
the NIS integrator with ``flow=False``) on CALLS integrand calls each, then integrates with
CALLS / 2 fresh calls: the rel. std of both and their ratio (VEGAS / NIS, > 1: NIS better),
the quality against the number of channels.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

PROCESSES = {"2": "g g > e+ ve d u~", "3": "g g > e+ ve d u~ g", "4": "g g > e+ ve d u~ g g"}


def one(name: str, steps: int, seed: int) -> dict:
    import torch

    from mcint.amplitudes.hadronic import WJETS_CUTS, HadronCollision
    from mcint.nis import Integrator

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    proc = HadronCollision(PROCESSES[name], cuts=WJETS_CUTS)
    build = time.perf_counter() - t0
    batch = 1024
    it = Integrator(proc, seed=seed, batch_size=batch, channel_weights=True)
    it.train(batch)  # one step: flows built, first-call costs paid
    t0 = time.perf_counter()
    it.train(steps * batch)
    per_step = (time.perf_counter() - t0) / steps
    # the integrand alone on as many calls, spread over the channels as uniformly, in one
    # evaluate_batch call as the integrator makes it
    rng = np.random.default_rng(seed)
    ch = np.arange(batch) % proc.n_channels
    t0 = time.perf_counter()
    proc.evaluate_batch(rng.random((batch, proc.dims)), ch)
    me = time.perf_counter() - t0
    res = it.integrate(4 * batch)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB on Linux
    return dict(process=PROCESSES[name], channels=proc.n_channels,
                groups=len(set(proc.groups)), build=build, step=per_step, integrand=me,
                rss=rss, rel_std=float(res.metrics["rel_std"]), value=res.value)


def quality(name: str, calls: int, seed: int) -> dict:
    import torch

    from mcint.amplitudes.hadronic import WJETS_CUTS, HadronCollision
    from mcint.nis import Integrator

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    proc = HadronCollision(PROCESSES[name], cuts=WJETS_CUTS)
    out = dict(process=PROCESSES[name], channels=proc.n_channels, groups=len(set(proc.groups)))
    for tag, opts in (("nis", dict(channel_weights=True)), ("vegas", dict(flow=False))):
        it = Integrator(proc, seed=seed, **opts)
        t0 = time.perf_counter()
        it.train(calls)
        out[f"{tag}_train"] = time.perf_counter() - t0
        res = it.integrate(calls // 2)
        out[f"{tag}_rel_std"] = float(res.metrics["rel_std"])
        out[f"{tag}_value"], out[f"{tag}_error"] = res.value, res.error
    return out


def _children(only: str, option: str, value: int, seed: int):
    """Each process of ``only`` measured in a fresh interpreter: its result dict (a failure is
    printed as a table row and skipped)."""
    for name in only.split(","):
        out = subprocess.run([sys.executable, __file__, "--child", name, option, str(value),
                              "--seed", str(seed)], capture_output=True, text=True)
        if out.returncode:
            print(f"| {PROCESSES[name]} | FAILED: {out.stderr.strip().splitlines()[-1]} |")
            continue
        yield json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="5 training steps instead of 30")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--only", default="2,3,4")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quality", type=int, default=None, metavar="CALLS",
                   help="rel. std of NIS and MG-style VEGAS after CALLS training calls each")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    steps = a.steps or (5 if a.quick else 30)
    if a.child:
        r = quality(a.child, a.quality, a.seed) if a.quality else one(a.child, steps, a.seed)
        print(json.dumps(r))
        return 0
    if a.quality:
        print(f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {a.quality} training "
              f"and {a.quality // 2} integration calls per sampler")
        print("| process | channels | groups | NIS rel. std | VEGAS rel. std | VEGAS / NIS | "
              "NIS integral | VEGAS integral | NIS train (s) | VEGAS train (s) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in _children(a.only, "--quality", a.quality, a.seed):
            print(f"| {r['process']} | {r['channels']} | {r['groups']} | "
                  f"{r['nis_rel_std']:.3g} | {r['vegas_rel_std']:.3g} | "
                  f"{r['vegas_rel_std'] / r['nis_rel_std']:.2f} | "
                  f"{r['nis_value']:.4g} +- {r['nis_error']:.2g} | "
                  f"{r['vegas_value']:.4g} +- {r['vegas_error']:.2g} | "
                  f"{r['nis_train']:.0f} | {r['vegas_train']:.0f} |", flush=True)
        return 0
    print(f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {steps} steps of 1024 calls")
    print("| process | channels | groups | build (s) | s / step | integrand share | "
          "peak RSS (MiB) | rel. std |")
    print("|---|---|---|---|---|---|---|---|")
    for r in _children(a.only, "--steps", steps, a.seed):
        print(f"| {r['process']} | {r['channels']} | {r['groups']} | {r['build']:.2f} | "
              f"{r['step']:.3f} | {r['integrand'] / r['step']:.0%} | {r['rss']:.0f} | "
              f"{r['rel_std']:.3g} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
