"""``fuse-rmsnorm``: a decomposed RMS normalization → ``RMSNormalization`` (ONNX opset 23).

The math matched (over the trailing axes from ``axis`` on)::

    r = √(mean(x²) + ε)              Sqrt(Add(ReduceMean(Pow(x, 2) | x·x), ε)), or Pow(·, 0.5)
    y = x / r                        Div(x, r)  or  x · 1/r  (Reciprocal, Div(1, r), or Pow(·, -0.5))
    y = y · γ                        an optional per-channel scale (Llama's weight)

A missing γ becomes ones (the op requires it).
"""

from __future__ import annotations

from ..registry import register_pass
from ..rewriter import Const, Match, OneOf, RewriteBuilder, RewritePass, Rule, Var, ops
from ._norm import attr_float, check_norm, ones_like_norm, scale_operand, stash, trailing_axis

__all__ = ["FuseRMSNorm", "RMS_NORM"]

x = Var("x")
ms = ops.ReduceMean(OneOf(ops.Pow(x, 2.0), ops.Mul(x, x)), Var(), _name="mean")     # mean(x²)
var_eps = ops.Add(ms, Const(name="eps"))
rms = OneOf(ops.Sqrt(var_eps), ops.Pow(var_eps, 0.5))                               # √(mean(x²) + ε)
normed = OneOf(ops.Div(x, rms), ops.Mul(x, ops.Reciprocal(rms)), ops.Mul(x, ops.Div(1.0, rms)),
               ops.Mul(x, ops.Pow(var_eps, -0.5)))                                  # x · (mean(x²) + ε)^-½
PATTERN = OneOf(ops.Mul(normed, Var("scale")), normed)                             # · γ


def _check(m: Match) -> bool | str:
    return check_norm(m, ("mean",), ("scale",))


def _rewrite(m: Match, b: RewriteBuilder):
    axis = trailing_axis(m, "mean")
    scale = scale_operand(m, "scale", axis, b) or ones_like_norm(m, axis, b)
    rank = m["x"].type.rank
    return b.RMSNormalization(m["x"], scale, axis=axis - rank, epsilon=attr_float(m.const("eps")), **stash(m))


RMS_NORM = Rule("rms-norm", PATTERN, _rewrite, check=_check, benefit=5,
                doc="x / sqrt(mean(x²) + ε) · γ")


@register_pass("fuse-rmsnorm")
class FuseRMSNorm(RewritePass):
    """Fuse decomposed RMS normalization into RMSNormalization."""
    touches = ("rmsnorm", "norm-edge")  # what check_pass generates for it
    rule_set = (RMS_NORM,)
