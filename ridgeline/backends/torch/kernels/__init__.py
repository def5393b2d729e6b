"""torch kernels, one per op, grouped like ``ridgeline.ir.ops`` and the numpy reference.

A kernel is ``fn(node, *inputs) -> tensor | tuple[tensor, ...]`` over ``torch.Tensor`` inputs
(``None`` for an absent optional input); it must compute what the numpy kernel of the same op
computes (the numpy backend defines meaning). Small integer tensors that hold shapes or axes are
read with :func:`ints`.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

import torch

__all__ = ["KERNELS", "kernel", "get_kernel", "all_kernels", "ints", "same_device"]

Kernel = Callable[..., object]
KERNELS: dict[str, Kernel] = {}
_loaded = False


def kernel(*ops: str):
    """Register the decorated function as the torch kernel of each op in ``ops``."""
    def decorate(fn: Kernel) -> Kernel:
        for name in ops:
            if name in KERNELS:
                raise ValueError(f"torch kernel for {name} is defined twice")
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


def ints(t: torch.Tensor | None) -> list[int]:
    """A shape/axes/sizes tensor as Python ints (a host sync on a device)."""
    if t is None:
        return []
    return [int(v) for v in t.reshape(-1).tolist()]


def same_device(*ts: torch.Tensor | None) -> list[torch.Tensor | None]:
    """Move host-side shape values next to device tensors so that binary ops can mix them."""
    devices = {t.device for t in ts if t is not None}
    if len(devices) <= 1:
        return list(ts)
    dev = next(d for d in devices if d.type != "cpu")
    return [t.to(dev) if t is not None and t.device != dev else t for t in ts]
