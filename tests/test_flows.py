"""Flows: round trips, log-dets against numerical Jacobians, backend agreement, fused kernels,
masks, VEGAS-grid initialisation, bad input. Training/gradcheck live in test_flows_torch.py."""

from __future__ import annotations

import numpy as np
import pytest

import mcint.backends as B
from mcint.backends import default_name
from mcint.flows import Flow, make_masks, one_hot
from mcint.flows.couplings import affine_coupling, rqs_coupling
from mcint.flows.mlp import ACTIVATIONS, apply_mlp, init_mlp
from mcint.flows.splines import knots, reduce_bins, rq_spline, unnormalise

RNG = np.random.default_rng(12345)


def perturbed(flow: Flow, scale: float = 0.3, seed: int = 7) -> Flow:
    """The same architecture with non-trivial random parameters (not the identity init)."""
    rng = np.random.default_rng(seed)

    def f(a):  # weights scaled by 1/sqrt(fan_in): spline parameters of order `scale`
        a = np.asarray(a)
        s = scale / np.sqrt(a.shape[0]) if a.ndim == 2 else scale
        return (a + s * rng.normal(size=a.shape)).astype(a.dtype)

    return flow.to("numpy").map_arrays(f)  # on the host, whatever backend is current


def interior(n: int, d: int, seed: int = 0, margin: float = 1e-3) -> np.ndarray:
    return np.random.default_rng(seed).uniform(margin, 1 - margin, size=(n, d))


CASES = {
    "rqs-4d": dict(dims=4),
    "rqs-3d-cond": dict(dims=3, condition_dims=2, bins=6, hidden=(16,)),
    "rqs-1d": dict(dims=1, bins=5),
    "affine-4d": dict(dims=4, coupling="affine"),
    "rqs-5d-random-gelu": dict(dims=5, masks="random", layers=3, activation="gelu", bins=4),
}


def _make(case: str, dtype: str = "float64") -> tuple[Flow, np.ndarray | None]:
    kw = CASES[case]
    flow = perturbed(Flow(**kw, dtype=dtype), 0.5)
    c = kw.get("condition_dims", 0)
    cond = RNG.random((64, c)).astype(dtype) if c else None
    return flow, cond


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 1e-4)])
def test_round_trip(backend, case, dtype, tol):
    flow, cond = _make(case, dtype)
    flow = flow.to(backend)
    cb = None if cond is None else backend.asarray(cond)
    x = backend.asarray(interior(64, flow.dims, seed=1), dtype=dtype)
    z, ld_i = flow.inverse(x, cb)
    x2, ld_f = flow.forward(z, cb)
    assert str(x2.dtype).endswith(dtype)
    assert np.max(np.abs(backend.to_numpy(x2) - backend.to_numpy(x))) < tol
    assert np.max(np.abs(backend.to_numpy(ld_i) + backend.to_numpy(ld_f))) < tol * 100
    z2, _ = flow.inverse(flow.forward(z, cb)[0], cb)
    assert np.max(np.abs(backend.to_numpy(z2) - backend.to_numpy(z))) < tol


@pytest.mark.parametrize("case", list(CASES))
def test_log_det_matches_numerical_jacobian(backend, case, num_log_det):
    flow, cond = _make(case)
    flow = flow.to(backend)
    cb = None if cond is None else backend.asarray(cond)
    z = interior(64, flow.dims, seed=2, margin=1e-2)

    def fwd(a):
        return backend.to_numpy(flow.forward(backend.asarray(a), cb)[0])

    _, ld = flow.forward(backend.asarray(z), cb)
    assert np.allclose(backend.to_numpy(ld), num_log_det(fwd, z), atol=2e-5)
    assert np.std(backend.to_numpy(ld)) > 0.05  # a non-trivial map


