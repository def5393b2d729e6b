"""Reference kernels of ``ridgeline.ir.ops.reduction``: the Reduce* family and Hardmax (the others are
``kernel_math.reduction``'s)."""

from __future__ import annotations

import numpy as np

from . import kernel


def _axes(node, x, axes):
    if axes is None or axes.size == 0:
        if node.attr("noop_with_empty_axes"):
            return ()  # reduce over no axis: ReduceL2 still gives |x|, ReduceLogSum log(x) (onnx.reference)
        return tuple(range(x.ndim))
    return tuple(int(a) % x.ndim for a in axes.reshape(-1))


_REDUCE = {
    "ReduceSum": lambda x, ax, k: np.sum(x, axis=ax, keepdims=k),
    "ReduceMean": lambda x, ax, k: np.mean(x, axis=ax, keepdims=k),
    "ReduceMax": lambda x, ax, k: np.max(x, axis=ax, keepdims=k),
    "ReduceMin": lambda x, ax, k: np.min(x, axis=ax, keepdims=k),
    "ReduceProd": lambda x, ax, k: np.prod(x, axis=ax, keepdims=k),
    "ReduceL1": lambda x, ax, k: np.sum(np.abs(x), axis=ax, keepdims=k),
    "ReduceL2": lambda x, ax, k: np.sqrt(np.sum(np.square(x), axis=ax, keepdims=k)),
    "ReduceSumSquare": lambda x, ax, k: np.sum(np.square(x), axis=ax, keepdims=k),
    "ReduceLogSum": lambda x, ax, k: np.log(np.sum(x, axis=ax, keepdims=k)),
    "ReduceLogSumExp": lambda x, ax, k: np.log(np.sum(np.exp(x), axis=ax, keepdims=k)),
}


@kernel(*_REDUCE)
def reduce(node, x, axes=None):
    ax = _axes(node, x, axes)
    keep = bool(node.attr("keepdims"))
    if x.size == 0 and node.op in ("ReduceMax", "ReduceMin"):
        shape = tuple(1 if i in ax else d for i, d in enumerate(x.shape)) if keep else \
            tuple(d for i, d in enumerate(x.shape) if i not in ax)
        fill = -np.inf if node.op == "ReduceMax" else np.inf
        if x.dtype == np.bool_:
            fill = node.op == "ReduceMin"  # the identities of any() and all()
        elif x.dtype.kind in "iu":
            info = np.iinfo(x.dtype)
            fill = info.min if node.op == "ReduceMax" else info.max
        return np.full(shape, fill, dtype=x.dtype)
    with np.errstate(all="ignore"):
        return np.asarray(_REDUCE[node.op](x, ax, keep)).astype(x.dtype, copy=False)


@kernel("Hardmax")
def hardmax(node, x):
    axis = node.attr("axis") % x.ndim
    y = np.zeros_like(x)
    if x.size:
        np.put_along_axis(y, np.expand_dims(np.argmax(x, axis=axis), axis), 1, axis=axis)
    return y
