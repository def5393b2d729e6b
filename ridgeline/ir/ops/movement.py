"""Data-movement ops: they copy or select elements without arithmetic (Transpose, Concat, Split,
Slice, Gather, GatherElements, GatherND, Expand, Tile, Pad, Trilu).

Bytes are what a kernel must read and write: a Gather reads only the rows it selects (an
embedding lookup does not touch the whole table), a Slice only the slice.
"""

from __future__ import annotations

import numpy as np

from .. import dims as D
from ._util import broadcast, normalize_axes, static_length
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
        else:
            sizes = [D.floordiv(dim, n)] * n
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
    if step == 1 and isinstance(start, int) and start < 0 and isinstance(end, int) and end >= _INT_MAX // 2:
        return -start  # the last |start| elements (assumes dim >= |start|)
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
    axis = ctx.normalize_axis(ctx.attr("axis"), len(data))
    s, iv = ctx.sym(0), ctx.value(1)
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
    return [tuple(out)]


@op("Trilu", inputs=["input: T", "k?: i64"], outputs=["output: T"], types={"T": ALL},
    attrs={"upper": ("int", 1)}, category="movement", since=14)
def _trilu(ctx: InferContext):
    """Keep the upper (or lower) triangle of the last two dims, offset by diagonal ``k``."""
    if ctx.rank(0) < 2:
        ctx.fail("input must have rank >= 2")
    return [ctx.shape(0)]
