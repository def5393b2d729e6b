"""Attention and rotary embeddings, as ONNX opset 23/24 defines them.

    Attention(Q, K, V) = softmax(Q·Kᵀ · scale + mask) · V

with an optional causal mask (bottom-right aligned when a KV cache is present), an additive or
boolean ``attn_mask``, a KV cache (``past_key``/``past_value`` in, ``present_*`` out), softcap,
and grouped-query attention (fewer KV heads than query heads, each KV head shared by a group of
query heads). ``fuse-attention`` produces this op, so a saved model uses the standard op.

Inputs are 4-D ``(batch, heads, seq, head_dim)``, or 3-D ``(batch, seq, heads·head_dim)`` with
``q_num_heads``/``kv_num_heads`` given.
"""

from __future__ import annotations

from .. import dims as D
from ..types import TensorType
from .spec import FLOAT, CostContext, InferContext, op

__all__ = ["attention_dims"]


def attention_dims(q: tuple, k: tuple, v: tuple, q_heads, kv_heads):
    """(batch, Hq, Sq, D, Hkv, Skv, Dv) from Q/K/V shapes in either layout."""
    if len(q) == 4:
        return q[0], q[1], q[2], q[3], k[1], k[2], v[3]
    hq, hkv = q_heads, kv_heads
    return (q[0], hq, q[1], D.floordiv(q[2], hq), hkv, k[1], D.floordiv(v[2], hkv))


def _dims_of(c: CostContext):
    q, k, v = c.in_shape(0), c.in_shape(1), c.in_shape(2)
    b, hq, sq, d, hkv, skv, dv = attention_dims(q, k, v, c.attr("q_num_heads"), c.attr("kv_num_heads"))
    past = c.in_shape(4)[2] if len(c.in_types) > 4 and c.in_types[4] is not None else 0
    return b, hq, sq, d, skv + past, dv


def _attention_flops(c: CostContext):
    b, hq, sq, d, t, dv = _dims_of(c)
    return 2 * b * hq * sq * t * d + 2 * b * hq * sq * t * dv + 5 * b * hq * sq * t


def _attention_bytes(c: CostContext):
    # Untiled: the (Sq x T) score matrix is written by QKᵀ, read and written by softmax and read
    # by P·V. A FlashAttention tile schedule in node.meta replaces this (see cost_models).
    b, hq, sq, d, t, dv = _dims_of(c)
    item = c.in_types[0].dtype.bits / 8
    scores = 4 * b * hq * sq * t * item
    return c.bytes_in() + c.bytes_out() + scores


@op("Attention",
    inputs=["Q: T1", "K: T1", "V: T2", "attn_mask?: U", "past_key?: T1", "past_value?: T2",
            "nonpad_kv_seqlen?: i64"],
    outputs=["Y: T1", "present_key?: T1", "present_value?: T2", "qk_matmul_output?: T1"],
    types={"T1": FLOAT, "T2": FLOAT, "U": FLOAT | {"bool"}},
    attrs={"is_causal": ("int", 0), "kv_num_heads": ("int", None), "q_num_heads": ("int", None),
           "qk_matmul_output_mode": ("int", 0), "scale": ("float", None), "softcap": ("float", 0.0),
           "softmax_precision": ("int", None), "left_window_size": ("int", -1),
           "right_window_size": ("int", -1)},
    category="attention", flops=_attention_flops, bytes=_attention_bytes, since=25)
