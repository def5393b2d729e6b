"""Reference kernels of ``ridgeline.ir.ops.shape`` (Cast is with the elementwise kernels)."""

from __future__ import annotations

import numpy as np

from ....ir.dtypes import dtype as to_dtype
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


@kernel("EyeLike")
def eye_like(node, x):
    name = node.attr("dtype")
    dt = to_dtype(name).np_dtype if name else x.dtype
    return np.eye(x.shape[0], x.shape[1], k=node.attr("k"), dtype=dt)


@kernel("BitCast")
def bit_cast(node, x):
    return np.array(x, order="C").view(to_dtype(node.attr("to")).np_dtype)


@kernel("HannWindow", "HammingWindow", "BlackmanWindow")
def window(node, size):
    n = int(size.reshape(-1)[0])
    period = n if node.attr("periodic") else n - 1
    t = 2.0 * np.pi * np.arange(n) / period
    if node.op == "HannWindow":
        y = np.sin(t / 2.0) ** 2
    elif node.op == "HammingWindow":
        y = 25.0 / 46.0 - (21.0 / 46.0) * np.cos(t)
    else:
        y = 0.42 - 0.5 * np.cos(t) + 0.08 * np.cos(2.0 * t)
    return y.astype(to_dtype(node.attr("output_datatype")).np_dtype)