@pytest.mark.parametrize("case", list(CASES))
def test_backends_agree(backend, case):
    flow, cond = _make(case)
    cond = None if cond is None else RNG.random((200, cond.shape[1]))
    ref = flow.to("numpy")
    x = interior(200, flow.dims, seed=3)
    with B.use("numpy"):
        rx, rlp = ref.sample(200, rng=5, condition=cond)
        rz, rld = ref.inverse(x, cond)
        fx, fld = ref.forward(rz, cond)
    other = flow.to(backend)
    cb = None if cond is None else backend.asarray(cond)
    oz, old = other.inverse(backend.asarray(x), cb)
    ofx, ofld = other.forward(backend.asarray(rz), cb)
    pairs = [(oz, rz), (old, rld), (ofx, fx), (ofld, fld)]
    if not backend.gpu:  # the CPU backends share numpy's stream: the same points
        ox, olp = other.sample(200, rng=5, condition=cb)
        pairs += [(ox, rx), (olp, rlp)]
    for a, b in pairs:
        assert np.allclose(backend.to_numpy(a), b, rtol=0, atol=1e-10)


def test_sample_log_prob_matches_log_prob(backend):
    flow = perturbed(Flow(3)).to(backend)
    x, lp = flow.sample(500, rng=backend.rng(3))
    xn = backend.to_numpy(x)
    assert xn.shape == (500, 3) and np.all((xn >= 0) & (xn <= 1))
    assert np.allclose(backend.to_numpy(flow.log_prob(x)), backend.to_numpy(lp), atol=1e-10)


def test_identity_at_initialisation():
    for coupling in ("rqs", "affine"):
        flow = Flow(3, coupling=coupling)
        x = interior(50, 3)
        z, ld = flow.inverse(x)
        assert np.allclose(z, x, atol=1e-12) and np.allclose(ld, 0, atol=1e-12)


def test_density_integrates_to_one_in_2d():
    flow = perturbed(Flow(2, bins=8), 0.4)
    m = 300
    g = (np.arange(m) + 0.5) / m
    pts = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    integral = np.exp(flow.log_prob(pts)).mean()
    assert abs(integral - 1) < 2e-3


def test_log_prob_outside_cube_is_minus_inf():
    flow = perturbed(Flow(2))
    lp = flow.log_prob(np.array([[0.5, 0.5], [1.5, 0.2], [-0.1, 0.3]]))
    assert np.isfinite(lp[0]) and np.all(lp[1:] == -np.inf)


def test_conditioning_changes_the_map():
    flow = perturbed(Flow(2, condition_dims=3))
    z = interior(4, 2)
    ch = np.array([0, 1, 2, 1])
    x0, _ = flow.forward(z, one_hot(ch, 3))
    x1, _ = flow.forward(z, one_hot(np.array([0, 0, 0, 0]), 3))
    assert np.allclose(x0[0], x1[0]) and not np.allclose(x0[1:], x1[1:])
    assert one_hot(ch, 3).tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0]]


# -- fused kernels against the pure array-API reference ---------------------------------------

@pytest.mark.parametrize("dtype,tol", [("float64", 1e-11), ("float32", 2e-4)])
@pytest.mark.parametrize("inverse", [False, True])
def test_fused_spline_matches_reference(dtype, tol, inverse):
    nb_be = pytest.importorskip("mcint_numba")
    B.get_backend("numba")
    kern = nb_be.KERNELS["rq-spline"]
    x = RNG.random((300, 3)).astype(dtype)
    x[:3] = [[0.0, 1.0, 0.5], [1.0, 0.0, 1e-9], [0.999999, 1e-7, 0.25]]
    p = (RNG.normal(size=(300, 3, 3 * 7 + 1))).astype(dtype)
    y0, l0 = rq_spline.reference(x, p, inverse=inverse)
    y1, l1 = kern(x, p, inverse=inverse)
    assert y1.dtype == y0.dtype and l1.dtype == l0.dtype
    assert np.allclose(y1, y0, atol=tol, rtol=0) and np.allclose(l1, l0, atol=tol * 10, rtol=tol)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("cond_idx,trafo_idx,c", [([0, 2], [1, 3, 4], 0), ([], [0], 2),
                                                   ([1], [0], 0), ([], [0], 0)])
