"""Shape ops and conversions: Shape, Size, ConstantOfShape, Range, Cast, CastLike.

``Shape`` publishes its result symbolically (``[batch, seq, 768]``), which is what lets the
shape-computation chains of exported models resolve to constants once dims are bound.
"""

from __future__ import annotations

import numpy as np

from .. import dims as D
from ..types import TensorType
from . import envelopes
from ._util import per_element
from .spec import ALL, ANY, NUMERIC, InferContext, op

__all__: list[str] = []


def _free(c):
    return 0


@op("Shape", inputs=["data: T"], outputs=["shape: i64"], types={"T": ANY},
    attrs={"start": ("int", 0), "end": ("int", None)}, category="shape", bytes=_free, since=15)
def _shape(ctx: InferContext):
    """The dims of ``data`` (from ``start`` to ``end``) as a 1-D i64 tensor."""
    shape = ctx.shape(0)
    start, end = ctx.attr("start"), ctx.attr("end")
    dims = shape[slice(start, end)]
    ctx.set_sym(0, np.array(list(dims), dtype=object))
    return [(len(dims),)]


@op("Size", inputs=["data: T"], outputs=["size: i64"], types={"T": ANY}, category="shape",
    bytes=_free, since=21)
def _size(ctx: InferContext):
    """The element count of ``data`` as an i64 scalar."""
    ctx.set_sym(0, np.array(D.product(ctx.shape(0)), dtype=object))
    return [()]


@op("ConstantOfShape", inputs=["input: i64"], outputs=["output: T"],
    types={"T": ANY}, attrs={"value": ("tensor", np.zeros(1, np.float32))},
    category="shape", bytes=lambda c: c.out_bytes(0), since=20)
def _constant_of_shape(ctx: InferContext):
    """A tensor of the shape held by ``input``, filled with the one-element ``value``."""
    value = ctx.attr("value")
    if value.size != 1:
        ctx.fail(f"value must hold one element, got {value.size}")
    dt = ctx.to_dtype(value.dtype)
    shape = ctx.sym(0)
    if ctx.rank(0) != 1:
        ctx.fail(f"input must be 1-D, got {ctx.type(0)}")
    if shape is None:
        n = ctx.shape(0)[0]
        if not isinstance(n, int):
            ctx.fail("the rank of the result is unknown")
        return [_partial(dt, n)]
    dims = tuple(shape.flat)
    if dims and all(isinstance(d, int) for d in dims) and int(np.prod(dims)) <= 64 and dt.is_integer:
        ctx.set_sym(0, np.full(dims, int(value.reshape(())), dtype=object) if dims else
                    np.array(int(value.reshape(())), dtype=object))
    return [TensorType(dt, dims)]


def _partial(dt, n):
    from ..infer import _PartialType
    return _PartialType(dt, (None,) * n)


@op("Cast", inputs=["input: T1"], outputs=["output: T2"], types={"T1": ANY, "T2": ANY},
    attrs={"to": ("str",), "saturate": ("int", 1)}, category="elementwise", flops=per_element(1), since=21,
    envelope=envelopes.elementwise)  # from an integer: nothing wider went in (not a generator)
def _cast(ctx: InferContext):
    """Convert elements to dtype ``to`` (an IR dtype name such as "f16")."""
    dt = ctx.to_dtype(ctx.attr("to"))
    s = ctx.sym(0)
    if s is not None and dt.is_integer:
        ctx.set_sym(0, s)
    return [TensorType(dt, ctx.shape(0))]


@op("CastLike", inputs=["input: T1", "target_type: T2"], outputs=["output: T2"],
    types={"T1": ANY, "T2": ANY}, attrs={"saturate": ("int", 1)}, category="elementwise",
    flops=per_element(1), since=21)
def _cast_like(ctx: InferContext):
    """Convert elements to the dtype of ``target_type``."""
    s = ctx.sym(0)
    if s is not None and ctx.dtype(1).is_integer:
        ctx.set_sym(0, s)
    return [TensorType(ctx.dtype(1), ctx.shape(0))]


@op("Range", inputs=["start: T", "limit: T", "delta: T"], outputs=["output: T"],
    types={"T": {"f32", "f64", "f16", "bf16", "i16", "i32", "i64"}}, attrs={"stash_type": ("int", 1)},
    category="shape", since=27)
