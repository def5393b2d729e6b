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