def _attention(ctx: InferContext):
    """Scaled dot-product attention with causal/additive masks, KV cache, softcap and GQA."""
    if ctx.attr("qk_matmul_output_mode") not in (0, 1, 2, 3):
        ctx.fail(f"qk_matmul_output_mode must be 0..3, got {ctx.attr('qk_matmul_output_mode')}")
    for w in ("left_window_size", "right_window_size"):
        if ctx.attr(w) < -1:
            ctx.fail(f"{w} must be -1 (unbounded) or >= 0, got {ctx.attr(w)}")
    if ctx.has(6) and (ctx.has(4) or ctx.has(5)):
        ctx.fail("nonpad_kv_seqlen (external cache) cannot be combined with past_key/past_value")
    q, k, v = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    if not (len(q) == len(k) == len(v)) or len(q) not in (3, 4):
        ctx.fail(f"Q, K, V must all be 3-D or all 4-D, got {ctx.type(0)}, {ctx.type(1)}, {ctx.type(2)}")
    qh, kvh = ctx.attr("q_num_heads"), ctx.attr("kv_num_heads")
    if len(q) == 3 and (qh is None or kvh is None):
        ctx.fail("3-D inputs need q_num_heads and kv_num_heads")
    if len(q) == 4 and (qh is not None or kvh is not None):
        ctx.fail("q_num_heads and kv_num_heads are only for 3-D inputs")
    b, hq, sq, d, hkv, skv, dv = attention_dims(q, k, v, qh, kvh)
    if len(q) == 3:
        for what, total, heads in (("Q", q[2], qh), ("K", k[2], kvh), ("V", v[2], kvh)):
            if isinstance(total, int) and total % heads:
                ctx.fail(f"{what} hidden size {total} is not divisible by {heads} heads")
    else:
        if k[3] != d and isinstance(k[3], int) and isinstance(d, int):
            ctx.fail(f"K head size {k[3]} differs from Q head size {d}")
        if v[2] != skv and isinstance(v[2], int) and isinstance(skv, int):
            ctx.fail(f"K and V sequence lengths differ: {skv} vs {v[2]}")
    if isinstance(hq, int) and isinstance(hkv, int) and hq % hkv:
        ctx.fail(f"{hq} query heads are not a multiple of {hkv} KV heads")
    has_past = ctx.has(4)
    if has_past != ctx.has(5):
        ctx.fail("past_key and past_value must be given together")
    total = skv
    if has_past:
        pk = ctx.shape(4)
        if len(pk) != 4:
            ctx.fail(f"past_key must be 4-D, got {ctx.type(4)}")
        total = D.add(pk[2], skv)
    if ctx.has(3):
        m = ctx.shape(3)
        if len(m) < 2 and len(m) != 1:
            ctx.fail(f"attn_mask must have rank >= 1, got {ctx.type(3)}")
    y = (b, hq, sq, dv) if len(q) == 4 else (b, sq, D.mul(hq, dv))
    t1, t2 = ctx.dtype(0), ctx.dtype(2)
    return [TensorType(t1, y),
            TensorType(t1, (b, hkv, total, d)),
            TensorType(t2, (b, hkv, total, dv)),
            TensorType(t1, (b, hq, sq, total))]


def _rotary_flops(c: CostContext):
    return 3 * c.out_numel(0)


@op("RotaryEmbedding", inputs=["X: T", "cos_cache: T", "sin_cache: T", "position_ids?: i64"],
    outputs=["Y: T"], types={"T": FLOAT},
    attrs={"interleaved": ("int", 0), "num_heads": ("int", None), "rotary_embedding_dim": ("int", 0)},
    category="elementwise", flops=_rotary_flops, since=23)
def _rotary(ctx: InferContext):
    """Rotate pairs of head-dim channels by position-dependent angles (RoPE)."""
    x = ctx.shape(0)
    if len(x) not in (3, 4):
        ctx.fail(f"X must be 3-D or 4-D, got {ctx.type(0)}")
    if len(x) == 3 and not ctx.attr("num_heads"):
        ctx.fail("3-D X needs num_heads")
    head = x[3] if len(x) == 4 else D.floordiv(x[2], ctx.attr("num_heads"))
    rot = ctx.attr("rotary_embedding_dim") or head
    cos = ctx.shape(1)
    if cos and isinstance(cos[-1], int) and isinstance(rot, int) and cos[-1] * 2 != rot:
        ctx.fail(f"cos_cache last dim {cos[-1]} is not half the rotary dim {rot}")
    if ctx.shape(1) != ctx.shape(2):
        ctx.fail("cos_cache and sin_cache must have the same shape")
    return [x]
