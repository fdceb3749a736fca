"""Which implementation a ``@fusable`` kernel runs: one pure rule (mcint.backends.dispatch).

* :func:`select_kernel` depends only on (kernel, current backend, array library, dtype, grad):
  the same answer in a fresh process as after ``mcint.available()`` (the old global
  ``register_type_kernel`` gave the torch fused spline only after the torch plugin was loaded);
* every implementation of the spline validates its arguments with the reference's validator
  (``min_width=0.2`` with 10 bins raises everywhere; the numba kernel used to return numbers).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import mcint.backends as B
from mcint.backends import select_kernel, trace
from mcint.flows.couplings import rqs_coupling
from mcint.flows.splines import check_spline_args, rq_spline


def _spline_args(be, n=6, k=2, bins=10, seed=0):
    rng = np.random.default_rng(seed)
    x = be.asarray(rng.random((n, k)), dtype="float64")
    p = be.asarray(rng.standard_normal((n, k, 3 * bins + 1)), dtype="float64")
    return x, p


def test_min_width_times_bins_over_one_raises_on_every_backend(backend):
    x, p = _spline_args(backend)
    for inverse in (False, True):
        with pytest.raises(ValueError, match="times bins"):
            rq_spline(x, p, inverse=inverse, min_width=0.2)
        with pytest.raises(ValueError, match="times bins"):
            rq_spline(x, p, inverse=inverse, min_height=0.1)
    with pytest.raises(ValueError, match="spline parameters must have shape"):
        rq_spline(x, p[..., :-1])
    with pytest.raises(ValueError, match="finite and >= 0"):
        rq_spline(x, p, min_derivative=-1.0)


def test_the_fused_kernels_themselves_validate():
    """Called directly (not through the dispatch), each fused spline raises the reference's
    error: the numba kernels (spline and coupling) and the torch node, with and without grad."""
    numba_be = pytest.importorskip("mcint_numba") and B.get_backend("numba")
    x, p = _spline_args(B.get_backend("numpy"))
    for dt in (np.float64, np.float32):
        with pytest.raises(ValueError, match="times bins"):
            numba_be.kernels["rq-spline"](x.astype(dt), p.astype(dt), min_width=0.2)
    rng = np.random.default_rng(1)
    mlp = [(rng.standard_normal((1, 8)), rng.standard_normal(8)),
           (rng.standard_normal((8, 31)), rng.standard_normal(31))]
    x2 = rng.random((5, 2))
    for dt in (np.float64, np.float32):
        m = [(w.astype(dt), b.astype(dt)) for w, b in mlp]
        with pytest.raises(ValueError, match="times bins"):
            numba_be.kernels["rqs-coupling"](x2.astype(dt), None, m, [0], [1], min_width=0.2)
        with B.use(numba_be), pytest.raises(ValueError, match="times bins"):
            rqs_coupling(x2.astype(dt), None, m, [0], [1], min_width=0.2)
    torch = pytest.importorskip("torch")
    from mcint_torch import fused

    xt, pt = torch.as_tensor(x), torch.as_tensor(p)
    for grad in (False, True):
        with pytest.raises(ValueError, match="times bins"):
            fused.rq_spline(xt, pt.clone().requires_grad_(grad), min_width=0.2)


def test_check_spline_args():
    assert check_spline_args((4, 3), (4, 3, 31), 1e-3, 1e-3, 1e-3) == 10
    assert check_spline_args((4, 3), (4, 3, 4), 0.99, 0.0, 0.0) == 1
    for xs, ps in [((4, 3), (4, 3, 30)), ((4,), (4, 31)), ((4, 3), (4, 2, 31)),
                   ((4, 3), (4, 3, 1))]:
        with pytest.raises(ValueError, match="spline parameters must have shape"):
            check_spline_args(xs, ps, 1e-3, 1e-3, 1e-3)
    with pytest.raises(ValueError, match="times bins"):
        check_spline_args((4, 3), (4, 3, 31), 0.1, 1e-3, 1e-3)  # exactly 1: no room left
    with pytest.raises(ValueError, match="finite"):
        check_spline_args((4, 3), (4, 3, 31), float("nan"), 1e-3, 1e-3)


def test_select_kernel_is_a_function_of_backend_array_dtype_grad(monkeypatch):
    pytest.importorskip("numba")
    nb = B.get_backend("numba")
    monkeypatch.delenv("MCINT_FUSED", raising=False)
    # numpy arrays: numba's kernels exactly when numba is the current backend
    assert select_kernel("rq-spline", "numba", np.ndarray, "float32") is nb.kernels["rq-spline"]
    assert select_kernel("rq-spline", "numba", np.ndarray, "float64") is nb.kernels["rq-spline"]
    assert select_kernel("rq-spline", "numba", np.ndarray, "int64") is None
    assert select_kernel("rq-spline", "numpy", np.ndarray, "float64") is None
    assert select_kernel("no-such-kernel", "numba", np.ndarray, "float64") is None
    # numba kernels are not autograd nodes: never picked in grad mode
    assert select_kernel("rq-spline", "numba", np.ndarray, "float64", grad=True) is None
    strict = pytest.importorskip("array_api_strict")
    for cur in ("numpy", "numba", "strict"):
        assert select_kernel("rq-spline", cur, strict.asarray([1.0])) is None
    torch = pytest.importorskip("torch")
    tk = B.get_backend("torch").kernels
    for cur in ("numpy", "numba", "strict", "torch"):
        for dt in ("float32", "float64"):
            for grad in (False, True):
                assert select_kernel("rq-spline", cur, torch.Tensor, dt, grad) is tk["rq-spline"]
                assert select_kernel("mlp", cur, torch.Tensor, dt, grad) is tk["mlp"]
        assert select_kernel("rq-spline", cur, torch.Tensor, "float16") is None
        assert select_kernel("rqs-coupling", cur, torch.Tensor, "float32") is None
    # an instance gives its own dtype
    assert select_kernel("rq-spline", "numpy", torch.zeros(2, dtype=torch.float16)) is None
    assert select_kernel("rq-spline", "numpy", torch.zeros(2)) is tk["rq-spline"]
    monkeypatch.setenv("MCINT_FUSED", "0")
    assert select_kernel("rq-spline", "numba", np.ndarray, "float64") is None
    assert select_kernel("rq-spline", "numpy", torch.Tensor, "float64", True) is None


_FRESH = """
import numpy as np, torch
import mcint
from mcint.flows.splines import rq_spline
from mcint.backends import trace
x = torch.rand(8, 2, dtype=torch.float64)
p = torch.randn(8, 2, 31, dtype=torch.float64, requires_grad=True)
if {available}:
    mcint.available()