def test_fused_coupling_matches_reference(activation, cond_idx, trafo_idx, c):
    nb_be = pytest.importorskip("mcint_numba")
    B.get_backend("numba")
    kern = nb_be.KERNELS["rqs-coupling"]
    d = len(cond_idx) + len(trafo_idx)
    n = 2500  # more than one block of rows
    mlp = init_mlp([max(1, len(cond_idx) + c), 8, len(trafo_idx) * 16], seed=3, zero_last=False)
    x = RNG.random((n, d))
    cond = RNG.random((n, c)) if c else None
    for inverse in (False, True):
        y0, l0 = rqs_coupling.reference(x, cond, mlp, cond_idx, trafo_idx, activation, inverse)
        y1, l1 = kern(x, cond, mlp, cond_idx, trafo_idx, activation, inverse)
        assert np.allclose(y1, y0, atol=1e-11, rtol=0) and np.allclose(l1, l0, atol=1e-10)
        assert np.array_equal(y1[:, cond_idx], x[:, cond_idx])


def _float32_kernel_case(name, cond_idx, trafo_idx, c, per_dim, n, seed):
    """A numba float32 coupling kernel, a conditioner far from the identity (float32 weights and
    the same numbers in float64), points with edge rows 0, 1 and 1e-7, and a condition."""
    nb_be = pytest.importorskip("mcint_numba")
    B.get_backend("numba")
    kern = nb_be.KERNELS[name]
    d = len(cond_idx) + len(trafo_idx)
    mlp = init_mlp([max(1, len(cond_idx) + c), 16, len(trafo_idx) * per_dim], seed=seed,
                   zero_last=False)
    mlp[-1] = (2.0 * mlp[-1][0], 2.0 * mlp[-1][1])  # far from the identity
    mlp32 = [(w.astype(np.float32), b.astype(np.float32)) for w, b in mlp]
    mlp64 = [(w.astype(np.float64), b.astype(np.float64)) for w, b in mlp32]
    x = RNG.random((n, d)).astype(np.float32)
    x[:3, trafo_idx] = np.array([0.0, 1.0, 1e-7], dtype=np.float32)[:, None]
    cond = RNG.random((n, c)).astype(np.float32) if c else None
    cond64 = None if cond is None else cond.astype(np.float64)
    return kern, mlp32, mlp64, x, cond, cond64


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("cond_idx,trafo_idx,c,bins", [([0, 2], [1, 3, 4], 0, 5),
                                                        ([], [0], 2, 10), ([1], [0], 0, 1),
                                                        ([], [0], 0, 3),
                                                        ([0, 1, 2, 3], [4, 5, 6, 7], 0, 10)])
def test_fused_float32_coupling_matches_reference(activation, cond_idx, trafo_idx, c, bins):
    # float32 runs a separate row-vectorised kernel with its own exp/log polynomials: compare it
    # with the float64 reference on the same (float32) numbers, at float32 accuracy
    # more than one block of rows, and a short last block
    kern, mlp32, mlp64, x, cond, cond64 = _float32_kernel_case(
        "rqs-coupling", cond_idx, trafo_idx, c, 3 * bins + 1, n=2500, seed=4)
    for inverse in (False, True):
        y0, l0 = rqs_coupling.reference(x.astype(np.float64), cond64, mlp64, cond_idx, trafo_idx,
                                        activation, inverse)
        y1, l1 = kern(x, cond, mlp32, cond_idx, trafo_idx, activation, inverse)
        assert y1.dtype == np.float32 and l1.dtype == np.float32
        assert np.array_equal(y1[:, cond_idx], x[:, cond_idx])
        # yardstick: the error of the array-API code itself run in float32
        y2, l2 = rqs_coupling.reference(x, cond, mlp32, cond_idx, trafo_idx, activation, inverse)
        ey, el = np.max(np.abs(y2 - y0)), np.max(np.abs(l2 - l0))
        assert np.max(np.abs(y1 - y0)) < min(4 * ey + 2e-6, 1e-4)
        assert np.max(np.abs(l1 - l0)) < min(4 * el + 2e-5, 2e-3)
        assert np.std(l0) > 0.05  # a non-trivial map
        back, lb = kern(y1, cond, mlp32, cond_idx, trafo_idx, activation, not inverse)
        # the float32 round-trip bound, unless the map is so steep that the float32
        # array-API code misses it too
        b2, lb2 = rqs_coupling.reference(y2, cond, mlp32, cond_idx, trafo_idx, activation,
                                         not inverse)
        assert np.max(np.abs(back - x)) < max(1e-4, 4 * np.max(np.abs(b2 - x)))
        assert np.max(np.abs(lb + l1)) < max(1e-3, 4 * np.max(np.abs(lb2 + l2)))


