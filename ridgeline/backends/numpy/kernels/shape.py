"""Reference kernels of ``ridgeline.ir.ops.shape`` (Cast is with the elementwise kernels)."""

from __future__ import annotations

import numpy as np

from ....ir.dtypes import dtype as to_dtype
from . import kernel


@kernel("ConstantOfShape")
def constant_of_shape(node, shape):
    value = node.attr("value")
    return np.full(tuple(int(d) for d in shape), value.reshape(()), dtype=value.dtype)


@kernel("Range")
def range_(node, start, limit, delta):
    dt = start.dtype
    if dt.kind in "iu":
        s, l, d = (int(x.reshape(())) for x in (start, limit, delta))
        n = max(-(-(l - s) // d), 0)
        return (s + np.arange(n, dtype=np.int64) * d).astype(dt)
    # f16/bf16 accumulate in the stash type, as opset 27 specifies; f32/f64 in their own type
    work = dt if dt in (np.float32, np.float64) else np.dtype(np.float64 if node.attr("stash_type") == 11 else np.float32)
    s, l, d = (x.reshape(()).astype(work) for x in (start, limit, delta))
    n = max(int(np.ceil((l - s) / d)), 0)
    return np.arange(s, l, d, dtype=work)[:n].astype(dt)


@kernel("BitCast")
def bit_cast(node, x):
    return np.array(x, order="C").view(to_dtype(node.attr("to")).np_dtype)
