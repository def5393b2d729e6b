"""torch kernels of ``ridgeline.ir.ops.attention``: the same math as the numpy reference."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import kernel, same_device
from .reduction import softmax


@kernel("Attention")
def attention(node, q, k, v, mask=None, past_k=None, past_v=None, nonpad=None):
    """ONNX Attention (opset 23/24): see ridgeline.ir.ops.attention for the formula."""
    q, k, v, mask, past_k, past_v, nonpad = same_device(q, k, v, mask, past_k, past_v, nonpad)
    three_d = q.dim() == 3
    if three_d:
        qh, kvh = node.attr("q_num_heads"), node.attr("kv_num_heads")
        b = q.shape[0]
        q = q.reshape(b, q.shape[1], qh, -1).transpose(1, 2)
        k = k.reshape(b, k.shape[1], kvh, -1).transpose(1, 2)
        v = v.reshape(b, v.shape[1], kvh, -1).transpose(1, 2)
    dt = q.dtype
    present_k = torch.cat([past_k, k], dim=2) if past_k is not None else k
    present_v = torch.cat([past_v, v], dim=2) if past_v is not None else v
    batch, sq, t = q.shape[0], q.shape[2], present_k.shape[2]
    scale = node.attr("scale")
    scale = 1.0 / math.sqrt(q.shape[3]) if scale is None else scale
    work = torch.float64 if dt == torch.float64 else torch.float32
    dev = q.device
    # query positions: (sq, 1), or (batch, 1, sq, 1) when the offset differs per batch
    if past_k is not None:
        pos = torch.arange(sq, device=dev)[:, None] + past_k.shape[2]
    elif nonpad is not None:
        pos = torch.arange(sq, device=dev)[:, None] + (nonpad.to(torch.int64).reshape(-1, 1, 1, 1) - sq)
    else:
        pos = torch.arange(sq, device=dev)[:, None]
    j = torch.arange(t, device=dev)[None, :]
    allowed = torch.ones((sq, t), dtype=torch.bool, device=dev)
    if node.attr("is_causal"):
        allowed = allowed & (j <= pos)
    left, right = node.attr("left_window_size"), node.attr("right_window_size")
    if left >= 0:
        allowed = allowed & (pos - j <= left)
    if right >= 0:
        allowed = allowed & (j - pos <= right)
    if nonpad is not None:
        allowed = allowed & (j < nonpad.to(torch.int64).reshape(-1, 1, 1, 1))
    bias = torch.where(allowed, 0.0, float("-inf")).to(work)
    if mask is not None:
        m = mask
        if m.shape[-1] < t:  # a mask shorter than the keys is padded with "masked"
            fill = False if m.dtype == torch.bool else float("-inf")
            m = F.pad(m, (0, t - m.shape[-1]), value=fill)
        bias = bias + (torch.where(m, 0.0, float("-inf")).to(work) if m.dtype == torch.bool else m.to(work))
    hq, hk = q.shape[1], present_k.shape[1]
    kk, vv = present_k, present_v
    if hq != hk:  # grouped-query attention: query head h reads KV head h // (hq / hk)
        kk = kk.repeat_interleave(hq // hk, dim=1)
        vv = vv.repeat_interleave(hq // hk, dim=1)
    qk = torch.matmul(q.to(work), kk.to(work).transpose(-1, -2)) * scale
    capped = qk
    cap = node.attr("softcap")
    if cap:
        capped = cap * torch.tanh(qk / cap)
    scores = capped + bias
    p = softmax(scores, -1)
    y = torch.matmul(p, vv.to(work)).to(dt)
    if three_d:
        y = y.transpose(1, 2).reshape(batch, sq, -1)
    qk_out = {0: qk, 1: capped, 2: scores, 3: p}[node.attr("qk_matmul_output_mode")].to(dt)
    return (y, present_k, present_v, qk_out)[:len(node.outputs)]


@kernel("RotaryEmbedding")
def rotary(node, x, cos, sin, pos=None):
    x, cos, sin, pos = same_device(x, cos, sin, pos)
    shape = x.shape
    if x.dim() == 4:
        x = x.transpose(1, 2)  # -> (batch, seq, heads, head)
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
        x1, x2 = torch.chunk(xr, 2, dim=-1)
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    if node.attr("interleaved"):
        xr = torch.stack([real, imag], dim=-1).reshape(xr.shape)
    else:
        xr = torch.cat([real, imag], dim=-1)
    y = torch.cat([xr, xp], dim=-1)
    y = y.transpose(1, 2) if len(shape) == 4 else y.reshape(shape)
    return y.to(x.dtype)


def _heads(x: torch.Tensor, h: int) -> torch.Tensor:
    """(B, T, H·D) -> (B, H, T, D) in float64."""
    b, t, hd = x.shape
    return x.reshape(b, t, h, hd // h).transpose(1, 2).double()


@kernel("LinearAttention")
def linear_attention(node, q, k, v, past_state=None, decay=None, beta=None):
    """The recurrence of ridgeline.ir.ops.attention.LinearAttention, one token at a time."""
    q, k, v, past_state, decay, beta = same_device(q, k, v, past_state, decay, beta)
    hq, hkv = node.attr("q_num_heads"), node.attr("kv_num_heads")
    b, t, _ = q.shape
    q4, k4, v4 = _heads(q, hq), _heads(k, hkv), _heads(v, hkv)
    dk, dv = q4.shape[3], v4.shape[3]
    scale = node.attr("scale") or 1.0 / math.sqrt(dk)
    g = _heads(decay, hkv) if decay is not None else None
    bt = beta.reshape(b, t, beta.shape[2], 1).transpose(1, 2).double() if beta is not None else None
    state = past_state.double() if past_state is not None else torch.zeros((b, hkv, dk, dv), dtype=torch.float64,
                                                                            device=q.device)
    out = torch.zeros((b, hq, t, dv), dtype=torch.float64, device=q.device)
    for i in range(t):
        kt, vt = k4[:, :, i], v4[:, :, i]
        if g is not None:
            state = state * torch.exp(g[:, :, i])[..., None]
        if bt is not None:
            vt = bt[:, :, i] * (vt - torch.einsum("bhdm,bhd->bhm", state, kt))
        state = state + kt[..., :, None] * vt[..., None, :]
        read = torch.repeat_interleave(state, hq // hkv, dim=1)
        out[:, :, i] = scale * torch.einsum("bhd,bhdm->bhm", q4[:, :, i], read)
    y = out.transpose(1, 2).reshape(b, t, hq * dv).to(q.dtype)
    return y, state.to(past_state.dtype if past_state is not None else q.dtype)


@kernel("CausalConvWithState")
def causal_conv(node, x, w, bias=None, past_state=None):
    x, w, bias, past_state = same_device(x, w, bias, past_state)
    b, c, length = x.shape
    k = w.shape[2]
    pad = past_state if past_state is not None else torch.zeros((b, c, k - 1), dtype=x.dtype, device=x.device)
    padded = torch.cat([pad, x], dim=2)
    windows = padded.double().unfold(2, k, 1)  # (B, C, L, k)
    y = torch.einsum("bclk,ck->bcl", windows, w[:, 0, :].double())
    if bias is not None:
        y = y + bias.double()[None, :, None]
    y = y.to(x.dtype)  # the convolution is rounded before the activation, as ONNX does
    if node.attr("activation") in ("silu", "swish"):
        yf = y.double()
        y = (yf * torch.sigmoid(yf)).to(x.dtype)
    return y, padded[:, :, padded.shape[2] - (k - 1):]
