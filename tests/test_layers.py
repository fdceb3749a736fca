"""Imports point downwards: the command line sits on top, nothing in the library imports it,
and the core layers do not import the physics packages built on them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "mcint"

#: package -> packages it must never import (they sit above it)
ABOVE = {
    "backends": ("cli", "nis", "vegas", "flows", "phasespace", "collider", "amplitudes",
                 "events", "processes"),
    "transforms": ("cli", "nis", "vegas", "phasespace", "collider", "amplitudes", "events"),
    "flows": ("cli", "nis", "vegas", "phasespace", "collider", "amplitudes", "events"),
    "vegas": ("cli", "nis", "phasespace", "collider", "amplitudes", "events"),
    "phasespace": ("cli", "nis", "collider", "amplitudes", "events"),
    "nis": ("cli", "collider", "amplitudes", "events"),
    "events": ("cli", "nis", "collider", "amplitudes"),
    "collider": ("cli", "nis"),
    "amplitudes": ("cli", "nis"),
    "processes": ("cli", "nis"),
    "pdf": ("cli", "nis", "collider", "amplitudes"),
}


def _imports(path: Path) -> set[str]:
    """The mcint sub-packages that ``path`` imports (absolute or relative)."""
    rel = path.relative_to(ROOT.parent).with_suffix("").parts   # ("mcint", "pkg", ...)
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[:len(rel) - node.level])
                mod = base + (node.module.split(".") if node.module else [])
                names = [mod + [a.name] for a in node.names] if len(mod) == 1 else [mod]
            else:
                names = [(node.module or "").split(".")]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        else:
            continue
        for n in names:
            if len(n) > 1 and n[0] == "mcint":
                out.add(n[1])
    return out


@pytest.mark.parametrize("package", sorted(ABOVE))
def test_imports_point_downwards(package):
    bad = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        hit = _imports(path) & set(ABOVE[package])
        if hit:
            bad[str(path.relative_to(ROOT))] = sorted(hit)
    assert not bad, f"mcint.{package} imports a layer above it: {bad}"
