"""nox sessions: the test suite once per backend, a session without torch, lint, docs.

    nox -l                      # list sessions
    nox -s tests-numba          # one backend
    nox -s tests-all no_torch   # what CI runs (README's test command)
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests-all", "no_torch", "lint"]

# torch's CPU wheel is pinned: an unpinned requirement pulls gigabytes of CUDA packages.
TORCH = "torch==2.13.0"
BACKENDS = ["numpy", "numba", "torch", "strict", "cupy"]
EXTRAS = {
    "numpy": "test,events",
    "numba": "test,events,numba",
    "torch": "test,events",
    "strict": "test,events,strict",
    "cupy": "test,events,cupy",
    "all": "test,events,numba,strict,safetensors,plot",
}
# Two shared cores: torch's OpenMP spin-wait otherwise slows every step badly.
THREAD_ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "MKL_NUM_THREADS": "1"}


def _install(session: nox.Session, extras: str, torch: bool = True) -> None:
    if torch:
        session.install(TORCH)
    session.install("-e", f".[{extras}]")


def _pytest(session: nox.Session, backends: str, *extra: str) -> None:
    env = {**THREAD_ENV, "MCINT_TEST_BACKENDS": backends}
    session.run("python", "-m", "pytest", "-q", *extra, *session.posargs, env=env)


def _backend_session(backend: str):
    @nox.session(name=f"tests-{backend}")
    def tests(session: nox.Session) -> None:
        _install(session, EXTRAS[backend])
        if backend == "cupy":
            session.run("python", "-c", "import mcint; mcint.get_backend('cupy')",
                        success_codes=[0, 1])
        _pytest(session, "cupy,torch-cuda" if backend == "cupy" else backend)

    tests.__doc__ = f"The whole suite on the {backend} backend (torch still trains)."
    return tests


for _b in BACKENDS:
    globals()[f"tests_{_b}"] = _backend_session(_b)


@nox.session(name="tests-all")
def tests_all(session: nox.Session) -> None:
    """The whole suite once, backend-parametrised tests on every CPU backend (CI)."""
    _install(session, EXTRAS["all"])
    _pytest(session, "numpy,numba,torch,strict,cupy,torch-cuda")


@nox.session
def no_torch(session: nox.Session) -> None:
    """torch not installed: import, load a saved model, sample, run what needs no torch."""
    _install(session, "test,events,numba", torch=False)
    session.run("python", "-c", "import importlib.util as u, sys; "
                "sys.exit('torch must not be installed here') if u.find_spec('torch') else None")
    _pytest(session, "numpy,numba")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the library, plugins, tests and benchmarks."""
    session.install("ruff")
    session.run("ruff", "check", "mcint", "backends", "tests", "benchmarks", "noxfile.py")


@nox.session
def docs(session: nox.Session) -> None:
    """Check the docs: every page's python snippets run (doctest-style)."""
    _install(session, "test,events,numba")
    session.run("python", "docs/build.py", env=THREAD_ENV)


if os.environ.get("CI"):
    nox.options.error_on_missing_interpreters = True


@nox.session
def slow(session: nox.Session) -> None:
    """The long statistical tests (marked ``slow``), numpy + numba + torch."""
    _install(session, EXTRAS["all"])
    _pytest(session, "numpy,numba,torch", "-m", "slow")
