"""torch kernels of ``ridgeline.ir.ops.attention``: the same math as the numpy reference."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...kernel_math.attention import attention as shared_attention
from ...kernel_math.attention import rotary as shared_rotary
from . import kernel, same_device


def _sdpa(q, k, v, bias, scale):
    """torch's scaled_dot_product_attention in the bias's dtype; a query that may see no key
    gives zeros (SDPA gives NaN there)."""
    work = bias.dtype
    y = F.scaled_dot_product_attention(q.to(work), k.to(work), v.to(work), attn_mask=bias, scale=scale,
                                       enable_gqa=q.shape[1] != k.shape[1])
    return torch.where(torch.isneginf(torch.amax(bias, dim=-1, keepdim=True)), 0.0, y)


@kernel("Attention")
def attention(node, q, k, v, mask=None, past_k=None, past_v=None, nonpad=None):
    """ONNX Attention: the shared formula (``kernel_math.attention``) in float32 (float64 for f64),
    through SDPA when neither a softcap nor the scores output is asked for."""
    q, k, v, mask, past_k, past_v, nonpad = same_device(q, k, v, mask, past_k, past_v, nonpad)
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    return shared_attention(node, q, k, v, mask, past_k, past_v, nonpad, work=work, fused=_sdpa)


@kernel("RotaryEmbedding")
def rotary(node, x, cos, sin, pos=None):
    return shared_rotary(node, *same_device(x, cos, sin, pos))


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
