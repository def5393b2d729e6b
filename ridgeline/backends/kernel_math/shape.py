"""Kernels of ``ridgeline.ir.ops.shape``, one for numpy and torch: Shape and Size (host int64
arrays), EyeLike and the three windows (computed in float64). Both tables register ``KERNELS``;
ConstantOfShape, Range and BitCast stay per table."""

from __future__ import annotations

import math

from .namespace import namespace
from .views import ints

__all__ = ["KERNELS"]


def shape(node, x):
    xp = namespace(x)
    return xp.host_array(list(x.shape)[slice(node.attr("start"), node.attr("end"))], xp.int64)


def size(node, x):
    xp = namespace(x)
    return xp.host_array(math.prod(x.shape), xp.int64)


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


KERNELS = {"Shape": shape, "Size": size, "EyeLike": eye_like, "HannWindow": window, "HammingWindow": window,
           "BlackmanWindow": window}
