"""The torch kernel table: every op's shared kernel (``ridgeline.backends.kernel_math``) over torch
tensors, except where a module here registers torch's own function for the op (``conv*d``,
``scaled_dot_product_attention``, ``sigmoid``, ``gelu``); such a kernel must compute what the
shared one computes, which defines the op.
"""

from __future__ import annotations

import torch

from ...kernel_table import KernelTable

__all__ = ["TABLE", "all_kernels", "get_kernel", "kernel", "same_device"]

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
