"""What ``mcint run`` measured: the report written to run.json and printed as the summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Report:
    """Everything a run measured (written to run.json and printed as the summary)."""

    integrand: str
    name: str
    dims: int
    sampler: str
    backend: str
    seed: int
    exact: float | None = None
    unit: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    channels: list[dict[str, Any]] = field(default_factory=list)
    unweighting: dict[str, Any] = field(default_factory=dict)
    events: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    mcint_version: str = ""
    #: training -> trained -> done (``mcint run --resume`` continues the first two)
    status: str = "training"
    resumed: int = 0
    base_dir: str = ""
    cwd: str = ""
