"""The numpy reference kernels, one per op, grouped like ``ridgeline.ir.ops``.

A kernel is ``fn(node, *inputs) -> array | tuple[array, ...]``: it reads attributes from ``node``
(``node.attr(name)`` applies the spec's defaults) and returns the outputs. Kernels are plain and
obviously correct rather than fast: they define what every op means.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

__all__ = ["KERNELS", "kernel", "get_kernel", "all_kernels"]

Kernel = Callable[..., object]
KERNELS: dict[str, Kernel] = {}
_loaded = False


def kernel(*ops: str):
    """Register the decorated function as the kernel of each op in ``ops``."""
    def decorate(fn: Kernel) -> Kernel:
        for name in ops:
            if name in KERNELS:
                raise ValueError(f"numpy kernel for {name} is defined twice")
            KERNELS[name] = fn
        return fn
    return decorate


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def get_kernel(op: str) -> Kernel | None:
    _load()
    return KERNELS.get(op)


def all_kernels() -> dict[str, Kernel]:
    _load()
    return dict(KERNELS)
