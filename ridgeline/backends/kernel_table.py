"""A backend's kernel table: one kernel per op, registered by decorator, loaded on first use.

The numpy and torch backends (and any plugin backend) each keep one: the modules of the kernel
package register into it when first asked for a kernel, so importing a backend stays cheap.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

from ..plugins import Registry

__all__ = ["KernelTable", "Kernel"]

Kernel = Callable[..., object]


class KernelTable:
    """Kernels by op name for the package ``package`` (its modules are imported lazily), kept in
    a ``Registry``: a second kernel for one op is a ``PluginError`` naming both."""

    def __init__(self, package: str, label: str):
        self.package, self.label = package, label
        self.kernels: Registry[Kernel] = Registry(f"{label} kernel")
        self._loaded = False

    def kernel(self, *ops: str):
        """Register the decorated function as the kernel of each op in ``ops``."""
        def decorate(fn: Kernel) -> Kernel:
            for name in ops:
                self.kernels.add(name, lambda: fn, origin=f"{fn.__module__}.{fn.__qualname__}")
            return fn
        return decorate

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        pkg = importlib.import_module(self.package)
        for mod in pkgutil.iter_modules(pkg.__path__):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{self.package}.{mod.name}")

    def get(self, op: str) -> Kernel | None:
        self._load()
        return self.kernels.find(op)

    def all(self) -> dict[str, Kernel]:
        self._load()
        return {op: self.kernels.get(op) for op in self.kernels.names()}