def test_fused_float32_coupling_propagates_non_finite_parameters():
    nb_be = pytest.importorskip("mcint_numba")
    B.get_backend("numba")
    kern = nb_be.KERNELS["rqs-coupling"]
    mlp = [(w.astype(np.float32), b.astype(np.float32))
           for w, b in init_mlp([2, 8, 2 * 16], seed=3, zero_last=False)]
    x = RNG.random((10, 4)).astype(np.float32)
    for idx in (0, 7, 12, 15):  # a width, a height, derivatives of spline 0
        for bad in (np.nan, np.inf):
            m = [(w.copy(), b.copy()) for w, b in mlp]
            m[-1][1][idx] = bad
            for inverse in (False, True):
                y, ld = kern(x, None, m, [0, 2], [1, 3], "relu", inverse)
                assert np.all(np.isnan(y[:, 1])) and np.all(np.isnan(ld))
                assert np.all(np.isfinite(y[:, 3]))  # the other spline is unaffected


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
@pytest.mark.parametrize("cond_idx,trafo_idx,c", [([0, 2], [1, 3, 4], 0), ([], [0], 2),
                                                   ([1], [0], 0), ([], [0], 0)])
def test_fused_float32_affine_coupling_matches_reference(activation, cond_idx, trafo_idx, c):
    # two full blocks of rows and a short one
    kern, mlp32, mlp64, x, cond, cond64 = _float32_kernel_case(
        "affine-coupling", cond_idx, trafo_idx, c, 2, n=1100, seed=5)
    inner = slice(3, None)  # the edge rows are clipped to dtype-dependent bounds
    for inverse in (False, True):
        y0, l0 = affine_coupling.reference(x.astype(np.float64), cond64, mlp64, cond_idx,
                                           trafo_idx, activation, inverse)
        y1, l1 = kern(x, cond, mlp32, cond_idx, trafo_idx, activation, inverse)
        y2, l2 = affine_coupling.reference(x, cond, mlp32, cond_idx, trafo_idx, activation,
                                           inverse)
        assert y1.dtype == np.float32 and l1.dtype == np.float32
        assert np.array_equal(y1[:, cond_idx], x[:, cond_idx])
        ey, el = np.max(np.abs(y2 - y0)[inner]), np.max(np.abs(l2 - l0)[inner])
        assert np.max(np.abs(y1 - y0)[inner]) < min(4 * ey + 1e-6, 1e-5)
        assert np.max(np.abs(l1 - l0)[inner]) < min(4 * el + 1e-5, 1e-4)
        assert np.allclose(y1[:3], y2[:3], atol=1e-6) and np.allclose(l1[:3], l2[:3], atol=1e-4)
        assert np.std(l0) > 0.1
        back, lb = kern(y1, cond, mlp32, cond_idx, trafo_idx, activation, not inverse)
        b2, lb2 = affine_coupling.reference(y2, cond, mlp32, cond_idx, trafo_idx, activation,
                                            not inverse)
        # saturated sigmoids make float32 round trips lossy: as lossy as the array-API code
        assert np.max(np.abs(back - x)[inner]) < max(1e-5, 4 * np.max(np.abs(b2 - x)[inner]))
        assert np.max(np.abs(lb + l1)[inner]) < max(1e-4, 4 * np.max(np.abs(lb2 + l2)[inner]))


