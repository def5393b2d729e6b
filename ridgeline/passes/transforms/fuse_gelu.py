"""``fuse-gelu``: the two decomposed GELUs → ``Gelu`` (ONNX opset 20).

The math matched::

    erf form   gelu(x) = ½·x·(1 + erf(x / √2))                          approximate = "none"
    tanh form  gelu(x) = ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))       approximate = "tanh"

with the product ½·x·(1 + …) in any association (``(x·½)·g``, ``x·(g·½)``, ``(x·g)·½``,
``(x·g)/2``), x/√2 also as x·(1/√2), and x³ as ``Pow(x, 3)``, ``x·(x·x)`` or ``(x·x)·x``.

Quick-GELU ``x·sigmoid(1.702·x)`` (CLIP) is deliberately not matched: it is not GELU (it differs by
up to ~0.02), so no rule may call it ``Gelu``; ``fuse-elementwise`` makes it one ``Fused`` node.
"""

from __future__ import annotations

import math

from ..registry import register_pass
from ..rewriter import OneOf, RewritePass, Rule, Var, ops

__all__ = ["GELU_ERF", "GELU_TANH", "FuseGelu"]

x = Var("x", dtype={"f16", "bf16", "f32", "f64"})


def _product(g):
    """½·x·g in the associations exporters write."""
    return OneOf(ops.Mul(ops.Mul(x, 0.5), g), ops.Mul(x, ops.Mul(g, 0.5)), ops.Mul(ops.Mul(x, g), 0.5),
                 ops.Div(ops.Mul(x, g), 2.0))


# 1 + erf(x / √2)
erf_term = ops.Add(ops.Erf(OneOf(ops.Div(x, math.sqrt(2.0)), ops.Mul(x, 1.0 / math.sqrt(2.0)))), 1.0)
# 1 + tanh(√(2/π)·(x + 0.044715·x³))
cube = OneOf(ops.Pow(x, 3.0), ops.Mul(x, ops.Mul(x, x)), ops.Mul(ops.Mul(x, x), x))
tanh_term = ops.Add(ops.Tanh(ops.Mul(ops.Add(x, ops.Mul(cube, 0.044715)), math.sqrt(2.0 / math.pi))), 1.0)

GELU_ERF = Rule("gelu-erf", _product(erf_term), lambda m, b: b.Gelu(m["x"]), benefit=5,
                doc="½·x·(1 + erf(x/√2)) = Gelu(x)")
GELU_TANH = Rule("gelu-tanh", _product(tanh_term), lambda m, b: b.Gelu(m["x"], approximate="tanh"), benefit=5,
                 doc="½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) = Gelu(x, approximate='tanh')")


@register_pass("fuse-gelu")
class FuseGelu(RewritePass):
    """Fuse the erf and tanh forms of GELU into Gelu."""
    touches = ("gelu",)  # what check_pass generates for it
    rule_set = (GELU_ERF, GELU_TANH)
