"""Reference kernels of ``ridgeline.ir.ops.movement``."""

from __future__ import annotations

import numpy as np

from ...kernel_math.movement import onnx_slice, pad_widths
from . import kernel


@kernel("Slice")
def slice_(node, x, starts, ends, axes=None, steps=None):
    starts, ends = starts.reshape(-1).tolist(), ends.reshape(-1).tolist()
    axes = list(range(len(starts))) if axes is None else axes.reshape(-1).tolist()
    steps = [1] * len(starts) if steps is None else steps.reshape(-1).tolist()
    index = [slice(None)] * x.ndim
    for a, s, e, st in zip(axes, starts, ends, steps):
        index[a % x.ndim] = onnx_slice(x.shape[a % x.ndim], s, e, st)
    return x[tuple(index)]


def _axis_and_indices(node, x, idx):
    """The ``axis`` attribute and ``idx`` with negative indices counted from the end of that axis."""
    axis = node.attr("axis") % x.ndim
    idx = idx.astype(np.int64)
    return axis, np.where(idx < 0, idx + x.shape[axis], idx)


@kernel("Gather")
def gather(node, x, idx):
    axis, idx = _axis_and_indices(node, x, idx)
    return np.take(x, idx, axis=axis)


@kernel("GatherND")
def gather_nd(node, data, idx):
    b = node.attr("batch_dims")
    batch_shape = data.shape[:b]
    k = idx.shape[-1]
    nb = int(np.prod(batch_shape, dtype=np.int64))
    d = data.reshape((nb,) + data.shape[b:])
    i = idx.reshape((nb, -1, k))
    out = []
    for n in range(nb):
        rows = [d[n][tuple(int(v) for v in row)] for row in i[n]]
        out.append(np.stack(rows) if rows else np.zeros((0,) + data.shape[b + k:], data.dtype))
    return np.stack(out).reshape(idx.shape[:-1] + data.shape[b + k:])


@kernel("Expand")
def expand(node, x, shape):
    target = np.broadcast_shapes(x.shape, tuple(int(d) for d in shape))
    return np.broadcast_to(x, target).copy()


@kernel("Tile")
def tile(node, x, reps):
    return np.tile(x, [int(r) for r in reps])


@kernel("Pad")
def pad(node, x, pads, value=None, axes=None):
    crop, width = pad_widths(x.shape, pads.reshape(-1), None if axes is None else axes.reshape(-1))
    x = x[crop]
    mode = node.attr("mode")
    if mode == "constant":
        cv = value.reshape(()).item() if value is not None and value.size else 0
        return np.pad(x, width, mode="constant", constant_values=cv)
    return np.pad(x, width, mode={"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode])


_UFUNCS = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def _scatter(out: np.ndarray, index: tuple, updates: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        out[index] = updates
    else:
        _UFUNCS[reduction].at(out, index, updates)
    return out


@kernel("ScatterND")
def scatter_nd(node, data, indices, updates):
    out = data.copy()
    k = indices.shape[-1]
    idx = indices.astype(np.int64)
    index = tuple(np.where(idx[..., j] < 0, idx[..., j] + data.shape[j], idx[..., j]) for j in range(k))
    return _scatter(out, index, updates, node.attr("reduction"))


@kernel("ScatterElements")
def scatter_elements(node, data, indices, updates):
    axis, idx = _axis_and_indices(node, data, indices)
    grid = list(np.indices(idx.shape, sparse=True))
    grid[axis] = idx
    return _scatter(data.copy(), tuple(grid), updates, node.attr("reduction"))


@kernel("NonZero")
def non_zero(node, x):
    if x.ndim == 0:
        return np.zeros((0, int(bool(x))), np.int64)
    return np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)


@kernel("Compress")
def compress(node, x, condition):
    return np.compress(condition, x, axis=node.attr("axis"))


@kernel("ReverseSequence")
def reverse_sequence(node, x, lens):
    batch_axis, time_axis = node.attr("batch_axis"), node.attr("time_axis")
    out = x.copy()
    for i, n in enumerate(lens.astype(np.int64)):
        src = [slice(None)] * x.ndim
        src[batch_axis], src[time_axis] = i, slice(0, int(n))
        dst = list(src)
        dst[time_axis] = slice(int(n) - 1, None, -1) if n > 0 else slice(0, 0)
        out[tuple(src)] = x[tuple(dst)]
    return out


@kernel("Unique")
def unique(node, x):
    axis = node.attr("axis")
    flat = x.reshape(-1) if axis is None else x
    y, first, inverse, counts = np.unique(flat, return_index=True, return_inverse=True, return_counts=True,
                                          axis=None if axis is None else axis % x.ndim)
    inverse = inverse.reshape(-1)
    if not node.attr("sorted"):  # renumber the unique values in order of first occurrence
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        y = np.take(y, order, axis=0 if axis is None else axis % x.ndim)
        first, counts, inverse = first[order], counts[order], rank[inverse]
    outs = (y, first.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64))
    return outs[:len(node.outputs)]
