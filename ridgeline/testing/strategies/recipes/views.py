"""View ops: Reshape (element count kept, symbolic dims copied with 0, or the exported-model form
``Reshape(x, Concat(Shape(x)[:k], [...]))``), Flatten, Squeeze, Unsqueeze, Identity, Dropout,
BitCast."""

from __future__ import annotations

import numpy as np

from ....ir.dtypes import DTYPES
from ....ir.ops import ANY, FLOAT
from .._context import FLOATS, GenContext, Skip, dtype_limits
from . import recipe

__all__ = ["factor_shape"]


def _primes(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return out


def factor_shape(ctx: GenContext, numel: int, rank: int) -> list[int]:
    """A random shape of ``rank`` dims whose product is ``numel`` (each prime goes to a drawn dim)."""
    if rank == 0:
        if numel != 1:
            raise Skip("a scalar holds one element")
        return []
    dims = [1] * rank
    for p in _primes(numel):
        dims[ctx.integer(0, rank - 1)] *= p
    return dims


def _keep_range(ctx: GenContext, x):
    i = ctx.info_of(x)
    return [(i.lo, i.hi)]


@recipe("Reshape")
def reshape(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ANY)
    shape = tuple(x.type.shape)
    sym = [i for i, d in enumerate(shape) if not isinstance(d, int)]
    keep = sym[-1] + 1 if sym else 0          # symbolic dims are copied (0) from the input
    if keep and ctx.rare():
        _dynamic_reshape(ctx, x, keep)
        return
    rest = int(np.prod([d for d in shape[keep:]], dtype=np.int64)) if shape[keep:] else 1
    rank = ctx.integer(0 if not keep and rest == 1 else 1, max(1, ctx.config.max_rank - keep))
    target = [0] * keep + factor_shape(ctx, rest, rank)
    if target and ctx.rare():
        target[ctx.integer(keep, len(target) - 1) if len(target) > keep else 0] = -1
    if not keep and ctx.rare():  # 0 copies the input dim at the same index
        for i, d in enumerate(target):
            if i < len(shape) and d == shape[i] and d > 0:
                target[i] = 0
                break
    ctx.add(op, [x, ctx.ints(target)], ranges=_keep_range(ctx, x))


def _dynamic_reshape(ctx: GenContext, x, keep: int) -> None:
    """``Reshape(x, Concat(Shape(x, end=k), [-1]))``: how exporters keep batch and sequence dims."""
    head = ctx.add("Shape", [x], {"end": keep}, ranges=[(0, 1 << 20)], pool=False).outputs[0]
    tail = ctx.ints([-1])
    shape = ctx.add("Concat", [head, tail], {"axis": 0}, ranges=[(-1, 1 << 20)], pool=False).outputs[0]
    ctx.add("Reshape", [x, shape], ranges=_keep_range(ctx, x))


@recipe("Flatten")
def flatten(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ANY)
    r = x.type.rank
    axis = ctx.integer(-r, r) if r else 0
    ctx.add(op, [x], {"axis": axis} if axis != 1 else {}, ranges=_keep_range(ctx, x))


@recipe("Squeeze")
def squeeze(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ANY, min_rank=1, where=lambda v: 1 in v.type.shape)
    ones = [i for i, d in enumerate(x.type.shape) if d == 1]
    if not ones:
        raise Skip("no size-1 dim")
    r = x.type.rank
    if ctx.rare() and x.type.is_static:
        ctx.add(op, [x], ranges=_keep_range(ctx, x))
        return
    axes = ctx.subset(ones, min_size=1)
    axes = [a - r if ctx.flag() else a for a in axes]
    ctx.add(op, [x, ctx.ints(axes)], ranges=_keep_range(ctx, x))


@recipe("Unsqueeze")
def unsqueeze(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ANY, max_rank=ctx.config.max_rank - 1)
    out_rank = x.type.rank + ctx.integer(1, 2)
    axes = ctx.subset(list(range(out_rank)), min_size=1)[:out_rank - x.type.rank]
    if len(axes) != out_rank - x.type.rank:
        axes = list(range(out_rank - x.type.rank))
    axes = [a - out_rank if ctx.flag() else a for a in axes]
    ctx.add(op, [x, ctx.ints(axes)], ranges=_keep_range(ctx, x))


@recipe("Identity")
def identity(ctx: GenContext, op: str) -> None:
    x = ctx.pick(ANY, allow_dynamic=True)
    ctx.add(op, [x], ranges=_keep_range(ctx, x))


@recipe("Dropout")
def dropout(ctx: GenContext, op: str) -> None:
    """Inference-mode dropout: optional ratio and a false training_mode; sometimes the mask too."""
    x = ctx.pick(FLOAT)
    inputs = [x]
    if ctx.flag():
        inputs.append(ctx.scalar(ctx.choice([0.5, 0.0, 0.1]), x.type.dtype.name))
        if ctx.flag():
            inputs.append(ctx.constant(np.array(False), pool=False))
    outputs = 2 if ctx.rare() else 1
    i = ctx.info_of(x)
    ctx.add(op, inputs, outputs=outputs, ranges=[(i.lo, i.hi), (0, 1)])


# same-width reinterpretations that keep values finite: integers only (float bit patterns read as
# another float type can be NaN)
_SAME_WIDTH = {8: ("i8", "u8"), 16: ("i16", "u16"), 32: ("i32", "u32"), 64: ("i64", "u64")}


@recipe("BitCast")
def bit_cast(ctx: GenContext, op: str) -> None:
    x = ctx.pick([d for d in ANY if DTYPES[d].bits in _SAME_WIDTH and DTYPES[d].kind != "bool"], exact=True)
    src = x.type.dtype
    targets = [t for t in _SAME_WIDTH[src.bits] if t != src.name]
    to = ctx.choice(targets)
    i = ctx.info_of(x)
    lo, hi = dtype_limits(to)
    if src.name not in FLOATS and i.within(lo, hi) and i.lo >= 0:
        rng = (i.lo, i.hi)  # a non-negative integer reads the same in the other signedness
    else:
        rng = (lo, hi)
    ctx.add(op, [x], {"to": to}, ranges=[rng])
