"""torch kernel of ``ridgeline.ir.ops.quant``'s DynamicQuantizeLinear, following the numpy
reference step by step (QuantizeLinear and DequantizeLinear are ``kernel_math.quant``'s)."""

from __future__ import annotations

import torch

from . import kernel


@kernel("DynamicQuantizeLinear")
def dynamic_quantize_linear(node, x):
    # float32 step by step, as the ONNX definition spells it out
    f32 = torch.float32
    hi = torch.clamp(torch.max(x), min=0.0) if x.numel() else torch.zeros((), dtype=f32, device=x.device)
    lo = torch.clamp(torch.min(x), max=0.0) if x.numel() else torch.zeros((), dtype=f32, device=x.device)
    scale = torch.where(hi == lo, torch.ones_like(hi), hi - lo) / torch.tensor(255.0, dtype=f32, device=x.device)
    zero = torch.round(torch.clamp(0.0 - lo / scale, 0, 255))
    y = torch.clamp(torch.round(x / scale) + zero, 0, 255)
    return y.to(torch.uint8), scale.to(f32), zero.to(torch.uint8)
