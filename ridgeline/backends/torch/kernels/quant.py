"""torch kernels of ``ridgeline.ir.ops.quant`` (QuantizeLinear, DequantizeLinear,
DynamicQuantizeLinear), following the numpy reference step by step."""

from __future__ import annotations

import torch

from ....ir.dtypes import dtype as to_dtype
from ....ir.ops.quant import INTEGER_RANGES
from ..convert import torch_dtype
from . import kernel, same_device


def expand_param(p: torch.Tensor, shape, axis: int, block_size: int) -> torch.Tensor:
    """A scale or zero point broadcastable to ``shape``: per tensor, per axis or per block."""
    if p.numel() == 1:
        return p.reshape(())
    axis = axis % len(shape)
    if not block_size:
        dims = [1] * len(shape)
        dims[axis] = p.numel()
        return p.reshape(dims)
    return torch.repeat_interleave(p, block_size, dim=axis).narrow(axis, 0, shape[axis])


def _out_name(node, zero_point) -> str:
    if zero_point is not None:
        from ..convert import TORCH_DTYPES
        return next(k for k, v in TORCH_DTYPES.items() if v == zero_point.dtype)
    return node.attr("output_dtype") or "u8"


@kernel("QuantizeLinear")
def quantize_linear(node, x, scale, zero_point=None):
    x, scale, zero_point = same_device(x, scale, zero_point)
    axis, block = node.attr("axis"), node.attr("block_size")
    out = _out_name(node, zero_point)
    precision = node.attr("precision")
    if precision:
        work = torch_dtype(to_dtype(precision))
    else:
        work = scale.dtype if scale.dtype.is_floating_point else torch.float64
    s = expand_param(scale, tuple(x.shape), axis, block).to(work)
    q = x.to(work) / s
    name = to_dtype(out).name
    if name in INTEGER_RANGES:
        lo, hi = INTEGER_RANGES[name]
        q = torch.round(q.double())
        if zero_point is not None:
            q = q + expand_param(zero_point, tuple(x.shape), axis, block).double()
        return torch.clamp(q, lo, hi).to(torch_dtype(name))
    want = torch_dtype(name)   # float8: the zero point is added in float, then Cast's saturation
    q = q.float()
    if zero_point is not None and bool(torch.any(zero_point.float() != 0)):
        q = q + expand_param(zero_point, tuple(x.shape), axis, block).float()
    if node.attr("saturate"):
        big = torch.finfo(want).max
        q = torch.clamp(q, -big, big)
    return q.to(want)


@kernel("DequantizeLinear")
def dequantize_linear(node, x, scale, zero_point=None):
    x, scale, zero_point = same_device(x, scale, zero_point)
    axis, block = node.attr("axis"), node.attr("block_size")
    name = node.attr("output_dtype")
    out = torch_dtype(to_dtype(name)) if name else scale.dtype
    dx = x.double()
    if zero_point is not None:
        dx = dx - expand_param(zero_point, tuple(x.shape), axis, block).double()
    return (dx * expand_param(scale, tuple(x.shape), axis, block).double()).to(out)


@kernel("DynamicQuantizeLinear")
def dynamic_quantize_linear(node, x):
    # float32 step by step, as the ONNX definition spells it out
    f32 = torch.float32
    hi = torch.clamp(torch.max(x), min=0.0) if x.numel() else torch.zeros((), dtype=f32, device=x.device)
    lo = torch.clamp(torch.min(x), max=0.0) if x.numel() else torch.zeros((), dtype=f32, device=x.device)
    scale = torch.where(hi == lo, torch.ones_like(hi), hi - lo) / torch.tensor(255.0, dtype=f32, device=x.device)
    zero = torch.round(torch.clamp(0.0 - lo / scale, 0, 255))
    y = torch.clamp(torch.round(x / scale) + zero, 0, 255)
    return y.to(torch.uint8), scale.to(f32), zero.to(torch.uint8)
