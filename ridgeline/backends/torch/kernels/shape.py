"""torch kernels of ``ridgeline.ir.ops.shape``; shape values stay on the host (CPU)."""

from __future__ import annotations

import math

import torch

from ..convert import to_torch
from . import ints, kernel


@kernel("Shape")
def shape(node, x):
    return torch.tensor(list(x.shape)[slice(node.attr("start"), node.attr("end"))], dtype=torch.int64)


@kernel("Size")
def size(node, x):
    return torch.tensor(x.numel(), dtype=torch.int64)


@kernel("ConstantOfShape")
def constant_of_shape(node, shape):
    value = to_torch(node.attr("value"), shape.device).reshape(())
    return value.expand(ints(shape)).clone()


@kernel("Range")
def range_(node, start, limit, delta):
    s, l, d = (t.reshape(()).item() for t in (start, limit, delta))
    n = max(int(math.ceil((l - s) / d)), 0)
    return (s + torch.arange(n, dtype=torch.float64 if start.dtype.is_floating_point else torch.int64,
                             device=start.device) * d).to(start.dtype)
