"""Attention (4-D and packed 3-D, grouped-query, boolean and additive masks, causal, KV cache,
softcap), linear attention and the causal convolution of hybrid models."""

from __future__ import annotations

import numpy as np

from ....ir.ops import FLOAT
from .._context import GenContext
from . import recipe

__all__ = ["attention_mask"]


def attention_mask(ctx: GenContext, dtype: str, sq, total: int):
    """A mask that leaves every query row at least one key (a fully masked row has no softmax):
    boolean (column 0 always true) or additive in [-3, 0], broadcast over batch and heads."""
    shape = ctx.choice([(sq, total), (1, 1, sq, total), (1, sq, total)])
    if ctx.flag():
        if all(isinstance(d, int) for d in shape) and ctx.flag():
            data = ctx.rng().random(shape) < 0.6
            data[..., 0] = True
            return ctx.constant(data, pool=False)
        return ctx.leaf("bool", shape, kind="rowmask")
    return ctx.leaf(dtype, shape, lo=-3.0, hi=0.0)


@recipe("Attention")
def attention(ctx: GenContext, op: str) -> None:
    dt = ctx.dtype(FLOAT)
    b, sq = ctx.dim(), ctx.dim()
    skv = ctx.integer(1, ctx.config.max_dim)
    hkv = ctx.integer(1, 2)
    hq = hkv * ctx.integer(1, 2)
    d = ctx.integer(1, 4)
    dv = d if ctx.flag() else ctx.integer(1, 4)
    attrs: dict = {}
    if ctx.rare():  # packed (B, S, H·D) inputs
        q = ctx.pick([dt], shape=(b, sq, hq * d))
        k = ctx.pick([dt], shape=(b, skv, hkv * d))
        v = ctx.pick([dt], shape=(b, skv, hkv * dv))
        attrs.update(q_num_heads=hq, kv_num_heads=hkv)
    else:
        q = ctx.pick([dt], shape=(b, hq, sq, d))
        k = ctx.pick([dt], shape=(b, hkv, skv, d))
        v = ctx.pick([dt], shape=(b, hkv, skv, dv))
    inputs = [q, k, v, None, None, None]
    past = ctx.integer(1, 3) if ctx.rare() else 0
    if past:
        inputs[4] = ctx.leaf(dt, (b, hkv, past, d))
        inputs[5] = ctx.leaf(dt, (b, hkv, past, dv))
    total = past + skv
    if ctx.flag():
        inputs[3] = attention_mask(ctx, dt, sq, total)
    if ctx.flag():
        attrs["is_causal"] = 1
    scale = ctx.choice([None, 0.5, 0.125, 1.0])
    if scale is not None:
        attrs["scale"] = scale
    if ctx.rare():
        attrs["softcap"] = ctx.choice([2.0, 5.0])
    vals = [v] + ([inputs[5]] if past else [])
    lo = min(ctx.info_of(x).lo for x in vals)
    hi = max(ctx.info_of(x).hi for x in vals)
    ranges = [(lo, hi)]
    outputs = 1
    if past and ctx.flag():
        outputs = 3
        for new, old in ((k, inputs[4]), (v, inputs[5])):
            a, c = ctx.info_of(new), ctx.info_of(old)
            ranges.append((min(a.lo, c.lo), max(a.hi, c.hi)))
    ctx.add(op, inputs, attrs, outputs=outputs, ranges=ranges)


@recipe("LinearAttention")
def linear_attention(ctx: GenContext, op: str) -> None:
    dt = ctx.dtype(FLOAT)
    b, t = ctx.dim(static=True), ctx.integer(1, 3)
    hkv = ctx.integer(1, 2)
    hq = hkv * ctx.integer(1, 2)
    dk, dv = ctx.integer(1, 3), ctx.integer(1, 3)
    rule = ctx.choice(["linear", "gated", "delta", "gated_delta"])
    q = ctx.pick([dt], shape=(b, t, hq * dk))
    k = ctx.leaf(dt, (b, t, hkv * dk), lo=-0.5, hi=0.5)  # small keys keep the delta rule contracting
    v = ctx.pick([dt], shape=(b, t, hkv * dv))
    inputs = [q, k, v, None, None, None]
    ms = 0.0
    if ctx.flag():
        inputs[3] = ctx.leaf(dt, (b, hkv, dk, dv))
        ms = ctx.info_of(inputs[3]).magnitude
    if rule in ("gated", "gated_delta"):
        inputs[4] = ctx.leaf(dt, (b, t, hkv * (dk if ctx.flag() else 1)), lo=-1.0, hi=0.0)  # decay = exp(g) <= 1
    mb = 0.0
    if rule in ("delta", "gated_delta"):
        inputs[5] = ctx.leaf(dt, (b, t, ctx.choice([hkv, 1])), lo=0.0, hi=1.0)
        mb = 1.0
    attrs = {"q_num_heads": hq, "kv_num_heads": hkv}
    if rule != "gated_delta":
        attrs["update_rule"] = rule
    scale = ctx.choice([0.0, 0.5])
    if scale:
        attrs["scale"] = scale
    mk, mv, mq = ctx.info_of(k).magnitude, ctx.info_of(v).magnitude, ctx.info_of(q).magnitude
    for _ in range(t):  # a crude bound on the state, step by step
        vp = mb * (mv + dk * mk * ms) if mb else mv
        ms = ms + dk * mk * vp
    s = scale or 1.0 / np.sqrt(dk)
    out = s * dk * mq * ms
    ctx.add(op, inputs, attrs, ranges=[(-out, out), (-ms, ms)])


@recipe("CausalConvWithState")
def causal_conv(ctx: GenContext, op: str) -> None:
    dt = ctx.dtype(FLOAT)
    b, c, length = ctx.dim(), ctx.integer(1, 3), ctx.dim()
    k = ctx.integer(2, 4)  # k = 1 would carry an empty state
    x = ctx.pick([dt], shape=(b, c, length))
    w = ctx.pick([dt], shape=(c, 1, k))
    inputs = [x, w, None, None]
    mb = 0.0
    if ctx.flag():
        inputs[2] = ctx.pick([dt], shape=(c,))
        mb = ctx.info_of(inputs[2]).magnitude
    srcs = [x]
    if ctx.flag():
        inputs[3] = ctx.leaf(dt, (b, c, k - 1))
        srcs.append(inputs[3])
    act = ctx.choice(["none", "silu", "swish"])
    mx = max(ctx.info_of(s).magnitude for s in srcs)
    m = k * mx * ctx.info_of(w).magnitude + mb
    lo = min([0.0] + [ctx.info_of(s).lo for s in srcs])
    hi = max([0.0] + [ctx.info_of(s).hi for s in srcs])
    ctx.add(op, inputs, {"activation": act} if act != "none" else {}, ranges=[(-m, m), (lo, hi)])
