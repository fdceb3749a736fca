"""The neural integrator is made of parts that talk through arguments, not one object spread over
modules: every ``self.X`` a class of :mod:`mcint.nis` reads is assigned in that class, or is a
method, property or field of it (or of a base class outside mcint.nis). Mixins sharing ``self``
across modules (the old ``TrainingMixin`` read ~44 attributes set in ``integrator.py``) fail.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import mcint.nis

NIS = Path(mcint.nis.__file__).parent
MODULES = sorted(p.stem for p in NIS.glob("*.py") if p.stem != "__init__")


def _self_attrs(cls_node: ast.ClassDef) -> tuple[dict[str, int], set[str]]:
    """(``self.X`` read anywhere in the class -> first line, ``self.X`` assigned)."""
    used: dict[str, int] = {}
    assigned: set[str] = set()
    for node in ast.walk(cls_node):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "self":
            if isinstance(node.ctx, ast.Store):
                assigned.add(node.attr)
            else:
                used.setdefault(node.attr, node.lineno)
    return used, assigned


def _classes(module: str) -> list[tuple[type, ast.ClassDef]]:
    mod = importlib.import_module(f"mcint.nis.{module}")
    tree = ast.parse((NIS / f"{module}.py").read_text())
    out = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            out.append((getattr(mod, node.name), node))
    return out


def _own_members(cls: type) -> set[str]:
    """Methods, properties and class attributes of ``cls`` and of its bases outside mcint.nis,
    plus its dataclass fields."""
    names = set(getattr(cls, "__dataclass_fields__", {}))
    for klass in cls.__mro__:
        if klass is not cls and klass.__module__.startswith("mcint.nis"):
            continue
        names |= set(vars(klass))
    return names


@pytest.mark.parametrize("module", MODULES)
def test_no_class_reads_attributes_it_does_not_define(module):
    for cls, node in _classes(module):
        used, assigned = _self_attrs(node)
        known = assigned | _own_members(cls)
        missing = {k: line for k, line in used.items() if k not in known}
        assert not missing, (f"{module}.{cls.__name__} reads self attributes it never sets "
                             f"(a mixin sharing state?): {missing}")


@pytest.mark.parametrize("module", MODULES)
def test_no_class_inherits_from_another_nis_class(module):
    for cls, _ in _classes(module):
        inner = [b.__name__ for b in cls.__mro__[1:] if b.__module__.startswith("mcint.nis")]
        assert not inner, f"{module}.{cls.__name__} inherits from mcint.nis classes {inner}"


def test_the_check_catches_a_mixin():
    # what the old integrator looked like: a mixin reading state set by another class
    src = ("class Mixin:\n    def f(self):\n        return self.lr * 2\n"
           "class Owner(Mixin):\n    def __init__(self):\n        self.lr = 1.0\n")
    node = ast.parse(src).body[0]
    used, assigned = _self_attrs(node)
    assert "lr" in used and "lr" not in assigned


def test_integrator_init_fits_on_a_screen():
    from mcint.nis import Integrator

    lines = inspect.getsource(Integrator.__init__).splitlines()
    assert len(lines) <= 50, f"Integrator.__init__ has {len(lines)} lines"
    assert len(inspect.signature(Integrator.__init__).parameters) <= 13
