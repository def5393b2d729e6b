"""Kernels of ``ridgeline.ir.ops.elementwise`` that numpy and torch compute alike: the unary
functions both libraries name alike, IsInf, Pow, PRelu, the variadic Max/Min/Sum/Mean,
comparisons, logical and bitwise pairs, Where and Clip. Both tables register ``KERNELS``; Sign,
Erf, Sigmoid, Relu, arithmetic (integer division and modulo by zero or -1), BitShift, Gelu and
Cast differ between the libraries and stay per table."""

from __future__ import annotations

import operator

from .namespace import namespace

__all__ = ["KERNELS"]


#: op -> the function's name in numpy and torch alike (numpy 2 has the array API's names)
_UNARY = {
    "Neg": "negative", "Abs": "abs", "Sqrt": "sqrt", "Reciprocal": "reciprocal", "Exp": "exp", "Log": "log",
    "Tanh": "tanh", "Cos": "cos", "Sin": "sin", "Tan": "tan", "Atan": "atan", "Asin": "asin", "Acos": "acos",
    "Sinh": "sinh", "Cosh": "cosh", "Asinh": "asinh", "Acosh": "acosh", "Atanh": "atanh",
    "BitwiseNot": "bitwise_not", "Floor": "floor", "Ceil": "ceil", "Round": "round",   # both: half to even
    "Not": "logical_not", "IsNaN": "isnan",
}


def unary(node, x):
    xp = namespace(x)
    with xp.errstate(all="ignore"):
        y = xp.asarray(getattr(xp.module, _UNARY[node.op])(x))
    return xp.astype(y, xp.bool if node.op in ("IsNaN", "Not") else x.dtype)


def isinf(node, x):
    xp = namespace(x)
    none = xp.zeros(x.shape, xp.bool, like=x)
    pos = xp.module.isposinf(x) if node.attr("detect_positive") else none
    neg = xp.isneginf(x) if node.attr("detect_negative") else none
    return pos | neg


def power(node, x, y):
    """x ** y in X's type: integer powers exactly (wrapping like C), everything else in float64."""
    xp = namespace(x)
    x, y = xp.same_device(x, y)
    with xp.errstate(all="ignore"):
        if xp.name_of(x.dtype)[0] in "iu" and xp.name_of(y.dtype)[0] in "iu":
            base, exp = xp.broadcast(xp.astype(x, xp.int64), xp.astype(y, xp.int64))
            negative = xp.module.trunc(xp.module.pow(xp.astype(base, xp.float64), xp.astype(exp, xp.float64)))
            out = xp.where(exp >= 0, xp.module.pow(base, xp.clip_min(exp, 0)), xp.astype(negative, xp.int64))
        else:
            out = xp.module.pow(xp.astype(x, xp.float64), xp.astype(y, xp.float64))
    return xp.astype(xp.asarray(out), x.dtype)


def prelu(node, x, slope):
    xp = namespace(x)
    x, slope = xp.same_device(x, slope)
    return xp.astype(xp.where(x < 0, x * slope, x), x.dtype)


_VARIADIC = {"Max": "maximum", "Min": "minimum", "Sum": "add", "Mean": "add"}


def variadic(node, *xs):
    xp = namespace(*xs)
    xs = xp.same_device(*xs)
    fn = getattr(xp.module, _VARIADIC[node.op])
    out = xs[0]
    for x in xs[1:]:
        out = fn(out, x)
    if node.op == "Mean":
        out = out / len(xs)
    return xp.astype(xp.asarray(out), xs[0].dtype)


_COMPARE = {"Equal": operator.eq, "Less": operator.lt, "LessOrEqual": operator.le, "Greater": operator.gt,
            "GreaterOrEqual": operator.ge}
_PAIRS = {"And": "logical_and", "Or": "logical_or", "Xor": "logical_xor", "BitwiseAnd": "bitwise_and",
          "BitwiseOr": "bitwise_or", "BitwiseXor": "bitwise_xor"}


def compare(node, a, b):
    xp = namespace(a)
    a, b = xp.same_device(a, b)
    return (_COMPARE.get(node.op) or getattr(xp.module, _PAIRS[node.op]))(a, b)


def where(node, cond, x, y):
    xp = namespace(x)
    return xp.where(*xp.same_device(cond, x, y))


def clip(node, x, lo=None, hi=None):
    xp = namespace(x)
    x, lo, hi = xp.same_device(x, lo, hi)
    out = x
    if lo is not None:
        out = xp.module.maximum(out, lo.reshape(()))
    if hi is not None:
        out = xp.module.minimum(out, hi.reshape(()))
    return xp.astype(out, x.dtype)


KERNELS = {**dict.fromkeys(_UNARY, unary), "IsInf": isinf, "Pow": power, "PRelu": prelu,
           **dict.fromkeys(_VARIADIC, variadic), **dict.fromkeys([*_COMPARE, *_PAIRS], compare), "Where": where,
           "Clip": clip}