def test_fused_float32_affine_coupling_propagates_non_finite_and_declines():
    nb_be = pytest.importorskip("mcint_numba")
    B.get_backend("numba")
    kern = nb_be.KERNELS["affine-coupling"]
    mlp = [(w.astype(np.float32), b.astype(np.float32))
           for w, b in init_mlp([2, 8, 4], seed=3, zero_last=False)]
    x = RNG.random((10, 4)).astype(np.float32)
    for idx in (0, 1):  # s and t of the first transformed value
        for bad in (np.nan, np.inf, -np.inf):
            m = [(w.copy(), b.copy()) for w, b in mlp]
            m[-1][1][idx] = bad
            for inverse in (False, True):
                y, ld = kern(x, None, m, [0, 2], [1, 3], "relu", inverse)
                assert np.all(np.isnan(y[:, 1])) and np.all(np.isnan(ld))
                assert np.all(np.isfinite(y[:, 3]))
    mlp64 = [(w.astype(np.float64), b.astype(np.float64)) for w, b in mlp]
    assert kern(x.astype(np.float64), None, mlp64, [0, 2], [1, 3]) is NotImplemented


def test_float32_simd_exp_log_accuracy():
    numba = pytest.importorskip("numba")
    pytest.importorskip("mcint_numba")
    B.get_backend("numba")
    from mcint_numba.kernels import numerics as k32  # the one home of the polynomials

    @numba.njit
    def apply(which, a):
        out = np.empty_like(a)
        for i in range(a.size):
            out[i] = k32.fexp(a[i]) if which == 0 else (
                k32.flog(a[i]) if which == 1 else k32.fsoftplus(a[i]))
        return out

    a = -np.linspace(0.0, 86.0, 200_001).astype(np.float32)
    ref = np.exp(a.astype(np.float64))
    assert np.max(np.abs(apply(0, a) / ref - 1)) < 3e-7  # float32 eps is 1.2e-7
    assert 0 <= apply(0, np.array([-200.0], dtype=np.float32))[0] < 1e-37
    b = np.exp(np.linspace(-80.0, 80.0, 200_001)).astype(np.float32)
    assert np.max(np.abs(apply(1, b) - np.log(b.astype(np.float64)))) < 2e-7 * 80 + 1e-7
    u = np.linspace(-80.0, 80.0, 200_001).astype(np.float32)
    ref = np.logaddexp(u.astype(np.float64), 0.0)
    assert np.max(np.abs(apply(2, u) / ref - 1)) < 3e-7


def test_fused_kernels_decline_foreign_arrays():
    nb_be = pytest.importorskip("mcint_numba")
    torch = pytest.importorskip("torch")
    B.get_backend("numba")
    x = torch.rand(5, 2, dtype=torch.float64)
    p = torch.zeros(5, 2, 7, dtype=torch.float64)
    assert nb_be.KERNELS["rq-spline"](x, p) is NotImplemented
    assert nb_be.KERNELS["rq-spline"](x.numpy(), p.numpy().astype(np.float32)) is NotImplemented
    mlp = [(torch.zeros(1, 7, dtype=torch.float64), torch.zeros(7, dtype=torch.float64))]
    assert nb_be.KERNELS["rqs-coupling"](x, None, mlp, [0], [1]) is NotImplemented
    with B.use("numba"):  # dispatch falls back to the reference for torch tensors
        y, ld = rq_spline(x, p)
        assert torch.allclose(y, x) and torch.allclose(ld, torch.zeros(5, dtype=torch.float64))


# -- spline maths -------------------------------------------------------------------------------

