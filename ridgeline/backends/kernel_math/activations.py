"""Activation kernels of ``ridgeline.ir.ops.elementwise``, one for numpy and torch: the
reference's formulas (float64 where it widens) over the shared namespace; both tables register
``KERNELS``."""

from __future__ import annotations

import math

from .namespace import namespace

__all__ = ["KERNELS"]


def sigmoid(node, x):
    xp = namespace(x)
    with xp.errstate(over="ignore"):
        xf = xp.astype(x, xp.float64)
        return xp.astype(1.0 / (1.0 + xp.exp(-xf)), x.dtype)


def relu(node, x):
    return namespace(x).clip_min(x, 0)


def gelu(node, x):
    xp = namespace(x)
    xf = xp.astype(x, xp.float64)
    with xp.errstate(all="ignore"):  # inf in, the limits below out
        if node.attr("approximate") == "tanh":
            y = 0.5 * xf * (1.0 + xp.tanh(math.sqrt(2.0 / math.pi) * (xf + 0.044715 * xf ** 3)))
        else:
            y = 0.5 * xf * (1.0 + xp.erf(xf / math.sqrt(2.0)))
    # the limits (the formula gives -inf * 0 = NaN at -inf): Gelu(inf) = inf, Gelu(-inf) = 0
    y = xp.where(xp.module.isinf(xf), xp.where(xf > 0, xf, 0.0), y)
    return xp.astype(y, x.dtype)


def leaky_relu(node, x):
    return namespace(x).where(x >= 0, x, x * node.attr("alpha"))


def elu(node, x):
    xp = namespace(x)
    return xp.astype(xp.where(x >= 0, x, node.attr("alpha") * (xp.exp(x) - 1)), x.dtype)


def selu(node, x):
    xp = namespace(x)
    return xp.astype(node.attr("gamma") * xp.where(x > 0, x, node.attr("alpha") * (xp.exp(x) - 1)), x.dtype)


def thresholded_relu(node, x):
    xp = namespace(x)
    return xp.astype(xp.where(x > node.attr("alpha"), x, 0), x.dtype)


def softsign(node, x):
    return namespace(x).astype(x / (1 + namespace(x).abs(x)), x.dtype)


def hard_sigmoid(node, x):
    return namespace(x).astype(namespace(x).clip(node.attr("alpha") * x + node.attr("beta"), 0, 1), x.dtype)


def hard_swish(node, x):
    return namespace(x).astype(x * namespace(x).clip(x / 6 + 0.5, 0, 1), x.dtype)


def mish(node, x):
    xp = namespace(x)
    return xp.astype(x * xp.tanh(xp.log1p(xp.exp(x))), x.dtype)


def swish(node, x):
    xp = namespace(x)
    xf = xp.astype(x, xp.float64)
    return xp.astype(xf / (1.0 + xp.exp(-node.attr("alpha") * xf)), x.dtype)


def swiglu(node, a, b):
    xp = namespace(a)
    af = xp.astype(a, xp.float64)
    return xp.astype(af / (1.0 + xp.exp(-node.attr("alpha") * af)) * xp.astype(b, xp.float64), a.dtype)


def shrink(node, x):
    xp = namespace(x)
    lambd, bias = node.attr("lambd"), node.attr("bias")
    xf = xp.astype(x, xp.float64)
    return xp.astype(xp.where(xf < -lambd, xf + bias, xp.where(xf > lambd, xf - bias, 0.0)), x.dtype)


def celu(node, x):
    xp = namespace(x)
    a = node.attr("alpha")
    with xp.errstate(over="ignore"):
        return xp.astype(xp.clip_min(x, 0) + xp.clip_max(a * (xp.exp(x / a) - 1), 0), x.dtype)


def softplus(node, x):
    # log1p(exp(x)) exactly (torch's softplus switches to x above a threshold)
    xp = namespace(x)
    with xp.errstate(over="ignore"):
        return xp.astype(xp.log1p(xp.exp(x)), x.dtype)


KERNELS = {"Sigmoid": sigmoid, "Relu": relu, "Gelu": gelu, "Celu": celu, "Softplus": softplus, "LeakyRelu": leaky_relu,
           "Elu": elu, "Selu": selu, "ThresholdedRelu": thresholded_relu, "Softsign": softsign,
           "HardSigmoid": hard_sigmoid, "HardSwish": hard_swish, "Mish": mish, "Swish": swish, "SwiGLU": swiglu,
           "Shrink": shrink}
