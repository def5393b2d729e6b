"""torch kernels of ``ridgeline.ir.ops.reduction``: Hardmax (the others are
``kernel_math.reduction``'s)."""

from __future__ import annotations

import torch

from . import kernel


@kernel("Hardmax")
def hardmax(node, x):
    axis = node.attr("axis") % x.dim()
    y = torch.zeros_like(x)
    if x.numel():
        y.scatter_(axis, torch.argmax(x, dim=axis, keepdim=True), 1)
    return y
