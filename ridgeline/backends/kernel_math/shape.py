"""Kernels of ``ridgeline.ir.ops.shape``, one for numpy and torch: Shape and Size (host int64
arrays), ConstantOfShape, Range, BitCast, EyeLike and the three windows (computed in float64).
Both tables register ``KERNELS``."""

from __future__ import annotations

import math

from ...ir.dtypes import dtype as to_dtype
from .namespace import namespace
from .views import ints

__all__ = ["KERNELS"]


def shape(node, x):
    xp = namespace(x)
    return xp.host_array(list(x.shape)[slice(node.attr("start"), node.attr("end"))], xp.int64)


def size(node, x):
    xp = namespace(x)
    return xp.host_array(math.prod(x.shape), xp.int64)


def constant_of_shape(node, shape):
    xp, value = namespace(shape), node.attr("value")
    return xp.full(tuple(ints(shape)), value.reshape(()).item(), xp.dtype(to_dtype(value.dtype).name), like=shape)


def range_(node, start, limit, delta):
    xp, name = namespace(start), namespace(start).name_of(start.dtype)
    if name[0] in "iu":
        s, l, d = (int(v.reshape(())) for v in (start, limit, delta))
        n = max(-(-(l - s) // d), 0)
        return xp.astype(s + xp.arange(n, like=start) * d, start.dtype)
    # f16/bf16 accumulate in the stash type, as opset 27 specifies; f32/f64 in their own type
    work = start.dtype if name in ("f32", "f64") else xp.dtype("f64" if node.attr("stash_type") == 11 else "f32")
    s, l, d = (xp.astype(v.reshape(()), work) for v in (start, limit, delta))
    n = max(math.ceil(float((l - s) / d)), 0)
    return xp.astype(xp.module.arange(s, l, d, dtype=work, device=start.device)[:n], start.dtype)


def bit_cast(node, x):
    xp = namespace(x)
    return xp.copy(x).view(xp.dtype(to_dtype(node.attr("to")).name))


def eye_like(node, x):
    xp = namespace(x)
    name = node.attr("dtype")
    diagonal = xp.arange(x.shape[1], like=x)[None, :] - xp.arange(x.shape[0], like=x)[:, None] == node.attr("k")
    return xp.astype(diagonal, xp.dtype(name) if name else x.dtype)


def window(node, size):
    xp = namespace(size)
    n = ints(size)[0]
    period = n if node.attr("periodic") else n - 1
    t = 2.0 * math.pi * xp.astype(xp.arange(n, like=size), xp.float64) / period
    if node.op == "HannWindow":
        y = xp.sin(t / 2.0) ** 2
    elif node.op == "HammingWindow":
        y = 25.0 / 46.0 - (21.0 / 46.0) * xp.cos(t)
    else:
        y = 0.42 - 0.5 * xp.cos(t) + 0.08 * xp.cos(2.0 * t)
    return xp.astype(y, xp.dtype(node.attr("output_datatype")))


KERNELS = {"Shape": shape, "Size": size, "ConstantOfShape": constant_of_shape, "Range": range_, "BitCast": bit_cast,
           "EyeLike": eye_like, "HannWindow": window, "HammingWindow": window, "BlackmanWindow": window}
