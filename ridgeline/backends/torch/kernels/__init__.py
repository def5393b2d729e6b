"""torch kernels, one per op, grouped like ``ridgeline.ir.ops`` and the numpy reference.

A kernel is ``fn(node, *inputs) -> tensor | tuple[tensor, ...]`` over ``torch.Tensor`` inputs
(``None`` for an absent optional input); it must compute what the numpy kernel of the same op
computes (the numpy backend defines meaning). Small integer tensors that hold shapes or axes are
read with :func:`ints`.
"""

from __future__ import annotations

import torch

from ...kernel_math.views import ints
from ...kernel_table import KernelTable

__all__ = ["TABLE", "all_kernels", "get_kernel", "ints", "kernel", "same_device"]

TABLE = KernelTable(__name__, "torch", shared="ridgeline.backends.kernel_math")
kernel = TABLE.kernel
get_kernel = TABLE.get
all_kernels = TABLE.all


def same_device(*ts: torch.Tensor | None) -> list[torch.Tensor | None]:
    """Move host-side shape values next to device tensors so that binary ops can mix them."""
    devices = {t.device for t in ts if t is not None}
    if len(devices) <= 1:
        return list(ts)
    dev = next(d for d in devices if d.type != "cpu")
    return [t.to(dev) if t is not None and t.device != dev else t for t in ts]
