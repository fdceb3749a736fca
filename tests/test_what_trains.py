"""What README and docs/design.md say runs in training, checked on the autograd graph itself.

On CPU with numba installed, a flow's ``log_prob`` in training is one fused spline node
(``_RQSplineBackward``), torch ``addmm`` linear layers and array-API code for the rest; with
``MCINT_FUSED=0`` the same call runs the array-API reference (no fused node, no ``addmm``).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("numba")


def _graph(fn) -> set[str]:
    names: set[str] = set()
    seen: set[int] = set()

    def walk(node):
        if node is None or id(node) in seen:
            return
        seen.add(id(node))
        names.add(type(node).__name__)
        for nxt, _ in node.next_functions:
            walk(nxt)

    walk(fn)
    return names


def _trained_flow():
    import mcint
    from mcint.nis import Integrator

    mcint.available()          # loads the plugins, as any real run does
    it = Integrator(lambda x: np.exp(-np.sum((x - 0.5) ** 2, axis=1) / 0.02), 2, seed=1)
    it.train(2_000)
    return it.model.samplers[0].flow


def test_training_graph_is_the_fused_spline_and_torch_linear_layers():
    flow = _trained_flow()
    u = torch.rand(16, 2, dtype=torch.float32)
    names = _graph(flow.log_prob(u).grad_fn)
    assert "_RQSplineBackward" in names and "AddmmBackward0" in names, names


def test_mcint_fused_0_runs_the_array_api_reference(monkeypatch):
    flow = _trained_flow()
    u = torch.rand(16, 2, dtype=torch.float32)
    fused = flow.log_prob(u)
    monkeypatch.setenv("MCINT_FUSED", "0")
    ref = flow.log_prob(u)
    names = _graph(ref.grad_fn)
    assert "_RQSplineBackward" not in names and "AddmmBackward0" not in names, names
    torch.testing.assert_close(ref, fused, rtol=1e-4, atol=1e-4)


# -- the profile: which implementation each kernel call used (mcint.backends.trace) -------------
# What README and docs/design.md ("What runs where") state, per backend of the Integrator.
# Training differentiates through torch whatever the backend: the spline and the MLP are the
# torch plugin's kernels (fused node, addmm), fresh points are drawn by the numba coupling
# kernel. Sampling runs what the current backend's kernels fuse.
SAMPLE_PROFILE = {
    "numpy": {("rqs-coupling", "reference"), ("mlp", "reference"), ("rq-spline", "reference")},
    "strict": {("rqs-coupling", "reference"), ("mlp", "reference"), ("rq-spline", "reference")},
    "numba": {("rqs-coupling", "numba")},
    # the coupling is array-API code around the torch kernels (the spline's inverse fused)
    "torch": {("rqs-coupling", "reference"), ("mlp", "torch"), ("rq-spline", "torch")},
}
BACKENDS = list(SAMPLE_PROFILE)


def _kernels(log, names=("rq-spline", "mlp", "rqs-coupling")):
    return {(n, impl) for n, impl in log if n in names}


def _integrator(name):
    from mcint.nis import Integrator

    be = pytest.importorskip("mcint.backends").get_backend(name)
    return Integrator(lambda x: np.exp(-np.sum((x - 0.5) ** 2, axis=1) / 0.02), 2, seed=1,
                      backend=be)


@pytest.mark.parametrize("name", BACKENDS)
def test_profile_training_step(name, monkeypatch):
    from mcint.backends import trace

    monkeypatch.delenv("MCINT_FUSED", raising=False)
    it = _integrator(name)
    with trace() as log:
        it.train(512)
    ks = _kernels(log)
    # the gradient path: only the torch kernels, never the reference spline or MLP
    assert ("rq-spline", "torch") in ks and ("mlp", "torch") in ks, ks
    assert ("rq-spline", "reference") not in ks and ("mlp", "reference") not in ks, ks
    assert ("rqs-coupling", "numba") in ks, ks  # fresh points: numba views of the parameters


@pytest.mark.parametrize("name", BACKENDS)
def test_profile_sampling_call(name, monkeypatch):
    import mcint.backends as B
    from mcint.flows import Flow

    monkeypatch.delenv("MCINT_FUSED", raising=False)
    flow = Flow(2, seed=1, dtype="float32").to(name)
    with B.use(name), B.trace() as log:
        flow.sample(300, rng=1)
    assert _kernels(log) == SAMPLE_PROFILE[name]


@pytest.mark.parametrize("name", BACKENDS)
def test_profile_mcint_fused_0_is_the_reference_everywhere(name, monkeypatch):
    import mcint.backends as B
    from mcint.flows import Flow

    monkeypatch.setenv("MCINT_FUSED", "0")
    it = _integrator(name)
    with B.trace() as log:
        it.train(512)
    flow = Flow(2, seed=1, dtype="float32").to(name)
    with B.use(name), B.trace() as log2:
        flow.sample(300, rng=1)
    assert log and log2
    assert {impl for _, impl in log + log2} == {"reference"}


@pytest.mark.parametrize("name", BACKENDS)
def test_profile_integrator_sampling(name, monkeypatch):
    """``Integrator.sample`` runs under its own backend: the same profile as a flow's."""
    from mcint.backends import trace

    monkeypatch.delenv("MCINT_FUSED", raising=False)
    it = _integrator(name)
    it.train(512)
    with trace() as log:
        it.sample(500)
    assert _kernels(log) == SAMPLE_PROFILE[name]
