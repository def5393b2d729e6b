"""Data-movement ops: they copy or select elements without arithmetic (Transpose, Concat, Split,
Slice, Gather, GatherElements, GatherND, Expand, Tile, Pad, Trilu).

Bytes are what a kernel must read and write: a Gather reads only the rows it selects (an
embedding lookup does not touch the whole table), a Slice only the slice.
"""

from __future__ import annotations

import math

import numpy as np

from .._lazy import sympy
from .. import dims as D
from ._util import broadcast, normalize_axes, per_element, static_length
from .spec import ALL, ANY, INDEX, NUMERIC, CostContext, InferContext, op

__all__ = ["slice_dim"]

_INT_MAX = 2 ** 62


@op("Transpose", inputs=["data: T"], outputs=["transposed: T"], types={"T": ANY},
    attrs={"perm": ("ints", None)}, category="movement", since=13)
def _transpose(ctx: InferContext):
    """Permute dims by ``perm`` (reversed when absent)."""
    shape = ctx.shape(0)
    perm = ctx.attr("perm")
    perm = tuple(range(len(shape)))[::-1] if perm is None else perm
    if sorted(perm) != list(range(len(shape))):
        ctx.fail(f"perm {list(perm)} is not a permutation of rank {len(shape)}")
    return [tuple(shape[p] for p in perm)]


@op("Concat", inputs=["inputs*: T"], outputs=["concat_result: T"], types={"T": ANY},
    attrs={"axis": ("int",)}, category="movement", since=13)
def _concat(ctx: InferContext):
    """Join along ``axis``; other dims must agree."""
    shapes = [ctx.shape(i) for i in range(ctx.num_inputs)]
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes):
        ctx.fail(f"inputs have different ranks: {', '.join(map(str, shapes))}")
    axis = ctx.normalize_axis(ctx.attr("axis"), rank)
    out = list(shapes[0])
    total = 0
    for s in shapes:
        total = D.add(total, s[axis])
        for k in range(rank):
            if k != axis and isinstance(s[k], int) and isinstance(out[k], int) and s[k] != out[k]:
                ctx.fail(f"dim {k} differs between inputs: {out[k]} vs {s[k]}")
            if k != axis and isinstance(out[k], str) and isinstance(s[k], int):
                out[k] = s[k]
    out[axis] = total
    syms = [ctx.sym(i) for i in range(ctx.num_inputs)]
    if all(s is not None for s in syms) and rank == 1:
        ctx.set_sym(0, np.concatenate([s.reshape(-1) for s in syms]))
    return [tuple(out)]


@op("Split", inputs=["input: T", "split?: i64"], outputs=["outputs*: T"], types={"T": ANY},
    attrs={"axis": ("int", 0), "num_outputs": ("int", None)}, category="movement", since=18)
