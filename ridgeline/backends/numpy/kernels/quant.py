"""Reference kernel of ``ridgeline.ir.ops.quant``'s DynamicQuantizeLinear (QuantizeLinear and
DequantizeLinear are ``kernel_math.quant``'s)."""

from __future__ import annotations

import numpy as np

from . import kernel


@kernel("DynamicQuantizeLinear")
def dynamic_quantize_linear(node, x):
    # computed in float32 step by step, as the ONNX definition spells it out
    qmin, qmax = 0, 255
    hi = np.float32(max(0.0, float(np.max(x)))) if x.size else np.float32(0)
    lo = np.float32(min(0.0, float(np.min(x)))) if x.size else np.float32(0)
    scale = np.float32(1.0 if hi == lo else hi - lo) / np.float32(qmax - qmin)
    zero = np.rint(np.clip(np.float32(qmin) - lo / scale, qmin, qmax))
    y = np.clip(np.rint(x / scale) + zero, qmin, qmax)
    return y.astype(np.uint8), np.array(scale, np.float32), np.array(zero, np.uint8)
