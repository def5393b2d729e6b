"""torch kernels of ``ridgeline.ir.ops.elementwise`` (and Cast, CastLike)."""

from __future__ import annotations

import math

import torch

from ....ir.dtypes import dtype as to_dtype
from ..convert import torch_dtype
from . import kernel, same_device

_UNARY = {
    "Neg": torch.neg, "Abs": torch.abs, "Sqrt": torch.sqrt, "Reciprocal": torch.reciprocal,
    "Exp": torch.exp, "Log": torch.log, "Tanh": torch.tanh, "Cos": torch.cos, "Sin": torch.sin,
    "Tan": torch.tan, "Atan": torch.atan, "Floor": torch.floor, "Ceil": torch.ceil,
    "Round": torch.round,  # half to even, like numpy
    "Sign": torch.sign, "Not": torch.logical_not, "IsNaN": torch.isnan, "Erf": torch.erf,
    "Sigmoid": torch.sigmoid, "Relu": torch.relu,
}


@kernel(*_UNARY)
def unary(node, x):
    return _UNARY[node.op](x)


@kernel("IsInf")
def isinf(node, x):
    pos = torch.isposinf(x) if node.attr("detect_positive") else torch.zeros_like(x, dtype=torch.bool)
    neg = torch.isneginf(x) if node.attr("detect_negative") else torch.zeros_like(x, dtype=torch.bool)
    return pos | neg


@kernel("LeakyRelu")
def leaky_relu(node, x):
    return torch.where(x >= 0, x, x * node.attr("alpha"))


@kernel("Elu")
def elu(node, x):
    return torch.where(x >= 0, x, node.attr("alpha") * (torch.exp(x) - 1))


@kernel("Selu")
def selu(node, x):
    a, g = node.attr("alpha"), node.attr("gamma")
    return g * torch.where(x > 0, x, a * (torch.exp(x) - 1))


@kernel("Celu")
def celu(node, x):
    a = node.attr("alpha")
    return torch.clamp(x, min=0) + torch.clamp(a * (torch.exp(x / a) - 1), max=0)


@kernel("ThresholdedRelu")
def thresholded_relu(node, x):
    return torch.where(x > node.attr("alpha"), x, torch.zeros_like(x))


@kernel("Softplus")
def softplus(node, x):
    # log1p(exp(x)) exactly as the reference (torch's softplus switches to x above a threshold)
    return torch.log1p(torch.exp(x))


@kernel("Softsign")
def softsign(node, x):
    return x / (1 + torch.abs(x))


@kernel("HardSigmoid")
def hard_sigmoid(node, x):
    return torch.clamp(node.attr("alpha") * x + node.attr("beta"), 0, 1)


@kernel("HardSwish")
def hard_swish(node, x):
    return x * torch.clamp(x / 6 + 0.5, 0, 1)


@kernel("Mish")
def mish(node, x):
    return x * torch.tanh(torch.log1p(torch.exp(x)))


@kernel("Gelu")
def gelu(node, x):
    return torch.nn.functional.gelu(x, approximate="tanh" if node.attr("approximate") == "tanh" else "none")


@kernel("Add", "Sub", "Mul", "Div")
def arith(node, a, b):
    a, b = same_device(a, b)
    if node.op == "Add":
        return a + b
    if node.op == "Sub":
        return a - b
    if node.op == "Mul":
        return a * b
    if not a.dtype.is_floating_point:
        # ONNX integer division truncates toward zero; numpy's reference gives 0 for x / 0
        zero = b == 0
        q = torch.div(a, torch.where(zero, torch.ones_like(b), b), rounding_mode="trunc")
        return torch.where(zero, torch.zeros_like(q), q)
    return a / b


@kernel("Mod")
def mod(node, a, b):
    a, b = same_device(a, b)
    if not a.dtype.is_floating_point:
        zero = b == 0
        safe = torch.where(zero, torch.ones_like(b), b)
        out = torch.fmod(a, safe) if node.attr("fmod") else torch.remainder(a, safe)
        return torch.where(zero, torch.zeros_like(out), out)
    return torch.fmod(a, b) if node.attr("fmod") else torch.remainder(a, b)


@kernel("Pow")
def power(node, x, y):
    x, y = same_device(x, y)
    if not x.dtype.is_floating_point:
        return torch.pow(x.double(), y.double()).to(x.dtype)
    return torch.pow(x, y.to(x.dtype))


@kernel("PRelu")
def prelu(node, x, slope):
    x, slope = same_device(x, slope)
    return torch.where(x < 0, x * slope, x)


@kernel("Max", "Min", "Sum", "Mean")
def variadic(node, *xs):
    xs = same_device(*xs)
    fn = {"Max": torch.maximum, "Min": torch.minimum, "Sum": torch.add, "Mean": torch.add}[node.op]
    out = xs[0]
    for x in xs[1:]:
        out = fn(out, x)
    if node.op == "Mean":
        out = out / len(xs)
    return out


_COMPARE = {"Equal": torch.eq, "Less": torch.lt, "LessOrEqual": torch.le, "Greater": torch.gt,
            "GreaterOrEqual": torch.ge, "And": torch.logical_and, "Or": torch.logical_or,
            "Xor": torch.logical_xor, "BitwiseAnd": torch.bitwise_and, "BitwiseOr": torch.bitwise_or,
            "BitwiseXor": torch.bitwise_xor}


@kernel(*_COMPARE)
def compare(node, a, b):
    a, b = same_device(a, b)
    return _COMPARE[node.op](a, b)


@kernel("Where")
def where(node, cond, x, y):
    cond, x, y = same_device(cond, x, y)
    return torch.where(cond, x, y)


@kernel("Clip")
def clip(node, x, lo=None, hi=None):
    x, lo, hi = same_device(x, lo, hi)
    out = x
    if lo is not None:
        out = torch.maximum(out, lo.reshape(()))
    if hi is not None:
        out = torch.minimum(out, hi.reshape(()))
    return out


@kernel("Cast")
def cast(node, x):
    return _cast(x, to_dtype(node.attr("to")).name, node.attr("saturate"))


@kernel("CastLike")
def cast_like(node, x, target):
    name = next(k for k, v in _names().items() if v == target.dtype)
    return _cast(x, name, node.attr("saturate"))


def _names():
    from ..convert import TORCH_DTYPES
    return TORCH_DTYPES


def _cast(x: torch.Tensor, to: str, saturate: int) -> torch.Tensor:
    """ONNX Cast as the reference does it: fp8 saturates to its finite range when ``saturate``."""
    want = torch_dtype(to)
    if want in (torch.float8_e4m3fn, torch.float8_e5m2):
        xf = x.float()
        if saturate:
            big = torch.finfo(want).max
            clipped = torch.clamp(xf, -big, big)
            keep = torch.isnan(xf) | (torch.isinf(xf) & (want == torch.float8_e5m2))
            xf = torch.where(keep, xf, clipped)
        return xf.to(want)
    if x.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        x = x.float()
    return x.to(want)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
