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
    return it.samplers[0].flow


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
