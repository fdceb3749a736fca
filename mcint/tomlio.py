"""The TOML reader for run cards: ``tomllib`` (Python >= 3.11) or ``tomli``."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["toml_module"]


def toml_module() -> Any:
    """``tomllib`` or ``tomli``; ``ImportError`` naming the remedy when neither exists."""
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    try:
        import tomli
    except ImportError:
        raise ImportError("reading .toml run cards on Python 3.10 needs tomli: "
                          "pip install tomli (or use Python >= 3.11)") from None
    return tomli
