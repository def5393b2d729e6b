"""A backend's kernel table: one kernel per op, registered by decorator, loaded on first use.

The numpy and torch backends (and any plugin backend) each keep one: the modules of the kernel
package register into it when first asked for a kernel, so importing a backend stays cheap. The
kernels written once for several tables (``shared``: ``backends.kernel_math``) are each module's
``KERNELS`` mapping, registered by ``register_all``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Callable

from ..plugins import Registry

__all__ = ["KernelTable", "Kernel"]

Kernel = Callable[..., object]


class KernelTable:
    """Kernels by op name for the package ``package`` and the ``KERNELS`` of the modules of
    ``shared`` (all imported lazily), kept in a ``Registry``: a second kernel for one op is a
    ``PluginError`` naming both."""

    def __init__(self, package: str, label: str, shared: str | None = None):
        self.package, self.label, self.shared = package, label, shared
        self.kernels: Registry[Kernel] = Registry(f"{label} kernel")
        self._loaded = False

    def kernel(self, *ops: str):
        """Register the decorated function as the kernel of each op in ``ops``."""
        def decorate(fn: Kernel) -> Kernel:
            for name in ops:
                self.kernels.add(name, lambda: fn, origin=f"{fn.__module__}.{fn.__qualname__}")
            return fn
        return decorate

    def register_all(self, kernels: Mapping[str, Kernel]) -> None:
        """Register each kernel of ``kernels`` (op name -> kernel)."""
        for op, fn in kernels.items():
            self.kernel(op)(fn)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for name in (self.package, self.shared):
            pkg = importlib.import_module(name) if name else None
            for mod in pkgutil.iter_modules(pkg.__path__) if pkg else ():
                if not mod.name.startswith("_"):
                    module = importlib.import_module(f"{name}.{mod.name}")
                    if name == self.shared:
                        self.register_all(getattr(module, "KERNELS", {}))

    def get(self, op: str) -> Kernel | None:
        self._load()
        return self.kernels.find(op)

    def all(self) -> dict[str, Kernel]:
        self._load()
        return {op: self.kernels.get(op) for op in self.kernels.names()}
