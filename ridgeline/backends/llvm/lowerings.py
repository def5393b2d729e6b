"""Which lowering takes a node: the dispatch table of the llvm backend."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ...ir import Node
from .elementwise import ElementwiseLowering, is_elementwise
from .lowering import Lowering, Unsupported
from .attention import AttentionLowering, RotaryLowering
from .gemm import lower_matmul
from .movement import CopyLowering, GatherLowering, GatherNDLowering
from .quant_gemv import QuantGemvLowering
from .reduction import NormLowering, ReduceLowering, SoftmaxLowering

__all__ = ["lower"]


def lower(node: Node, in_shapes: Sequence[tuple[int, ...] | None], known: Mapping[int, np.ndarray],
          options: Mapping[str, Any]) -> Lowering:
    """The lowering of ``node`` at these input shapes; raises ``Unsupported`` with the reason."""
    if is_elementwise(node):
        return ElementwiseLowering(node, in_shapes, dict(known))
    if node.op == "Fused" and node.attr("kind") == "matmul-epilogue" and node.body is not None:
        return lower_matmul(node, in_shapes, known, options)
    if node.op == "Fused" and node.attr("kind") == "dequant-matmul" and node.body is not None:
        return QuantGemvLowering(node, in_shapes, known)   # packed int4/int8 weights (quant_gemv.py)
    op = node.op
    if op in ("Softmax", "LogSoftmax"):
        return SoftmaxLowering(node, in_shapes)
    if op in ("LayerNormalization", "RMSNormalization"):
        return NormLowering(node, in_shapes, known)
    if op.startswith("Reduce"):
        return ReduceLowering(node, in_shapes, known)
    if op in ("Transpose", "Slice", "Expand", "Concat", "Split"):
        return CopyLowering(node, in_shapes, known)
    if op in ("MatMul", "Gemm"):
        return lower_matmul(node, in_shapes, known, options)
    if op == "Attention":
        return AttentionLowering(node, in_shapes, known)
    if op == "Gather":
        return GatherLowering(node, in_shapes, known)
    if op == "GatherND":
        return GatherNDLowering(node, in_shapes, known)
    if op == "RotaryEmbedding":
        return RotaryLowering(node, in_shapes, known)
    raise Unsupported(f"{node.op} has no llvm kernel")
