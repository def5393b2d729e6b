"""torch kernels of ``ridgeline.ir.ops.shape``; shape values stay on the host (CPU)."""

from __future__ import annotations

import math

import torch

from ..convert import to_torch, torch_dtype
from . import ints, kernel


@kernel("ConstantOfShape")
def constant_of_shape(node, shape):
    value = to_torch(node.attr("value"), shape.device).reshape(())
    return value.expand(ints(shape)).clone()


@kernel("Range")
def range_(node, start, limit, delta):
    dt = start.dtype
    if not dt.is_floating_point:
        s, l, d = (int(t.reshape(()).item()) for t in (start, limit, delta))
        n = max(-(-(l - s) // d), 0)
        return (s + torch.arange(n, dtype=torch.int64, device=start.device) * d).to(dt)
    # f16/bf16 accumulate in the stash type (opset 27); f32/f64 in their own type
    work = dt if dt in (torch.float32, torch.float64) else (torch.float64 if node.attr("stash_type") == 11 else torch.float32)
    s, l, d = (t.reshape(()).to(work) for t in (start, limit, delta))
    n = max(int(math.ceil((float(l) - float(s)) / float(d))), 0)
    return torch.arange(s.item(), l.item(), d.item(), dtype=work, device=start.device)[:n].to(dt)


@kernel("BitCast")
def bit_cast(node, x):
    return x.contiguous().view(torch_dtype(node.attr("to")))
