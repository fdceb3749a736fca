"""The seeds' W + 2 jets table: g g -> W+(-> e+ nu_e) d u~ at 13 TeV, side by side, equal calls.

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_wjets.py [--quick]
        [--calls N] [--eval N] [--ref N] [--only vegas,nis5cw,madnis] [--seed S]

The integrand is :class:`mcint.amplitudes.hadronic.HadronCollision` (8 diagram channels, 5
beam-mirror groups, propagator-product priors, jets pT > 20 GeV, |eta| < 5, Delta R > 0.4,
fixed mu_F = M_Z, alpha_s = 0.118, the TOY PDF mcint.pdf.ToyPDF: the cross section is not a
physics prediction). Every contender gets the same training calls and integration calls and
the same channels, priors, features and matrix element:

* ``vegas``   mcint, a VEGAS grid per channel on the diagram mappings, prior channel weights
              fixed (MadGraph-style multi-channel; the NIS Integrator with ``flow=False``);
* ``nis8``    mcint NIS, a flow per channel (8), prior channel weights;
* ``nis8cw``  the same with learned channel weights;
* ``nis5``    mcint NIS, a flow per symmetry group (5), prior channel weights;
* ``nis5cw``  the same with learned channel weights;
* ``nis5cw+`` ``nis5cw`` with half of each training batch allocated by the channels' variances
              (``uniform_ratio=0.5``) and three buffered steps per fresh step to the end
              (``buffered_steps=3, buffered_until=1``): no extra integrand calls;
* ``madnis``  madnis 1.0.0, 8 channels, learned channel weights (its defaults), fed
              ``HadronCollision.evaluate`` per channel;
* ``madnis5`` the same with madnis' ``ChannelGrouping`` of the 5 symmetry groups (a flow per
              group, channels kept apart in the loss and the integration, as ``nis5cw``);
* ``madnis+`` madnis with ``uniform_channel_ratio=0.5``, the allocation knob of ``nis5cw+``.

Printed: integral, error, pull against a high-statistics reference (mcint ``nis5`` trained
on 2x the calls with another seed, integrated with ``--ref`` calls; its error enters the pull),
rel. std of the weights, two unweighting efficiencies of the same sampled weights (the same
code for all): ``uw_eff`` with the bootstrap-median maximum (arXiv:2001.10028; with replicas as
large as the sample it is the largest weight, so one outlier sets it) and ``uw_eff@1e-3`` with
the ``w_max`` whose truncated overweights are 0.1% of the cross section (what ``mcint run``
unweights with: ``<min(|w|, w_max)>/w_max``), and training time. Timings on a shared machine
are noisy.
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

MCINT = {
    "vegas": dict(flow=False, vegas_init=True, channel_weights=False, groups=False),
    "nis8": dict(groups=False, channel_weights=False),
    "nis8cw": dict(groups=False, channel_weights=True),
    "nis5": dict(channel_weights=False),
    "nis5cw": dict(channel_weights=True),
    # tuned: half of each batch by the channels' variances from the start, three buffered
    # steps per fresh one to the end (the defaults: every batch spread evenly, one buffered
    # step until 60% of the run)
    "nis5cw+": dict(channel_weights=True, uniform_ratio=0.5, buffered_until=1.0,
                    buffered_steps=3),
}
MADNIS = {"madnis": {}, "madnis5": dict(grouped=True),
          # madnis given the same allocation knob as nis5cw+ (its default is 1.0, too)
          "madnis+": dict(uniform_channel_ratio=0.5)}


def process(cut_aware=True):
    from mcint.amplitudes.hadronic import WJETS_CUTS, HadronCollision

    return HadronCollision("g g > e+ ve d u~", 13000.0, cuts=WJETS_CUTS, cut_aware=cut_aware)


def run_mcint(proc, calls, n_eval, seed, **opts):
    from bench_nis import run_mcint as run

    return run(None, None, calls, n_eval, seed, channels=proc, **opts)


def run_madnis(proc, calls, n_eval, seed, grouped=False, **opts):
    import torch
    from bench_nis import madnis_channel_fn, madnis_measure
    from madnis.integrator import Integrand, Integrator
    from madnis.integrator.channel_grouping import ChannelGrouping

    torch.manual_seed(seed)
    grouping = None
    if grouped:  # madnis' symmetry groups: each channel names its group's first channel
        first: dict[int, int] = {}
        grouping = ChannelGrouping([None if first.setdefault(g, c) == c else first[g]
                                    for c, g in enumerate(proc.groups)])
    it = Integrator(Integrand(madnis_channel_fn(proc), input_dim=proc.dims,
                              channel_count=proc.n_channels, remapped_dim=proc.features_dim,
                              has_channel_weight_prior=True, channel_grouping=grouping),
                    dims=proc.dims, **opts)
    return madnis_measure(it, calls, n_eval)


def budget_efficiency(weights, budget):
    """``<min(|w|, w_max)> / w_max`` with the ``w_max`` that truncates ``budget`` of the sum."""
    import numpy as np

    from mcint.events.unweight import max_weight

    w = np.abs(np.asarray(weights, dtype=np.float64))
    w_max = max_weight(w, budget)
    return float(np.mean(np.minimum(w, w_max)) / w_max)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3e4 training calls instead of 3e5")
    p.add_argument("--calls", type=int, default=None)
    p.add_argument("--eval", type=int, default=None, help="integration calls (default calls)")
    p.add_argument("--ref", type=int, default=None, help="reference integration calls")
    p.add_argument("--only", default="", help="comma-separated subset of the contenders")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-cut-aware", action="store_true",
                   help="charts without the jets' pT cuts built in (the tables before them)")
    a = p.parse_args(argv)
    import torch

    from mcint import diagnostics as D

    torch.set_num_threads(1)
    warnings.simplefilter("ignore", RuntimeWarning)
    calls = a.calls or (30_000 if a.quick else 300_000)
    n_eval = a.eval or calls
    n_ref = a.ref or (10 * n_eval)
    proc = process(cut_aware=not a.no_cut_aware)
    print(f"{proc}; cut-aware charts {not a.no_cut_aware}; training calls {calls}, integration calls {n_eval}, load "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    t0 = time.perf_counter()
    ref = run_mcint(proc, 2 * calls, n_ref, a.seed + 100, **MCINT["nis5"])
    print(f"reference: {ref['value']:.5g} +- {ref['error']:.2g} pb ({n_ref} calls, "
          f"{time.perf_counter() - t0:.0f}s)", flush=True)
    names = [n for n in [*MCINT, *MADNIS] if not a.only or n in a.only.split(",")]
    rows = {}
    for name in names:
        try:
            if name in MADNIS:
                r = run_madnis(proc, calls, n_eval, a.seed, **MADNIS[name])
            else:
                r = run_mcint(proc, calls, n_eval, a.seed, **MCINT[name])
        except Exception as exc:  # report, keep going
            print(f"{name:8s} FAILED: {type(exc).__name__}: {exc}", flush=True)
            continue
        sigma = math.hypot(r["error"], ref["error"])
        r["pull"] = (r["value"] - ref["value"]) / sigma if sigma > 0 else math.inf
        r["uweff"] = D.unweighting_efficiency(r["weights"]).efficiency
        r["uweff3"] = budget_efficiency(r["weights"], 1e-3)
        rows[name] = r
        print(f"{name:8s} I={r['value']:.5g} +- {r['error']:.2g} pull={r['pull']:+.2f} "
              f"rel_std={r['rel_std']:.3g} uw_eff={r['uweff']:.3g} "
              f"uw_eff@1e-3={r['uweff3']:.3g} train={r['train']:.1f}s", flush=True)
    print()
    print("| contender | integral (pb) | pull | rel. std | unweighting eff. | eff. at 0.1% "
          "overweights | training (s) |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['value']:.4g} ± {r['error']:.2g} | {r['pull']:+.2f} | "
              f"{r['rel_std']:.3g} | {r['uweff']:.3g} | {r['uweff3']:.3g} | {r['train']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
