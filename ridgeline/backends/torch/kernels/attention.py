"""torch's Attention: the shared formula (``kernel_math.attention``) in float32 (float64 for f64)
through ``scaled_dot_product_attention``, torch's own function for it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...kernel_math.attention import attention as shared_attention
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
    """ONNX Attention through SDPA when neither a softcap nor the scores output is asked for."""
    q, k, v, mask, past_k, past_v, nonpad = same_device(q, k, v, mask, past_k, past_v, nonpad)
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    return shared_attention(node, q, k, v, mask, past_k, past_v, nonpad, work=work, fused=_sdpa)
