"""Reference kernels of ``ridgeline.ir.ops.attention``."""

from __future__ import annotations

import numpy as np

from . import kernel
from .reduction import softmax


def heads_and_cache(node, q, k, v, past_k=None, past_v=None):
    """Attention operands as (batch, heads, seq, head) — 3-D inputs split by ``q_num_heads`` /
    ``kv_num_heads`` — with the past keys and values in front: ``q, present_k, present_v``."""
    if q.ndim == 3:
        qh, kvh = node.attr("q_num_heads"), node.attr("kv_num_heads")
        b = q.shape[0]
        q = q.reshape(b, q.shape[1], qh, -1).transpose(0, 2, 1, 3)
        k = k.reshape(b, k.shape[1], kvh, -1).transpose(0, 2, 1, 3)
        v = v.reshape(b, v.shape[1], kvh, -1).transpose(0, 2, 1, 3)
    present_k = np.concatenate([past_k, k], axis=2) if past_k is not None else k
    present_v = np.concatenate([past_v, v], axis=2) if past_v is not None else v
    return q, present_k, present_v


@kernel("Attention")
def attention(node, q, k, v, mask=None, past_k=None, past_v=None, nonpad=None):
    """ONNX Attention (opset 23-25): see ridgeline.ir.ops.attention for the formula.

    Computed in float64. The additive bias is the float mask plus 0/-inf for every constraint
    on which keys a query may see: a boolean mask, the causal frontier ``j <= i + offset``, the
    sliding window around ``p = i + offset`` and the padding given by ``nonpad_kv_seqlen``.
    ``offset`` is the number of keys before the query block: the past length with a KV cache
    input, ``nonpad_kv_seqlen - q_len`` per batch for an external cache, else 0. A query row
    that may see no key yields zeros, not NaN.
    """
    three_d = q.ndim == 3
    q, present_k, present_v = heads_and_cache(node, q, k, v, past_k, past_v)
    dt = q.dtype
    batch, sq, t = q.shape[0], q.shape[2], present_k.shape[2]
    scale = node.attr("scale")
    scale = 1.0 / np.sqrt(q.shape[3]) if scale is None else scale

    # query positions: (sq, 1), or (batch, 1, sq, 1) when the offset differs per batch
    if past_k is not None:
        pos = np.arange(sq)[:, None] + past_k.shape[2]
    elif nonpad is not None:
        pos = np.arange(sq)[:, None] + (nonpad.astype(np.int64).reshape(-1, 1, 1, 1) - sq)
    else:
        pos = np.arange(sq)[:, None]
    j = np.arange(t)[None, :]
    allowed = np.ones((sq, t), dtype=bool)
    if node.attr("is_causal"):
        allowed = allowed & (j <= pos)
    left, right = node.attr("left_window_size"), node.attr("right_window_size")
    if left >= 0:
        allowed = allowed & (pos - j <= left)
    if right >= 0:
        allowed = allowed & (j - pos <= right)
    if nonpad is not None:
        allowed = allowed & (j < nonpad.astype(np.int64).reshape(-1, 1, 1, 1))
    bias = np.where(allowed, 0.0, -np.inf)
    if mask is not None:
        m = mask
        if m.shape[-1] < t:  # a mask shorter than the keys is padded with "masked"
            pad = [(0, 0)] * (m.ndim - 1) + [(0, t - m.shape[-1])]
            m = np.pad(m, pad, constant_values=False if m.dtype == np.bool_ else -np.inf)
        bias = bias + (np.where(m, 0.0, -np.inf) if m.dtype == np.bool_ else m.astype(np.float64))

    hq, hk = q.shape[1], present_k.shape[1]
    kk, vv = present_k, present_v
    if hq != hk:  # grouped-query attention: query head h reads KV head h // (hq / hk)
        kk = np.repeat(kk, hq // hk, axis=1)
        vv = np.repeat(vv, hq // hk, axis=1)
    qk = np.matmul(q.astype(np.float64), np.swapaxes(kk.astype(np.float64), -1, -2)) * scale
    capped = qk
    cap = node.attr("softcap")
    if cap:
        capped = cap * np.tanh(qk / cap)
    scores = capped + bias
    all_masked = np.isneginf(np.max(bias + np.zeros_like(scores), axis=-1, keepdims=True))
    with np.errstate(invalid="ignore"):
        p = np.where(all_masked, 0.0, softmax(scores, -1))
    y = np.matmul(p, vv.astype(np.float64)).astype(dt)
    if three_d:
        y = y.transpose(0, 2, 1, 3).reshape(batch, sq, -1)
    mode = node.attr("qk_matmul_output_mode")
    qk_out = {0: qk, 1: capped, 2: scores, 3: p}[mode].astype(dt)
    return (y, present_k, present_v, qk_out)[:len(node.outputs)]


@kernel("RotaryEmbedding")
def rotary(node, x, cos, sin, pos=None):
    shape = x.shape
    if x.ndim == 4:
        x = x.transpose(0, 2, 1, 3)  # -> (batch, seq, heads, head)
    else:
        x = x.reshape(shape[0], shape[1], node.attr("num_heads"), -1)
    head = x.shape[3]
    rot = node.attr("rotary_embedding_dim") or head
    if pos is not None:
        cos, sin = cos[pos], sin[pos]
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]
    xr, xp = x[..., :rot], x[..., rot:]
    if node.attr("interleaved"):
        x1, x2 = xr[..., 0::2], xr[..., 1::2]
    else:
        x1, x2 = np.split(xr, 2, axis=-1)
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    if node.attr("interleaved"):
        xr = np.stack([real, imag], axis=-1).reshape(xr.shape)
    else:
        xr = np.concatenate([real, imag], axis=-1)
    y = np.concatenate([xr, xp], axis=-1)
    y = y.transpose(0, 2, 1, 3) if len(shape) == 4 else y.reshape(shape)
    return y.astype(x.dtype, copy=False)


def _heads(x: np.ndarray, h: int) -> np.ndarray:
    """(B, T, H·D) -> (B, H, T, D) in float64."""
    b, t, hd = x.shape
    return x.reshape(b, t, h, hd // h).transpose(0, 2, 1, 3).astype(np.float64)


@kernel("LinearAttention")
def linear_attention(node, q, k, v, past_state=None, decay=None, beta=None):
    """The recurrence of ridgeline.ir.ops.attention.LinearAttention, one token at a time."""
    hq, hkv, rule = node.attr("q_num_heads"), node.attr("kv_num_heads"), node.attr("update_rule")
    b, t, _ = q.shape
    q4, k4, v4 = _heads(q, hq), _heads(k, hkv), _heads(v, hkv)
    dk, dv = q4.shape[3], v4.shape[3]
    scale = node.attr("scale") or 1.0 / np.sqrt(dk)
    if decay is not None:  # per-head (B, T, Hkv) or per key dim (B, T, Hkv·dk) -> (B, Hkv, T, 1 | dk)
        g = _heads(decay, hkv)
    if beta is not None:  # (B, T, Hkv) or (B, T, 1) -> (B, Hkv | 1, T, 1)
        bt = beta.reshape(b, t, beta.shape[2], 1).transpose(0, 2, 1, 3).astype(np.float64)
    state = past_state.astype(np.float64) if past_state is not None else np.zeros((b, hkv, dk, dv))
    out = np.zeros((b, hq, t, dv))
    for i in range(t):
        kt, vt = k4[:, :, i], v4[:, :, i]
        if rule in ("gated", "gated_delta"):
            state = state * np.exp(g[:, :, i])[..., None]
        if rule in ("delta", "gated_delta"):
            vt = bt[:, :, i] * (vt - np.einsum("bhdm,bhd->bhm", state, kt))
        state = state + kt[..., :, None] * vt[..., None, :]
        read = np.repeat(state, hq // hkv, axis=1)
        out[:, :, i] = scale * np.einsum("bhd,bhdm->bhm", q4[:, :, i], read)
    y = out.transpose(0, 2, 1, 3).reshape(b, t, hq * dv).astype(q.dtype)
    sdt = past_state.dtype if past_state is not None else q.dtype
    return y, state.astype(sdt)


@kernel("CausalConvWithState")
def causal_conv(node, x, w, bias=None, past_state=None):
    b, c, _ = x.shape
    k = w.shape[2]
    pad = past_state if past_state is not None else np.zeros((b, c, k - 1), x.dtype)
    padded = np.concatenate([pad, x], axis=2)
    windows = np.lib.stride_tricks.sliding_window_view(padded.astype(np.float64), k, axis=2)  # (B, C, L, k)
    y = np.einsum("bclk,ck->bcl", windows, w[:, 0, :].astype(np.float64))
    if bias is not None:
        y = y + bias.astype(np.float64)[None, :, None]
    y = y.astype(x.dtype)  # the convolution's result is rounded before the activation, as ONNX does
    if node.attr("activation") in ("silu", "swish"):
        yf = y.astype(np.float64)
        y = (yf / (1.0 + np.exp(-yf))).astype(x.dtype)
    return y, padded[:, :, padded.shape[2] - (k - 1):]
