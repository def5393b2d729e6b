"""Reference kernels of ``ridgeline.ir.ops.attention``."""

from __future__ import annotations

import numpy as np

from . import kernel
from .reduction import softmax


@kernel("Attention")
def attention(node, q, k, v, mask=None, past_k=None, past_v=None, nonpad=None):
    """ONNX Attention (opset 23/24): see ridgeline.ir.ops.attention for the formula."""
    three_d = q.ndim == 3
    qh, kvh = node.attr("q_num_heads"), node.attr("kv_num_heads")
    if three_d:
        b = q.shape[0]
        q = q.reshape(b, q.shape[1], qh, -1).transpose(0, 2, 1, 3)
        k = k.reshape(b, k.shape[1], kvh, -1).transpose(0, 2, 1, 3)
        v = v.reshape(b, v.shape[1], kvh, -1).transpose(0, 2, 1, 3)
    dt = q.dtype
    present_k = np.concatenate([past_k, k], axis=2) if past_k is not None else k
    present_v = np.concatenate([past_v, v], axis=2) if past_v is not None else v
    sq, t = q.shape[2], present_k.shape[2]
    scale = node.attr("scale")
    scale = 1.0 / np.sqrt(q.shape[3]) if scale is None else scale
    bias = np.zeros((sq, t), dtype=np.float64)
    if mask is not None:
        m = mask
        if m.shape[-1] < t:  # a mask shorter than the keys is padded with "masked"
            pad = [(0, 0)] * (m.ndim - 1) + [(0, t - m.shape[-1])]
            m = np.pad(m, pad, constant_values=False if m.dtype == np.bool_ else -np.inf)
        m = np.where(m, 0.0, -np.inf) if m.dtype == np.bool_ else m.astype(np.float64)
        bias = bias + m
    if node.attr("is_causal"):
        offset = past_k.shape[2] if past_k is not None else 0
        i = np.arange(sq)[:, None]
        j = np.arange(t)[None, :]
        bias = bias + np.where(j <= i + offset, 0.0, -np.inf)
    if nonpad is not None:
        pm = np.arange(t)[None, :] < nonpad.reshape(-1, 1)
        bias = bias + np.where(pm, 0.0, -np.inf).reshape(-1, 1, 1, t)
    hq, hk = q.shape[1], present_k.shape[1]
    kk, vv = present_k, present_v
    if hq != hk:
        kk = np.repeat(kk, hq // hk, axis=1)
        vv = np.repeat(vv, hq // hk, axis=1)
    scores = np.matmul(q.astype(np.float64), np.swapaxes(kk.astype(np.float64), -1, -2)) * scale
    cap = node.attr("softcap")
    if cap:
        scores = cap * np.tanh(scores / cap)
    qk_raw = scores
    scores = scores + bias
    with np.errstate(invalid="ignore"):
        p = softmax(scores, -1)
    all_masked = np.isneginf(np.max(bias + np.zeros_like(scores), axis=-1, keepdims=True))
    p = np.where(all_masked, 0.0, p)
    y = np.matmul(p, vv.astype(np.float64)).astype(dt)
    if three_d:
        y = y.transpose(0, 2, 1, 3).reshape(y.shape[0], sq, -1)
    mode = node.attr("qk_matmul_output_mode")
    qk = {0: qk_raw, 1: qk_raw, 2: scores, 3: p}.get(mode, qk_raw).astype(dt)
    return (y, present_k, present_v, qk)[:len(node.outputs)]


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
