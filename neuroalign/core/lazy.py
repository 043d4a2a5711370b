"""Lazy package exports (PEP 562), so that importing a package does not import its heavy members.

A package ``__init__`` lists ``name -> "module"`` in one literal ``_EXPORTS`` dict and calls
:func:`lazy_exports`; ``from package import Name`` then imports ``module`` on first use. The dict may
only name modules inside the package itself (``tests/test_architecture.py`` holds this).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` that import ``exports[name]`` on first access of ``name``."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
