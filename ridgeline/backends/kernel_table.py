"""A backend's kernel table: one kernel per op, registered by decorator, loaded on first use.

The numpy and torch backends (and any plugin backend) each keep one: the modules of the kernel
package register into it when first asked for a kernel, so importing a backend stays cheap. The
kernels written once for several tables (``shared``: ``backends.kernel_math``) are each module's
``KERNELS`` mapping, registered by ``register_all``; a kernel of the table's own package takes the
place of the shared one for its op (torch's ``conv2d`` and ``scaled_dot_product_attention``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping

from ..plugins import Registry

__all__ = ["Kernel", "KernelTable"]

Kernel = Callable[..., object]


class KernelTable:
    """Kernels by op name for the package ``package`` and the ``KERNELS`` of the modules of
    ``shared`` (all imported lazily; the package's own kernels first, and they win), kept in a
    ``Registry``: a second kernel for one op in the package, or in ``shared``, is a
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
        _modules(self.package)   # they register by decorator
        own = set(self.kernels.names())
        for module in _modules(self.shared):
            self.register_all({op: fn for op, fn in getattr(module, "KERNELS", {}).items() if op not in own})

    def get(self, op: str) -> Kernel | None:
        self._load()
        return self.kernels.find(op)

    def all(self) -> dict[str, Kernel]:
        self._load()
        return {op: self.kernels.get(op) for op in self.kernels.names()}


def _modules(name: str | None) -> list:
    """The public modules of package ``name``, imported."""
    if not name:
        return []
    pkg = importlib.import_module(name)
    return [importlib.import_module(f"{name}.{m.name}") for m in pkgutil.iter_modules(pkg.__path__)
            if not m.name.startswith("_")]
