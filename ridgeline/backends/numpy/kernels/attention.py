"""Reference kernels of ``ridgeline.ir.ops.attention``."""

from __future__ import annotations

import numpy as np

from ...kernel_math.attention import attention as shared_attention
from ...kernel_math.attention import rotary
from . import kernel


@kernel("Attention")
def attention(node, q, k, v, mask=None, past_k=None, past_v=None, nonpad=None):
    """ONNX Attention (opset 23-25) in float64: ``kernel_math.attention`` (the shared formula)."""
    return shared_attention(node, q, k, v, mask, past_k, past_v, nonpad, work=np.float64)


kernel("RotaryEmbedding")(rotary)


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