def _split(ctx: InferContext):
    """Split along ``axis`` into the sizes in ``split``, or ``num_outputs`` equal parts."""
    shape = ctx.shape(0)
    axis = ctx.normalize_axis(ctx.attr("axis"), len(shape))
    dim = shape[axis]
    if ctx.has(1):
        sizes = ctx.sym(1)
        if sizes is None:  # sizes known only at run time: one output per entry, lengths unknown
            sizes = [None] * static_length(ctx, 1)
        else:
            sizes = list(sizes.flat)
        if any(isinstance(s, int) and s < 0 for s in sizes):
            ctx.fail(f"split sizes {sizes} must not be negative")
        if isinstance(dim, int) and all(isinstance(s, int) for s in sizes) and sum(sizes) != dim:
            ctx.fail(f"split sizes {sizes} do not sum to dim {dim}")
    else:
        n = ctx.attr("num_outputs") or ctx.num_outputs
        if not n:
            ctx.fail("give split sizes or num_outputs")
        if isinstance(dim, int):
            part = -(-dim // n)
            sizes = [part] * (n - 1) + [dim - part * (n - 1)]
            if sizes[-1] < 0:
                ctx.fail(f"cannot split {dim} into {n} parts")
        else:  # ceil-sized parts, the last one takes the rest
            part = D.ceildiv(dim, n)
            sizes = [part] * (n - 1) + [D.sub(dim, D.mul(part, n - 1))]
    if ctx.num_outputs is not None and ctx.num_outputs != len(sizes):
        ctx.fail(f"node has {ctx.num_outputs} outputs for {len(sizes)} splits")
    return [tuple(s if k == axis else d for k, d in enumerate(shape)) for s in sizes]


def slice_dim(dim, start, end, step):
    """Length of ``dim[start:end:step]``; symbolic where it can be said exactly, else None."""
    if isinstance(dim, int) and isinstance(start, int) and isinstance(end, int):
        return len(range(*slice(start, end, step).indices(dim)))
    if step == 1 and isinstance(start, int) and start >= 0:
        if isinstance(end, int) and end >= _INT_MAX // 2:
            return D.sub(dim, start) if start else dim
        if isinstance(end, str) and start == 0:
            return end  # the usual `x[:seq]` of an exported model: assumes seq <= dim
        if isinstance(end, int) and end >= 0 and isinstance(dim, str):
            return None
    if step == 1 and isinstance(start, str) and isinstance(end, int) and end >= _INT_MAX // 2:
        return D.sub(dim, start)
    if step == 1 and start == -1 and isinstance(end, int) and end >= _INT_MAX // 2:
        return 1  # the last element (every dim is >= 1)
    # x[-n:] of a symbolic dim is min(dim, n): a sliding-window KV cache keeps the last n keys of
    # a cache that may be shorter, so the length is not n
    return None


@op("Slice", inputs=["data: T", "starts: Tind", "ends: Tind", "axes?: Tind", "steps?: Tind"],
    outputs=["output: T"], types={"T": ANY, "Tind": INDEX}, category="movement",
    bytes=lambda c: 2 * c.out_bytes(0), since=13)
def _slice(ctx: InferContext):
    """numpy-style slicing along ``axes`` with clamped starts/ends and non-zero steps."""
    shape = ctx.shape(0)
    starts, ends = ctx.sym(1), ctx.sym(2)
    if starts is None or ends is None:
        return [tuple(None for _ in shape)]
    starts, ends = list(starts.flat), list(ends.flat)
    axes = ctx.value(3).reshape(-1).tolist() if ctx.has(3) and ctx.value(3) is not None else list(range(len(starts)))
    steps = ctx.value(4).reshape(-1).tolist() if ctx.has(4) and ctx.value(4) is not None else [1] * len(starts)
    if ctx.has(3) and ctx.value(3) is None or ctx.has(4) and ctx.value(4) is None:
        return [tuple(None for _ in shape)]
    if not len(starts) == len(ends) == len(axes) == len(steps):
        ctx.fail("starts, ends, axes and steps must have the same length")
    axes = normalize_axes(ctx, axes, len(shape))
    out = list(shape)
    for a, s, e, st in zip(axes, starts, ends, steps):
        if st == 0:
            ctx.fail("slice step cannot be 0")
        out[a] = slice_dim(shape[a], s, e, st)
    data = ctx.sym(0)
    if data is not None and data.ndim == 1 and all(isinstance(x, int) for x in starts + ends):
        ctx.set_sym(0, data[slice(starts[0], ends[0], steps[0])])
    return [tuple(out)]


def _gather_bytes(c: CostContext):
    # reads the indices and the selected slices, writes the result
    return c.in_bytes(1) + 2 * c.out_bytes(0)


@op("Gather", inputs=["data: T", "indices: Tind"], outputs=["output: T"], types={"T": ANY, "Tind": INDEX},
    attrs={"axis": ("int", 0)}, category="movement", bytes=_gather_bytes, since=13)
def _gather(ctx: InferContext):
    """Select slices of ``data`` along ``axis`` at ``indices`` (negative indices count from the end)."""
    data, idx = ctx.shape(0), ctx.shape(1)
    if not data:
        ctx.fail("data must have rank >= 1 (ONNX Gather), got a scalar")
    axis = ctx.normalize_axis(ctx.attr("axis"), len(data))
    s, iv = ctx.sym(0), ctx.value(1)
    dim = data[axis]
    if iv is not None and iv.size and isinstance(dim, int):
        lo, hi = int(iv.min()), int(iv.max())  # constant indices: checked here, not at run time
        if lo < -dim or hi >= dim:
            ctx.fail(f"indices span {lo}..{hi}, out of range for a dim of size {dim} (allowed {-dim}..{dim - 1})")
    if s is not None and iv is not None and s.ndim >= 1:
        try:
            ctx.set_sym(0, np.take(s, iv.astype(np.int64), axis=axis))
        except IndexError:
            ctx.fail(f"indices {iv.tolist()} out of range for dim {data[axis]}")
    return [data[:axis] + idx + data[axis + 1:]]


@op("GatherElements", inputs=["data: T", "indices: Tind"], outputs=["output: T"],
    types={"T": ANY, "Tind": INDEX}, attrs={"axis": ("int", 0)}, category="movement",
    bytes=_gather_bytes, since=13)
def _gather_elements(ctx: InferContext):
    """``out[i][j] = data[index[i][j]][j]`` for axis 0 (take_along_axis)."""
    if ctx.rank(0) != ctx.rank(1):
        ctx.fail("data and indices must have the same rank")
    ctx.normalize_axis(ctx.attr("axis"), ctx.rank(0))
    return [ctx.shape(1)]


@op("GatherND", inputs=["data: T", "indices: i64"], outputs=["output: T"], types={"T": ANY},
    attrs={"batch_dims": ("int", 0)}, category="movement", bytes=_gather_bytes, since=13)
def _gather_nd(ctx: InferContext):
    """Gather slices addressed by the last dim of ``indices`` (after ``batch_dims`` batch dims)."""
    data, idx = ctx.shape(0), ctx.shape(1)
    b = ctx.attr("batch_dims")
    k = idx[-1] if idx else None
    if not isinstance(k, int):
        ctx.fail("the last dim of indices must be static")
    if b + k > len(data):
        ctx.fail(f"indices address {k} dims after {b} batch dims of a rank-{len(data)} tensor")
    return [tuple(idx[:-1]) + tuple(data[b + k:])]


@op("Expand", inputs=["input: T", "shape: i64"], outputs=["output: T"], types={"T": ANY},
    category="movement", since=13)
def _expand(ctx: InferContext):
    """Broadcast ``input`` to ``shape`` (bidirectionally, as numpy does)."""
    target = ctx.sym(1)
    if ctx.rank(1) != 1:
        ctx.fail("shape must be 1-D")
    if target is None:
        n = ctx.shape(1)[0]
        if not isinstance(n, int):
            ctx.fail("the rank of the result is unknown")
        return [(None,) * max(n, ctx.rank(0))]
    try:
        return [broadcast(ctx.shape(0), tuple(target.flat))]
    except ValueError as e:
        ctx.fail(f"{ctx.type(0)} does not expand to {list(target.flat)}: {e}")


@op("Tile", inputs=["input: T", "repeats: i64"], outputs=["output: T"], types={"T": ANY},
    category="movement", since=13)
def _tile(ctx: InferContext):
    """Repeat ``input`` ``repeats[i]`` times along each dim."""
    reps = ctx.sym(1)
    if reps is None:
        return [(None,) * ctx.rank(0)]
    reps = list(reps.flat)
    if len(reps) != ctx.rank(0):
        ctx.fail(f"repeats has {len(reps)} entries for rank {ctx.rank(0)}")
    return [tuple(D.mul(d, r) for d, r in zip(ctx.shape(0), reps))]


@op("Pad", inputs=["data: T", "pads: i64", "constant_value?: T", "axes?: Tind"], outputs=["output: T"],
    types={"T": ANY, "Tind": INDEX}, attrs={"mode": ("str", "constant")}, category="movement", since=19)
def _pad(ctx: InferContext):
    """Pad each axis by (begin, end) amounts; modes constant, reflect, edge, wrap."""
    if ctx.attr("mode") not in ("constant", "reflect", "edge", "wrap"):
        ctx.fail(f"unknown mode {ctx.attr('mode')!r}")
    pads = ctx.sym(1)
    shape = ctx.shape(0)
    if pads is None:
        return [(None,) * len(shape)]
    pads = list(pads.flat)
    axes = ctx.value(3).reshape(-1).tolist() if ctx.has(3) else list(range(len(shape)))
    axes = normalize_axes(ctx, axes, len(shape))
    if len(pads) != 2 * len(axes):
        ctx.fail(f"pads has {len(pads)} entries for {len(axes)} axes")
    out = list(shape)
    for k, a in enumerate(axes):
        out[a] = D.add(D.add(shape[a], pads[k]), pads[k + len(axes)])
        if isinstance(out[a], int) and out[a] < 0:
            ctx.fail(f"pads {pads[k]}, {pads[k + len(axes)]} crop axis {a} of size {shape[a]} below zero")
    return [tuple(out)]


@op("Trilu", inputs=["input: T", "k?: i64"], outputs=["output: T"], types={"T": ALL},
    attrs={"upper": ("int", 1)}, category="movement", since=14)
def _trilu(ctx: InferContext):
    """Keep the upper (or lower) triangle of the last two dims, offset by diagonal ``k``."""
    if ctx.rank(0) < 2:
        ctx.fail("input must have rank >= 2")
    return [ctx.shape(0)]


_REDUCTIONS = ("none", "add", "mul", "max", "min")


@op("ScatterND", inputs=["data: T", "indices: i64", "updates: T"], outputs=["output: T"], types={"T": ANY},
    attrs={"reduction": ("str", "none")}, category="movement", since=18)
def _scatter_nd(ctx: InferContext):
    """A copy of ``data`` with the slices addressed by the last dim of ``indices`` replaced by
    (or reduced with) ``updates``."""
    if ctx.attr("reduction") not in _REDUCTIONS:
        ctx.fail(f"reduction must be one of {', '.join(_REDUCTIONS)}, got {ctx.attr('reduction')!r}")
    data, idx, upd = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    if not idx:
        ctx.fail("indices must have rank >= 1")
    k = idx[-1]
    if isinstance(k, int):
        if k > len(data):
            ctx.fail(f"indices address {k} dims of a rank-{len(data)} tensor")
        want = tuple(idx[:-1]) + tuple(data[k:])
        if len(upd) != len(want) or any(isinstance(a, int) and isinstance(b, int) and a != b
                                        for a, b in zip(upd, want)):
            ctx.fail(f"updates {ctx.type(2)} should have shape {list(want)}")
    return [data]


@op("ScatterElements", inputs=["data: T", "indices: Tind", "updates: T"], outputs=["output: T"],
    types={"T": ANY, "Tind": INDEX}, attrs={"axis": ("int", 0), "reduction": ("str", "none")},
    category="movement", since=18)
def _scatter_elements(ctx: InferContext):
    """A copy of ``data`` where ``output[..., indices[i, j], ...] = updates[i, j]`` along ``axis``
    (or reduced with add/mul/max/min)."""
    if ctx.attr("reduction") not in _REDUCTIONS:
        ctx.fail(f"reduction must be one of {', '.join(_REDUCTIONS)}, got {ctx.attr('reduction')!r}")
    if not ctx.rank(0) == ctx.rank(1) == ctx.rank(2):
        ctx.fail("data, indices and updates must have the same rank")
    ctx.normalize_axis(ctx.attr("axis"), ctx.rank(0))
    return [ctx.shape(0)]


def _tensor_scatter_bytes(c: CostContext):
    # an in-place KV-cache write: read the update (and write indices), write the same bytes
    return 2 * c.in_bytes(1) + (c.in_bytes(2) if len(c.in_types) > 2 else 0)


@op("TensorScatter", inputs=["past_cache: T", "update: T", "write_indices?: i64"], outputs=["present_cache: T"],
    types={"T": ANY}, attrs={"axis": ("int", -2), "mode": ("str", "linear")}, category="movement",
    bytes=_tensor_scatter_bytes, since=24)
def _tensor_scatter(ctx: InferContext):
    """KV-cache update: write ``update`` into the cache along ``axis`` from each batch's write
    index (wrapping around in ``circular`` mode); the cache keeps its shape."""
    if ctx.attr("mode") not in ("linear", "circular"):
        ctx.fail(f"mode must be 'linear' or 'circular', got {ctx.attr('mode')!r}")
    past, upd = ctx.shape(0), ctx.shape(1)
    if len(past) != len(upd):
        ctx.fail(f"update {ctx.type(1)} must have the rank of the cache {ctx.type(0)}")
    axis = ctx.normalize_axis(ctx.attr("axis"), len(past))
    if axis == 0:
        ctx.fail("axis cannot be 0 (the batch dim)")
    for k, (a, b) in enumerate(zip(past, upd)):
        if isinstance(a, int) and isinstance(b, int) and (a < b if k == axis else a != b):
            ctx.fail(f"update {ctx.type(1)} does not fit the cache {ctx.type(0)} (dim {k})")
    if ctx.has(2) and ctx.rank(2) != 1:
        ctx.fail(f"write_indices must be 1-D (one per batch), got {ctx.type(2)}")
    return [past]


@op("OneHot", inputs=["indices: T1", "depth: T2", "values: T3"], outputs=["output: T3"],
    types={"T1": NUMERIC, "T2": NUMERIC, "T3": ALL}, attrs={"axis": ("int", -1)}, category="movement", since=28)
def _one_hot(ctx: InferContext):
    """``values[1]`` where the new ``axis`` position equals the index (negative indices count
    from ``depth``), ``values[0]`` elsewhere; out-of-range indices give an all-off row."""
    if ctx.type(1).numel != 1:
        ctx.fail(f"depth must be a scalar, got {ctx.type(1)}")
    if ctx.type(2).numel != 2 or ctx.rank(2) != 1:
        ctx.fail(f"values must be [off_value, on_value], got {ctx.type(2)}")
    shape = ctx.shape(0)
    axis = ctx.attr("axis")
    if not -len(shape) - 1 <= axis <= len(shape):
        ctx.fail(f"axis {axis} is out of range for rank {len(shape) + 1}")
    axis = axis % (len(shape) + 1)
    depth = ctx.value(1)
    d = int(depth.reshape(-1)[0]) if depth is not None else None
    return [shape[:axis] + (d,) + shape[axis:]]


@op("NonZero", inputs=["X: T"], outputs=["Y: i64"], types={"T": ALL}, category="movement",
    flops=per_element(1), since=13)
def _non_zero(ctx: InferContext):
    """The indices of non-zero elements, ``(rank, count)``; the count depends on the data."""
    return [(ctx.rank(0), None)]


@op("Compress", inputs=["input: T", "condition: bool"], outputs=["output: T"], types={"T": ALL},
    attrs={"axis": ("int", None)}, category="movement", since=28)
def _compress(ctx: InferContext):
    """The slices along ``axis`` (or elements of the flattened input) where ``condition`` is
    true; how many depends on the data."""
    if ctx.rank(1) != 1:
        ctx.fail(f"condition must be 1-D, got {ctx.type(1)}")
    if ctx.attr("axis") is None:
        return [(None,)]
    shape = ctx.shape(0)
    axis = ctx.normalize_axis(ctx.attr("axis"), len(shape))
    return [shape[:axis] + (None,) + shape[axis + 1:]]


def _check_blocks(ctx: InferContext):
    if ctx.rank(0) != 4:
        ctx.fail(f"input must be 4-D (N, C, H, W), got {ctx.type(0)}")
    if ctx.attr("blocksize") <= 0:
        ctx.fail(f"blocksize must be positive, got {ctx.attr('blocksize')}")
    if ctx.attr("mode") not in ("DCR", "CRD"):
        ctx.fail(f"mode must be 'DCR' or 'CRD', got {ctx.attr('mode')!r}")
    return ctx.shape(0), ctx.attr("blocksize")


@op("DepthToSpace", inputs=["input: T"], outputs=["output: T"], types={"T": ANY},
    attrs={"blocksize": ("int",), "mode": ("str", "DCR")}, category="movement", since=13)
def _depth_to_space(ctx: InferContext):
    """Move blocks of channels into ``blocksize × blocksize`` spatial blocks."""
    (n, c, h, w), b = _check_blocks(ctx)
    if isinstance(c, int) and c % (b * b):
        ctx.fail(f"{c} channels are not a multiple of blocksize² = {b * b}")
    return [(n, D.floordiv(c, b * b), D.mul(h, b), D.mul(w, b))]


@op("SpaceToDepth", inputs=["input: T"], outputs=["output: T"], types={"T": ANY},
    attrs={"blocksize": ("int",), "mode": ("str", "DCR")}, category="movement", since=28)
def _space_to_depth(ctx: InferContext):
    """Move ``blocksize × blocksize`` spatial blocks into channels."""
    (n, c, h, w), b = _check_blocks(ctx)
    for d in (h, w):
        if isinstance(d, int) and d % b:
            ctx.fail(f"spatial dims {h}x{w} are not multiples of blocksize {b}")
    return [(n, D.mul(c, b * b), D.floordiv(h, b), D.floordiv(w, b))]


@op("ReverseSequence", inputs=["input: T", "sequence_lens: i64"], outputs=["Y: T"], types={"T": ANY},
    attrs={"batch_axis": ("int", 1), "time_axis": ("int", 0)}, category="movement", since=28)
def _reverse_sequence(ctx: InferContext):
    """Reverse the first ``sequence_lens[b]`` steps along ``time_axis`` of each batch entry."""
    axes = {ctx.attr("batch_axis"), ctx.attr("time_axis")}
    if axes != {0, 1}:
        ctx.fail("batch_axis and time_axis must be 0 and 1 (in either order)")
    if ctx.rank(0) < 2 or ctx.rank(1) != 1:
        ctx.fail(f"input must have rank >= 2 and sequence_lens be 1-D, got {ctx.type(0)}, {ctx.type(1)}")
    return [ctx.shape(0)]


@op("CenterCropPad", inputs=["input_data: T", "shape: Tind"], outputs=["output_data: T"],
    types={"T": ANY, "Tind": INDEX}, attrs={"axes": ("ints", None)}, category="movement", since=18)
def _center_crop_pad(ctx: InferContext):
    """Crop (centred, start rounded down) or zero-pad (extra element on the right) ``axes`` to
    ``shape``."""
    shape = ctx.shape(0)
    axes = ctx.attr("axes")
    axes = normalize_axes(ctx, axes, len(shape)) if axes is not None else list(range(len(shape)))
    target = ctx.sym(1)
    if target is None:
        out = list(shape)
        for a in axes:
            out[a] = None
        return [tuple(out)]
    target = list(target.flat)
    if len(target) != len(axes):
        ctx.fail(f"shape has {len(target)} entries for {len(axes)} axes")
    out = list(shape)
    for a, t in zip(axes, target):
        out[a] = t
    return [tuple(out)]


def _sort_flops(c: CostContext):
    # a comparison sort of n elements: about n·log2(n) comparisons
    n = c.in_numel(0)
    if isinstance(n, int):
        return n * max(1, math.ceil(math.log2(max(n, 2))))
    return n * sympy.ceiling(sympy.log(sympy.Max(n, 2), 2))


@op("Unique", inputs=["X: T"], outputs=["Y: T", "indices?: i64", "inverse_indices?: i64", "counts?: i64"],
    types={"T": ALL}, attrs={"axis": ("int", None), "sorted": ("int", 1)}, category="movement",
    flops=_sort_flops, since=11)
def _unique(ctx: InferContext):
    """The distinct elements (or slices along ``axis``), sorted or in order of first occurrence,
    with their first indices, the inverse map and the counts; how many depends on the data."""
    shape = ctx.shape(0)
    axis = ctx.attr("axis")
    if axis is None:
        return [(None,), (None,), (D.product(shape),), (None,)]
    axis = ctx.normalize_axis(axis, len(shape))
    return [shape[:axis] + (None,) + shape[axis + 1:], (None,), (shape[axis],), (None,)]
