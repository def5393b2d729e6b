"""``fuse-relu6``: ReLU6 spelled as two ops becomes one ``Clip``.

    relu6(x) = min(max(x, 0), 6) = min(relu(x), 6) = Clip(x, 0, 6)

MobileNet-style exports write it either way; a backend runs one Clip (one read, one write of x)
instead of two elementwise kernels.
"""

from __future__ import annotations

import numpy as np

from ridgeline.passes import register_pass
from ridgeline.passes.rewriter import Const, OneOf, RewritePass, Rule, Var, ops

__all__ = ["FuseRelu6"]

x = Var("x", dtype={"f16", "bf16", "f32", "f64"})
SIX = Const(6.0, "six")
# Min and Max are commutative in their op specs: both operand orders match.
PATTERN = OneOf(ops.Min(ops.Relu(x), SIX), ops.Min(ops.Max(x, 0.0), SIX))


def _clip(m, b):
    zero = b.constant(np.zeros((), m["x"].type.dtype.np_dtype), "zero")
    return b.Clip(m["x"], zero, m["six"])  # reuse the matched 6


@register_pass("fuse-relu6")
class FuseRelu6(RewritePass):
    """Fuse min(relu(x), 6) and min(max(x, 0), 6) into Clip(x, 0, 6)."""
    rule_set = (Rule("relu6", PATTERN, _clip, doc="min(max(x, 0), 6) = Clip(x, 0, 6)"),)
