"""Unfused idioms: the decomposed forms each fusion pass looks for, as exporters write them.

A random graph almost never contains ``softmax(Q·Kᵀ/√d)·V`` by chance, so a fusion tested only on
random graphs is a fusion tested only on its "does not apply" path. Each idiom here is a step of
the graph generator that writes one such pattern, with the variations real exports show (GPT-2,
BERT and Llama attention, GQA's repeat-kv, RoPE, erf and tanh GELU, layer/RMS norms, matmul
epilogues, elementwise chains), reading its inputs from the graph built so far and leaving its
results (intermediates included) for later steps to read — so the fusion also meets patterns whose
inner values have other users, which it must leave alone.

Every variation is a draw that shrinks to the plainest form, so a failing fusion shrinks to the
smallest pattern that still fails.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ...ir import Value
from ...ir.dtypes import DTYPES
from ._context import FLOATS, GenContext, Skip

__all__ = ["IDIOMS", "idiom"]

IDIOMS: dict[str, Callable[[GenContext], None]] = {}

_FLOAT = ("f32", "f16", "f64", "bf16")


def idiom(name: str):
    """Register a step that writes one unfused pattern (``graphs(idioms=[name])`` draws it)."""
    def decorate(fn: Callable[[GenContext], None]):
        IDIOMS[name] = fn
        return fn
    return decorate


# ---------------------------------------------------------------------------- helpers
def _fdt(ctx: GenContext) -> str:
    return ctx.dtype(_FLOAT)


def _c(ctx: GenContext, value: float, dt: str) -> Value:
    """A scalar constant, as exporters write them (shape [] or, now and then, [1])."""
    return ctx.scalar(value, dt, shape=(1,) if ctx.rare() else ())


def _mm(ctx: GenContext, a: Value, b: Value, *, pool: bool = True) -> Value:
    k = ctx.size(a.type.shape[-1])
    m = k * ctx.info_of(a).magnitude * ctx.info_of(b).magnitude
    return ctx.add("MatMul", [a, b], ranges=[(-m, m)], pool=pool).outputs[0]


def _op(ctx: GenContext, op: str, *inputs: Value | None, pool: bool = True, ranges=None, **attrs) -> Value:
    return ctx.add(op, list(inputs), attrs, pool=pool, ranges=ranges).outputs[0]


def _keep(ctx: GenContext, x: Value):
    i = ctx.info_of(x)
    return [(i.lo, i.hi)]


def _weight(ctx: GenContext, dt: str, shape, scale: float | None = None) -> Value:
    """A weight matrix: usually a constant (as in a real model), sometimes an input."""
    s = scale if scale is not None else 1.0 / math.sqrt(max(shape[0], 1))
    return ctx.leaf(dt, shape, lo=-s, hi=s, const=None if ctx.rare() else True)


def _other_float(ctx: GenContext, dt: str) -> str:
    """Another float dtype among the configured ones (a cast's target)."""
    others = [d for d in ctx.config.dtypes if d in _FLOAT and d != dt]
    if not others:
        raise Skip(f"no float dtype but {dt} configured")
    return ctx.choice(others)


def _commute(ctx: GenContext, a, b):
    return (b, a) if ctx.rare() else (a, b)


# ---------------------------------------------------------------------------- GELU
@idiom("gelu")
def gelu(ctx: GenContext) -> None:
    """½·x·(1 + erf(x/√2)) or ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), in the associations
    exporters write."""
    x = ctx.pick(_FLOAT)
    dt = x.type.dtype.name
    if ctx.flag():
        inner = _op(ctx, "Mul", x, _c(ctx, 1 / math.sqrt(2.0), dt)) if ctx.flag() else \
            _op(ctx, "Div", x, _c(ctx, math.sqrt(2.0), dt))
        g = _op(ctx, "Add", *_commute(ctx, _op(ctx, "Erf", inner), _c(ctx, 1.0, dt)))
    else:
        form = ctx.integer(0, 2)
        if form == 0:
            cube = _op(ctx, "Pow", x, _c(ctx, 3.0, dt))
        elif form == 1:
            cube = _op(ctx, "Mul", x, _op(ctx, "Mul", x, x))
        else:
            cube = _op(ctx, "Mul", _op(ctx, "Mul", x, x), x)
        t = _op(ctx, "Add", x, _op(ctx, "Mul", cube, _c(ctx, 0.044715, dt)))
        t = _op(ctx, "Mul", t, _c(ctx, math.sqrt(2.0 / math.pi), dt))
        g = _op(ctx, "Add", _op(ctx, "Tanh", t), _c(ctx, 1.0, dt))
    form = ctx.integer(0, 3)
    if form == 0:
        _op(ctx, "Mul", _op(ctx, "Mul", x, _c(ctx, 0.5, dt)), g)
    elif form == 1:
        _op(ctx, "Mul", x, _op(ctx, "Mul", g, _c(ctx, 0.5, dt)))
    elif form == 2:
        _op(ctx, "Mul", _op(ctx, "Mul", x, g), _c(ctx, 0.5, dt))
    else:
        _op(ctx, "Div", _op(ctx, "Mul", x, g), _c(ctx, 2.0, dt))


# ---------------------------------------------------------------------------- normalizations
def _trailing_axes(ctx: GenContext, x: Value) -> tuple[list[int], int]:
    r = x.type.rank
    k = 2 if r >= 2 and ctx.rare() and isinstance(x.type.shape[-2], int) else 1
    axes = list(range(r - k, r))
    written = [a - r for a in axes] if ctx.flag() else axes
    n = math.prod(ctx.sizes(x.type.shape[r - k:]))
    return written, n


def _eps(ctx: GenContext, dt: str) -> float:
    # exporters write 1e-5 (PyTorch), 1e-6 (LLaMA), 1e-12 (BERT); other models up to 1e-3
    return ctx.choice([1e-5, 1e-6, 1e-3, 1e-4] if dt in ("f16", "bf16") else [1e-5, 1e-6, 1e-12, 1e-3, 1e-8, 1e-4])


def _normed(ctx: GenContext, num: Value, den: Value, n: int, dt: str) -> Value:
    """num / den in one of the three spellings; the result of a normalization is at most √n."""
    b = math.sqrt(n) * 1.01 + 1e-3
    form = ctx.integer(0, 2)
    if form == 0:
        return _op(ctx, "Div", num, den, ranges=[(-b, b)])
    inv = _op(ctx, "Reciprocal", den) if form == 1 else _op(ctx, "Div", _c(ctx, 1.0, dt), den)
    return _op(ctx, "Mul", num, inv, ranges=[(-b, b)])


def _affine(ctx: GenContext, y: Value, dims: tuple, dt: str, *, bias: bool) -> Value:
    shape = dims if not ctx.rare() else (1,) * ctx.integer(1, 2) + dims
    if ctx.flag():
        y = _op(ctx, "Mul", *_commute(ctx, y, ctx.leaf(dt, shape, lo=0.5, hi=1.5, const=True)))
        if bias and ctx.flag():
            y = _op(ctx, "Add", *_commute(ctx, y, ctx.leaf(dt, shape, lo=-0.5, hi=0.5, const=True)))
    return y


def _static_last(ctx: GenContext, min_rank: int = 1, max_rank: int | None = None):
    """A shape whose last dim is static (what a weight or a normalization needs)."""
    hi = ctx.config.max_rank if max_rank is None else max_rank
    lead = ctx.shape(min_rank=min_rank - 1, max_rank=hi - 1)
    return tuple(lead) + (ctx.dim(static=True),)


def _norm_input(ctx: GenContext) -> Value:
    return ctx.pick(_FLOAT, min_rank=1, where=lambda v: isinstance(v.type.shape[-1], int),
                    fresh_shape=lambda: _static_last(ctx))


def _square(ctx: GenContext, d: Value, dt: str) -> Value:
    m = ctx.info_of(d).magnitude
    r = [(0.0, m * m)]
    return _op(ctx, "Pow", d, _c(ctx, 2.0, dt), ranges=r) if ctx.flag() else _op(ctx, "Mul", d, d, ranges=r)


def _norm(ctx: GenContext, *, centred: bool) -> None:
    """x (− mean(x) when ``centred``) / √(mean(·²) + ε) · γ (+ β when centred) over the trailing
    axes; f16/bf16 computed in f32 between casts (always when centred, at times otherwise)."""
    x = _norm_input(ctx)
    dt = x.type.dtype.name
    cast_back = None
    # centred: x − mean(x) cancels: in 8 mantissa bits a near-constant slice is all rounding
    # noise, which the division then scales up. Exporters compute it in f32, as here.
    if dt in ("f16", "bf16") and (centred or ctx.flag()):
        cast_back, x = dt, _op(ctx, "Cast", x, to="f32")
        dt = "f32"
    axes, n = _trailing_axes(ctx, x)
    d = x
    if centred:
        i = ctx.info_of(x)
        d = _op(ctx, "Sub", x, _op(ctx, "ReduceMean", x, ctx.ints(axes), ranges=[(i.lo, i.hi)]))
    sq = _square(ctx, d, dt)
    ms = _op(ctx, "ReduceMean", sq, ctx.ints(axes), ranges=_keep(ctx, sq))
    rms = _op(ctx, "Sqrt", _op(ctx, "Add", *_commute(ctx, ms, _c(ctx, _eps(ctx, dt), dt))))
    y = _normed(ctx, d, rms, n, dt)
    if cast_back:
        y = _op(ctx, "Cast", y, to=cast_back)
        dt = cast_back
    _affine(ctx, y, tuple(x.type.shape[len(x.type.shape) - len(axes):]), dt, bias=centred)


@idiom("layernorm")
def layernorm(ctx: GenContext) -> None:
    """(x − mean(x)) / √(mean((x − mean(x))²) + ε) · γ + β over the trailing axes."""
    _norm(ctx, centred=True)


@idiom("rmsnorm")
def rmsnorm(ctx: GenContext) -> None:
    """x / √(mean(x²) + ε) · γ, optionally computed in f32 between casts (Llama's export)."""
    _norm(ctx, centred=False)


# ---------------------------------------------------------------------------- rotary
_BIG = 2 ** 62


def _half(ctx: GenContext, x: Value, start: int, end: int) -> Value:
    axis = ctx.choice([3, -1])
    ins = [x, ctx.ints([start]), ctx.ints([end]), ctx.ints([axis])]
    if ctx.rare():
        ins.append(ctx.ints([1]))
    return _op(ctx, "Slice", *ins, ranges=_keep(ctx, x))


def rope(ctx: GenContext, x: Value, tables: tuple[Value, Value]) -> Value:
    """HF's rotate-half: x·cos + cat(−x₂, x₁)·sin, x of shape [B, H, S, D]."""
    d = x.type.shape[3]
    h = d // 2
    x1 = _half(ctx, x, 0, h)
    x2 = _half(ctx, x, h, ctx.choice([_BIG, d]) if ctx.flag() else d)
    rot = _op(ctx, "Concat", _op(ctx, "Neg", x2), x1, axis=ctx.choice([-1, 3]), ranges=None)
    cos, sin = tables
    m = ctx.info_of(x).magnitude * 2.2
    return _op(ctx, "Add", _op(ctx, "Mul", x, cos), _op(ctx, "Mul", rot, sin), ranges=[(-m, m)])


def rope_tables(ctx: GenContext, b, s, half: int, dt: str) -> tuple[Value, Value]:
    """cos and sin of cat(θ, θ), unsqueezed over heads, from angles θ of shape [B, S, D/2]."""
    theta = ctx.leaf(dt, (b, s, half), lo=-3.0, hi=3.0)
    emb = _op(ctx, "Concat", theta, theta, axis=ctx.choice([-1, 2]))
    scale = ctx.rare()
    out = []
    for fn in ("Cos", "Sin"):
        t = _op(ctx, fn, emb)
        if scale:
            t = _op(ctx, "Mul", t, _c(ctx, 0.75, dt))
        out.append(_op(ctx, "Unsqueeze", t, ctx.ints([1])))
    return out[0], out[1]


@idiom("rotary")
def rotary(ctx: GenContext) -> None:
    dt = _fdt(ctx)
    b, hq, s, half = ctx.dim(), ctx.integer(1, 2), ctx.integer(1, 4), ctx.integer(1, 3)
    x = ctx.pick([dt], shape=(b, hq, s, 2 * half))
    rope(ctx, x, rope_tables(ctx, b, s, half, dt))


# ---------------------------------------------------------------------------- attention
def _causal_mask(ctx: GenContext, s: int, t: int, dt: str, kind: str) -> Value:
    """A constant causal mask, aligned bottom-right (a query sees the keys up to its position)."""
    allowed = np.tril(np.ones((s, t), dtype=bool), k=t - s)
    shape = (s, t) if ctx.flag() else (1, 1, s, t)
    if kind == "bool":
        return ctx.constant(allowed.reshape(shape), pool=False)
    fill = ctx.choice([-np.inf, -1.0e4, float(np.finfo(DTYPES[dt].np_dtype if dt != "bf16" else np.float32).min)])
    return ctx.constant(np.where(allowed, 0.0, fill).astype(DTYPES[dt].np_dtype).reshape(shape), pool=False)


def sdpa(ctx: GenContext, q: Value, kt: Value, v: Value, *, scale: float, causal: bool,
         mask: Value | None = None) -> Value:
    """softmax(Q·Kᵀ·s + M)·V written out: the scale before or after the product, the mask added
    or selected with Where; returns the [B, H, S, Dv] result."""
    dt = q.type.dtype.name
    s, t = q.type.shape[2], kt.type.shape[3]
    form = ctx.integer(0, 3) if scale != 1.0 else 3
    if form == 2:  # Q·s₁ and Kᵀ·s₂ (√s each, as some exporters split it)
        r = math.sqrt(scale)
        q = _op(ctx, "Mul", q, _c(ctx, r, dt))
        kt = _op(ctx, "Mul", kt, _c(ctx, r, dt))
    scores = _mm(ctx, q, kt)
    if form == 0:
        scores = _op(ctx, "Mul", scores, _c(ctx, scale, dt))
    elif form == 1:
        scores = _op(ctx, "Div", scores, _c(ctx, 1.0 / scale, dt))
    lo, hi = ctx.info_of(scores).lo, ctx.info_of(scores).hi
    masked_range = [(min(lo - 3.0, -ctx.config.max_dim), hi)]
    if mask is not None:
        scores = _op(ctx, "Add", scores, mask, pool=False, ranges=masked_range)
    if causal and isinstance(s, int) and isinstance(t, int):
        if ctx.flag():
            cond = _causal_mask(ctx, s, t, dt, "bool")
            fill = ctx.choice([-np.inf, -1.0e4, float(np.finfo(np.float32).min)]) if dt != "f16" else \
                ctx.choice([-np.inf, -1.0e4, -65504.0])
            scores = _op(ctx, "Where", cond, scores, ctx.scalar(fill, dt), pool=False, ranges=masked_range)
        else:
            scores = _op(ctx, "Add", scores, _causal_mask(ctx, s, t, dt, "add"), pool=False, ranges=masked_range)
    probs = _op(ctx, "Softmax", scores, ranges=[(0.0, 1.0)], axis=ctx.choice([-1, 3]))
    i = ctx.info_of(v)
    return _op(ctx, "MatMul", probs, v, ranges=[(min(i.lo, 0.0), max(i.hi, 0.0))])


def _split_heads(ctx: GenContext, x3: Value, heads: int, d: int, perm=(0, 2, 1, 3)) -> Value:
    b, s = x3.type.shape[:2]
    shape = [0, 0, heads, d] if ctx.flag() or not isinstance(b, int) else [b, s, heads, d]
    x4 = _op(ctx, "Reshape", x3, ctx.ints(shape), ranges=_keep(ctx, x3))
    return _op(ctx, "Transpose", x4, perm=list(perm), ranges=_keep(ctx, x4))


def _merge_heads(ctx: GenContext, y: Value) -> Value:
    b, h, s, dv = y.type.shape
    t = _op(ctx, "Transpose", y, perm=[0, 2, 1, 3], ranges=_keep(ctx, y))
    shape = [0, 0, -1] if ctx.flag() or not isinstance(b, int) else [b, s, h * dv]
    return _op(ctx, "Reshape", t, ctx.ints(shape), ranges=_keep(ctx, t))


def _repeat_kv(ctx: GenContext, k: Value, n: int) -> Value:
    """Llama's repeat_kv: each of the Hkv heads n times, as Reshape(Expand(Unsqueeze(k, 2)))."""
    b, hkv, t, d = k.type.shape
    u = _op(ctx, "Unsqueeze", k, ctx.ints([2]), ranges=_keep(ctx, k))
    bb = 1 if not isinstance(b, int) else b
    e = _op(ctx, "Expand", u, ctx.ints([bb, hkv, n, t, d]), ranges=_keep(ctx, k))
    shape = [0, hkv * n, t, d] if not isinstance(b, int) else [b, hkv * n, t, d]
    return _op(ctx, "Reshape", e, ctx.ints(shape), ranges=_keep(ctx, k))


def _project(ctx: GenContext, x: Value, n: int, dt: str, *, bias: bool) -> Value:
    y = _mm(ctx, x, _weight(ctx, dt, (x.type.shape[-1], n)))
    if bias:
        y = _op(ctx, "Add", y, ctx.leaf(dt, (n,), lo=-0.1, hi=0.1, const=True))
    return y


@idiom("attention")
def attention(ctx: GenContext) -> None:
    """Scaled dot-product attention: on Q, K, V directly, or in the GPT-2, BERT or Llama export
    shape (projections, head split, GQA repeat-kv, RoPE, masks, head merge)."""
    style = ctx.choice(["core", "gpt2", "bert", "llama"])
    dt = _fdt(ctx)
    b = ctx.dim()
    s = ctx.integer(1, 4)
    d = ctx.choice([2, 4, 1, 3])
    hq = ctx.integer(1, 2)
    if style == "core":
        hkv = hq if ctx.flag() else 1
        t = s if ctx.flag() else ctx.integer(1, 4)
        q = ctx.pick([dt], shape=(b, hq, s, d))
        if ctx.flag():
            k = ctx.pick([dt], shape=(b, hkv, t, d))
            kt = _op(ctx, "Transpose", k, perm=[0, 1, 3, 2], ranges=_keep(ctx, k))
        else:
            kt = ctx.pick([dt], shape=(b, hkv, d, t))
        v = ctx.pick([dt], shape=(b, hkv, t, ctx.choice([d, 1, 3])))
        if hkv != hq:
            n = hq // hkv
            k4 = _op(ctx, "Transpose", kt, perm=[0, 1, 3, 2], ranges=_keep(ctx, kt))
            kt = _op(ctx, "Transpose", _repeat_kv(ctx, k4, n), perm=[0, 1, 3, 2], ranges=_keep(ctx, kt))
            v = _repeat_kv(ctx, v, n)
        mask = None
        if ctx.rare():
            mask = ctx.leaf(dt, (1, 1, s, t), lo=-3.0, hi=0.0)
        scale = ctx.choice([1.0, 1 / math.sqrt(d), 0.125])  # unscaled is the plainest form
        sdpa(ctx, q, kt, v, scale=scale, causal=ctx.rare() and s <= t, mask=mask)
        return
    e = hq * d
    x = ctx.pick([dt], shape=(b, s, e))
    if style == "llama":
        hkv = 1 if hq > 1 and ctx.flag() else hq
        d = d + d % 2  # RoPE rotates pairs
        e_q, e_kv = hq * d, hkv * d
        q3 = _project(ctx, x, e_q, dt, bias=False)
        k3 = _project(ctx, x, e_kv, dt, bias=False)
        v3 = _project(ctx, x, e_kv, dt, bias=False)
        q, k, v = _split_heads(ctx, q3, hq, d), _split_heads(ctx, k3, hkv, d), _split_heads(ctx, v3, hkv, d)
        if ctx.flag():
            tables = rope_tables(ctx, b, s, d // 2, dt)
            q, k = rope(ctx, q, tables), rope(ctx, k, tables)
        if hkv != hq:
            k, v = _repeat_kv(ctx, k, hq // hkv), _repeat_kv(ctx, v, hq // hkv)
        kt = _op(ctx, "Transpose", k, perm=[0, 1, 3, 2], ranges=_keep(ctx, k))
        y = sdpa(ctx, q, kt, v, scale=1 / math.sqrt(d), causal=True)
        _mm(ctx, _merge_heads(ctx, y), _weight(ctx, dt, (e_q, e)))
        return
    # GPT-2 and BERT: biased projections (GPT-2 as one fused c_attn split in three)
    if style == "gpt2" and ctx.flag():
        qkv = _project(ctx, x, 3 * e, dt, bias=True)
        q3, k3, v3 = ctx.add("Split", [qkv, ctx.ints([e, e, e])], {"axis": 2}, outputs=3,
                             ranges=_keep(ctx, qkv) * 3).outputs
    else:
        q3, k3, v3 = (_project(ctx, x, e, dt, bias=True) for _ in range(3))
    q = _split_heads(ctx, q3, hq, d)
    kt = _split_heads(ctx, k3, hq, d, perm=(0, 2, 3, 1)) if ctx.flag() else \
        _op(ctx, "Transpose", _split_heads(ctx, k3, hq, d), perm=[0, 1, 3, 2])
    v = _split_heads(ctx, v3, hq, d)
    mask = None
    if style == "bert" and ctx.flag():
        am = ctx.leaf(ctx.dtype(["i64", "f32"]), (b, s), lo=0, hi=1)
        ext = _op(ctx, "Unsqueeze", am, ctx.ints([1, 2]), ranges=[(0, 1)])
        ext = _op(ctx, "Cast", ext, to=dt) if am.type.dtype.name != dt else ext
        inv = _op(ctx, "Sub", _c(ctx, 1.0, dt), ext)
        mask = _op(ctx, "Mul", inv, _c(ctx, -10000.0, dt), pool=False)
    y = sdpa(ctx, q, kt, v, scale=1 / math.sqrt(d), causal=style == "gpt2", mask=mask)
    out = _project(ctx, _merge_heads(ctx, y), e, dt, bias=True)
    if ctx.flag():
        _op(ctx, "Add", out, x)  # the residual


# ---------------------------------------------------------------------------- matmul epilogues
_ACTS = ["Relu", "Gelu", "Sigmoid", "Tanh", "silu", "LeakyRelu", "Erf", "gelu-tanh"]


@idiom("matmul-epilogue")
def matmul_epilogue(ctx: GenContext) -> None:
    """MatMul [+ bias] [activation] [+ residual] [· gate] [cast], as linear layers and MLPs write
    them; also the Gemm form and the flatten-around-matmul form of older exports."""
    x = ctx.pick(_FLOAT, min_rank=2, max_rank=3, where=lambda v: isinstance(v.type.shape[-1], int),
                 fresh_shape=lambda: _static_last(ctx, 2, 3))
    dt = x.type.dtype.name
    k = x.type.shape[-1]
    n = ctx.integer(1, 4)
    form = ctx.choice(["matmul", "gemm", "flatten"]) if ctx.rare() else "matmul"
    w = _weight(ctx, dt, (k, n))
    bias = ctx.leaf(dt, (n,), lo=-0.5, hi=0.5, const=True) if ctx.flag() else None
    if form == "gemm" and x.type.rank == 2:
        attrs = {}
        if ctx.flag():
            w = _op(ctx, "Transpose", w, perm=[1, 0])
            attrs["transB"] = 1
        m = k * ctx.info_of(x).magnitude * ctx.info_of(w).magnitude + 1
        ins = [x, w] + ([bias] if bias is not None else [])
        y = ctx.add("Gemm", ins, attrs, ranges=[(-m, m)]).outputs[0]
    elif form == "flatten" and x.type.rank == 3 and x.type.is_static:
        bsz, s, _ = x.type.shape
        x2 = _op(ctx, "Reshape", x, ctx.ints([bsz * s, k]), ranges=_keep(ctx, x))
        y = _mm(ctx, x2, w)
        if bias is not None:
            y = _op(ctx, "Add", y, bias)
        y = _op(ctx, "Reshape", y, ctx.ints([bsz, s, n]), ranges=_keep(ctx, y))
    else:
        y = _mm(ctx, x, w)
        if bias is not None:
            y = _op(ctx, "Add", *_commute(ctx, y, bias))
    act = ctx.choice(_ACTS) if ctx.flag() else None
    if act == "silu":
        y = _op(ctx, "Mul", y, _op(ctx, "Sigmoid", y))
    elif act == "gelu-tanh":
        y = _op(ctx, "Gelu", y, approximate="tanh")
    elif act is not None:
        y = _op(ctx, act, y)
    if ctx.rare():  # SwiGLU: up(x) · silu(gate(x))
        up = _mm(ctx, x, _weight(ctx, dt, (k, n)))
        y = _op(ctx, "Mul", up, y)
    if ctx.flag():
        r = ctx.pick([dt], shape=tuple(y.type.shape))
        y = _op(ctx, "Add", *_commute(ctx, y, r))
    if ctx.rare():
        _op(ctx, "Cast", y, to=_other_float(ctx, dt))


# ---------------------------------------------------------------------------- elementwise chains
_CHAIN = ["Relu", "Add", "Mul", "Neg", "Tanh", "Sigmoid", "Sub", "Abs", "Exp", "Div", "Max", "Erf", "Min",
          "Sqrt", "Cast", "Where"]


@idiom("elementwise-chain")
def elementwise_chain(ctx: GenContext) -> None:
    """A chain of 2-6 elementwise ops, each reading the previous result and maybe a broadcast
    operand; now and then a result also feeds a second op (a tree, not a chain)."""
    cur = ctx.pick(_FLOAT)
    dt = cur.type.dtype.name
    done = 0
    for _ in range(ctx.integer(2, 6)):
        op = ctx.choice(_CHAIN)
        info = ctx.info_of(cur)
        try:
            if op in ("Relu", "Neg", "Tanh", "Sigmoid", "Abs", "Erf"):
                nxt = _op(ctx, op, cur)
            elif op == "Exp":
                if info.hi > 6:
                    continue
                nxt = _op(ctx, op, cur)
            elif op == "Sqrt":
                if info.lo < 0.1:
                    continue
                nxt = _op(ctx, op, cur)
            elif op == "Div":
                nxt = _op(ctx, op, cur, ctx.operand_for(cur, within=(0.5, 2.0)))
            elif op == "Cast":
                nxt = _op(ctx, "Cast", _op(ctx, "Cast", cur, to=_other_float(ctx, dt)), to=dt)
            elif op == "Where":
                nxt = _op(ctx, op, ctx.operand_for(cur, ["bool"], exact=True), cur, ctx.operand_for(cur))
            else:
                nxt = _op(ctx, op, cur, ctx.operand_for(cur))
        except Skip:
            continue
        if ctx.rare():
            _op(ctx, "Relu", cur)  # a second reader of an inner value
        cur = nxt
        done += 1
    if not done:
        raise Skip("no chain")


# ---------------------------------------------------------------------------- canonicalization
@idiom("noise")
def noise(ctx: GenContext) -> None:
    """What canonicalize removes or merges — Identity, views and Expands that change nothing,
    transposes that cancel, exact cast chains, x·1, x+0, Gemm — and near misses it must keep
    (a ``+0`` that broadcasts, a lossy cast chain)."""
    x = ctx.pick(_FLOAT + ("i64", "i32"))
    dt = x.type.dtype.name
    r = x.type.rank
    kind = ctx.choice(["identity", "view", "transpose", "cast", "neutral", "expand", "squeeze"])
    if kind == "identity":
        _op(ctx, "Identity", x)
    elif kind == "view" and x.type.is_static:
        _op(ctx, "Reshape", x, ctx.ints(list(x.type.shape)), ranges=_keep(ctx, x))
    elif kind == "transpose" and r >= 2:
        from hypothesis import strategies as st
        p1 = ctx.draw(st.permutations(list(range(r))))
        t = _op(ctx, "Transpose", x, perm=list(p1))
        p2 = list(np.argsort(p1)) if ctx.flag() else list(ctx.draw(st.permutations(list(range(r)))))
        _op(ctx, "Transpose", t, perm=[int(a) for a in p2])
    elif kind == "cast":
        wide = {"f16": "f32", "bf16": "f32", "f32": "f64", "i32": "i64"}.get(dt)
        choices = [d for d in ("f16", "i32", "f32") if d != dt and d in ctx.config.dtypes]
        mid = wide if wide and wide in ctx.config.dtypes and (ctx.flag() or not choices) else ctx.choice(choices)
        if mid.startswith("i") and dt in FLOATS and not ctx.info_of(x).exact:
            raise Skip("inexact float to integer")
        _op(ctx, "Cast", _op(ctx, "Cast", x, to=mid), to=ctx.choice([d for d in (dt, "f32") if d in ctx.config.dtypes]
                                                                 or [dt]))
    elif kind == "neutral":
        op, val = ctx.choice([("Mul", 1.0), ("Add", 0.0), ("Div", 1.0), ("Sub", 0.0)])
        # a constant that broadcasts x to a larger shape is not neutral: canonicalize must keep it
        shape = (ctx.integer(2, 3),) + tuple(x.type.shape) if x.type.is_static and ctx.rare() else ()
        c = ctx.constant(np.full(shape, val, dtype=DTYPES[dt].np_dtype), pool=False)
        _op(ctx, op, x, c)
    elif kind == "expand":
        _op(ctx, "Expand", x, ctx.ints([1] * r if ctx.flag() else [d if isinstance(d, int) else 1
                                                                     for d in x.type.shape]),
            ranges=_keep(ctx, x))
    else:
        u = _op(ctx, "Unsqueeze", x, ctx.ints([0]), ranges=_keep(ctx, x))
        _op(ctx, "Squeeze", u, ctx.ints([0]), ranges=_keep(ctx, x))


# ---------------------------------------------------------------------------- CSE
_ATTRIBUTED = [("Softmax", "axis", [-1, 0]), ("LeakyRelu", "alpha", [0.01, 0.2]), ("Gelu", "approximate",
               ["none", "tanh"]), ("Transpose", "perm", None), ("Cast", "to", ["f16", "f64"]),
               ("ReduceSum", "keepdims", [1, 0]), ("HardSigmoid", "alpha", [0.2, 0.3])]


@idiom("duplicates")
def duplicates(ctx: GenContext) -> None:
    """The same op twice on the same inputs — with equal attributes (one computation, CSE merges
    it), or with different ones (two computations it must keep apart) — and both results used."""
    x = ctx.pick(_FLOAT, min_rank=1)
    op, attr, values = ctx.choice(_ATTRIBUTED)
    if op == "Transpose":
        from hypothesis import strategies as st
        r = x.type.rank
        values = [list(ctx.draw(st.permutations(list(range(r))))), list(range(r))[::-1]]
    elif op == "Cast":
        values = [d for d in ctx.config.dtypes if d in _FLOAT] * 2
        values = [values[0], ctx.choice(values)]
    a = values[0]
    b = values[0] if ctx.flag() else values[1]
    ranges = None if op not in ("Softmax", "Transpose", "ReduceSum") else \
        ([(0.0, 1.0)] if op == "Softmax" else _keep(ctx, x))
    if op == "ReduceSum":
        n = math.prod(ctx.sizes(x.type.shape))
        i = ctx.info_of(x)
        ranges = [(n * i.lo, n * i.hi)]
    y1 = _op(ctx, op, x, ranges=ranges, **{attr: a})
    y2 = _op(ctx, op, x, ranges=ranges, **{attr: b})
    if y1.type == y2.type and ctx.flag():
        _op(ctx, "Sub", y1, y2)
    if ctx.rare():  # a commuted pair: the same sum
        other = ctx.operand_for(x)
        _op(ctx, "Sub", _op(ctx, "Add", x, other), _op(ctx, "Add", other, x))


# ---------------------------------------------------------------------------- constant folding
@idiom("shape-chain")
def shape_chain(ctx: GenContext) -> None:
    """Shape arithmetic as exporters write it — Shape→Gather→Unsqueeze→Concat→Reshape — foldable
    once dims are known, and kept symbolic while they are not."""
    x = ctx.pick(_FLOAT + ("i64",), min_rank=2)
    r = x.type.rank
    shp = _op(ctx, "Shape", x, ranges=[(0, 1 << 20)], pool=False)
    keep = ctx.integer(1, r - 1)
    if ctx.flag():
        dims = [_op(ctx, "Unsqueeze", _op(ctx, "Gather", shp, ctx.ints(i), ranges=[(0, 1 << 20)], pool=False),
                    ctx.ints([0]), ranges=[(0, 1 << 20)], pool=False) for i in range(keep)]
    else:
        dims = [_op(ctx, "Slice", shp, ctx.ints([0]), ctx.ints([keep]), ranges=[(0, 1 << 20)], pool=False)]
    target = _op(ctx, "Concat", *dims, ctx.ints([-1]), axis=0, ranges=[(-1, 1 << 20)], pool=False)
    _op(ctx, "Reshape", x, target, ranges=_keep(ctx, x))


@idiom("constant-subgraph")
def constant_subgraph(ctx: GenContext) -> None:
    """Work on constants only — a transposed weight, a causal mask built from Range and a
    comparison, a scale computed by Sqrt — then used with the graph's data."""
    x = ctx.pick(_FLOAT, min_rank=1, where=lambda v: isinstance(v.type.shape[-1], int),
                 fresh_shape=lambda: _static_last(ctx))
    dt = x.type.dtype.name
    n = x.type.shape[-1]
    kind = ctx.choice(["weight", "mask", "scale"])
    if kind == "weight":
        w = ctx.leaf(dt, (ctx.integer(1, 4), n), lo=-0.5, hi=0.5, const=True)
        wt = _op(ctx, "Transpose", w, perm=[1, 0], ranges=_keep(ctx, w))
        _mm(ctx, x, wt)
    elif kind == "mask":
        idx = ctx.add("Range", [ctx.constant(np.asarray(0, np.int64), pool=False),
                                ctx.constant(np.asarray(n, np.int64), pool=False),
                                ctx.constant(np.asarray(1, np.int64), pool=False)],
                      ranges=[(0, n)], pool=False).outputs[0]
        cond = _op(ctx, "LessOrEqual", idx, ctx.constant(np.asarray(ctx.integer(0, n), np.int64), pool=False),
                   pool=False)
        mask = _op(ctx, "Where", cond, _c(ctx, 0.0, dt), _c(ctx, -1.0, dt), pool=False)
        _op(ctx, "Add", x, mask)
    else:
        s = _op(ctx, "Sqrt", _c(ctx, float(ctx.choice([4, 64, 2])), dt), pool=False)
        _op(ctx, "Div", x, s)
