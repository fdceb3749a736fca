"""Ring buffer of evaluated training points, for buffered training.

Each stored point keeps what the loss needs without calling the integrand again: the point in
the flow's space, its channel, the target value there (integrand times the fixed maps'
Jacobians), the log density it was *sampled* from, and the prior channel weights and features
for the channel-weight network. A buffered step re-weights these points by ``q_now / q_sample``
(the losses take ``log_q_sample``), so old points stay unbiased for the current model.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace

FIELDS = ("u", "channels", "target", "log_q_sample", "alpha_prior", "features")


class Buffer:
    """Fixed-capacity FIFO of training points (arrays of one backend)."""

    def __init__(self, capacity: int) -> None:
        if not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"buffer capacity must be a non-negative integer, got {capacity!r}")
        self.capacity = capacity
        self.data: dict[str, Any] = {}

    def __len__(self) -> int:
        return 0 if not self.data else int(self.data["target"].shape[0])

    def store(self, batch: dict[str, Any]) -> None:
        """Append a batch (dict of arrays with the same first dimension); drop the oldest."""
        if self.capacity == 0:
            return
        new = {k: v for k, v in batch.items() if k in FIELDS and v is not None}
        if not self.data:
            merged = new
        else:
            if set(new) != set(self.data):
                raise ValueError(f"buffer fields changed: stored {sorted(self.data)}, "
                                 f"got {sorted(new)}")
            xp = array_namespace(new["target"])
            merged = {k: xp.concat([self.data[k], new[k]], axis=0) for k in new}
        n = int(merged["target"].shape[0])
        if n > self.capacity:
            merged = {k: v[n - self.capacity:, ...] for k, v in merged.items()}
        self.data = merged

    def sample(self, n: int, rng: Any) -> dict[str, Any]:
        """``n`` stored points drawn uniformly with replacement."""
        size = len(self)
        if size == 0:
            raise RuntimeError("the buffer is empty")
        idx = rng.integers(0, size, (n,))
        xp = array_namespace(self.data["target"])
        return {k: xp.take(v, idx, axis=0) for k, v in self.data.items()}

    def keep(self, mask: Any) -> None:
        """Keep only the stored points where the boolean ``mask`` is true (channel dropping)."""
        if not self.data:
            return
        xp = array_namespace(mask)
        idx = xp.nonzero(mask)[0]
        self.data = {k: xp.take(v, idx, axis=0) for k, v in self.data.items()}
        if len(self) == 0:
            self.data = {}