def test_spline_knots_and_identity():
    p = RNG.normal(size=(10, 2, 3 * 5 + 1))
    cw, ch, d = knots(p)
    assert np.allclose(cw[..., 0], 0) and np.allclose(cw[..., -1], 1)
    assert np.all(np.diff(cw, axis=-1) >= 1e-3 - 1e-15) and np.all(np.diff(ch, axis=-1) > 0)
    assert np.all(d >= 1e-3 / (1e-3 + np.log(2)) - 1e-15)
    x = np.stack([cw[..., 3], cw[..., 1]], axis=-1)[:, 0, :]  # knots map onto knots
    y, _ = rq_spline.reference(x, p[:, :1, :].repeat(2, axis=1))
    assert np.allclose(y, np.stack([ch[:, 0, 3], ch[:, 0, 1]], axis=-1), atol=1e-14)
    z = np.linspace(0, 1, 11)[:, None]
    y, ld = rq_spline.reference(z, np.zeros((11, 1, 16)))
    assert np.allclose(y, z, atol=1e-15) and np.allclose(ld, 0, atol=1e-14)


def test_spline_derivative_at_knots():
    # the slope at knot k is the parametrised d_k, from either side (the spline is C1)
    p = RNG.normal(size=(1, 1, 3 * 4 + 1))
    cw, ch, d = knots(p)
    for k in (1, 2, 3):
        xs = np.array([[cw[0, 0, k] - 1e-12], [cw[0, 0, k] + 1e-12]])
        _, ld = rq_spline.reference(xs, np.repeat(p, 2, axis=0))
        assert np.allclose(ld, np.log(d[0, 0, k]), atol=1e-8)
        eps = 1e-6
        xs = np.array([[cw[0, 0, k] - eps], [cw[0, 0, k] + eps]])
        y, _ = rq_spline.reference(xs, np.repeat(p, 2, axis=0))
        assert abs((y[1, 0] - y[0, 0]) / (2 * eps) / d[0, 0, k] - 1) < 1e-3


def test_unnormalise_inverts_knots():
    w = RNG.dirichlet(np.ones(6), size=3) * (1 - 6e-3) + 1e-3
    h = RNG.dirichlet(np.ones(6), size=3) * (1 - 6e-3) + 1e-3
    d = RNG.uniform(0.2, 5, size=(3, 7))
    cw, ch, dd = knots(unnormalise(w, h, d))
    assert np.allclose(np.diff(cw, axis=-1), w) and np.allclose(np.diff(ch, axis=-1), h)
    assert np.allclose(dd, d)


def test_bad_spline_parameters():
    with pytest.raises(ValueError, match="3\\*bins\\+1"):
        rq_spline.reference(np.zeros((2, 3)), np.zeros((2, 3, 8)))
    with pytest.raises(ValueError, match="below 1"):
        rq_spline.reference(np.zeros((2, 1)), np.zeros((2, 1, 31)), min_width=0.2)


# -- VEGAS grid initialisation ------------------------------------------------------------------

def _vegas_like_grid(dims: int, n: int, seed: int = 0) -> np.ndarray:
    w = np.random.default_rng(seed).uniform(0.2, 3.0, size=(dims, n))
    w /= w.sum(axis=1, keepdims=True)
    return np.concatenate([np.zeros((dims, 1)), np.cumsum(w, axis=1)], axis=1)


def test_init_with_grid_reproduces_the_grid_cdf():
    grid = _vegas_like_grid(3, 10)
    flow = Flow(3, bins=10).init_with_grid(grid)
    # each grid knot j maps to latent j/N in its own coordinate
    for j in range(11):
        z, _ = flow.inverse(np.clip(grid[:, j][None, :], 0, 1))
        assert np.allclose(z[0], j / 10, atol=1e-6)
    # so each VEGAS bin gets probability 1/N
    x, _ = flow.sample(40000, rng=1)
    counts = np.stack([np.histogram(x[:, i], bins=grid[i])[0] for i in range(3)])
    assert np.all(np.abs(counts / 40000 - 0.1) < 5 * np.sqrt(0.1 * 0.9 / 40000))