with trace() as log:
    y, ld = rq_spline(x, p)
print(type(ld.grad_fn).__name__, log)
"""


@pytest.mark.parametrize("available", [False, True])
def test_torch_spline_is_the_fused_node_in_a_fresh_process_too(available):
    pytest.importorskip("torch")
    pytest.importorskip("numba")
    env = {k: v for k, v in os.environ.items() if k not in ("MCINT_FUSED", "MCINT_BACKEND")}
    out = subprocess.run([sys.executable, "-c", _FRESH.format(available=available)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "_RQSplineBackward", out.stdout
    assert "('rq-spline', 'torch')" in out.stdout


def test_trace_records_what_ran(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.delenv("MCINT_FUSED", raising=False)
    x, p = _spline_args(B.get_backend("numpy"))
    with trace() as log, B.use("numba"):
        rq_spline(x, p)
        rq_spline(x.astype(np.float16), p.astype(np.float16))  # no fused float16
    assert log == [("rq-spline", "numba"), ("rq-spline", "reference")]
    monkeypatch.setenv("MCINT_FUSED", "0")
    with trace() as log, B.use("numba"):
        rq_spline(x, p)
    assert log == [("rq-spline", "reference")]


def test_numba_spline_matches_reference_every_dtype_and_direction():
    """The one kernel per (dtype, direction) that the numba backend runs, against the
    reference: float32 density (row-vectorised), float64 density and both inverses."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(3)
    x = rng.random((300, 3))
    x[:3, 0] = [0.0, 1.0, 0.5]
    p = 2.0 * rng.standard_normal((300, 3, 31))
    y0, _ = rq_spline.reference(x, p)
    np.testing.assert_allclose(rq_spline.reference(y0, p, inverse=True)[0], x, atol=1e-9)
    for dt, tol in ((np.float64, 1e-12), (np.float32, 2e-5)):
        # the oracle in float64 on the inputs rounded to dt (the inverse of a flat bin
        # amplifies input rounding: compare the maps, not the conditioning)
        xr, pr, yr = (a.astype(dt).astype(np.float64) for a in (x, p, y0))
        ye, lde = rq_spline.reference(xr, pr)
        xbe, ldbe = rq_spline.reference(yr, pr, inverse=True)
        with B.use("numba"), trace() as log:
            y, ld = rq_spline(x.astype(dt), p.astype(dt))
            xb, ldb = rq_spline(yr.astype(dt), p.astype(dt), inverse=True)
        assert log == [("rq-spline", "numba")] * 2
        assert y.dtype == dt and ld.dtype == dt
        for a, b in ((y, ye), (ld, lde), (xb, xbe), (ldb, ldbe)):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol * 10)
