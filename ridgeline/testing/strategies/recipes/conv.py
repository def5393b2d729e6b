"""Convolutions and pooling: (N, C, D1, ...) inputs with windows that fit (the spec checks the
geometry; the recipe draws kernels, strides, dilations and pads that usually do)."""

from __future__ import annotations

import math

from ....ir.ops import FLOAT
from .._context import GenContext, dtype_limits
from . import recipe

__all__: list[str] = []


def _input(ctx: GenContext, dtypes, *, channels: int | None = None):
    n = ctx.integer(1, 2)
    c = channels or ctx.integer(1, 3)
    shape = (ctx.dim(), c) + tuple(ctx.integer(1, ctx.config.max_dim + 2) for _ in range(n))
    return ctx.pick(dtypes, min_rank=3, max_rank=4, static=True,
                    where=lambda v: channels is None or v.type.shape[1] % channels == 0,
                    fresh_shape=lambda: shape)


def _window(ctx: GenContext, spatial: tuple, *, dilations: bool = True, pool: bool = False) -> tuple[dict, tuple]:
    """Window attributes and the kernel shape, for the spatial dims ``spatial``."""
    n = len(spatial)
    kernel = tuple(ctx.integer(1, min(3, d + 1)) for d in spatial)
    attrs: dict = {}
    if ctx.flag():
        attrs["strides"] = [ctx.integer(1, 2) for _ in range(n)]
    if dilations and ctx.rare():
        attrs["dilations"] = [ctx.integer(1, 2) for _ in range(n)]
    auto = ctx.choice(["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]) if ctx.rare() else "NOTSET"
    if auto != "NOTSET":
        attrs["auto_pad"] = auto
    elif ctx.flag():
        attrs["pads"] = [ctx.integer(0, k - 1) for k in kernel] * 2 if not ctx.flag() else \
            [ctx.integer(0, k - 1) for k in kernel + kernel]
    if pool and auto == "NOTSET" and ctx.rare():
        attrs["ceil_mode"] = 1
    return attrs, kernel


@recipe("Conv", "ConvInteger")
def conv(ctx: GenContext, op: str) -> None:
    integer = op == "ConvInteger"
    g = ctx.integer(1, 2)
    x = _input(ctx, {"u8", "i8"} if integer else FLOAT, channels=g)
    c = x.type.shape[1]
    attrs, kernel = _window(ctx, x.type.shape[2:])
    m = g * ctx.integer(1, 2)
    if g > 1:
        attrs["group"] = g
    if ctx.rare():
        attrs["kernel_shape"] = list(kernel)
    wdt = ctx.dtype({"u8", "i8"}) if integer else x.type.dtype.name
    w = ctx.pick([wdt], shape=(m, c // g) + kernel)
    inputs = [x, w]
    count = (c // g) * math.prod(kernel)
    if integer:
        if ctx.flag():
            lo, hi = dtype_limits(x.type.dtype.name)
            inputs.append(ctx.scalar(ctx.integer(max(int(lo), -4), min(int(hi), 4)), x.type.dtype.name))
        bound = count * 256 * 256
    else:
        bound = count * ctx.info_of(x).magnitude * ctx.info_of(w).magnitude
        if ctx.flag():
            b = ctx.pick([wdt], shape=(m,))
            inputs.append(b)
            bound += ctx.info_of(b).magnitude
    ctx.add(op, inputs, attrs, ranges=[(-bound, bound)])


@recipe("ConvTranspose")
def conv_transpose(ctx: GenContext, op: str) -> None:
    g = ctx.integer(1, 2)
    x = _input(ctx, FLOAT, channels=g)
    c = x.type.shape[1]
    n = x.type.rank - 2
    kernel = tuple(ctx.integer(1, 3) for _ in range(n))
    attrs: dict = {}
    strides = [ctx.integer(1, 2) for _ in range(n)] if ctx.flag() else [1] * n
    if strides != [1] * n:
        attrs["strides"] = strides
        if ctx.rare():
            attrs["output_padding"] = [ctx.integer(0, s - 1) for s in strides]
    if ctx.rare():
        attrs["dilations"] = [ctx.integer(1, 2) for _ in range(n)]
    if ctx.flag():
        attrs["pads"] = [ctx.integer(0, k - 1) for k in kernel + kernel]
    elif ctx.rare():
        attrs["auto_pad"] = ctx.choice(["SAME_UPPER", "SAME_LOWER"])
    if g > 1:
        attrs["group"] = g
    mg = ctx.integer(1, 2)
    w = ctx.pick([x.type.dtype.name], shape=(c, mg) + kernel)
    inputs = [x, w]
    bound = c * math.prod(kernel) * ctx.info_of(x).magnitude * ctx.info_of(w).magnitude
    if ctx.flag():
        b = ctx.pick([x.type.dtype.name], shape=(mg * g,))
        inputs.append(b)
        bound += ctx.info_of(b).magnitude
    ctx.add(op, inputs, attrs, ranges=[(-bound, bound)])


@recipe("AveragePool", "MaxPool", "LpPool")
def pool(ctx: GenContext, op: str) -> None:
    x = _input(ctx, FLOAT | ({"u8", "i8"} if op == "MaxPool" else set()))
    attrs, kernel = _window(ctx, x.type.shape[2:], dilations=op != "AveragePool", pool=True)
    attrs["kernel_shape"] = list(kernel)
    i = ctx.info_of(x)
    outputs = 1
    if op == "AveragePool":
        if "pads" in attrs and ctx.flag():
            attrs["count_include_pad"] = 1
        ranges = [(min(i.lo, 0.0), max(i.hi, 0.0))]
    elif op == "MaxPool":
        ranges = [(i.lo, i.hi), (0, math.prod(ctx.sizes(x.type.shape)))]
        if ctx.rare():
            outputs = 2
            if ctx.flag():
                attrs["storage_order"] = 1
    else:
        p = ctx.choice([2, 1])
        if p != 2:
            attrs["p"] = p
        ranges = [(0.0, math.prod(kernel) * i.magnitude)]
    ctx.add(op, [x], attrs, outputs=outputs, ranges=ranges)


@recipe("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
def global_pool(ctx: GenContext, op: str) -> None:
    x = _input(ctx, FLOAT)
    i = ctx.info_of(x)
    attrs = {}
    if op == "GlobalLpPool":
        if ctx.flag():
            attrs["p"] = 1
        ranges = [(0.0, math.prod(ctx.sizes(x.type.shape[2:])) * i.magnitude)]
    else:
        ranges = [(i.lo, i.hi)]
    ctx.add(op, [x], attrs, ranges=ranges)
