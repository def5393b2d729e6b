"""Movement-op index logic (``ridgeline.ir.ops.movement``), once for numpy and torch: ONNX's
slice clamping, split sizes, pad widths with negative pads as crops, and the depth/space
rearrangements (reshape and permute, the same in both libraries)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .namespace import namespace

__all__ = ["depth_to_space", "onnx_slice", "pad_widths", "space_to_depth", "split_sizes"]


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
