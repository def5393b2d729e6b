"""Movement-op index logic (``ridgeline.ir.ops.movement``), once for numpy and torch: ONNX's
slice clamping, split sizes, pad widths with negative pads as crops; and the kernels the two
libraries run alike (``KERNELS``): Transpose, Concat, Split, GatherElements, Trilu,
TensorScatter, OneHot, CenterCropPad and the depth/space rearrangements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .namespace import namespace
from .views import ints

__all__ = ["KERNELS", "depth_to_space", "onnx_slice", "pad_widths", "space_to_depth", "split_sizes"]


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


def _along(axis: int, sl: slice) -> tuple:
    return (slice(None),) * axis + (sl,)


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
    return tuple(x[_along(axis, slice(s, s + p))] for s, p in zip(starts, parts))


def gather_elements(node, x, idx):
    xp = namespace(x)
    x, idx = xp.same_device(x, idx)
    axis = node.attr("axis") % x.ndim
    idx = xp.astype(idx, xp.int64)
    return xp.take_along_axis(x, xp.where(idx < 0, idx + x.shape[axis], idx), axis)


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
            out = out[_along(a, slice((d - t) // 2, (d - t) // 2 + t))]
        elif d < t:
            width = [(0, 0)] * x.ndim
            width[a] = ((t - d) // 2, t - d - (t - d) // 2)
            out = xp.pad_constant(out, width, 0)
    return out


KERNELS = {"Transpose": transpose, "Concat": concat, "Split": split, "GatherElements": gather_elements,
           "Trilu": trilu, "TensorScatter": tensor_scatter, "OneHot": one_hot, "CenterCropPad": center_crop_pad,
           "DepthToSpace": depth_to_space, "SpaceToDepth": space_to_depth}
