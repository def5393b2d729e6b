"""``fuse-layernorm``: a decomposed layer normalization → ``LayerNormalization``.

The math matched (over the trailing axes from ``axis`` on)::

    μ  = mean(x)                     ReduceMean(x, axes, keepdims=1)
    d  = x − μ                       Sub
    σ² = mean(d²)                    ReduceMean(Pow(d, 2) | d·d)
    y  = d / √(σ² + ε)               Div(d, Sqrt(Add(σ², ε)))  or  d · 1/√(σ² + ε)
    y  = y · γ + β                   optional scale and bias, each a per-channel vector

A missing γ becomes ones (the op requires it); β stays optional.
"""

from __future__ import annotations

from ..registry import register_pass
from ..rewriter import Const, Match, OneOf, RewriteBuilder, RewritePass, Rule, Var, ops
from ._norm import attr_float, check_norm, ones_like_norm, scale_operand, stash, trailing_axis

__all__ = ["FuseLayerNorm", "LAYER_NORM"]

x = Var("x")
d = ops.Sub(x, ops.ReduceMean(x, Var(), _name="mean"), _name="d")                   # x − μ
var = ops.ReduceMean(OneOf(ops.Pow(d, 2.0), ops.Mul(d, d)), Var(), _name="var")     # mean(d²)
std = ops.Sqrt(ops.Add(var, Const(name="eps")))                                     # √(σ² + ε)
normed = OneOf(ops.Div(d, std), ops.Mul(d, ops.Reciprocal(std)), ops.Mul(d, ops.Div(1.0, std)))
PATTERN = OneOf(ops.Add(ops.Mul(normed, Var("scale")), Var("bias")),                # · γ + β
                ops.Mul(normed, Var("scale")),
                normed)


def _check(m: Match) -> bool | str:
    return check_norm(m, ("mean", "var"), ("scale", "bias"))


def _rewrite(m: Match, b: RewriteBuilder):
    axis = trailing_axis(m, "mean", "var")
    scale = scale_operand(m, "scale", axis, b) or ones_like_norm(m, axis, b)
    bias = scale_operand(m, "bias", axis, b)
    rank = m["x"].type.rank
    return b.LayerNormalization(m["x"], scale, bias, axis=axis - rank, epsilon=attr_float(m.const("eps")),
                                _outputs=1, **stash(m))


LAYER_NORM = Rule("layer-norm", PATTERN, _rewrite, check=_check, benefit=5,
                  doc="(x − mean(x)) / sqrt(mean((x − mean(x))²) + ε) · γ + β")


@register_pass("fuse-layernorm")
class FuseLayerNorm(RewritePass):
    """Fuse decomposed layer normalization into LayerNormalization."""
    touches = ("layernorm", "norm-edge")  # what check_pass generates for it
    rule_set = (LAYER_NORM,)
