"""Shape ops: Shape, Size, ConstantOfShape, Range, EyeLike (Cast and CastLike live with the
elementwise recipes)."""

from __future__ import annotations

import numpy as np

from ....ir.dtypes import DTYPES
from ....ir.ops import ALL, ANY, get_spec
from .._context import FLOATS, GenContext
from . import recipe

__all__: list[str] = []


@recipe("Shape")
def shape(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ANY)
    r = x.type.rank
    attrs = {}
    if r and ctx.flag():
        attrs["start"] = ctx.integer(-r, r - 1)
    if r and ctx.flag():
        attrs["end"] = ctx.integer(-r, r)
    sizes = ctx.sizes(x.type.shape) or (0,)
    ctx.add(op, [x], attrs, ranges=[(0, max(sizes))])


@recipe("Size")
def size(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ANY)
    n = int(np.prod(ctx.sizes(x.type.shape), dtype=np.int64))
    ctx.add(op, [x], ranges=[(n, n)])


@recipe("ConstantOfShape")
def constant_of_shape(ctx: GenContext, op: str) -> None:
    """The shape as a constant, or (as exporters write it) computed by Shape of another value."""
    if ctx.flag():
        src = ctx.pick(ANY)
        shp = ctx.add("Shape", [src], ranges=[(0, 1 << 20)], pool=False).outputs[0]
    else:
        shp = ctx.ints(list(ctx.shape(static=True)))
    dt = ctx.dtype(ALL)
    attrs = {}
    value = 0.0
    if dt != "f32" or ctx.flag():
        lo, hi = ctx.leaf_range(dt)
        arr = ctx.random_array(dt, (1,), lo, hi)
        attrs["value"] = arr
        value = float(arr.astype(np.float64)[0])
    ctx.add(op, [shp], attrs, ranges=[(value, value)])


@recipe("Range")
def range_(ctx: GenContext, op: str) -> None:
    """Scalar start, limit and delta whose count is exact in any precision (quarter steps)."""
    dt = ctx.dtype(get_spec(op).allowed_dtypes("T"))
    n = ctx.integer(1, 6)
    if dt in FLOATS:
        start = ctx.integer(-8, 8) / 4
        delta = ctx.choice([0.25, 0.5, 1.0, -0.5, 2.0])
    else:
        start = ctx.integer(-5, 5)
        delta = ctx.choice([1, 2, -1, 3])
    limit = start + n * delta - (delta / 2 if ctx.flag() else 0)  # a limit off the grid rounds up
    if dt not in FLOATS:
        limit = int(np.ceil(limit)) if delta > 0 else int(np.floor(limit))
    npd = DTYPES[dt].np_dtype
    vals = [ctx.constant(np.asarray(v, dtype=npd), pool=False) for v in (start, limit, delta)]
    ends = [start, start + (n - 1) * delta]
    ctx.add(op, vals, ranges=[(min(ends), max(ends))])


@recipe("EyeLike")
def eye_like(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ALL, min_rank=2, max_rank=2)
    attrs = {}
    if ctx.flag():
        attrs["dtype"] = ctx.dtype(ALL)
    if ctx.flag():
        attrs["k"] = ctx.integer(-2, 2)
    ctx.add(op, [x], attrs, ranges=[(0, 1)])


@recipe("HannWindow", "HammingWindow", "BlackmanWindow")
def window(ctx: GenContext, op: str) -> None:
    size = ctx.integer(1, 8)
    attrs = {}
    out = ctx.dtype(get_spec(op).allowed_dtypes("T2") & FLOATS) if ctx.flag() else "f32"
    if out != "f32":
        attrs["output_datatype"] = out
    if size > 1 and ctx.flag():  # a symmetric window of one point divides by zero
        attrs["periodic"] = 0
    n = ctx.constant(np.asarray(size, dtype=DTYPES[ctx.choice(["i64", "i32"])].np_dtype), pool=False)
    ctx.add(op, [n], attrs, ranges=[(-0.1, 1.0)])
