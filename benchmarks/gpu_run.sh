#!/usr/bin/env bash
# What ran on the lent H100 (docs/backends.md, "GPUs: what was measured"): the suite's GPU
# cases, then the GPU benchmarks. Run from the repository root on a CUDA machine that has
# torch, cupy, numba, pytest(-xdist) and mcint's test extras; logs go to ${OUT:-gpu-logs}/.
set -o pipefail
out=${OUT:-gpu-logs}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE MKL_NUM_THREADS=1
python3 -c "import mcint; print('backends here:', mcint.available())"
MCINT_TEST_BACKENDS=cupy,torch-cuda python3 -m pytest -q -n "${JOBS:-8}" -p no:cacheprovider \
    -k "cupy or cuda" 2>&1 | tee "$out/tests.log" | tail -3
python3 benchmarks/bench_flows.py --madnis-device cuda --backends torch-cuda,cupy \
    --n 1000000 --dims 8,16 --dtypes float32,float64 --no-affine --repeat 3 \
    2>&1 | tee "$out/flows.log" | tail -10
python3 benchmarks/bench_vegas.py --skip-accuracy --backends numba,cupy,torch-cuda \
    2>&1 | tee "$out/vegas.log" | tail -8
python3 benchmarks/bench_nis.py --device cuda --only camel4,drellyan3 \
    2>&1 | tee "$out/nis.log" | tail -6
