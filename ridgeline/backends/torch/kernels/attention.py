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
    qh, kvh = node.attr("q_num_heads"), node.attr("kv_num_heads")
    if three_d:
        b = q.shape[0]
        q = q.reshape(b, q.shape[1], qh, -1).transpose(1, 2)
        k = k.reshape(b, k.shape[1], kvh, -1).transpose(1, 2)
        v = v.reshape(b, v.shape[1], kvh, -1).transpose(1, 2)
    dt = q.dtype
    present_k = torch.cat([past_k, k], dim=2) if past_k is not None else k
    present_v = torch.cat([past_v, v], dim=2) if past_v is not None else v
    sq, t = q.shape[2], present_k.shape[2]
    scale = node.attr("scale")
    scale = 1.0 / math.sqrt(q.shape[3]) if scale is None else scale
    work = torch.float64 if dt == torch.float64 else torch.float32
    bias = torch.zeros((sq, t), dtype=work, device=q.device)
    if mask is not None:
        m = mask
        if m.shape[-1] < t:  # a mask shorter than the keys is padded with "masked"
            fill = False if m.dtype == torch.bool else float("-inf")
            m = F.pad(m, (0, t - m.shape[-1]), value=fill)
        m = torch.where(m, 0.0, float("-inf")).to(work) if m.dtype == torch.bool else m.to(work)
        bias = bias + m
    if node.attr("is_causal"):
        offset = past_k.shape[2] if past_k is not None else 0
        i = torch.arange(sq, device=q.device)[:, None]
        j = torch.arange(t, device=q.device)[None, :]
        bias = bias + torch.where(j <= i + offset, 0.0, float("-inf")).to(work)
    if nonpad is not None:
        pm = torch.arange(t, device=q.device)[None, :] < nonpad.reshape(-1, 1)
        bias = bias + torch.where(pm, 0.0, float("-inf")).to(work).reshape(-1, 1, 1, t)
    hq, hk = q.shape[1], present_k.shape[1]
    kk, vv = present_k, present_v
    if hq != hk:
        kk = kk.repeat_interleave(hq // hk, dim=1)
        vv = vv.repeat_interleave(hq // hk, dim=1)
    scores = torch.matmul(q.to(work), kk.to(work).transpose(-1, -2)) * scale
    cap = node.attr("softcap")
    if cap:
        scores = cap * torch.tanh(scores / cap)
    qk_raw = scores
    scores = scores + bias
    p = softmax(scores, -1)
    y = torch.matmul(p, vv.to(work)).to(dt)
    if three_d:
        y = y.transpose(1, 2).reshape(y.shape[0], sq, -1)
    mode = node.attr("qk_matmul_output_mode")
    qk = {0: qk_raw, 1: qk_raw, 2: scores, 3: p}.get(mode, qk_raw).to(dt)
    return (y, present_k, present_v, qk)[:len(node.outputs)]


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
