"""The backend switch: discovery, selection, errors, RNG streams, helpers, kernel dispatch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import mcint
import mcint.backends as B


def test_import_mcint_imports_no_heavy_backend():
    code = ("import mcint, sys; bad = {'torch','numba','cupy'} & set(sys.modules); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_numpy_always_available():
    assert "numpy" in B.available()
    assert B.get_backend("numpy").name == "numpy"


def test_unknown_backend_names_value_and_available(monkeypatch):
    with pytest.raises(ValueError, match=r"unknown backend 'nonsense'.*available backends: numpy"):
        B.get_backend("nonsense")
    monkeypatch.setenv(B.ENV_VAR, "nonsense")
    with pytest.raises(ValueError, match=r"'nonsense' \(from \$MCINT_BACKEND\).*numpy"):
        B.get_backend()


def test_env_variable_selects_backend_in_fresh_process():
    code = ("import mcint; print(mcint.get_backend().name)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env={**__import__('os').environ, "MCINT_BACKEND": "strict"})
    assert out.stdout.strip() == "strict"


def test_unusable_backend_says_why():
    B.register("broken-test", _broken)
    try:
        with pytest.raises(B.BackendUnavailable, match="needs a flux capacitor.*other backends"):
            B.get_backend("broken-test")
        assert "broken-test" not in B.available()
        assert "flux capacitor" in B.unavailable_reasons()["broken-test"]
    finally:
        B._factories.pop("broken-test")
        B._unavailable.pop("broken-test", None)


def _broken():
    raise B.BackendUnavailable("needs a flux capacitor")


def test_aliases():
    if "strict" in B.available():
        assert B.get_backend("array-api-strict").name == "strict"


def test_use_is_scoped():
    before = B.current()
    with B.use("numpy") as be:
        assert B.current() is be
    assert B.current() is before


def test_rng_same_seed_same_numbers(backend):
    a = backend.to_numpy(backend.rng(7).uniform((100, 3)))
    b = backend.to_numpy(backend.rng(7).uniform((100, 3)))
    c = backend.to_numpy(backend.rng(8).uniform((100, 3)))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() < 1 and a.shape == (100, 3)


def test_rng_cpu_backends_share_one_stream(backend):
    if backend.gpu:
        pytest.skip("GPU streams are device-native")
    ref = np.random.Generator(np.random.PCG64(3)).random((10, 2))
    assert np.array_equal(backend.to_numpy(backend.rng(3).uniform((10, 2))), ref)


def test_rng_distributions(backend):
    r = backend.rng(1)
    n = backend.to_numpy(r.normal(200_000))
    assert abs(n.mean()) < 0.01 and abs(n.std() - 1) < 0.01
    k = backend.to_numpy(r.integers(2, 5, 50_000))
    assert set(np.unique(k)) == {2, 3, 4}
    c = backend.to_numpy(r.categorical(backend.asarray(np.array([0.2, 0.0, 0.8])), 100_000))
    frac = np.bincount(c, minlength=3) / c.size
    assert frac[1] == 0 and abs(frac[0] - 0.2) < 0.01
    f32 = r.uniform((4,), dtype="float32")
    assert str(f32.dtype).endswith("float32")


def test_rng_state_round_trip(backend):
    r = backend.rng(11)
    r.uniform(5)
    st = json.loads(json.dumps(r.state))  # checkpoints store it as JSON
    a = [backend.to_numpy(d) for d in (r.uniform(5), r.normal(3), r.integers(0, 9, 4))]
    r2 = backend.rng(0)
    r2.state = st
    b = [backend.to_numpy(d) for d in (r2.uniform(5), r2.normal(3), r2.integers(0, 9, 4))]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_rng_rejects_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        B.get_backend("numpy").rng(-1)


def test_bincount_and_logsumexp(backend):
    idx = backend.asarray(np.array([0, 2, 2, 5]))
    w = backend.asarray(np.array([1.0, 2.0, 3.0, 4.0]))
    out = backend.to_numpy(backend.bincount(idx, w, minlength=7))
    assert np.allclose(out, [1, 0, 5, 0, 0, 4, 0])
    a = np.array([[0.0, 1000.0, -np.inf], [-np.inf, -np.inf, -np.inf], [1.0, 2.0, 3.0]])
    got = backend.to_numpy(backend.logsumexp(backend.asarray(a), axis=1))
    assert np.isclose(got[0], 1000.0) and got[1] == -np.inf
    assert np.isclose(got[2], np.log(np.exp([1.0, 2.0, 3.0]).sum()))


@pytest.mark.parametrize("n,minlength", [(0, 4), (1, 0), (5000, 30), (5000, 3)])
def test_sorted_bincount_matches_numpy_and_repeats(backend, n, minlength):
    # the fixed-order histogram GPU backends use for weighted bincounts (atomics are not
    # repeatable); exact sums from numpy, bit-identical on a second call
    rng = np.random.default_rng(n)
    idx = rng.integers(0, 20, n)
    w = rng.standard_normal(n) * rng.choice([1e-3, 1.0, 1e3], n)
    want = np.bincount(idx, w, minlength=minlength)
    ib, wb = backend.asarray(idx), backend.asarray(w)
    got = backend.to_numpy(backend.sorted_bincount(ib, wb, minlength))
    assert got.shape == want.shape
    assert np.allclose(got, want, rtol=0, atol=1e-13 * max(1.0, np.abs(w).sum()))
    assert np.array_equal(backend.to_numpy(backend.sorted_bincount(ib, wb, minlength)), got)
    w32 = backend.asarray(w.astype(np.float32))
    assert str(backend.sorted_bincount(ib, w32, minlength).dtype).endswith("float32")


def test_numpy_round_trip_conversion(backend):
    a = np.linspace(0, 1, 12).reshape(4, 3)
    for dt in ("float64", "float32"):
        b = backend.asarray(a, dtype=dt)
        assert backend.is_array(b)
        assert np.allclose(backend.to_numpy(b), a, atol=1e-7)


def test_fusable_dispatch_prefers_backend_kernel_and_keeps_reference():
    @B.fusable("test-kernel")
    def ref(x):
        return x + 1

    class Fused(B.Backend):
        name = "fused-test"

        def __init__(self):
            super().__init__()
            self.kernels = {"test-kernel": lambda x: x + 100 if x > 0 else NotImplemented}

    with B.use(Fused()):
        assert ref(1) == 101
        assert ref(-1) == 0  # kernel declined -> reference
    assert ref(1) == 2
    assert ref.reference(1) == 2


def test_top_level_lazy_attribute_error():
    with pytest.raises(AttributeError):
        mcint.does_not_exist  # noqa: B018


_DEFAULT = """
import sys
if sys.argv[1] == "blocked":
    sys.modules["numba"] = None            # as if numba were not installed
import os
os.environ.pop("MCINT_BACKEND", None)
import numpy as np
from mcint.backends import default_name, get_backend, current
from mcint.nis import Integrator
print(default_name(), get_backend().name, current().name,
      Integrator(lambda x: np.ones(len(x)), 2, seed=0).backend.name)
"""


@pytest.mark.parametrize("mode", ["installed", "blocked"])
def test_default_backend_is_the_fastest_installed(mode):
    """No backend named: numba when it is installed (the same maths, fused), else numpy;
    entry points and dispatch agree."""
    import subprocess
    import sys

    if mode == "installed":
        pytest.importorskip("numba")
    pytest.importorskip("torch")
    p = subprocess.run([sys.executable, "-c", _DEFAULT, mode], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    want = "numba" if mode == "installed" else "numpy"
    assert p.stdout.split() == [want] * 4
