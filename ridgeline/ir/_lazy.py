"""Modules imported on first attribute access.

sympy takes most of a second to import and is only needed once a dim is symbolic; every CLI call
and test subprocess would pay for it otherwise.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["LazyModule", "sympy", "is_sympy"]


class LazyModule(ModuleType):
    """Stands in for a module until something reads one of its attributes."""

    def __init__(self, name: str):
        super().__init__(name)
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        if self._module is None:
            self._module = importlib.import_module(self.__name__)
        return getattr(self._module, attr)


sympy = LazyModule("sympy")


def is_sympy(x: object) -> bool:
    """True for a sympy object, without importing sympy to find out."""
    return type(x).__module__.startswith("sympy")
