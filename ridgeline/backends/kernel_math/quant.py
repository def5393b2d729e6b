"""Kernels of ``ridgeline.ir.ops.quant``, one for numpy and torch: QuantizeLinear and
DequantizeLinear, per tensor, per axis or per block (the division in ``precision`` or the
scale's type, rounding half to even, then the zero point and the clamp, all in float64; float8
outputs saturate as Cast does), and DynamicQuantizeLinear, step by step in float32 scalars.
Both tables register ``KERNELS``."""

from __future__ import annotations

import math
from typing import Any

from ...ir.ops.quant import INTEGER_RANGES
from .namespace import namespace

__all__ = ["KERNELS", "expand_param"]


def expand_param(p: Any, shape, axis: int, block_size: int) -> Any:
    """A scale or zero point broadcastable to ``shape``: per tensor, per axis or per block."""
    if math.prod(p.shape) == 1:
        return p.reshape(())
    axis = axis % len(shape)
    if not block_size:
        dims = [1] * len(shape)
        dims[axis] = math.prod(p.shape)
        return p.reshape(dims)
    return namespace(p).repeat(p, block_size, axis)[(slice(None),) * axis + (slice(0, shape[axis]),)]


def _out_name(xp, node, zero_point) -> str:
    if zero_point is not None:
        return xp.name_of(zero_point.dtype)
    return node.attr("output_dtype") or "u8"


def quantize_linear(node, x, scale, zero_point=None):
    xp = namespace(x)
    x, scale, zero_point = xp.same_device(x, scale, zero_point)
    axis, block = node.attr("axis"), node.attr("block_size")
    out = _out_name(xp, node, zero_point)
    precision = node.attr("precision")
    # the division runs in `precision`, else in the scale's type (an integer scale divides exactly
    # in f64: in its own type the division would drop x's fractions)
    work = xp.dtype(precision) if precision else (xp.float64 if xp.name_of(scale.dtype)[0] in "iu" else scale.dtype)
    s = xp.astype(expand_param(scale, x.shape, axis, block), work)
    with xp.errstate(divide="ignore", invalid="ignore"):
        q = xp.astype(x, work) / s
    if out in INTEGER_RANGES:
        lo, hi = INTEGER_RANGES[out]
        q = xp.rint(xp.astype(q, xp.float64))
        if zero_point is not None:
            q = q + xp.astype(expand_param(zero_point, x.shape, axis, block), xp.float64)
        return xp.astype(xp.clip(q, lo, hi), xp.dtype(out))
    # float8: the zero point is added in float (it is 0 in practice), then Cast's saturation
    q = xp.astype(q, xp.float32)
    if zero_point is not None and bool(xp.any(xp.astype(zero_point, xp.float32) != 0)):
        q = q + xp.astype(expand_param(zero_point, x.shape, axis, block), xp.float32)
    if node.attr("saturate"):
        big = xp.finfo_max(xp.dtype(out))
        q = xp.clip(q, -big, big)
    return xp.astype(q, xp.dtype(out))


def dequantize_linear(node, x, scale, zero_point=None):
    xp = namespace(x)
    x, scale, zero_point = xp.same_device(x, scale, zero_point)
    axis, block = node.attr("axis"), node.attr("block_size")
    name = node.attr("output_dtype")
    out = xp.dtype(name) if name else scale.dtype
    dx = xp.astype(x, xp.float64)  # exact for every quantized type, i32 accumulators included
    if zero_point is not None:
        dx = dx - xp.astype(expand_param(zero_point, x.shape, axis, block), xp.float64)
    return xp.astype(dx * xp.astype(expand_param(scale, x.shape, axis, block), xp.float64), out)


def dynamic_quantize_linear(node, x):
    # computed in float32 step by step, as the ONNX definition spells it out
    xp = namespace(x)
    f32 = lambda v: xp.full((), v, xp.float32, like=x)
    hi = f32(max(0.0, float(xp.module.max(x))) if math.prod(x.shape) else 0.0)
    lo = f32(min(0.0, float(xp.module.min(x))) if math.prod(x.shape) else 0.0)
    scale = (f32(1.0) if float(hi) == float(lo) else hi - lo) / f32(255.0)
    zero = xp.rint(xp.clip(f32(0.0) - lo / scale, 0, 255))
    y = xp.clip(xp.rint(x / scale) + zero, 0, 255)
    return xp.astype(y, xp.dtype("u8")), scale, xp.astype(zero, xp.dtype("u8"))


KERNELS = {"QuantizeLinear": quantize_linear, "DequantizeLinear": dequantize_linear,
           "DynamicQuantizeLinear": dynamic_quantize_linear}
