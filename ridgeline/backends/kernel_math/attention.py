"""Attention index logic (``ridgeline.ir.ops.attention``), once for numpy and torch: heads and
the KV cache, the additive bias of every constraint on which keys a query may see, the formula
itself, and the rotary split. Arrays keep their library; ``namespace`` supplies the names. The
kernels (``KERNELS``) are the reference's: Attention, LinearAttention and CausalConvWithState in
float64, RotaryEmbedding in the input's type (torch runs its own Attention, through SDPA)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .namespace import namespace

__all__ = ["KERNELS", "attention", "attention_bias", "heads_and_cache", "mask_bias", "rotary", "visible"]

_NEG_INF = float("-inf")


def heads_and_cache(node, q, k, v, past_k=None, past_v=None):
    """Attention operands as (batch, heads, seq, head) — 3-D inputs split by ``q_num_heads`` /
    ``kv_num_heads`` — with the past keys and values in front: ``q, present_k, present_v``."""
    xp = namespace(q)
    if q.ndim == 3:
        qh, kvh = node.attr("q_num_heads"), node.attr("kv_num_heads")
        b = q.shape[0]
        q = xp.permute_dims(q.reshape(b, q.shape[1], qh, -1), (0, 2, 1, 3))
        k = xp.permute_dims(k.reshape(b, k.shape[1], kvh, -1), (0, 2, 1, 3))
        v = xp.permute_dims(v.reshape(b, v.shape[1], kvh, -1), (0, 2, 1, 3))
    present_k = xp.concat([past_k, k], 2) if past_k is not None else k
    present_v = xp.concat([past_v, v], 2) if past_v is not None else v
    return q, present_k, present_v


def mask_bias(mask, t: int, work) -> Any:
    """The attention mask input as an additive bias in ``work``: a boolean mask is 0 / -inf; a
    mask shorter than the ``t`` keys is padded with "masked"."""
    xp = namespace(mask)
    boolean = mask.dtype == xp.bool
    if mask.shape[-1] < t:
        mask = xp.pad_last(mask, t - mask.shape[-1], False if boolean else _NEG_INF)
    return xp.astype(xp.where(mask, 0.0, _NEG_INF), work) if boolean else xp.astype(mask, work)


def attention_bias(node, sq: int, t: int, past: int | None, nonpad, mask, work, like) -> Any:
    """The additive bias (0 / -inf, plus the float mask) for ``sq`` queries over ``t`` keys.

    Query i sits at ``p = i + offset``; ``offset`` is the number of keys before the query block:
    ``past`` with a KV cache input, ``nonpad_kv_seqlen - sq`` per batch for an external cache,
    else 0. Key j is allowed by the causal frontier ``j <= p``, the sliding window around p and
    the padding ``j < nonpad_kv_seqlen``. Shape (sq, t), or (batch, 1, sq, t) when the offset
    differs per batch."""
    xp = namespace(like)
    i = xp.arange(sq, like)[:, None]
    valid = xp.astype(nonpad, xp.int64).reshape(-1, 1, 1, 1) if nonpad is not None else None
    pos = i + past if past is not None else (i + (valid - sq) if valid is not None else i)
    j = xp.arange(t, like)[None, :]
    allowed = visible(node, pos, j, xp.ones((sq, t), xp.bool, like))
    if valid is not None:
        allowed = allowed & (j < valid)
    bias = xp.astype(xp.where(allowed, 0.0, _NEG_INF), work)
    return bias + mask_bias(mask, t, work) if mask is not None else bias


def visible(node, pos, j, allowed):
    """``allowed`` narrowed to the keys ``j`` a query at ``pos`` may see by the causal frontier
    (``j <= pos``) and the sliding window (``left_window_size``, ``right_window_size``)."""
    if node.attr("is_causal"):
        allowed = allowed & (j <= pos)
    left, right = node.attr("left_window_size"), node.attr("right_window_size")
    if left >= 0:
        allowed = allowed & (pos - j <= left)
    if right >= 0:
        allowed = allowed & (j - pos <= right)
    return allowed


def masked_softmax(x) -> Any:
    """Softmax over the last axis; a row that is all -inf gives zeros, not NaN."""
    xp = namespace(x)
    m = xp.max(x, -1, keepdims=True)
    e = xp.exp(x - xp.where(xp.isneginf(m), 0.0, m))
    s = xp.sum(e, -1, keepdims=True)
    return e / xp.where(s == 0, 1.0, s)


#: ``fused(q, present_k, present_v, bias, scale) -> y`` in the bias's dtype: a library's own
#: attention for the common case (no softcap, no scores output)
Fused = Callable[[Any, Any, Any, Any, float], Any]


def attention(node, q, k, v, mask=None, past_k=None, past_v=None, nonpad=None, *, work=None,
              fused: Fused | None = None):
    """ONNX Attention (opset 23-25), computed in ``work`` (float64 by default): see
    ridgeline.ir.ops.attention.

    The bias is :func:`attention_bias`; grouped-query attention reads KV head h // (hq / hk);
    a query row that may see no key yields zeros."""
    xp = namespace(q)
    work = xp.float64 if work is None else work
    three_d = q.ndim == 3
    q, present_k, present_v = heads_and_cache(node, q, k, v, past_k, past_v)
    dt = q.dtype
    batch, sq, t = q.shape[0], q.shape[2], present_k.shape[2]
    scale = node.attr("scale")
    scale = 1.0 / math.sqrt(q.shape[3]) if scale is None else scale
    bias = attention_bias(node, sq, t, past_k.shape[2] if past_k is not None else None, nonpad, mask, work, q)
    cap = node.attr("softcap")
    if fused is not None and not cap and len(node.outputs) < 4:
        y = fused(q, present_k, present_v, bias, scale)
    else:
        hq, hk = q.shape[1], present_k.shape[1]
        kk, vv = present_k, present_v
        if hq != hk:
            kk, vv = xp.repeat(kk, hq // hk, 1), xp.repeat(vv, hq // hk, 1)
        qk = xp.matmul(xp.astype(q, work), xp.matrix_transpose(xp.astype(kk, work))) * scale
        capped = cap * xp.tanh(qk / cap) if cap else qk
        scores = capped + bias
        p = xp.where(xp.isneginf(xp.max(bias, -1, keepdims=True)), 0.0, masked_softmax(scores))
        y = xp.matmul(p, xp.astype(vv, work))
    y = xp.astype(y, dt)
    if three_d:
        y = xp.permute_dims(y, (0, 2, 1, 3)).reshape(batch, sq, -1)
    if len(node.outputs) < 4:
        return (y, present_k, present_v)[:len(node.outputs)]
    qk_out = {0: qk, 1: capped, 2: scores, 3: p}[node.attr("qk_matmul_output_mode")]
    return y, present_k, present_v, xp.astype(qk_out, dt)


def rotary(node, x, cos, sin, pos=None) -> Any:
    """RotaryEmbedding: the first ``rotary_embedding_dim`` of each head rotated by (cos, sin) at
    its position, pairs taken interleaved or as halves; the rest passes through."""
    xp = namespace(x)
    x, cos, sin, pos = xp.same_device(x, cos, sin, pos)
    shape = tuple(x.shape)
    if x.ndim == 4:
        x = xp.permute_dims(x, (0, 2, 1, 3))  # -> (batch, seq, heads, head)
    else:
        x = x.reshape(shape[0], shape[1], node.attr("num_heads"), -1)
    rot = node.attr("rotary_embedding_dim") or x.shape[3]
    if pos is not None:
        cos, sin = cos[pos], sin[pos]
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]
    xr, rest = x[..., :rot], x[..., rot:]
    interleaved = node.attr("interleaved")
    x1, x2 = (xr[..., 0::2], xr[..., 1::2]) if interleaved else xp.chunk2(xr)
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    xr = xp.stack([real, imag], -1).reshape(tuple(xr.shape)) if interleaved else xp.concat([real, imag], -1)
    y = xp.concat([xr, rest], -1)
    y = xp.permute_dims(y, (0, 2, 1, 3)) if len(shape) == 4 else y.reshape(shape)
    return xp.astype(y, x.dtype)


def _heads(x, h: int) -> Any:
    """(B, T, H·D) -> (B, H, T, D) in float64."""
    xp = namespace(x)
    b, t, hd = x.shape
    return xp.astype(xp.permute_dims(x.reshape(b, t, h, hd // h), (0, 2, 1, 3)), xp.float64)


def linear_attention(node, q, k, v, past_state=None, decay=None, beta=None):
    """The recurrence of ridgeline.ir.ops.attention.LinearAttention, one token at a time."""
    xp = namespace(q)
    q, k, v, past_state, decay, beta = xp.same_device(q, k, v, past_state, decay, beta)
    hq, hkv, rule = node.attr("q_num_heads"), node.attr("kv_num_heads"), node.attr("update_rule")
    b, t, _ = q.shape
    q4, k4, v4 = _heads(q, hq), _heads(k, hkv), _heads(v, hkv)
    dk, dv = q4.shape[3], v4.shape[3]
    scale = node.attr("scale") or 1.0 / math.sqrt(dk)
    if decay is not None:  # per-head (B, T, Hkv) or per key dim (B, T, Hkv·dk) -> (B, Hkv, T, 1 | dk)
        g = _heads(decay, hkv)
    if beta is not None:  # (B, T, Hkv) or (B, T, 1) -> (B, Hkv | 1, T, 1)
        bt = xp.astype(xp.permute_dims(beta.reshape(b, t, beta.shape[2], 1), (0, 2, 1, 3)), xp.float64)
    state = xp.astype(past_state, xp.float64) if past_state is not None else \
        xp.zeros((b, hkv, dk, dv), xp.float64, like=q)
    out = xp.zeros((b, hq, t, dv), xp.float64, like=q)
    for i in range(t):
        kt, vt = k4[:, :, i], v4[:, :, i]
        if rule in ("gated", "gated_delta"):
            state = state * xp.exp(g[:, :, i])[..., None]
        if rule in ("delta", "gated_delta"):
            vt = bt[:, :, i] * (vt - xp.einsum("bhdm,bhd->bhm", state, kt))
        state = state + kt[..., :, None] * vt[..., None, :]
        read = xp.repeat(state, hq // hkv, 1)
        out[:, :, i] = scale * xp.einsum("bhd,bhdm->bhm", q4[:, :, i], read)
    y = xp.astype(xp.permute_dims(out, (0, 2, 1, 3)).reshape(b, t, hq * dv), q.dtype)
    return y, xp.astype(state, past_state.dtype if past_state is not None else q.dtype)


def causal_conv(node, x, w, bias=None, past_state=None):
    xp = namespace(x)
    x, w, bias, past_state = xp.same_device(x, w, bias, past_state)
    b, c, _ = x.shape
    k = w.shape[2]
    pad = past_state if past_state is not None else xp.zeros((b, c, k - 1), x.dtype, like=x)
    padded = xp.concat([pad, x], 2)
    windows = xp.windows(xp.astype(padded, xp.float64), k, 2)  # (B, C, L, k)
    y = xp.einsum("bclk,ck->bcl", windows, xp.astype(w[:, 0, :], xp.float64))
    if bias is not None:
        y = y + xp.astype(bias, xp.float64)[None, :, None]
    y = xp.astype(y, x.dtype)  # the convolution's result is rounded before the activation, as ONNX does
    if node.attr("activation") in ("silu", "swish"):
        yf = xp.astype(y, xp.float64)
        y = xp.astype(yf / (1.0 + xp.exp(-yf)), x.dtype)
    return y, padded[:, :, padded.shape[2] - (k - 1):]


KERNELS = {"Attention": attention, "RotaryEmbedding": rotary, "LinearAttention": linear_attention,
           "CausalConvWithState": causal_conv}