def test_reduce_bins_merges_a_uniform_grid_to_uniform_bins():
    grid = np.tile(np.linspace(0, 1, 41), (2, 1))
    w, h, d = reduce_bins(grid, 10)
    # bins keep density w/h = 1 and unit slopes: the identity, whatever the merged bin sizes
    assert w.shape == (2, 10) and np.allclose(w, h) and np.allclose(d, 1)
    assert np.allclose(w.sum(axis=1), 1)
    flow = Flow(2, bins=10).init_with_grid(grid)
    assert np.allclose(flow.log_prob(interior(20, 2)), 0, atol=1e-6)


def test_init_with_grid_errors():
    with pytest.raises(ValueError, match="spline"):
        Flow(2, coupling="affine").init_with_grid(_vegas_like_grid(2, 10))
    with pytest.raises(ValueError, match="shape"):
        Flow(2).init_with_grid(_vegas_like_grid(3, 10))
    with pytest.raises(ValueError, match="complementary"):
        Flow(4, masks="random", seed=1).init_with_grid(_vegas_like_grid(4, 10))
    with pytest.raises(ValueError, match="at least"):
        Flow(2, bins=10).init_with_grid(_vegas_like_grid(2, 5))


# -- masks ----------------------------------------------------------------------------------------

def test_log_masks_condition_every_pair_both_ways():
    for d in (2, 3, 5, 8, 16):
        m = make_masks(d, "log")
        assert m.shape == (2 * int(np.ceil(np.log2(d))), d)
        for i in range(d):
            for j in range(d):
                if i != j:  # some block transforms i conditioned on j
                    assert np.any(~m[:, i] & m[:, j]), (d, i, j)
    assert make_masks(4, "log").astype(int).tolist() == [
        [0, 1, 0, 1], [1, 0, 1, 0], [0, 0, 1, 1], [1, 1, 0, 0]]


def test_exchange_random_and_user_masks():
    assert make_masks(4, "exchange", 3).astype(int).tolist() == [[1, 1, 0, 0], [0, 0, 1, 1],
                                                                 [1, 1, 0, 0]]
    r1, r2 = make_masks(6, "random", 4, seed=3), make_masks(6, "random", 4, seed=3)
    assert np.array_equal(r1, r2) and np.all(r1.sum(axis=1) == 3)
    user = np.array([[True, False, False], [False, True, True]])
    assert np.array_equal(Flow(3, masks=user).masks, user)
    with pytest.raises(ValueError, match="never transformed"):
        make_masks(3, np.array([[True, False, True]]))
    with pytest.raises(ValueError, match="transform no dimension"):
        make_masks(2, np.array([[True, True], [False, False]]))
    with pytest.raises(ValueError, match="shape"):
        make_masks(3, np.array([[True, False]]))
    with pytest.raises(TypeError, match="boolean"):
        make_masks(2, np.array([[1, 0]]))
    with pytest.raises(ValueError, match="unknown mask kind"):
        make_masks(2, "checkers")


def test_default_architecture_matches_madnis():
    # madnis 1.0.0 Flow(dims): "log" masks, 2*ceil(log2 d) blocks, MLP 32-32, 3*bins+1 outputs
    for d, blocks in ((2, 2), (4, 4), (8, 6), (16, 8)):
        f = Flow(d)
        assert f.layers == blocks
        sizes = [f.couplings[0].w0.shape[0]] + [w.shape[1] for w, _ in f.couplings[0].mlp]
        k = int((~f.masks[0]).sum())
        assert sizes == [d - k, 32, 32, k * 31]


