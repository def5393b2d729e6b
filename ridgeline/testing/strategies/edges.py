"""Idioms at the values that break compilers: integer division and modulo of negative operands,
products that wrap, normalizations of near-constant rows with any epsilon, softmax behind −inf,
−1e4 and ``finfo.min`` masks (causal, query length ≠ key length), permutations of equal-size axes,
size-1 axes in every broadcast position, per-axis quantized constant weights feeding MatMul and
Conv, and NaN/±inf inputs to ops that define them.

The general generator keeps values finite, small and well conditioned so that any correct pass
agrees with the reference; these idioms deliberately leave that comfort zone, each in a way whose
exact answer is still defined (integer wrap-around is, in two's complement; a masked softmax row
that sees a key is), so a pass that mishandles the edge is wrong, not unlucky.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ...ir import Value
from ...ir.dtypes import DTYPES
from ._context import GenContext, Skip
from .idioms import _c, _op, idiom, sdpa

__all__ = ["EPSILONS", "MASK_FILLS", "EDGE_IDIOMS"]

#: the idioms of this module: in ``rs.edge_values()`` and ``check_pass``'s draws, not in
#: ``rs.unfused()`` (which backends are compared on, where NaN inputs and integer wrap-around are
#: each runtime's own business)
EDGE_IDIOMS = ("int-arith", "norm-edge", "masked-softmax", "equal-axes", "broadcast-chain", "quantized-weights",
               "nonfinite")

#: normalization epsilons: exporters write 1e-5 and 1e-6 (LLaMA), 1e-12 (BERT), up to 1e-3
EPSILONS = (1e-12, 1e-8, 1e-6, 1e-5, 1e-4, 1e-3)
#: what exporters fill masked scores with (torch: finfo.min; HF BERT: -1e4; SDPA: -inf)
MASK_FILLS = ("-inf", "-1e4", "finfo.min")


def _fill(name: str, dt: str) -> float:
    if name == "-inf":
        return -math.inf
    if name == "-1e4":
        return -1.0e4
    npd = DTYPES[dt].np_dtype if dt != "bf16" else np.float32
    return float(np.finfo(npd).min) if dt != "bf16" else -3.3895313892515355e38


def _int_leaf(ctx: GenContext, dt: str, shape, lo: int, hi: int) -> Value:
    return ctx.leaf(dt, shape, lo=lo, hi=hi, const=None)


# ---------------------------------------------------------------------------- integers
@idiom("int-arith")
def int_arith(ctx: GenContext) -> None:
    """Integer Div/Mod with negative and zero dividends and negative divisors (a constant divisor,
    a constant dividend, or both inputs), and products that overflow and wrap (int8/32/64)."""
    dt = ctx.choice(["i32", "i64", "i8"])
    shape = ctx.shape(min_rank=1, max_rank=3, static=True)
    info = np.iinfo(DTYPES[dt].np_dtype)
    if not ctx.rare():  # a division or modulo, then (below) a product that wraps
        x = _int_leaf(ctx, dt, shape, -20, 20)
        form = 0 if ctx.flag() else ctx.integer(1, 2)
        if form == 0:   # x / c, c of either sign
            d = ctx.constant(np.asarray(ctx.choice([-3, 2, -1, 4, 7, -8, 3]), DTYPES[dt].np_dtype), pool=False)
            a, b = x, d
        else:           # c / y or x / y, y nonzero of either sign
            y = _int_leaf(ctx, dt, shape, 1, 9)
            sign = ctx.constant(np.where(ctx.rng().random(shape) < 0.5, -1, 1).astype(DTYPES[dt].np_dtype),
                                pool=False)
            y = _op(ctx, "Mul", y, sign, ranges=[(-9, 9)], pool=False)
            a = ctx.constant(np.asarray(ctx.choice([-7, 7, -20, 0]), DTYPES[dt].np_dtype), pool=False) \
                if form == 1 else x
            b = y
        # both: truncating division, and the modulo (either sign convention) of the same operands
        r = _op(ctx, "Div", a, b, ranges=[(-20, 20)], pool=False)
        _op(ctx, "Mod", a, b, ranges=[(-20, 20)], pool=False, fmod=ctx.choice([1, 0]))
        if not ctx.rare():  # and read again, as index arithmetic does: (x / c) · c is not x
            k = b if not ctx.rare() else ctx.constant(np.asarray(ctx.choice([2, -1, 3]), DTYPES[dt].np_dtype),
                                                       pool=False)
            _op(ctx, "Mul", r, k, ranges=[(-400, 400)], pool=False)
    # products that wrap: operands near √max
    m = math.isqrt(int(info.max)) * 2
    x = _int_leaf(ctx, dt, shape, -m, m)
    y = _int_leaf(ctx, dt, shape if ctx.flag() else shape[-1:], -m, m)
    p = _op(ctx, "Mul", x, y, ranges=[(info.min, info.max)], pool=False)
    form = ctx.integer(0, 2)
    if form == 1:    # and added to: wrap-around is associative, saturation is not
        _op(ctx, "Add", p, x, ranges=[(info.min, info.max)], pool=False)
    elif form == 2:  # a wide accumulation, as in a quantized matmul's zero-point correction
        _op(ctx, "ReduceSum", p, ctx.ints([-1]), ranges=[(info.min, info.max)], pool=False, keepdims=0)


# ---------------------------------------------------------------------------- normalizations
@idiom("norm-edge")
def norm_edge(ctx: GenContext) -> None:
    """Layer or RMS normalization of rows whose variance is tiny (a constant plus noise far below
    ε), with ε anywhere in 1e-12…1e-3: where ε decides the result."""
    dt = ctx.choice(["f32", "f64", "f16"])
    n = ctx.integer(2, 6)
    shape = tuple(ctx.shape(min_rank=0, max_rank=2, static=True)) + (n,)
    two = ctx.rare()  # normalize over the two trailing axes (the fused op's axis=-2)
    if two:
        shape = shape + (ctx.integer(1, 3),)
    base = ctx.choice([1.0, -3.0, 100.0, 0.0])
    noise = ctx.choice([1e-4, 1e-2, 0.5])
    x = ctx.leaf(dt, shape, lo=base - noise, hi=base + noise, const=False)
    eps = ctx.choice(EPSILONS[1:] if dt == "f16" else EPSILONS)
    axes = ctx.ints([-2, -1] if two else [-1])
    n = n * shape[-1] if two else n
    big = abs(base) + noise
    if ctx.flag():   # layer norm
        mean = _op(ctx, "ReduceMean", x, axes, ranges=[(base - noise, base + noise)], pool=False)
        d = _op(ctx, "Sub", x, mean, ranges=[(-2 * noise, 2 * noise)], pool=False)
        sq = _op(ctx, "Mul", d, d, ranges=[(0.0, 4 * noise * noise)], pool=False)
        num = d
    else:            # RMS norm
        sq = _op(ctx, "Mul", x, x, ranges=[(0.0, big * big)], pool=False)
        num = x
    var = _op(ctx, "ReduceMean", sq, axes, ranges=[(0.0, big * big + 4 * noise * noise)], pool=False)
    den = _op(ctx, "Sqrt", _op(ctx, "Add", var, _c(ctx, eps, dt), ranges=[(eps, big * big + 1)], pool=False),
              ranges=[(0.0, big + 1)], pool=False)
    b = math.sqrt(n) * 1.01 + 1e-3
    y = _op(ctx, "Div", num, den, ranges=[(-b, b)], pool=False)
    if ctx.flag():
        _op(ctx, "Mul", y, ctx.leaf(dt, shape[-2:] if two else shape[-1:], lo=0.5, hi=1.5, const=True),
            ranges=[(-2 * b, 2 * b)], pool=False)


# ---------------------------------------------------------------------------- masked softmax
@idiom("masked-softmax")
def masked_softmax(ctx: GenContext) -> None:
    """Causal attention with query length ≠ key length (a KV cache: keys before the queries), the
    mask added or selected with Where and filled with −inf, −1e4 or ``finfo.min``."""
    dt = ctx.choice(["f32", "f16", "f64"])
    b, h, d = ctx.integer(1, 2), ctx.integer(1, 2), ctx.integer(1, 4)
    s = ctx.integer(1, 4)
    t = s + ctx.integer(0, 4)
    q = ctx.leaf(dt, (b, h, s, d), lo=-2.0, hi=2.0, const=False)
    kt = ctx.leaf(dt, (b, h, d, t), lo=-2.0, hi=2.0, const=ctx.rare())
    v = ctx.leaf(dt, (b, h, t, ctx.integer(1, 4)), lo=-2.0, hi=2.0, const=ctx.rare())
    allowed = np.tril(np.ones((s, t), dtype=bool), k=t - s)
    fill = _fill(ctx.choice(MASK_FILLS), dt)
    npd = DTYPES[dt].np_dtype
    mask = None
    if ctx.flag():   # an extra padding mask, every query keeping its first key
        pad = ctx.rng().random((b, 1, 1, t)) < 0.7
        pad[..., 0] = True
        mask = ctx.constant(np.where(pad, 0.0, fill).astype(npd), pool=False)
    explicit = ctx.flag()
    if explicit:     # the causal part written as a constant mask here, not sdpa's own
        cm = ctx.constant(np.where(allowed, 0.0, fill).astype(npd).reshape(1, 1, s, t), pool=False)
        mask = cm if mask is None else _op(ctx, "Add", cm, mask, pool=False, ranges=[(-3.5e38, 0.0)])
    sdpa(ctx, q, kt, v, scale=ctx.choice([1 / math.sqrt(d), 1.0, 0.125]), causal=not explicit, mask=mask)


# ---------------------------------------------------------------------------- movement
@idiom("equal-axes")
def equal_axes(ctx: GenContext) -> None:
    """Transposes of tensors whose axes have equal sizes (a perm is then invisible in the shape),
    followed by another transpose, a reduction over some axes, or an elementwise op."""
    dt = ctx.choice(["f32", "i32", "f16"])
    rank = ctx.integer(2, 4)
    n = ctx.integer(2, 3)
    if dt != "i32" and ctx.rare():  # Gemm of square operands: transA/transB change values, not types
        a, b = (ctx.leaf(dt, (n, n), lo=-2, hi=2, const=ctx.flag()) for _ in range(2))
        attrs = {"transA": ctx.choice([0, 1]), "transB": ctx.choice([1, 0])}
        _op(ctx, "Gemm", a, b, ctx.leaf(dt, (n,), lo=-1, hi=1) if ctx.flag() else None,
            ranges=[(-4.0 * n - 1, 4.0 * n + 1)], pool=False, **attrs)
        return
    x = ctx.leaf(dt, (n,) * rank, lo=-4, hi=4, const=ctx.rare())
    perms = [list(p) for p in itertools.permutations(range(rank)) if list(p) != list(range(rank))]
    y = _op(ctx, "Transpose", x, perm=ctx.choice(perms), pool=False)
    form = ctx.integer(0, 3)
    if form == 0:   # two views of one tensor, the same type: only the perms tell them apart
        z = _op(ctx, "Transpose", x, perm=ctx.choice(perms), pool=False) if ctx.flag() else \
            _op(ctx, "Identity", x, pool=False)
        _op(ctx, "Sub", y, z, ranges=[(-8, 8)], pool=False)
    elif form == 1:
        _op(ctx, "Transpose", y, perm=ctx.choice(perms), pool=False)
    elif form == 2:
        axes = sorted(set(ctx.choice([[0], [rank - 1], [0, 1], list(range(1, rank))])))
        m = 4 * n ** rank
        _op(ctx, "ReduceSum", y, ctx.ints(axes), ranges=[(-m, m)], pool=False, keepdims=ctx.choice([1, 0]))
    else:
        other = ctx.leaf(dt, (n,) * rank, lo=-4, hi=4)
        _op(ctx, "Sub", y, other, ranges=[(-8, 8)], pool=False)


@idiom("broadcast-chain")
def broadcast_chain(ctx: GenContext) -> None:
    """Elementwise chains whose operands have size-1 axes in every position (and lower rank), so
    a fused group must broadcast inside itself."""
    dt = ctx.choice(["f32", "f16", "i32"])
    rank = ctx.integer(2, 3)
    # equal dims make a misplaced size-1 axis type-check: only the values tell
    full = tuple(ctx.integer(2, 3) for _ in range(rank)) if ctx.rare() else (ctx.integer(2, 3),) * rank
    cur = None
    for _ in range(ctx.integer(2, 4)):
        ones = [ctx.flag() for _ in full]
        shape = tuple(1 if o else d for o, d in zip(ones, full))
        if ctx.flag():  # lower rank: broadcast prepends the missing axes
            shape = shape[ctx.integer(1, len(shape) - 1):]
        x = ctx.leaf(dt, shape, lo=-2, hi=2, const=None)
        if cur is None:
            cur = x
            continue
        op = ctx.choice(["Add", "Mul", "Sub", "Max"])
        cur = _op(ctx, op, cur, x, ranges=[(-64, 64)], pool=False)
    if cur is None or cur.producer is None:
        raise Skip("no chain")


# ---------------------------------------------------------------------------- quantized weights
@idiom("quantized-weights")
def quantized_weights(ctx: GenContext) -> None:
    """DequantizeLinear of a constant int8/uint8 weight with per-axis scales and zero points
    (``axis`` on the output channels, sometimes the other axis) feeding MatMul, or Conv."""
    dt = ctx.choice(["f32", "f16"])
    qt = ctx.choice(["i8", "u8"])
    rng = ctx.rng()
    lo, hi = (-127, 127) if qt == "i8" else (0, 255)
    if ctx.flag():
        k, n = ctx.integer(1, 4), ctx.integer(2, 4)
        shape, axis = (k, n), ctx.choice([1, 0, -1])
    else:
        o, c, kh = ctx.integer(2, 3), ctx.integer(1, 2), ctx.integer(1, 2)
        shape, axis = (o, c, kh, kh), 0
    ch = shape[axis]
    w = ctx.constant(rng.integers(lo, hi + 1, size=shape).astype(DTYPES[qt].np_dtype), pool=False)
    scale = ctx.constant(rng.uniform(0.005, 0.05, size=(ch,)).astype(DTYPES[dt].np_dtype), pool=False)
    zp = ctx.constant(rng.integers(lo // 4, hi // 4 + 1, size=(ch,)).astype(DTYPES[qt].np_dtype), pool=False) \
        if ctx.flag() else None
    wf = _op(ctx, "DequantizeLinear", w, scale, zp, axis=axis, ranges=[(-20.0, 20.0)], pool=False)
    if len(shape) == 2:
        x = ctx.leaf(dt, tuple(ctx.shape(min_rank=0, max_rank=2, static=True)) + (shape[0],), lo=-1.0, hi=1.0,
                     const=False)
        _op(ctx, "MatMul", x, wf, ranges=[(-100.0, 100.0)], pool=False)
    else:
        x = ctx.leaf(dt, (1, shape[1], 3, 3), lo=-1.0, hi=1.0, const=False)
        _op(ctx, "Conv", x, wf, ranges=[(-200.0, 200.0)], pool=False)


# ---------------------------------------------------------------------------- NaN and infinities
_NONFINITE_OPS = ["Relu", "Neg", "Abs", "Max", "Min", "Add", "Mul", "IsNaN", "IsInf", "Where", "Sign"]


@idiom("nonfinite")
def nonfinite(ctx: GenContext) -> None:
    """Ops whose meaning at NaN and ±inf is defined (propagation, IsNaN/IsInf, Max/Min, Where),
    fed inputs that hold some."""
    dt = ctx.choice(["f32", "f16", "f64"])
    shape = ctx.shape(min_rank=1, max_rank=2, static=True)
    x = ctx.leaf(dt, shape, lo=-2.0, hi=2.0, const=False, kind="specials")
    cur = x
    for _ in range(ctx.integer(1, 3)):
        op = ctx.choice(_NONFINITE_OPS)
        if op in ("Max", "Min", "Add", "Mul"):
            other = ctx.leaf(dt, shape, lo=-2.0, hi=2.0, const=ctx.flag())
            cur = _op(ctx, op, cur, other, ranges=[(-1e30, 1e30)], pool=False)
        elif op == "Where":
            cond = ctx.leaf("bool", shape, const=True)
            cur = _op(ctx, op, cond, cur, _c(ctx, 0.0, dt), ranges=[(-1e30, 1e30)], pool=False)
        elif op in ("IsNaN", "IsInf"):
            _op(ctx, op, cur, ranges=[(0, 1)], pool=False)
        else:
            cur = _op(ctx, op, cur, ranges=[(-1e30, 1e30)], pool=False)
