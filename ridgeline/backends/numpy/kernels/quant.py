"""Reference kernels of ``ridgeline.ir.ops.quant`` (QuantizeLinear, DequantizeLinear,
DynamicQuantizeLinear)."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from ....ir.dtypes import dtype as to_dtype
from ....ir.ops.quant import INTEGER_RANGES
from . import kernel

__all__ = ["expand_param"]


def expand_param(p: np.ndarray, shape: tuple, axis: int, block_size: int) -> np.ndarray:
    """A scale or zero point broadcastable to ``shape``: per tensor, per axis or per block."""
    if p.size == 1:
        return p.reshape(())
    axis = axis % len(shape)
    if not block_size:
        dims = [1] * len(shape)
        dims[axis] = p.size
        return p.reshape(dims)
    return np.repeat(p, block_size, axis=axis).take(range(shape[axis]), axis=axis)


def _out_dtype(node, zero_point) -> np.dtype:
    if zero_point is not None:
        return zero_point.dtype
    name = node.attr("output_dtype")
    return to_dtype(name).np_dtype if name else np.dtype(np.uint8)


@kernel("QuantizeLinear")
def quantize_linear(node, x, scale, zero_point=None):
    axis, block = node.attr("axis"), node.attr("block_size")
    out = _out_dtype(node, zero_point)
    precision = node.attr("precision")
    # the division runs in `precision`, else in the scale's type (an i32 scale divides exactly in f64)
    work = to_dtype(precision).np_dtype if precision else (scale.dtype if scale.dtype.kind != "i" else np.float64)
    s = expand_param(scale, x.shape, axis, block).astype(work)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = x.astype(work) / s
    out_name = to_dtype(out).name
    if out_name in INTEGER_RANGES:
        lo, hi = INTEGER_RANGES[out_name]
        q = np.rint(q.astype(np.float64))
        if zero_point is not None:
            q = q + expand_param(zero_point, x.shape, axis, block).astype(np.float64)
        return np.clip(q, lo, hi).astype(out)
    # float8: the zero point is added in float (it is 0 in practice), then Cast's saturation
    q = q.astype(np.float32)
    if zero_point is not None and np.any(zero_point.astype(np.float32) != 0):
        q = q + expand_param(zero_point, x.shape, axis, block).astype(np.float32)
    if node.attr("saturate"):
        big = float(ml_dtypes.finfo(out).max)
        q = np.clip(q, -big, big)
    return q.astype(out)


@kernel("DequantizeLinear")
def dequantize_linear(node, x, scale, zero_point=None):
    axis, block = node.attr("axis"), node.attr("block_size")
    name = node.attr("output_dtype")
    out = to_dtype(name).np_dtype if name else scale.dtype
    dx = x.astype(np.float64)  # exact for every quantized type, i32 accumulators included
    if zero_point is not None:
        dx = dx - expand_param(zero_point, x.shape, axis, block).astype(np.float64)
    return (dx * expand_param(scale, x.shape, axis, block).astype(np.float64)).astype(out)


@kernel("DynamicQuantizeLinear")
def dynamic_quantize_linear(node, x):
    # computed in float32 step by step, as the ONNX definition spells it out
    qmin, qmax = 0, 255
    hi = np.float32(max(0.0, float(np.max(x)))) if x.size else np.float32(0)
    lo = np.float32(min(0.0, float(np.min(x)))) if x.size else np.float32(0)
    scale = np.float32(1.0 if hi == lo else hi - lo) / np.float32(qmax - qmin)
    zero = np.rint(np.clip(np.float32(qmin) - lo / scale, qmin, qmax))
    y = np.clip(np.rint(x / scale) + zero, qmin, qmax)
    return y.astype(np.uint8), np.array(scale, np.float32), np.array(zero, np.uint8)