def _range(ctx: InferContext):
    """``start + i·delta`` for ``i < max(ceil((limit - start) / delta), 0)``, from three scalars;
    f16/bf16 compute in the ONNX dtype ``stash_type`` (1 = f32, 11 = f64)."""
    if ctx.attr("stash_type") not in (1, 11):
        ctx.fail(f"stash_type must be 1 (float) or 11 (double), got {ctx.attr('stash_type')}")
    for i in range(3):
        if ctx.rank(i) != 0 and ctx.type(i).numel != 1:
            ctx.fail("start, limit and delta must be scalars")
    s, l, d = (ctx.sym(i) for i in range(3))
    if s is None or l is None or d is None:
        vals = [ctx.value(i) for i in range(3)]
        if all(v is not None for v in vals):
            n = max(int(np.ceil((float(vals[1]) - float(vals[0])) / float(vals[2]))), 0)
            return [(n,)]
        return [(None,)]
    s, l, d = (x.reshape(()).item() if isinstance(x, np.ndarray) else x for x in (s, l, d))
    if all(isinstance(x, int) for x in (s, l, d)):
        n = max(-(-(l - s) // d), 0)
        if n <= 64:
            ctx.set_sym(0, np.arange(s, l, d, dtype=np.int64).astype(object))
        return [(n,)]
    if d == 1:
        return [(D.sub(l, s),)]
    return [(None,)]


@op("EyeLike", inputs=["input: T1"], outputs=["output: T2"], types={"T1": ALL, "T2": ALL},
    attrs={"dtype": ("str", None), "k": ("int", 0)}, category="shape", bytes=lambda c: c.out_bytes(0), since=22)
def _eye_like(ctx: InferContext):
    """A 2-D tensor of the input's shape with ones on diagonal ``k`` (dtype ``dtype`` or the
    input's)."""
    if ctx.rank(0) != 2:
        ctx.fail(f"input must be 2-D, got {ctx.type(0)}")
    dt = ctx.dtype(0)
    if ctx.attr("dtype") is not None:
        dt = ctx.to_dtype(ctx.attr("dtype"))
        if dt.name not in ALL:
            ctx.fail(f"dtype {dt} is not allowed")
    return [TensorType(dt, ctx.shape(0))]


@op("BitCast", inputs=["input: T1"], outputs=["output: T2"], types={"T1": ANY, "T2": ANY},
    attrs={"to": ("str",)}, category="view", bytes=_free, since=26)
def _bit_cast(ctx: InferContext):
    """Reinterpret the bits as dtype ``to`` of the same width (little endian); no conversion."""
    dt = ctx.to_dtype(ctx.attr("to"))
    if dt.bits != ctx.dtype(0).bits:
        ctx.fail(f"cannot reinterpret {ctx.dtype(0)} as {dt}: the bit widths differ")
    return [TensorType(dt, ctx.shape(0))]


def _window(ctx: InferContext):
    if ctx.type(0).numel != 1:
        ctx.fail(f"size must be a scalar, got {ctx.type(0)}")
    dt = ctx.to_dtype(ctx.attr("output_datatype"))
    size = ctx.sym(0)
    if size is None:
        return [_partial(dt, 1)]  # as long as the run-time size
    return [TensorType(dt, (size.reshape(-1)[0],))]


for _name, _formula in (("HannWindow", "sin²(π n / N)"), ("HammingWindow", "25/46 - 21/46 cos(2π n / N)"),
                        ("BlackmanWindow", "0.42 - 0.5 cos(2π n / N) + 0.08 cos(4π n / N)")):
    def _infer(ctx: InferContext):
        return _window(ctx)
    _infer.__doc__ = f"The {_name[:-6]} window {_formula}, n < size, N = size (periodic) or size - 1."
    op(_name, inputs=["size: T1"], outputs=["output: T2"], types={"T1": {"i32", "i64"}, "T2": NUMERIC},
       attrs={"output_datatype": ("str", "f32"), "periodic": ("int", 1)}, category="shape",
       flops=per_element(4), since=17)(_infer)
