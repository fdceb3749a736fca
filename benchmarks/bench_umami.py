"""Per-event cost of a UMAMI matrix-element call against the same matrix element in numpy.

    python benchmarks/bench_umami.py [--n 100000] [--repeat 5]

The UMAMI side is the test library tests/data/umami/ffbar_ll.c (f fbar -> l- l+ through gamma
and Z), compiled here with ``cc -O2``, called through ``mcint.umami`` (ctypes, momenta
transposed into UMAMI's event-contiguous layout, outputs checked for NaN); the numpy side is
``mcint.processes.ew.me2`` on the same momenta (the invariants from dot products, as the
library does). Both compute the same |M|^2 (checked). Reported: ns per event for batches of
``n`` and of 100 events (where the fixed cost of a call shows), best of ``--repeat``. One
thread; the machine is shared, compare figures from one run only.
"""

from __future__ import annotations

import os

for _k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_k] = "1"
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import argparse  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from mcint import umami  # noqa: E402
from mcint.phasespace import PhaseSpace, RamboOnDiet  # noqa: E402
from mcint.phasespace.kinematics import dot  # noqa: E402
from mcint.processes import ew  # noqa: E402

SRC = Path(__file__).resolve().parent.parent / "tests" / "data" / "umami" / "ffbar_ll.c"


def best(fn, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("no C compiler to build the UMAMI test library")
    with tempfile.TemporaryDirectory() as d:
        lib = Path(d) / "libffbar_ll.so"
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(lib), str(SRC), "-lm"],
                       check=True)
        me = umami.load(lib)
        ps = PhaseSpace(RamboOnDiet(2), 91.1876)
        params = ew.EWParams()
        print(f"{'n':>8}  {'UMAMI ns/event':>15}  {'numpy ns/event':>15}  {'ratio':>6}")
        for n in (args.n, 100):
            p = np.asarray(ps.map(np.random.default_rng(0).random((n, 2)))[0])

            def numpy_me(p: np.ndarray = p) -> np.ndarray:
                s = 2 * dot(p[:, 0], p[:, 1])
                t = -2 * dot(p[:, 0], p[:, 2])
                return ew.me2(s, t, -s - t, ew.LEPTON, ew.LEPTON, params)

            np.testing.assert_allclose(me(p)["matrix_element"], numpy_me(), rtol=1e-12)
            rep = args.repeat * (1 if n > 1000 else 200)
            t_u = best(lambda p=p: me(p), rep) / n * 1e9
            t_n = best(numpy_me, rep) / n * 1e9
            print(f"{n:>8}  {t_u:>15.1f}  {t_n:>15.1f}  {t_u / t_n:>6.2f}")


if __name__ == "__main__":
    main()
