"""Kernels of ``ridgeline.ir.ops.movement``, one for numpy and torch (``KERNELS``), and their index
logic: ONNX's slice clamping, split sizes, pad widths with negative pads as crops, indices
counted from the end and checked, and scatters as writes to the rows of a flattened copy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .namespace import namespace
from .views import along, ints

__all__ = ["KERNELS", "depth_to_space", "onnx_slice", "pad_widths", "space_to_depth", "split_sizes", "wrap"]


def onnx_slice(n: int, start: int, end: int, step: int) -> slice:
    """The Python slice of ``range(n)`` that ONNX's ``Slice`` selects: starts and ends clamped
    (sentinels such as INT64_MAX mean "to the end"; below -n, "before the start")."""
    start = max(min(start, n), -n - 1)
    end = max(min(end, n), -n - 1)
    if step < 0 and end < -n:
        return slice(start, None, step)
    if end == -n - 1 and step > 0:
        end = 0
    return slice(start, end, step)


def split_sizes(extent: int, sizes: Sequence[int] | None, outputs: int) -> list[int]:
    """``Split``'s part lengths: as given, else ``outputs`` parts of ceil(extent / outputs), the
    last one shorter."""
    if sizes is not None:
        return [int(s) for s in sizes]
    part = -(-extent // outputs)
    return [part] * (outputs - 1) + [extent - part * (outputs - 1)]


def pad_widths(shape: Sequence[int], pads: Sequence[int],
               axes: Sequence[int] | None) -> tuple[tuple[slice, ...], list[tuple[int, int]]]:
    """``Pad``'s (begin, end) per axis split into a crop (the negative pads, as slices of the
    input) and the non-negative widths to pad the cropped input by."""
    rank = len(shape)
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in axes]
    width = [(0, 0)] * rank
    for k, a in enumerate(axes):
        width[a] = (int(pads[k]), int(pads[k + len(axes)]))
    crop = tuple(slice(max(-b, 0), shape[i] - max(-e, 0)) for i, (b, e) in enumerate(width))
    return crop, [(max(b, 0), max(e, 0)) for b, e in width]


def wrap(idx: Any, n: int | Sequence[int]) -> Any:
    """Indices into an axis of length ``n`` (or per last-axis column, into axes of lengths ``n``)
    as int64, negative ones counted from the end; an index outside the axis is an ``IndexError``
    (a bad input, as numpy's indexing says), found by one reduction (none if the dtype fits)."""
    xp = namespace(idx)
    lo = n if isinstance(n, int) else min(n, default=0)
    fits = xp.name_of(idx.dtype) in ("i8", "u8", "i16", "u16") and xp.iinfo(idx.dtype).max < lo // 2
    idx = xp.astype(idx, xp.int64)
    n = n if isinstance(n, int) else xp.from_numpy(np.array(n, np.int64), like=idx)
    idx = xp.where(idx < 0, idx + n, idx)
    if not fits and math.prod(idx.shape) and bool(xp.any((idx < 0) | (idx >= n))):
        raise IndexError(f"index out of range for an axis of size {n if isinstance(n, int) else n.tolist()}")
    return idx


def depth_to_space(node, x) -> Any:
    b, (n, c, h, w) = node.attr("blocksize"), tuple(x.shape)
    if node.attr("mode") == "DCR":
        t = namespace(x).permute_dims(x.reshape(n, b, b, c // (b * b), h, w), (0, 3, 4, 1, 5, 2))
    else:
        t = namespace(x).permute_dims(x.reshape(n, c // (b * b), b, b, h, w), (0, 1, 4, 2, 5, 3))
    return t.reshape(n, c // (b * b), h * b, w * b)


def space_to_depth(node, x) -> Any:
    b, (n, c, h, w) = node.attr("blocksize"), tuple(x.shape)
    t = x.reshape(n, c, h // b, b, w // b, b)
    perm = (0, 3, 5, 1, 2, 4) if node.attr("mode") == "DCR" else (0, 1, 3, 5, 2, 4)
    return namespace(x).permute_dims(t, perm).reshape(n, c * b * b, h // b, w // b)


def transpose(node, x):
    perm = node.attr("perm")
    perm = tuple(perm) if perm is not None else tuple(reversed(range(x.ndim)))
    return namespace(x).permute_dims(x, perm) if perm else x  # a scalar: torch's permute wants a dim


def concat(node, *xs):
    xp = namespace(*xs)
    return xp.concat(list(xp.same_device(*xs)), node.attr("axis") % xs[0].ndim)


def split(node, x, sizes=None):
    axis = node.attr("axis") % x.ndim
    parts = split_sizes(x.shape[axis], None if sizes is None else ints(sizes), len(node.outputs))
    starts = [sum(parts[:i]) for i in range(len(parts))]
    return tuple(x[along(axis, slice(s, s + p))] for s, p in zip(starts, parts))


def gather_elements(node, x, idx):
    xp = namespace(x)
    x, idx = xp.same_device(x, idx)
    axis = node.attr("axis") % x.ndim
    return xp.take_along_axis(x, wrap(idx, x.shape[axis]), axis)


def trilu(node, x, k=None):
    k = ints(k)[0] if k is not None else 0
    module = namespace(x).module
    return module.triu(x, k) if node.attr("upper") else module.tril(x, k)


def tensor_scatter(node, past, update, write_indices=None):
    xp = namespace(past)
    past, update, write_indices = xp.same_device(past, update, write_indices)
    axis = node.attr("axis") % past.ndim
    out = xp.copy(past)
    o, u = xp.module.moveaxis(out, axis, 1), xp.module.moveaxis(update, axis, 1)  # views: writes land in `out`
    seq, cap = u.shape[1], o.shape[1]
    starts = [0] * past.shape[0] if write_indices is None else ints(write_indices)
    for b in range(past.shape[0]):
        pos = starts[b] + xp.arange(seq, like=past)
        if node.attr("mode") == "circular":
            pos = pos % cap
        o[b, pos] = u[b]
    return out


def one_hot(node, indices, depth, values):
    xp = namespace(indices)
    indices, values = xp.same_device(indices, values)
    d = ints(depth)[0]
    axis = node.attr("axis") % (indices.ndim + 1)
    idx = xp.astype(indices, xp.int64)
    idx = xp.where(idx < 0, idx + d, idx)
    positions = xp.arange(d, like=indices).reshape([-1 if i == axis else 1 for i in range(indices.ndim + 1)])
    return xp.astype(xp.where(xp.expand_dims(idx, axis) == positions, values[1], values[0]), values.dtype)


def center_crop_pad(node, x, shape):
    xp = namespace(x)
    axes = node.attr("axes")
    axes = range(x.ndim) if axes is None else [a % x.ndim for a in axes]
    out = x
    for a, t in zip(axes, ints(shape)):
        d = out.shape[a]
        if d > t:
            out = out[along(a, slice((d - t) // 2, (d - t) // 2 + t))]
        elif d < t:
            width = [(0, 0)] * x.ndim
            width[a] = ((t - d) // 2, t - d - (t - d) // 2)
            out = xp.pad_constant(out, width, 0)
    return out

def slice_(node, x, starts, ends, axes=None, steps=None):
    starts, ends = ints(starts), ints(ends)
    axes = range(len(starts)) if axes is None else ints(axes)
    steps = [1] * len(starts) if steps is None else ints(steps)
    for a, s, e, k in zip(axes, starts, ends, steps):
        a, n = a % x.ndim, x.shape[a % x.ndim]
        sl = onnx_slice(n, s, e, k)
        # torch slices by positive steps only: a negative step takes the positions it selects
        x = x[along(a, sl if k > 0 else namespace(x).from_numpy(np.array(range(n)[sl], np.int64), like=x))]
    return x


def gather(node, x, idx):
    xp = namespace(x)
    x, idx = xp.same_device(x, idx)
    axis = node.attr("axis") % x.ndim
    out = x[along(axis, wrap(idx, x.shape[axis]).reshape(-1))]
    return out.reshape(tuple(x.shape[:axis]) + tuple(idx.shape) + tuple(x.shape[axis + 1:]))


def gather_nd(node, data, idx):
    """Rows of ``data`` (its batch dims flattened) picked by the index tuples in ``idx``'s last axis."""
    xp = namespace(data)
    data, idx = xp.same_device(data, idx)
    b, k = node.attr("batch_dims"), idx.shape[-1]
    nb = math.prod(data.shape[:b])
    rows = wrap(idx.reshape(nb, -1, k), list(data.shape[b:b + k]))
    batch = xp.arange(nb, like=data).reshape(nb, 1)
    out = data.reshape((nb,) + tuple(data.shape[b:]))[(batch,) + tuple(rows[..., j] for j in range(k))]
    return out.reshape(tuple(idx.shape[:-1]) + tuple(data.shape[b + k:]))


def expand(node, x, shape):
    xp = namespace(x)
    return xp.expand(x, xp.module.broadcast_shapes(tuple(x.shape), tuple(ints(shape))))


def tile(node, x, reps):
    return namespace(x).module.tile(x, tuple(ints(reps)))


def pad(node, x, pads, value=None, axes=None):
    xp = namespace(x)
    crop, width = pad_widths(tuple(x.shape), ints(pads), None if axes is None else ints(axes))
    x = x[crop]
    mode = node.attr("mode")
    if mode == "constant":
        return xp.pad_constant(x, width, value.reshape(-1)[0].item() if value is not None and math.prod(value.shape)
                               else 0)
    for a, (b, e) in enumerate(width):   # reflect / edge / wrap: the positions numpy's pad reads, axis by axis
        if b or e:
            x = x[along(a, xp.from_numpy(np.pad(np.arange(x.shape[a]), (b, e), mode=mode), like=x))]
    return xp.contiguous(x)


def _scatter(node, data, flat, updates, row: tuple):
    """``data`` seen as rows of shape ``row``, with the rows at ``flat`` replaced by ``updates``
    or combined with them by the node's ``reduction``."""
    xp = namespace(data)
    if not math.prod(data.shape):
        return xp.copy(data)
    rows = xp.copy(data).reshape((-1,) + row)
    xp.scatter_rows(rows, flat.reshape(-1), updates.reshape((-1,) + row), node.attr("reduction"))
    return rows.reshape(data.shape)


def scatter_nd(node, data, indices, updates):
    xp = namespace(data)
    data, indices, updates = xp.same_device(data, indices, updates)
    k = indices.shape[-1]
    strides = [math.prod(data.shape[j + 1:k]) for j in range(k)]   # row-major row number over the first k dims
    flat = xp.sum(wrap(indices, list(data.shape[:k])) * xp.from_numpy(np.array(strides, np.int64), like=indices), -1)
    return _scatter(node, data, flat, updates, tuple(data.shape[k:]))


def scatter_elements(node, data, indices, updates):
    xp = namespace(data)
    data, indices, updates = xp.same_device(data, indices, updates)
    axis = node.attr("axis") % data.ndim
    flat = 0
    for d in range(data.ndim):   # the element's flat offset: its own coordinates, the index on `axis`
        coord = wrap(indices, data.shape[d]) if d == axis else \
            xp.arange(indices.shape[d], like=indices).reshape([-1 if i == d else 1 for i in range(data.ndim)])
        flat = flat * data.shape[d] + coord
    return _scatter(node, data, flat, updates, ())


def non_zero(node, x):
    xp = namespace(x)
    if x.ndim == 0:
        return xp.zeros((0, int(bool(x))), xp.int64, like=x)
    return xp.contiguous(xp.astype(xp.matrix_transpose(xp.module.argwhere(x)), xp.int64))


def compress(node, x, condition):
    xp = namespace(x)
    axis = node.attr("axis")
    x, axis = (x.reshape(-1), 0) if axis is None else (x, axis % x.ndim)
    keep = [i for i, c in enumerate(ints(condition)) if c]
    return x[along(axis, wrap(xp.from_numpy(np.array(keep, np.int64), like=x), x.shape[axis]))]


def reverse_sequence(node, x, lens):
    xp = namespace(x)
    batch_axis, time_axis = node.attr("batch_axis"), node.attr("time_axis")
    out = xp.copy(x)
    for i, n in enumerate(ints(lens)):
        src = [slice(None)] * x.ndim
        src[batch_axis], src[time_axis] = i, slice(0, n)
        out[tuple(src)] = xp.flip(x[tuple(src)], time_axis - (1 if batch_axis < time_axis else 0))
    return out


def unique(node, x):
    """np.unique's results (sorted values, first indices, inverse, counts), renumbered by first
    occurrence when ``sorted`` is 0."""
    xp = namespace(x)
    axis = node.attr("axis")
    dim = 0 if axis is None else axis % x.ndim
    y, inverse, counts = xp.unique(x.reshape(-1) if axis is None else x, None if axis is None else dim)
    inverse = inverse.reshape(-1)
    # a value's first index: where its run starts among the positions sorted stably by value
    first = xp.argsort_stable(inverse, 0)[xp.cumsum(counts, 0, xp.int64) - counts]
    if not node.attr("sorted"):
        order = xp.argsort_stable(first, 0)
        rank = xp.argsort_stable(order, 0)   # the inverse permutation: old number -> new
        y, first, counts, inverse = y[along(dim, order)], first[order], counts[order], rank[inverse]
    outs = (xp.contiguous(y), xp.astype(first, xp.int64), xp.astype(inverse, xp.int64), xp.astype(counts, xp.int64))
    return outs[:len(node.outputs)]


KERNELS = {"Transpose": transpose, "Concat": concat, "Split": split, "GatherElements": gather_elements,
           "Trilu": trilu, "TensorScatter": tensor_scatter, "OneHot": one_hot, "CenterCropPad": center_crop_pad,
           "DepthToSpace": depth_to_space, "SpaceToDepth": space_to_depth, "Slice": slice_, "Gather": gather,
           "GatherND": gather_nd, "Expand": expand, "Tile": tile, "Pad": pad, "ScatterND": scatter_nd,
           "ScatterElements": scatter_elements, "NonZero": non_zero, "Compress": compress,
           "ReverseSequence": reverse_sequence, "Unique": unique}
