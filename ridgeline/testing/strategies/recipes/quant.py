"""Linear quantization: scales per tensor, per axis or per block, zero points inside the target
type (0 for float8, as ONNX requires)."""

from __future__ import annotations

import numpy as np

from ....ir.dtypes import DTYPES
from ....ir.ops.quant import QUANT_TYPES
from .._context import FLOATS, GenContext, dtype_limits
from . import recipe

__all__: list[str] = []

_SCALES = ("f32", "f16", "bf16")


def _granularity(ctx: GenContext, x, sdt: str, lo: float, hi: float):
    """(scale constant, its shape, attrs): per tensor, per axis, or blocked along an axis."""
    shape = x.type.shape
    kind = ctx.choice(["tensor", "axis", "block"]) if shape and x.type.is_static else "tensor"
    attrs: dict = {}
    if kind == "tensor":
        sshape: tuple = ctx.choice([(), (1,)])
    else:
        axis = ctx.integer(0, len(shape) - 1)
        if axis != 1:
            attrs["axis"] = axis - len(shape) if ctx.flag() else axis
        if kind == "axis":
            sshape = (shape[axis],)
        else:
            bs = ctx.integer(1, shape[axis])
            attrs["block_size"] = bs
            sshape = tuple(-(-d // bs) if i == axis else d for i, d in enumerate(shape))
    data = ctx.rng().uniform(lo, hi, size=sshape).astype(DTYPES[sdt].np_dtype)
    return ctx.constant(data, pool=False), sshape, attrs


def _zero_point(ctx: GenContext, dt: str, shape: tuple):
    if dt.startswith("f8"):
        return ctx.constant(np.zeros(shape, DTYPES[dt].np_dtype), pool=False)
    lo, hi = dtype_limits(dt)
    mid = 0 if lo < 0 else min(hi, 8)
    return ctx.constant(ctx.random_array(dt, shape, max(lo, mid - 4), min(hi, mid + 4)), pool=False)


@recipe("QuantizeLinear")
def quantize(ctx: GenContext, op: str) -> None:
    x = ctx.pick(_SCALES, exact=True)  # rounding to the grid is discontinuous
    sdt = x.type.dtype.name
    scale, sshape, attrs = _granularity(ctx, x, sdt, 0.02, 0.5)
    out = ctx.dtype(QUANT_TYPES)
    inputs = [x, scale]
    zp_mag = 0.0
    if ctx.flag() or out not in ("u8",):
        if ctx.rare() and out != "u8":
            attrs["output_dtype"] = out
        else:
            zp = _zero_point(ctx, out, sshape)
            inputs.append(zp)
            zp_mag = ctx.info_of(zp).magnitude
    lo, hi = dtype_limits(out)
    m = ctx.info_of(x).magnitude / float(np.min(scale.data.astype(np.float64))) + zp_mag + 1
    ctx.add(op, inputs, attrs, ranges=[(max(lo, -m), min(hi, m))])


@recipe("DequantizeLinear")
def dequantize(ctx: GenContext, op: str) -> None:
    dt = ctx.dtype(QUANT_TYPES | {"i32"})
    lo, hi = dtype_limits(dt)
    if dt in FLOATS:
        lo, hi = -8.0, 8.0
    x = ctx.pick([dt], within=(max(lo, -64), min(hi, 64)))
    sdt = ctx.dtype(_SCALES)
    scale, sshape, attrs = _granularity(ctx, x, sdt, 0.01, 0.25)
    inputs = [x, scale]
    zp_mag = 0.0
    if ctx.flag():
        zp = _zero_point(ctx, dt, sshape)
        inputs.append(zp)
        zp_mag = ctx.info_of(zp).magnitude
    if ctx.rare():
        attrs["output_dtype"] = ctx.dtype(_SCALES)
    m = (ctx.info_of(x).magnitude + zp_mag) * float(np.max(scale.data.astype(np.float64)))
    ctx.add(op, inputs, attrs, ranges=[(-m, m)])


@recipe("DynamicQuantizeLinear")
def dynamic_quantize(ctx: GenContext, op: str) -> None:
    x = ctx.pick(["f32"], exact=True)
    i = ctx.info_of(x)
    top = (max(0.0, i.hi) - min(0.0, i.lo)) / 255 + 1e-6
    ctx.add(op, [x], ranges=[(0, 255), (0.0, top), (0, 255)])