def test_mlp():
    p = init_mlp([3, 5, 2], seed=0, zero_last=False)
    x = RNG.normal(size=(4, 3))
    h = np.maximum(x @ p[0][0] + p[0][1], 0)
    assert np.allclose(apply_mlp(p, x), h @ p[1][0] + p[1][1])
    assert np.all(init_mlp([3, 5, 2])[-1][0] == 0)
    assert init_mlp([3, 2], dtype="float32")[0][0].dtype == np.float32
    with pytest.raises(ValueError, match="activation"):
        apply_mlp(p, x, activation="swishy")
    with pytest.raises(ValueError, match="shape"):
        apply_mlp(p, x[:, :2])
    with pytest.raises(ValueError, match="positive integers"):
        init_mlp([3, 0, 2])


# -- bad input ------------------------------------------------------------------------------------

def test_bad_input_is_named(backend):
    flow = Flow(3, condition_dims=1).to(backend)
    x = backend.asarray(interior(5, 3))
    c = backend.asarray(np.zeros((5, 1)))
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        flow.forward(backend.asarray(interior(5, 2)), c)
    bad = interior(5, 3)
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        flow.log_prob(backend.asarray(bad), c)
    with pytest.raises(ValueError, match="unit cube"):
        flow.forward(backend.asarray(interior(5, 3) + 1), c)
    with pytest.raises(ValueError, match="needs a condition"):
        flow.forward(x)
    with pytest.raises(ValueError, match="condition must have shape"):
        flow.forward(x, backend.asarray(np.zeros((5, 2))))
    with pytest.raises(TypeError, match="dtype"):
        flow.forward(backend.asarray(interior(5, 3), dtype="float32"), c)
    with pytest.raises(ValueError, match="non-negative integer"):
        flow.sample(-1, condition=c)


def test_bad_construction_and_foreign_arrays():
    with pytest.raises(ValueError, match="dims"):
        Flow(0)
    with pytest.raises(ValueError, match="coupling"):
        Flow(2, coupling="glow")
    with pytest.raises(ValueError, match="bins"):
        Flow(2, bins=0)
    with pytest.raises(ValueError, match="dtype"):
        Flow(2, dtype="float16")
    with pytest.raises(ValueError, match="condition_dims=0"):
        Flow(2).forward(interior(3, 2), np.zeros((3, 1)))
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=f"backend '{default_name()}'"):
        Flow(2).forward(torch.rand(3, 2, dtype=torch.float64))


def test_init_from_an_adaptive_map_and_composition():
    vegas = pytest.importorskip("mcint.vegas")
    amap = vegas.AdaptiveMap(2, grid=_vegas_like_grid(2, 50, seed=4))
    flow = Flow(2, bins=10).init_with_grid(amap.grid)
    # the reduced bins' knots map exactly: x-knots -> their cumulative probability
    w, h, _ = reduce_bins(np.asarray(amap.grid), 10)
    xk, zk = np.cumsum(w, axis=1).T[:-1], np.cumsum(h, axis=1).T[:-1]
    z, _ = flow.inverse(np.clip(xk, 0, 1))
    assert np.allclose(z, zk, atol=1e-9)
    # alternatively the flow feeds a fixed VEGAS map: compose them as transforms
    from mcint.transforms import Compose

    chain = Compose([perturbed(Flow(2)), amap])
    zz = interior(30, 2, seed=9)
    x, ld = chain.forward(zz)
    z2, ld2 = chain.inverse(x)
    assert np.allclose(z2, zz, atol=1e-9) and np.allclose(ld, -ld2, atol=1e-8)


def test_chunked_evaluation_equals_one_pass(backend):
    flow = perturbed(Flow(3, condition_dims=1)).to(backend)
    x = backend.asarray(interior(103, 3, seed=5))
    c = backend.asarray(RNG.random((103, 1)))
    flow.chunk_size = None
    z1, ld1 = flow.inverse(x, c)
    flow.chunk_size = 25  # 103 = 4 * 25 + 3: a short last chunk
    z2, ld2 = flow.inverse(x, c)
    assert np.allclose(backend.to_numpy(z1), backend.to_numpy(z2), atol=1e-13)
    assert np.allclose(backend.to_numpy(ld1), backend.to_numpy(ld2), atol=1e-12)
