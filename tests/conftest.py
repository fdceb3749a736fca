"""Shared fixtures: the ``backend`` fixture runs a test once per array backend.

Which backends: ``--backend NAME[,NAME]`` or ``MCINT_TEST_BACKENDS`` (comma-separated), default
every backend mcint knows. Backends that cannot run here (no GPU, package missing) are skipped
with the reason, so the GPU ones skip cleanly on CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import mcint.backends as B

ALL = ["numpy", "numba", "torch", "strict", "cupy", "torch-cuda"]


def pytest_addoption(parser):
    parser.addoption("--backend", action="store", default=None,
                     help="comma-separated backends to test (default: $MCINT_TEST_BACKENDS or all)")


def _selected(config) -> list[str]:
    sel = config.getoption("--backend") or os.environ.get("MCINT_TEST_BACKENDS") or ",".join(ALL)
    return [s.strip() for s in sel.split(",") if s.strip()]


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", _selected(metafunc.config), indirect=True)


@pytest.fixture
def backend(request):
    """A :class:`mcint.backends.Backend`, made current for the test."""
    try:
        be = B.get_backend(request.param)
    except B.BackendUnavailable as exc:
        pytest.skip(str(exc))
    with B.use(be):
        yield be


def backend_or_skip(name: str) -> B.Backend:
    """The backend ``name``; the test skips where it is not installed."""
    try:
        return B.get_backend(name)
    except B.BackendUnavailable as exc:  # pragma: no cover
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def numba_be():
    """The numba backend (skips where numba is not installed)."""
    return backend_or_skip("numba")


@pytest.fixture(scope="module")
def strict_be():
    """The array-api-strict backend (skips where it is not installed)."""
    return backend_or_skip("strict")


@pytest.fixture
def xp(backend):
    """The array namespace of the current backend."""
    return backend.xp


def numerical_log_det(fn, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """log|det J| of ``fn`` (numpy (n,d)->(n,d)) by central differences, per point."""
    n, d = x.shape
    jac = np.empty((n, d, d))
    for j in range(d):
        dx = np.zeros_like(x)
        dx[:, j] = eps
        jac[:, :, j] = (fn(x + dx) - fn(x - dx)) / (2 * eps)
    return np.linalg.slogdet(jac)[1]


@pytest.fixture
def num_log_det():
    return numerical_log_det


UMAMI_SRC = Path(__file__).parent / "data" / "umami" / "ffbar_ll.c"


@pytest.fixture(scope="session")
def umami_lib(tmp_path_factory):
    """``umami_lib(*flags, source="ffbar_ll.c") -> path``: a UMAMI 1.0 test library
    (tests/data/umami/SOURCE) compiled with the system C compiler and ``flags`` (skips where
    there is no compiler)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc/gcc) to build the UMAMI test libraries")
    out = tmp_path_factory.mktemp("umami")
    made: dict[str, Path] = {}

    def lib(*flags: str, source: str = UMAMI_SRC.name) -> Path:
        key = " ".join((source, *flags))
        if key not in made:
            path = out / f"lib{len(made)}.so"
            subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(path),
                            str(UMAMI_SRC.parent / source), *flags, "-lm"], check=True,
                           capture_output=True)
            made[key] = path
        return made[key]

    return lib
