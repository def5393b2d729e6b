"""Reference kernels of ``ridgeline.ir.ops.shape`` (Cast is with the elementwise kernels)."""

from __future__ import annotations

import numpy as np

from . import kernel


@kernel("Shape")
def shape(node, x):
    return np.array(x.shape[slice(node.attr("start"), node.attr("end"))], dtype=np.int64)


@kernel("Size")
def size(node, x):
    return np.array(x.size, dtype=np.int64)


@kernel("ConstantOfShape")
def constant_of_shape(node, shape):
    value = node.attr("value")
    return np.full(tuple(int(d) for d in shape), value.reshape(()), dtype=value.dtype)


@kernel("Range")
def range_(node, start, limit, delta):
    s, l, d = (x.reshape(()).item() for x in (start, limit, delta))
    n = max(int(np.ceil((l - s) / d)), 0)
    return (s + np.arange(n) * d).astype(start.dtype)
