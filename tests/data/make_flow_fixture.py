"""Regenerate ``flow_fixture.npz``: a small flow trained under torch, loaded by the no-torch tests.

    python tests/data/make_flow_fixture.py

Trains ``Flow(2, bins=6, hidden=(16, 16))`` by maximum likelihood on samples of
``Beta(2, 5) x Beta(5, 2)`` with torch autograd through mcint's array-API code, then saves it.
The file's ``meta`` also records a few points and their log-densities computed *under torch*, so
the test can check that numpy evaluates the same function in a process without torch.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from mcint.flows import Flow

HERE = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(HERE, "flow_fixture.npz")


def main() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    data = np.stack([rng.beta(2, 5, 4096), rng.beta(5, 2, 4096)], axis=1)
    flow = Flow(2, bins=6, hidden=(16, 16), seed=1).to("torch")
    opt = torch.optim.Adam(flow.torch_parameters(), lr=2e-2)
    x = torch.as_tensor(data)
    for _ in range(60):
        opt.zero_grad()
        loss = -flow.log_prob(x).mean()
        loss.backward()
        opt.step()
    check_x = rng.uniform(0.05, 0.95, size=(8, 2))
    with torch.no_grad():
        check_lp = flow.log_prob(torch.as_tensor(check_x)).numpy()
    flow.meta = {
        "generated_by": "tests/data/make_flow_fixture.py",
        "target": "Beta(2,5) x Beta(5,2)",
        "final_nll": float(loss.detach()),
        "check_x": check_x.tolist(),
        "check_log_prob": check_lp.tolist(),
    }
    flow.save(PATH)
    print(f"wrote {PATH}: nll {float(loss.detach()):.4f}")


if __name__ == "__main__":
    main()
