"""Data movement: every index, start, pad and permutation drawn inside what the data allows."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ....ir.ops import ALL, ANY, INDEX, NUMERIC, get_spec
from .._context import FLOATS, GenContext, Skip
from . import recipe

__all__: list[str] = []

_BIG = 2 ** 62  # an "until the end" slice bound, as exporters write INT64_MAX


def _static_axes(v) -> list[int]:
    return [i for i, d in enumerate(v.type.shape) if isinstance(d, int)]


def _range(ctx: GenContext, *vals, extra=()) -> list[tuple[float, float]]:
    infos = [ctx.info_of(v) for v in vals if v is not None]
    lo = min([i.lo for i in infos] + list(extra))
    hi = max([i.hi for i in infos] + list(extra))
    return [(lo, hi)]


def _axis(ctx: GenContext, axis: int, rank: int) -> int:
    """``axis`` as written: positive or counted from the end."""
    return axis - rank if rank and ctx.flag() else axis


@recipe("Transpose")
def transpose(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ANY)
    r = x.type.rank
    if r >= 2 and ctx.rare():
        ctx.add(op, [x], ranges=_range(ctx, x))  # no perm: reverse the dims
        return
    perm = ctx.draw(st.permutations(list(range(r))))
    ctx.add(op, [x], {"perm": list(perm)}, ranges=_range(ctx, x))


@recipe("Concat")
def concat(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ANY, min_rank=1)
    r = x.type.rank
    axis = ctx.integer(0, r - 1)
    parts = [x]
    for _ in range(ctx.integer(1, 2)):
        if ctx.flag():
            parts.append(x)
        else:
            shape = list(x.type.shape)
            shape[axis] = ctx.dim()
            parts.append(ctx.pick([x.type.dtype.name], shape=tuple(shape)))
    ctx.add(op, parts, {"axis": _axis(ctx, axis, r)}, ranges=_range(ctx, *parts))


@recipe("Split")
def split(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ANY, min_rank=1, where=lambda v: bool(_static_axes(v)))
    axis = ctx.choice(_static_axes(x))
    d = x.type.shape[axis]
    n = ctx.integer(1, min(d, 3))
    attrs = {"axis": _axis(ctx, axis, x.type.rank)} if axis else {}
    if ctx.flag():
        cuts = sorted(ctx.draw(st.lists(st.integers(1, d - 1), min_size=n - 1, max_size=n - 1, unique=True))) \
            if n > 1 else []
        sizes = np.diff([0] + cuts + [d]).tolist()
        ctx.add(op, [x, ctx.ints(sizes)], attrs, outputs=len(sizes), ranges=_range(ctx, x) * len(sizes))
    else:
        attrs["num_outputs"] = n
        if -(-d // n) * (n - 1) >= d and n > 1:
            raise Skip(f"{d} does not split into {n} non-empty parts")
        ctx.add(op, [x], attrs, outputs=n, ranges=_range(ctx, x) * n)


@recipe("Slice")
def slice_(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ANY, min_rank=1, where=lambda v: bool(_static_axes(v)))
    axes = ctx.subset(_static_axes(x), min_size=1)
    starts, ends, steps = [], [], []
    for a in axes:
        d = x.type.shape[a]
        step = ctx.choice([1, 2, -1, -2]) if ctx.flag() else 1
        s0 = ctx.integer(0, d - 1)
        if step > 0:
            e0 = ctx.integer(s0 + 1, d)
            end = _BIG if e0 == d and ctx.flag() else (e0 - d if e0 < d and ctx.flag() else e0)
        else:
            e0 = ctx.integer(-1, s0 - 1)
            end = ctx.choice([-d - 1, -_BIG]) if e0 == -1 else (e0 - d if ctx.flag() else e0)
        starts.append(s0 - d if ctx.flag() else s0)
        ends.append(end)
        steps.append(step)
    ind = ctx.choice(sorted(INDEX, reverse=True))
    if ind == "i32":
        ends = [max(min(e, 2 ** 31 - 1), -2 ** 31) for e in ends]
    inputs = [x, ctx.ints(starts, ind), ctx.ints(ends, ind)]
    natural = axes == list(range(len(axes)))
    if not natural or ctx.flag() or any(s != 1 for s in steps):
        inputs.append(ctx.ints([_axis(ctx, a, x.type.rank) for a in axes], ind))
        if any(s != 1 for s in steps) or ctx.rare():
            inputs.append(ctx.ints(steps, ind))
    ctx.add(op, inputs, ranges=_range(ctx, x))


def _index_leaf(ctx: GenContext, shape, d: int, dtype: str | None = None):
    """Indices into a dim of size ``d``, negative ones included."""
    dt = dtype or ctx.choice(sorted(INDEX))
    return ctx.leaf(dt, shape, lo=-d, hi=d - 1)


@recipe("Gather")
def gather(ctx: GenContext, op: str) -> None:
    data = ctx.pick(ANY, min_rank=1, where=lambda v: bool(_static_axes(v)))
    axis = ctx.choice(_static_axes(data))
    d = data.type.shape[axis]
    shape = ctx.shape(max_rank=max(0, min(2, ctx.config.max_rank - data.type.rank + 1)))
    idx = _index_leaf(ctx, shape, d)
    ctx.add(op, [data, idx], {"axis": _axis(ctx, axis, data.type.rank)} if axis else {}, ranges=_range(ctx, data))


@recipe("GatherElements")
def gather_elements(ctx: GenContext, op: str) -> None:
    data = ctx.pick(ANY, min_rank=1, where=lambda v: bool(_static_axes(v)))
    axis = ctx.choice(_static_axes(data))
    shape = list(data.type.shape)
    d = shape[axis]
    shape[axis] = ctx.integer(1, ctx.config.max_dim)
    idx = _index_leaf(ctx, tuple(shape), d)
    ctx.add(op, [data, idx], {"axis": _axis(ctx, axis, data.type.rank)} if axis else {}, ranges=_range(ctx, data))


@recipe("GatherND")
def gather_nd(ctx: GenContext, op: str) -> None:
    data = ctx.pick(ANY, min_rank=1, static=True)
    r = data.type.rank
    b = ctx.integer(0, min(1, r - 1))
    k = ctx.integer(1, r - b)
    m = ctx.integer(1, 3)
    dims = data.type.shape
    rng = ctx.rng()
    lead = tuple(dims[:b])
    cols = [rng.integers(-dims[b + j], dims[b + j], size=lead + (m,)) for j in range(k)]
    idx = ctx.constant(np.stack(cols, axis=-1).astype(np.int64), pool=False)
    ctx.add(op, [data, idx], {"batch_dims": b} if b else {}, ranges=_range(ctx, data))


def _unique_rows(ctx: GenContext, dims: tuple[int, ...], m: int) -> np.ndarray:
    """``m`` distinct index tuples into ``dims`` (so an unreduced scatter is deterministic)."""
    total = int(np.prod(dims, dtype=np.int64))
    if m > total:
        raise Skip("not enough distinct indices")
    flat = ctx.rng().permutation(total)[:m]
    return np.stack(np.unravel_index(flat, dims), axis=-1).astype(np.int64) if dims else np.zeros((m, 0), np.int64)


_REDUCTIONS = ["none", "add", "max", "min", "mul"]


def _scatter_range(ctx: GenContext, data, upd, reduction: str) -> tuple[float, float]:
    """Each element is the data, or the data combined once with an update (indices are distinct)."""
    d, u = ctx.info_of(data), ctx.info_of(upd)
    if reduction == "add":
        cands = [d.lo + u.lo, d.hi + u.hi]
    elif reduction == "mul":
        cands = [a * b for a in (d.lo, d.hi) for b in (u.lo, u.hi)]
    else:
        cands = [u.lo, u.hi]
    return min([d.lo] + cands), max([d.hi] + cands)


@recipe("ScatterND")
def scatter_nd(ctx: GenContext, op: str) -> None:
    data = ctx.pick(NUMERIC, min_rank=1, static=True)
    dims = data.type.shape
    k = ctx.integer(1, len(dims))
    m = ctx.integer(1, 3)
    idx = ctx.constant(_unique_rows(ctx, dims[:k], m), pool=False)
    upd = ctx.pick([data.type.dtype.name], shape=(m,) + tuple(dims[k:]))
    red = ctx.choice(_REDUCTIONS)
    ctx.add(op, [data, idx, upd], {"reduction": red} if red != "none" else {},
            ranges=[_scatter_range(ctx, data, upd, red)])


@recipe("ScatterElements")
def scatter_elements(ctx: GenContext, op: str) -> None:
    data = ctx.pick(NUMERIC, min_rank=1, static=True)
    dims = data.type.shape
    axis = ctx.integer(0, len(dims) - 1)
    m = ctx.integer(1, dims[axis])
    shape = list(dims)
    shape[axis] = m
    # along the axis, distinct targets per position: a random permutation's first m entries
    order = np.argsort(ctx.rng().random(tuple(dims)), axis=axis)
    idx = np.take(order, np.arange(m), axis=axis).astype(np.int64)
    if ctx.flag():
        idx = idx - dims[axis] * (ctx.rng().random(idx.shape) < 0.3)  # negative indices count from the end
    upd = ctx.pick([data.type.dtype.name], shape=tuple(shape))
    red = ctx.choice(_REDUCTIONS)
    attrs = {"axis": _axis(ctx, axis, len(dims))} if axis else {}
    if red != "none":
        attrs["reduction"] = red
    ctx.add(op, [data, ctx.constant(idx, pool=False), upd], attrs, ranges=[_scatter_range(ctx, data, upd, red)])


@recipe("TensorScatter")
def tensor_scatter(ctx: GenContext, op: str) -> None:
    """A KV-cache write: an update of u steps into a cache of S along ``axis`` at per-batch offsets."""
    cache = ctx.pick(ANY, min_rank=2, static=True)
    dims = cache.type.shape
    axis = ctx.integer(1, len(dims) - 1)
    s = dims[axis]
    u = ctx.integer(1, s)
    shape = list(dims)
    shape[axis] = u
    upd = ctx.pick([cache.type.dtype.name], shape=tuple(shape))
    circular = ctx.rare()
    inputs = [cache, upd]
    if ctx.flag() or circular:
        hi = s - 1 if circular else s - u
        inputs.append(ctx.leaf("i64", (dims[0],), lo=0, hi=hi))
    attrs = {}
    if axis != len(dims) - 2:
        attrs["axis"] = _axis(ctx, axis, len(dims))
    if circular:
        attrs["mode"] = "circular"
    ctx.add(op, inputs, attrs, ranges=_range(ctx, cache, upd))


@recipe("Tile")
def tile(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ANY)
    reps = [ctx.integer(1, 2) for _ in range(x.type.rank)]
    ctx.add(op, [x, ctx.ints(reps)], ranges=_range(ctx, x))


@recipe("Expand")
def expand(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ANY)
    target = [ctx.integer(1, ctx.config.max_dim) if d == 1 and ctx.flag() else (d if isinstance(d, int) else 1)
              for d in x.type.shape]
    if x.type.rank < ctx.config.max_rank and ctx.flag():
        target = [ctx.integer(1, ctx.config.max_dim)] + target
    if ctx.rare():
        target = target[ctx.integer(0, len(target)):]  # a shorter shape broadcasts too
    ctx.add(op, [x, ctx.ints(target)], ranges=_range(ctx, x))


@recipe("Pad")
def pad(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ANY, min_rank=1, where=lambda v: bool(_static_axes(v)))
    mode = ctx.choice(["constant", "reflect", "edge", "wrap"])
    axes = ctx.subset(_static_axes(x), min_size=1)
    begin, end = [], []
    for a in axes:
        d = x.type.shape[a]
        hi = {"reflect": d - 1, "wrap": d}.get(mode, 2)
        lo = -(d - 1) if mode == "constant" and ctx.rare() else 0
        begin.append(ctx.integer(lo, max(lo, min(hi, 2))))
        lo_end = max(lo, -(d + begin[-1]))   # negative pads may crop the axis to nothing, not below
        end.append(ctx.integer(lo_end, max(lo_end, min(hi, 2))))
    inputs = [x, ctx.ints(begin + end), None]
    extra = []
    if mode == "constant":
        extra = [0.0]
        if ctx.flag():
            lo, hi = ctx.leaf_range(x.type.dtype.name)
            v = ctx.random_array(x.type.dtype.name, (), lo, hi)
            inputs[2] = ctx.constant(v, pool=False)
            extra = [float(np.asarray(v, dtype=np.float64))]
    if axes != list(range(x.type.rank)) or ctx.rare():
        inputs.append(ctx.ints([_axis(ctx, a, x.type.rank) for a in axes], ctx.choice(sorted(INDEX))))
    ctx.add(op, inputs, {"mode": mode} if mode != "constant" else {}, ranges=_range(ctx, x, extra=extra))


@recipe("Trilu")
def trilu(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ALL, min_rank=2)
    inputs = [x]
    if ctx.flag():
        inputs.append(ctx.ints(ctx.integer(-3, 3)))
    ctx.add(op, inputs, {"upper": 0} if ctx.flag() else {}, ranges=_range(ctx, x, extra=[0.0]))


@recipe("DepthToSpace", "SpaceToDepth")
def depth_space(ctx: GenContext, op: str) -> None:
    b = ctx.integer(1, 2)
    if op == "DepthToSpace":
        def ok(v):
            c = v.type.shape[1]
            return isinstance(c, int) and c % (b * b) == 0
        shape = (ctx.dim(), b * b * ctx.integer(1, 2), ctx.dim(), ctx.dim())
    else:
        def ok(v):
            h, w = v.type.shape[2:]
            return isinstance(h, int) and isinstance(w, int) and h % b == 0 and w % b == 0
        shape = (ctx.dim(), ctx.dim(), b * ctx.integer(1, 2), b * ctx.integer(1, 2))
    cands = ctx.candidates(ANY, min_rank=4, max_rank=4, where=ok)
    x = ctx.choice(cands) if cands and ctx.flag() else ctx.leaf(ctx.dtype(ANY), shape)
    attrs = {"blocksize": b}
    if ctx.flag():
        attrs["mode"] = "CRD"
    ctx.add(op, [x], attrs, ranges=_range(ctx, x))


@recipe("ReverseSequence")
def reverse_sequence(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ANY, min_rank=2, where=lambda v: all(isinstance(d, int) for d in v.type.shape[:2]))
    batch_axis = ctx.choice([1, 0])
    t, b = x.type.shape[1 - batch_axis], x.type.shape[batch_axis]
    lens = ctx.rng().integers(1, t + 1, size=b).astype(np.int64)
    attrs = {} if batch_axis == 1 else {"batch_axis": 0, "time_axis": 1}
    ctx.add(op, [x, ctx.constant(lens, pool=False)], attrs, ranges=_range(ctx, x))


@recipe("CenterCropPad")
def center_crop_pad(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ANY, min_rank=1, where=lambda v: bool(_static_axes(v)))
    axes = ctx.subset(_static_axes(x), min_size=1)
    target = [ctx.integer(1, ctx.config.max_dim + 2) for _ in axes]
    attrs = {}
    if axes != list(range(x.type.rank)):
        attrs["axes"] = [_axis(ctx, a, x.type.rank) for a in axes]
    ctx.add(op, [x, ctx.ints(target, ctx.choice(sorted(INDEX)))], attrs, ranges=_range(ctx, x, extra=[0.0]))


@recipe("OneHot")
def one_hot(ctx: GenContext, op: str) -> None:
    spec = get_spec(op)
    depth_n = ctx.integer(1, ctx.config.max_dim)
    # float indices are allowed, but runtimes truncate them differently: integers only
    # rank >= 1: ONNX's shape inference rejects scalar indices (the spec and kernel accept them)
    idx = ctx.pick(spec.allowed_dtypes("T1") - FLOATS, min_rank=1, max_rank=ctx.config.max_rank - 1, exact=True,
                   within=(-depth_n - 1, depth_n))
    depth = ctx.scalar(depth_n, ctx.dtype(spec.allowed_dtypes("T2") - FLOATS))
    vdt = ctx.dtype(spec.allowed_dtypes("T3"))
    lo, hi = ctx.leaf_range(vdt)
    values = ctx.constant(ctx.random_array(vdt, (2,), lo, hi), pool=False)
    r = idx.type.rank + 1
    axis = ctx.integer(-r, r - 1)
    i = ctx.info_of(values)
    ctx.add(op, [idx, depth, values], {"axis": axis} if axis != -1 else {}, ranges=[(i.lo, i.hi)])


@recipe("NonZero")
def non_zero(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ALL, exact=True, static=True)
    hi = max(x.type.shape, default=1)
    ctx.add(op, [x], ranges=[(0, hi)], dynamic=True)


@recipe("Compress")
def compress(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ALL, min_rank=1, static=True)
    if ctx.flag():
        axis = ctx.integer(0, x.type.rank - 1)
        n = x.type.shape[axis]
        attrs = {"axis": _axis(ctx, axis, x.type.rank)}
    else:
        n = int(np.prod(x.type.shape))
        attrs = {}
    length = ctx.integer(1, n)
    cond = ctx.constant(ctx.rng().random(length) < 0.6, pool=False)
    ctx.add(op, [x, cond], attrs, ranges=_range(ctx, x), dynamic=True)


@recipe("Unique")
def unique(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ALL, min_rank=1, exact=True, static=True)
    attrs = {}
    if ctx.flag():
        attrs["axis"] = ctx.integer(-x.type.rank, x.type.rank - 1)
    if ctx.flag():
        attrs["sorted"] = 0
    outputs = ctx.integer(1, 4)
    n = int(np.prod(x.type.shape))
    i = ctx.info_of(x)
    ctx.add(op, [x], attrs, outputs=outputs, ranges=[(i.lo, i.hi), (0, n), (0, n), (1, n)], dynamic=True)
