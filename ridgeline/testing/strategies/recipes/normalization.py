"""Normalizations: parameters shaped like what they scale, variances kept positive."""

from __future__ import annotations

import math

from ....ir.ops import FLOAT, get_spec
from .._context import GenContext
from . import recipe

__all__: list[str] = []

_EPS = [1e-5, 1e-3, 1e-6]


def _norm_bound(ctx: GenContext, n: int, scale=None, bias=None) -> tuple[float, float]:
    """A normalized value is at most sqrt(n) in magnitude; then scale and shift."""
    m = math.sqrt(max(n, 1)) * (ctx.info_of(scale).magnitude if scale is not None else 1.0)
    if bias is not None:
        m += ctx.info_of(bias).magnitude
    return -m, m


def _param(ctx: GenContext, dtype: str, dims: tuple, *, within=None):
    """A per-channel parameter of the normalized dims, sometimes with leading 1s (exporters
    write [1, 1, C])."""
    if ctx.rare() and all(isinstance(d, int) for d in dims):
        dims = (1,) * ctx.integer(1, 2) + tuple(dims)
    return ctx.pick([dtype], shape=tuple(dims), within=within)


def _trailing_input(ctx: GenContext):
    """(x, axis, the normalized dims): mostly the last dim alone."""
    x = ctx.pick(FLOAT, min_rank=1)
    axis = ctx.integer(0, x.type.rank - 1) if ctx.rare() else x.type.rank - 1
    return x, axis, tuple(x.type.shape[axis:])


def _axis_eps(ctx: GenContext, axis: int, r: int) -> tuple[dict, float]:
    """The axis and epsilon attributes, defaults sometimes written out and sometimes left off."""
    attrs = {}
    if axis != r - 1:
        attrs["axis"] = axis - r if ctx.flag() else axis
    eps = ctx.choice(_EPS)
    if eps != 1e-5:
        attrs["epsilon"] = eps
    return attrs, eps


@recipe("LayerNormalization")
def layer_norm(ctx: GenContext, op: str) -> None:
    x, axis, norm = _trailing_input(ctx)
    dt = x.type.dtype.name
    scale = _param(ctx, dt, norm)
    bias = _param(ctx, dt, norm) if ctx.flag() else None
    attrs, eps = _axis_eps(ctx, axis, x.type.rank)
    n = math.prod(ctx.sizes(norm))
    i = ctx.info_of(x)
    outputs = 3 if ctx.rare() else 1
    ranges = [_norm_bound(ctx, n, scale, bias), (i.lo, i.hi), (0.0, 1.0 / math.sqrt(eps))]
    ctx.add(op, [x, scale, bias], attrs, outputs=outputs, ranges=ranges)


@recipe("RMSNormalization")
def rms_norm(ctx: GenContext, op: str) -> None:
    x, axis, norm = _trailing_input(ctx)
    scale = _param(ctx, ctx.dtype(get_spec(op).allowed_dtypes("V")), norm)
    attrs, _ = _axis_eps(ctx, axis, x.type.rank)
    n = math.prod(ctx.sizes(norm))
    ctx.add(op, [x, scale], attrs, ranges=[_norm_bound(ctx, n, scale)])


@recipe("LpNormalization")
def lp_norm(ctx: GenContext, op: str) -> None:
    # exact input: along a dim of size 1 the result is sign(x), discontinuous at 0
    x = ctx.pick(FLOAT, min_rank=1, exact=True)
    r = x.type.rank
    axis = ctx.integer(-r, r - 1)
    attrs = {"axis": axis} if axis != -1 else {}
    if ctx.flag():
        attrs["p"] = 1
    ctx.add(op, [x], attrs, ranges=[(-1.0, 1.0)])


@recipe("MeanVarianceNormalization")
def mvn(ctx: GenContext, op: str) -> None:
    # exact input: there is no epsilon under the square root, so a near-constant slice amplifies
    # any rounding upstream without bound
    x = ctx.pick(FLOAT, min_rank=1, exact=True)
    r = x.type.rank
    axes = ctx.subset(list(range(r)), min_size=1)
    attrs = {} if tuple(axes) == (0, 2, 3) else {"axes": [a - r if ctx.flag() else a for a in axes]}
    n = math.prod(ctx.sizes([x.type.shape[a] for a in axes]))
    ctx.add(op, [x], attrs, ranges=[_norm_bound(ctx, n)])


def _nc(ctx: GenContext, min_rank: int, channels: int | None = None):
    """An (N, C, D1, ...) input with a static C."""
    def ok(v):
        c = v.type.shape[1]
        return isinstance(c, int) and (channels is None or c % channels == 0)
    return ctx.pick(FLOAT, min_rank=min_rank, where=ok,
                    shape=None if ctx.flag() else (ctx.dim(), (channels or 1) * ctx.integer(1, 3))
                    + tuple(ctx.dim() for _ in range(ctx.integer(min_rank - 2, 2))))


@recipe("InstanceNormalization")
def instance_norm(ctx: GenContext, op: str) -> None:
    x = _nc(ctx, 3)
    c = x.type.shape[1]
    dt = x.type.dtype.name
    scale, bias = ctx.pick([dt], shape=(c,)), ctx.pick([dt], shape=(c,))
    n = math.prod(ctx.sizes(x.type.shape[2:]))
    eps = ctx.choice(_EPS)
    ctx.add(op, [x, scale, bias], {"epsilon": eps} if eps != 1e-5 else {}, ranges=[_norm_bound(ctx, n, scale, bias)])


@recipe("GroupNormalization")
def group_norm(ctx: GenContext, op: str) -> None:
    g = ctx.integer(1, 3)
    x = _nc(ctx, 3, channels=g)
    c = x.type.shape[1]
    dt = x.type.dtype.name
    scale, bias = ctx.pick([dt], shape=(c,)), ctx.pick([dt], shape=(c,))
    n = (c // g) * math.prod(ctx.sizes(x.type.shape[2:]))
    attrs = {"num_groups": g}
    eps = ctx.choice(_EPS)
    if eps != 1e-5:
        attrs["epsilon"] = eps
    ctx.add(op, [x, scale, bias], attrs, ranges=[_norm_bound(ctx, n, scale, bias)])


@recipe("BatchNormalization")
def batch_norm(ctx: GenContext, op: str) -> None:
    x = _nc(ctx, 2)
    c = x.type.shape[1]
    dt = x.type.dtype.name
    scale, bias, mean = (ctx.pick([dt], shape=(c,)) for _ in range(3))
    var = ctx.pick([dt], shape=(c,), within=(0.25, 4.0))
    eps = ctx.choice(_EPS)
    m = (ctx.info_of(x).magnitude + ctx.info_of(mean).magnitude) / math.sqrt(ctx.info_of(var).lo)
    m = m * ctx.info_of(scale).magnitude + ctx.info_of(bias).magnitude
    ctx.add(op, [x, scale, bias, mean, var], {"epsilon": eps} if eps != 1e-5 else {}, ranges=[(-m, m)])
