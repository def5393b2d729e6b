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
from . import envelopes
from .spec import FLOAT, CostContext, InferContext, op

__all__ = ["attention_dims", "node_attention_dims"]


def attention_dims(q: tuple, k: tuple, v: tuple, q_heads, kv_heads):
    """(batch, Hq, Sq, D, Hkv, Skv, Dv) from Q/K/V shapes in either layout."""
    if len(q) == 4:
        return q[0], q[1], q[2], q[3], k[1], k[2], v[3]
    hq, hkv = q_heads, kv_heads
    return (q[0], hq, q[1], D.floordiv(q[2], hq), hkv, k[1], D.floordiv(v[2], hkv))


def node_attention_dims(node) -> tuple:
    """(batch, Hq, Sq, D, Hkv, Skv, Dv, past) of an Attention node from its inputs' shapes; past is
    the KV cache's length (0 without one)."""
    s = [v.type.shape if v is not None else None for v in node.inputs]
    past = s[4][2] if len(s) > 4 and s[4] is not None else 0
    return (*attention_dims(s[0], s[1], s[2], node.attr("q_num_heads"), node.attr("kv_num_heads")), past)


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
    category="attention", flops=_attention_flops, bytes=_attention_bytes, since=25,
    envelope=envelopes.convex_in(2),  # each output row is a convex combination of V's rows
    arbitrary="masked-rows")  # a query that sees no key: zeros here, NaN in ONNX's formula; either is right
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


def _rotary_bytes(c: CostContext):
    # X in, Y out, and the cos/sin rows the positions select (a 2-D cache is indexed by
    # position_ids, as a Gather reads the rows it selects; a 3-D one is already per token)
    table = c.in_bytes(1) + c.in_bytes(2)
    cache = c.in_shape(1)
    positions = len(c.in_types) > 3 and c.in_types[3] is not None
    if positions and len(cache) == 2 and isinstance(cache[0], int) and cache[0] > 0:
        rows = c.in_numel(3)
        if isinstance(rows, int):
            table = min(table, table * rows / cache[0])
    return c.in_bytes(0) + c.out_bytes(0) + table + (c.in_bytes(3) if positions else 0)


@op("RotaryEmbedding", inputs=["X: T", "cos_cache: T", "sin_cache: T", "position_ids?: i64"],
    outputs=["Y: T"], types={"T": FLOAT},
    attrs={"interleaved": ("int", 0), "num_heads": ("int", None), "rotary_embedding_dim": ("int", 0)},
    category="elementwise", flops=_rotary_flops, bytes=_rotary_bytes, since=23)
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


_UPDATE_RULES = ("linear", "gated", "delta", "gated_delta")


def _linear_attention_flops(c: CostContext):
    b, t, qd = c.in_shape(0)
    hq, hkv = c.attr("q_num_heads"), c.attr("kv_num_heads")
    dk, dv = qd / hq, c.in_shape(2)[2] / hkv
    per_step = 2 * hkv * dk * dv + 2 * hq * dk * dv  # state write (outer product) and read
    if c.attr("update_rule") in ("delta", "gated_delta"):
        per_step = per_step + 2 * hkv * dk * dv  # the retrieval S^T k
    if c.attr("update_rule") in ("gated", "gated_delta"):
        per_step = per_step + hkv * dk * dv  # the decay of the state
    return b * t * per_step


@op("LinearAttention",
    inputs=["query: T", "key: T", "value: T", "past_state?: S", "decay?: T", "beta?: T"],
    outputs=["output: T", "present_state: S"], types={"T": FLOAT, "S": FLOAT},
    attrs={"chunk_size": ("int", 64), "kv_num_heads": ("int",), "q_num_heads": ("int",),
           "scale": ("float", 0.0), "update_rule": ("str", "gated_delta")},
    category="attention", flops=_linear_attention_flops, since=27,
    envelope=envelopes.product_of_inputs((0, 1, 2), (1, -2)))  # q·Σ k⊗v over the sequence
