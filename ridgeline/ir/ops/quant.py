"""Linear quantization, as ONNX opset 25 defines it (and the quantization passes emit it).

    QuantizeLinear:   y = saturate(round_half_even(x / scale) + zero_point)
    DequantizeLinear: y = (x - zero_point) · scale

``scale`` and ``zero_point`` share one shape, which picks the granularity:

* per-tensor: one element;
* per-axis: a 1-D tensor as long as ``x.shape[axis]``;
* blocked (opset 21+, ``block_size`` B > 0): ``x``'s shape with ``ceil(x.shape[axis] / B)`` at
  ``axis``; each scale covers B consecutive elements along ``axis`` (the last block may be short).

Targets are u8/i8/u16/i16/u4/i4 (saturating to the integer range) and f8e4m3/f8e5m2 (with
``saturate`` clamping to the finite range, as Cast does). ``output_dtype`` and ``precision`` are IR
dtype names (the importer converts ONNX's codes). ``DynamicQuantizeLinear`` computes a u8
per-tensor scale and zero point from the data's range.
"""

from __future__ import annotations

from .. import dims as D
from ..dtypes import DTYPES
from ..types import TensorType
from ._util import per_element
from .spec import FLOAT8, InferContext, op

__all__ = ["QUANT_TYPES", "INTEGER_RANGES", "check_quant_params"]

#: what QuantizeLinear can produce (and DequantizeLinear read, with i32 accumulators)
QUANT_TYPES = frozenset({"u8", "i8", "u16", "i16", "u4", "i4"}) | FLOAT8
#: saturation ranges of the integer targets
INTEGER_RANGES = {"u8": (0, 255), "i8": (-128, 127), "u16": (0, 65535), "i16": (-32768, 32767),
                  "u4": (0, 15), "i4": (-8, 7)}
_SCALE_TYPES = frozenset({"f32", "f16", "bf16"})


def check_quant_params(ctx: InferContext, x: tuple, scale_i: int, zp_i: int) -> None:
    """Check that scale (input ``scale_i``) and zero point (``zp_i``) fit ``x`` for the node's
    axis and block_size: per-tensor, per-axis or blocked."""
    scale = ctx.shape(scale_i)
    if ctx.has(zp_i) and ctx.shape(zp_i) != scale and not (D.product(ctx.shape(zp_i)) == 1 == D.product(scale)):
        ctx.fail(f"zero point {ctx.type(zp_i)} and scale {ctx.type(scale_i)} must have the same shape")
    block = ctx.attr("block_size")
    if block < 0:
        ctx.fail(f"block_size must be >= 0, got {block}")
    if D.product(scale) == 1 and len(scale) <= 1:
        return  # per-tensor
    if not x:
        ctx.fail(f"a scalar input takes a one-element scale, got {ctx.type(scale_i)}")
    axis = ctx.normalize_axis(ctx.attr("axis"), len(x))
    if not block:
        if len(scale) != 1:
            ctx.fail(f"per-axis scale must be 1-D, got {ctx.type(scale_i)} (blocked quantization needs block_size)")
        if isinstance(scale[0], int) and isinstance(x[axis], int) and scale[0] != x[axis]:
            ctx.fail(f"per-axis scale has {scale[0]} entries for dim {axis} of size {x[axis]}")
        return
    if len(scale) != len(x):
        ctx.fail(f"blocked scale {ctx.type(scale_i)} must have the rank of the input ({len(x)})")
    for k, (s, d) in enumerate(zip(scale, x)):
        if not (isinstance(s, int) and isinstance(d, int)):
            continue
        want = -(-d // block) if k == axis else d
        if s != want:
            what = f"ceil({d} / block_size {block}) = {want}" if k == axis else f"{d}"
            ctx.fail(f"blocked scale {ctx.type(scale_i)}: dim {k} is {s}, expected {what}")


def _named_dtype(ctx: InferContext, attr: str, allowed: frozenset[str]):
    name = ctx.attr(attr)
    if name is None:
        return None
    dt = ctx.to_dtype(name)
    if dt.name not in allowed:
        ctx.fail(f"{attr} {dt.name} is not one of {', '.join(sorted(allowed))}")
    return dt


def _quantize_flops(c):
    return 4 * c.out_numel(0)  # divide, round, add zero point, clamp


@op("QuantizeLinear", inputs=["x: T1", "y_scale: T2", "y_zero_point?: T3"], outputs=["y: T3"],
    types={"T1": _SCALE_TYPES | {"i32"}, "T2": _SCALE_TYPES | {"i32"}, "T3": QUANT_TYPES},
    attrs={"axis": ("int", 1), "saturate": ("int", 1), "block_size": ("int", 0),
           "output_dtype": ("str", None), "precision": ("str", None)},
    category="quant", flops=_quantize_flops, since=25)
def _quantize_linear(ctx: InferContext):
    """Quantize ``x`` per tensor, per axis or per block; the target type is the zero point's,
    else ``output_dtype``, else u8. The division runs in ``precision`` (default: the scale's)."""
    x = ctx.shape(0)
    check_quant_params(ctx, x, 1, 2)
    out = _named_dtype(ctx, "output_dtype", QUANT_TYPES)
    _named_dtype(ctx, "precision", _SCALE_TYPES | {"f64"})
    if ctx.has(2):
        if out is not None and out != ctx.dtype(2):
            ctx.fail(f"output_dtype {out} differs from the zero point's {ctx.dtype(2)}")
        out = ctx.dtype(2)
    return [TensorType(out or DTYPES["u8"], x)]


@op("DequantizeLinear", inputs=["x: T1", "x_scale: T2", "x_zero_point?: T1"], outputs=["y: T3"],
    types={"T1": QUANT_TYPES | {"i32"}, "T2": _SCALE_TYPES, "T3": _SCALE_TYPES},
    attrs={"axis": ("int", 1), "block_size": ("int", 0), "output_dtype": ("str", None)},
    category="quant", flops=per_element(2), since=25)
def _dequantize_linear(ctx: InferContext):
    """``(x - zero_point) · scale`` per tensor, axis or block, in ``output_dtype`` (default: the
    scale's type)."""
    x = ctx.shape(0)
    check_quant_params(ctx, x, 1, 2)
    out = _named_dtype(ctx, "output_dtype", _SCALE_TYPES)
    return [TensorType(out or ctx.dtype(1), x)]


def _dynamic_flops(c):
    return 6 * c.in_numel(0)  # min, max, then quantize


@op("DynamicQuantizeLinear", inputs=["x: f32"], outputs=["y: u8", "y_scale: f32", "y_zero_point: u8"],
    category="quant", flops=_dynamic_flops, since=11)
def _dynamic_quantize_linear(ctx: InferContext):
    """u8 quantization with ``scale = (max(0, max x) - min(0, min x)) / 255`` and the zero point
    that maps 0 exactly; returns the data, the scale and the zero point."""
    return [ctx.shape(0), (), ()]