def _linear_attention(ctx: InferContext):
    """Recurrent linear attention over packed ``(B, T, H·D)`` inputs with a ``(B, Hkv, dk, dv)``
    state: ``S_t = a_t·S_{t-1} + k_t ⊗ v'_t``, ``o_t = scale · q_tᵀ S_t`` where the decay a_t = exp(g_t)
    (gated rules) and the delta rules write ``v'_t = β_t (v_t - a_t S_{t-1}ᵀ k_t)``; GQA shares each
    KV head's state among its query heads."""
    rule = ctx.attr("update_rule")
    if rule not in _UPDATE_RULES:
        ctx.fail(f"update_rule must be one of {', '.join(_UPDATE_RULES)}, got {rule!r}")
    gated, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    if ctx.has(4) != gated:
        ctx.fail(f"update_rule {rule!r} {'needs' if gated else 'takes no'} decay input")
    if ctx.has(5) != delta:
        ctx.fail(f"update_rule {rule!r} {'needs' if delta else 'takes no'} beta input")
    q, k, v = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    if not len(q) == len(k) == len(v) == 3:
        ctx.fail("query, key and value must be 3-D (B, T, H·D)")
    hq, hkv = ctx.attr("q_num_heads"), ctx.attr("kv_num_heads")
    if hq <= 0 or hkv <= 0 or hq % hkv:
        ctx.fail(f"q_num_heads {hq} must be a positive multiple of kv_num_heads {hkv}")
    for what, dim, h in (("query", q[2], hq), ("key", k[2], hkv), ("value", v[2], hkv)):
        if isinstance(dim, int) and dim % h:
            ctx.fail(f"{what} width {dim} is not divisible by {h} heads")
    dk, dv = D.floordiv(q[2], hq), D.floordiv(v[2], hkv)
    state = (q[0], hkv, dk, dv)
    if ctx.has(3) and len(ctx.shape(3)) != 4:
        ctx.fail(f"past_state must be 4-D (B, Hkv, dk, dv), got {ctx.type(3)}")
    sdt = ctx.dtype(3) if ctx.has(3) else ctx.dtype(0)
    return [TensorType(ctx.dtype(0), (q[0], q[1], D.mul(hq, dv))), TensorType(sdt, state)]


def _causal_conv_flops(c: CostContext):
    k = c.in_shape(1)[2]
    extra = 4 if c.attr("activation") in ("silu", "swish") else 0
    return c.out_numel(0) * (2 * k + extra)


@op("CausalConvWithState", inputs=["input: T", "weight: T", "bias?: T", "past_state?: T"],
    outputs=["output: T", "present_state: T"], types={"T": FLOAT}, attrs={"activation": ("str", "none")},
    category="other", flops=_causal_conv_flops, since=27)
def _causal_conv(ctx: InferContext):
    """Depthwise causal 1-D convolution of ``(B, C, L)`` with a ``(C, 1, k)`` kernel over the
    carried ``(B, C, k-1)`` state (zeros if absent), optional SiLU; also returns the new state."""
    if ctx.attr("activation") not in ("none", "silu", "swish"):
        ctx.fail(f"activation must be 'none', 'silu' or 'swish', got {ctx.attr('activation')!r}")
    x, w = ctx.shape(0), ctx.shape(1)
    if len(x) != 3 or len(w) != 3:
        ctx.fail(f"input must be (B, C, L) and weight (C, 1, k), got {ctx.type(0)}, {ctx.type(1)}")
    if w[1] != 1 or (isinstance(w[0], int) and isinstance(x[1], int) and w[0] != x[1]):
        ctx.fail(f"weight {ctx.type(1)} is not a depthwise (C, 1, k) kernel for {x[1]} channels")
    return [x, (x[0], x[1], D.sub(w[2], 1))]
